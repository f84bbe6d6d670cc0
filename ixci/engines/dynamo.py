"""NVIDIA Dynamo: an OpenAI front end (`python3 -m dynamo.frontend`) plus engine workers
(`python3 -m dynamo.sglang | dynamo.trtllm | dynamo.vllm`), aggregated or disaggregated.

Checked against the Dynamo 0.6/0.7 component CLIs: the front end takes `--http-port` and
`--router-mode kv|round-robin|random`; SGLang workers take SGLang's server args plus
`--disaggregation-mode prefill|decode --disaggregation-transfer-backend nixl`; vLLM workers
take vLLM's engine args plus `--is-prefill-worker`; TensorRT-LLM workers take
`--extra-engine-args FILE.yaml` and `--disaggregation-mode`. Workers find the front end via
Dynamo's discovery. Disaggregated deployments start etcd and NATS beside the workers as
components of their own (role `service`, from the same image: the Dynamo runtime images ship
`etcd` and `nats-server`, as in Dynamo's examples/basics/multinode), and every front end and
worker gets `ETCD_ENDPOINTS` / `NATS_SERVER` naming them; aggregated ones keep the image's
defaults. A TensorRT-LLM worker spanning several nodes is one MPI world: one task per GPU
(`srun --mpi=pmix`) under `trtllm-llmapi-launch` (Dynamo's multinode TRT-LLM example); a
multi-node SGLang worker takes `--dist-init-addr/--nnodes/--node-rank`. The front end serves
/health; it reports no engine version (recorded from the image instead).
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ixci.engines.base import (
    Component,
    EngineJob,
    MetricsMap,
    PoolJob,
    ServeSpec,
    engine_arg_flags,
    frozen_env,
    host_of,
    ready_timeout,
)
from ixci.engines.common import merged_env, require
from ixci.engines.sglang import multinode_flags
from ixci.loadgen.dialect import DIALECTS

# The frontend's own series (Dynamo metrics catalog, `dynamo_frontend_*` on the HTTP port); the
# engines' series are on each worker's system port, which ixci does not scrape. No flush.
FRONTEND_METRICS = MetricsMap(
    gauges={
        "queue_depth": ("dynamo_frontend_queued_requests",),
        "running": ("dynamo_frontend_inflight_requests",),
    },
)

BACKENDS: Mapping[str, str] = {
    "dynamo-sglang": "sglang",
    "dynamo-trt": "trtllm",
    "dynamo-vllm": "vllm",
}
ROUTER_MODES = ("kv", "round-robin", "random")
ETCD_PORT, NATS_PORT, NATS_MONITOR_PORT = 2379, 4222, 8222


def services(job: EngineJob) -> tuple[Component, ...]:
    """etcd (discovery) and NATS with JetStream (events), health on their HTTP ports."""
    etcd = ("etcd", "--listen-client-urls", f"http://0.0.0.0:{ETCD_PORT}",
            "--advertise-client-urls", f"http://{host_of('etcd')}:{ETCD_PORT}",
            "--data-dir", f"/tmp/ixci-etcd-{job.job_id}")  # fmt: skip
    nats = ("nats-server", "-js", "-p", str(NATS_PORT), "-m", str(NATS_MONITOR_PORT))
    return (
        Component(name="etcd", role="service", argv=etcd, port=ETCD_PORT, health_path="/health"),
        Component(name="nats", role="service", argv=nats, port=NATS_MONITOR_PORT,
                  health_path="/healthz"),
    )  # fmt: skip


def _discovery_env(job: EngineJob) -> Mapping[str, str]:
    if not job.disaggregated:
        return merged_env(job)
    return merged_env(job, {"ETCD_ENDPOINTS": f"http://{host_of('etcd')}:{ETCD_PORT}",
                            "NATS_SERVER": f"nats://{host_of('nats')}:{NATS_PORT}"})  # fmt: skip


def _pool_flags(backend: str, pool: PoolJob) -> list[str]:
    """Parallelism of one worker, in the backend's own flag names."""
    if backend == "sglang":
        flags = ["--tp", str(pool.tp)]
        flags += ["--ep-size", str(pool.ep)] if pool.ep > 1 else []
        return flags + (
            ["--enable-dp-attention", "--dp-size", str(pool.tp)] if pool.dp_attention else []
        )
    if backend == "vllm":
        flags = (
            ["--tensor-parallel-size", "1", "--data-parallel-size", str(pool.tp)]
            if pool.dp_attention
            else ["--tensor-parallel-size", str(pool.tp)]
        )
        return flags + (["--enable-expert-parallel"] if pool.ep > 1 else [])
    return []  # trtllm: parallelism lives in the per-role engine yaml


