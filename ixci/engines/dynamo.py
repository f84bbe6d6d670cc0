"""NVIDIA Dynamo: an OpenAI front end (`python3 -m dynamo.frontend`) plus engine workers
(`python3 -m dynamo.sglang | dynamo.trtllm | dynamo.vllm`), aggregated or disaggregated.

Checked against the Dynamo 0.6/0.7 component CLIs: the front end takes `--http-port` and
`--router-mode kv|round-robin|random` (the recipe's `router_mode` engine arg, aggregated only);
SGLang workers take SGLang's server args plus `--disaggregation-mode prefill|decode
--disaggregation-transfer-backend nixl`; vLLM workers take vLLM's engine args plus
`--is-prefill-worker`; TensorRT-LLM workers take `--extra-engine-args FILE.yaml` and
`--disaggregation-mode`. Every worker gets the recipe's and search entry's engine args with its
pool's on top (the pool wins), and the job's speculative decoding in its backend's own terms:
SGLang `--speculative-algorithm/-num-steps/-eagle-topk 1/-num-draft-tokens steps+1`, vLLM
`--speculative-config` JSON, TensorRT-LLM `speculative_config` in the engine yaml (the same
mapping as the plain adapters). Workers find the front end via Dynamo's discovery.
Disaggregated deployments start etcd and NATS beside the workers as components of their own
(role `service`, from the same image: the Dynamo runtime images ship `etcd` and
`nats-server`, as in Dynamo's examples/basics/multinode), and every front end and worker gets
`ETCD_ENDPOINTS` / `NATS_SERVER` naming them; aggregated ones keep the image's defaults.

Multi-node workers (a pool's `nodes_per_worker`, or an aggregated launch's `nodes`, e.g. TP-8
on 4-GPU GB200 nodes): a TensorRT-LLM worker is one MPI world, one task per GPU
(`srun --mpi=pmix`) under `trtllm-llmapi-launch` (Dynamo's multinode TRT-LLM example); an
SGLang worker takes `--dist-init-addr/--nnodes/--node-rank`; a vLLM worker is one component per
node, as the incumbent's srt-slurm launcher and Dynamo's multi-node vLLM examples start it:
`--master-addr/--master-port/--nnodes/--node-rank` with `--headless` on every node but the
head, or, with DP attention, each node its share of the DP ranks (`--data-parallel-size-local
--data-parallel-start-rank --data-parallel-address --data-parallel-rpc-port
--data-parallel-hybrid-lb`, every node registering with the front end). The front end serves
/health; it reports no engine version (recorded from the image instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import yaml

from ixci.engines import sglang, trtllm, vllm
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
from ixci.engines.common import merged_env, reject_unknown, require
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


# Flags ixci derives for every worker from the topology: engine args may not set them.
WORKER_RESERVED = (
    "disaggregation_mode", "disaggregation_transfer_backend", "is_prefill_worker",
    "extra_engine_args", "model", "nnodes", "node_rank", "dist_init_addr", "master_addr",
    "master_port", "headless", "data_parallel_size_local", "data_parallel_start_rank",
    "data_parallel_address", "data_parallel_rpc_port", "data_parallel_hybrid_lb",
)  # fmt: skip
RESERVED: Mapping[str, tuple[str, ...]] = {
    "sglang": sglang.RESERVED, "trtllm": trtllm.RESERVED, "vllm": vllm.RESERVED,
}  # fmt: skip
FRONTEND_ARGS = ("router_mode",)  # read by the front end, never given to a worker
VLLM_MASTER_PORT = 29600  # multi-node vLLM worker k: torch.distributed store on its head node
VLLM_DP_RPC_PORT = 13345  # ... and its data-parallel coordinator (DP attention)


def _pool_flags(backend: str, pool: PoolJob) -> list[str]:
    """Parallelism of one worker, in the backend's own flag names."""
    if backend == "sglang":
        flags = ["--tp", str(pool.tp)]
        flags += ["--pp-size", str(pool.pp)] if pool.pp > 1 else []
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
        flags += ["--pipeline-parallel-size", str(pool.pp)] if pool.pp > 1 else []
        return flags + (["--enable-expert-parallel"] if pool.ep > 1 else [])
    return []  # trtllm: parallelism lives in the per-role engine yaml


def _worker_args(job: EngineJob, backend: str, pool: PoolJob) -> dict[str, object]:
    """The recipe's and search entry's engine args with the pool's on top (the pool wins), as
    the SGLang PD adapter merges them; the front end's own keys stay with the front end."""
    args = {k: v for k, v in job.engine_args.items() if k not in FRONTEND_ARGS}
    args.update(pool.engine_args)
    reject_unknown(job, args, (*RESERVED[backend], *WORKER_RESERVED))
    return args


def _spec_flags(job: EngineJob, backend: str) -> list[str]:
    """Speculative decoding in the worker backend's own flags (TensorRT-LLM: in its yaml)."""
    if backend == "sglang":
        return sglang.spec_flags(job)
    return vllm.spec_config(job) if backend == "vllm" else []


def _trt_yaml(pool: PoolJob, job: EngineJob, args: Mapping[str, object]) -> str:
    doc: dict[str, object] = {
        "tensor_parallel_size": pool.tp,
        "pipeline_parallel_size": pool.pp,
        "moe_expert_parallel_size": pool.ep,
        **dict(args),
    }
    if pool.dp_attention:
        doc["enable_attention_dp"] = True
    if job.max_model_len:
        doc["max_seq_len"] = job.max_model_len
    spec = trtllm.speculative_config(job)
    if spec is not None:
        doc["speculative_config"] = spec
    return yaml.safe_dump(doc, sort_keys=True)


def _vllm_node_flags(head: str, pool: PoolJob, nodes: int, rank: int, k: int) -> list[str]:
    """Node `rank` of a vLLM worker spanning `nodes` nodes (the incumbent's srt-slurm launch,
    Dynamo's multi-node vLLM examples). DP attention: every node runs its share of the DP
    ranks and registers with the front end (`--data-parallel-hybrid-lb`); otherwise one
    torch.distributed world, the head serving and the other nodes `--headless`."""
    head_addr = host_of(head)
    if pool.dp_attention:
        local = pool.tp // nodes
        return ["--data-parallel-size-local", str(local),
                "--data-parallel-start-rank", str(rank * local),
                "--data-parallel-address", head_addr,
                "--data-parallel-rpc-port", str(VLLM_DP_RPC_PORT + k),
                "--data-parallel-hybrid-lb"]  # fmt: skip
    flags = ["--master-addr", head_addr, "--master-port", str(VLLM_MASTER_PORT + k),
             "--nnodes", str(nodes), "--node-rank", str(rank)]  # fmt: skip
    return flags + (["--headless"] if rank > 0 else [])


def _vllm_nodes(job: EngineJob, comp: Component, pool: PoolJob, k: int) -> list[Component]:
    """A multi-node vLLM worker as one component per node: vLLM starts one process per node
    and only the non-head nodes run headless, so their argv differ by more than the rank."""
    nodes = comp.nodes
    require(
        pool.tp % nodes == 0 if pool.dp_attention else (pool.tp * pool.pp) % nodes == 0,
        job,
        f"a vLLM worker of tp {pool.tp} × pp {pool.pp} split unevenly over {nodes} nodes",
    )
    per_node = comp.gpus // nodes
    return [
        replace(comp, name=comp.name if r == 0 else f"{comp.name}-node{r}", gpus=per_node,
                nodes=1, argv=(*comp.argv, *_vllm_node_flags(comp.name, pool, nodes, r, k)))
        for r in range(nodes)
    ]  # fmt: skip


def _worker(
    job: EngineJob, backend: str, pool: PoolJob, index: int, k: int = 0
) -> tuple[list[Component], dict[str, str]]:
    """One worker of `pool` (the k-th of the deployment): its processes and the files they need."""
    model_flag = "--model" if backend == "vllm" else "--model-path"
    name, nodes = f"{pool.role}-{index}", pool.nodes_per_worker
    mpi = backend == "trtllm" and nodes > 1
    args = _worker_args(job, backend, pool)
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
        *_spec_flags(job, backend),
    ]
    files: dict[str, str] = {}
    if backend == "trtllm":
        config = f"{pool.role}.yaml"
        files[config] = _trt_yaml(pool, job, args)
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
        argv += engine_arg_flags(args)
    comp = Component(
        name=name,
        role=pool.role,
        argv=tuple(argv),
        env=_discovery_env(job),
        gpus=pool.tp * pool.pp,
        nodes=nodes,
        tasks_per_node=pool.tp * pool.pp // nodes if mpi else 1,
    )
    if backend == "vllm" and nodes > 1:
        return _vllm_nodes(job, comp, pool, k), files
    return [comp], files


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
            nodes_per_worker=job.nodes,
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
        job.disaggregated or job.dp == 1,
        job,
        f"dp {job.dp}: whole-model replicas in one aggregated Dynamo deployment (use workers"
        " of a disaggregated pool, or one search entry per replica)",
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
            comps, more = _worker(job, backend, pool, i, len(workers))
            workers += comps
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