def _trt_yaml(pool: PoolJob, job: EngineJob) -> str:
    doc: dict[str, object] = {
        "tensor_parallel_size": pool.tp,
        "pipeline_parallel_size": pool.pp,
        "moe_expert_parallel_size": pool.ep,
        **dict(pool.engine_args),
    }
    if pool.dp_attention:
        doc["enable_attention_dp"] = True
    if job.max_model_len:
        doc["max_seq_len"] = job.max_model_len
    return yaml.safe_dump(doc, sort_keys=True)


def _worker(
    job: EngineJob, backend: str, pool: PoolJob, index: int, k: int = 0
) -> tuple[Component, dict[str, str]]:
    """One worker process of `pool` (the k-th of the deployment) and the files it needs."""
    model_flag = "--model" if backend == "vllm" else "--model-path"
    name, nodes = f"{pool.role}-{index}", pool.nodes_per_worker
    require(nodes == 1 or backend != "vllm", job, "multi-node vLLM workers through Dynamo")
    mpi = backend == "trtllm" and nodes > 1
    argv = [
        *(["trtllm-llmapi-launch"] if mpi else []),
        "python3",
        "-m",
        f"dynamo.{backend}",
        model_flag,
        job.model_path,
        "--served-model-name",
        job.served_name,
        *_pool_flags(backend, pool),
    ]
    files: dict[str, str] = {}
    if backend == "trtllm":
        config = f"{pool.role}.yaml"
        files[config] = _trt_yaml(pool, job)
        argv += ["--extra-engine-args", f"{job.files_dir}/{config}"]
    if job.disaggregated:
        if backend == "vllm":
            argv += ["--is-prefill-worker"] if pool.role == "prefill" else []
        else:
            argv += ["--disaggregation-mode", pool.role]
            if backend == "sglang":
                argv += ["--disaggregation-transfer-backend", job.kv_transfer or "nixl"]
    if backend == "sglang":
        argv += multinode_flags(name, nodes, k)
    if backend != "trtllm":
        argv += engine_arg_flags(pool.engine_args)
    comp = Component(
        name=name,
        role=pool.role,
        argv=tuple(argv),
        env=_discovery_env(job),
        gpus=pool.tp * pool.pp,
        nodes=nodes,
        tasks_per_node=pool.tp * pool.pp // nodes if mpi else 1,
    )
    return comp, files


def _notes(job: EngineJob) -> tuple[str, ...]:
    if not job.disaggregated:
        return ()
    return (
        f"router: {job.router or 'dynamo-router'} {job.router_version or '(version not pinned)'} "
        f"(dynamo.frontend, KV-aware); KV transfer: {job.kv_transfer}",
        f"etcd and nats-server: the binaries shipped in {job.image} (versions pinned by the image)",
    )


def _pools(job: EngineJob) -> tuple[PoolJob, ...]:
    if job.prefill is not None and job.decode is not None:
        return (job.prefill, job.decode)
    return (
        PoolJob(
            role="worker",
            workers=1,
            tp=job.tp,
            ep=job.ep,
            pp=job.pp,
            dp_attention=job.dp_attention,
            engine_args=job.engine_args,
        ),
    )


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → Dynamo front end + workers (pure)."""
    backend = BACKENDS.get(job.framework)
    require(
        backend is not None, job, f"framework {job.framework!r} (use one of {sorted(BACKENDS)})"
    )
    assert backend is not None
    require(
        job.spec_decoding is None,
        job,
        "speculative decoding through Dynamo (set it in the worker engine args)",
    )
    router = str(job.engine_args.get("router_mode", "kv")) if not job.disaggregated else "kv"
    require(router in ROUTER_MODES, job, f"router mode {router!r}")
    frontend = Component(
        name="frontend",
        role="frontend",
        env=_discovery_env(job),
        port=job.port,
        argv=(
            "python3",
            "-m",
            "dynamo.frontend",
            "--http-port",
            str(job.port),
            "--router-mode",
            router,
        ),
    )
    workers: list[Component] = list(services(job)) if job.disaggregated else []
    files: dict[str, str] = {}
    for pool in _pools(job):
        for i in range(pool.workers):
            comp, more = _worker(job, backend, pool, i, len(workers))
            workers.append(comp)
            files.update(more)
    return ServeSpec(
        engine=job.framework,
        image=job.image,
        components=(frontend, *workers),
        notes=_notes(job),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path=None,
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=1200),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["sglang"].with_overrides(name="dynamo"),
        files=frozen_env(files),
        files_dir=job.files_dir if files else None,
        metrics=FRONTEND_METRICS,
    )
