"""SGLang: `python3 -m sglang.launch_server` (checked against SGLang 0.5 server arguments).

Topology: `--tp-size`, `--pp-size`, `--ep-size`; attention data parallelism is
`--enable-dp-attention --dp-size N` over the TP ranks. Speculative decoding:
`--speculative-algorithm EAGLE|EAGLE3|NEXTN|NGRAM` with `--speculative-num-steps`,
`--speculative-eagle-topk 1`, `--speculative-num-draft-tokens steps+1`. Context length:
`--context-length`. Version: GET /get_server_info (`version`).

Disaggregated (SGLang PD docs, docs.sglang.io advanced_features/pd_disaggregation; router flags
from sglang-router 0.3.2 `--help`): every prefill/decode worker is a `launch_server` with
`--disaggregation-mode prefill|decode --disaggregation-transfer-backend <kv-transfer>` (mooncake,
nixl, and mori on ROCm builds), prefill workers with their own `--disaggregation-bootstrap-port`;
the router `python3 -m sglang_router.launch_router --pd-disaggregation --prefill URL BOOTSTRAP
... --decode URL ...` is the client-facing component. A worker spanning several nodes adds
`--dist-init-addr HEAD:PORT --nnodes N --node-rank R` (SGLang multi-node docs); the runtime puts
in the head node's address and each node's rank.
"""

from __future__ import annotations

from collections.abc import Mapping

from ixci.engines.base import (
    NODE_RANK,
    CacheFlush,
    Component,
    EngineJob,
    MetricsMap,
    PoolJob,
    ServeSpec,
    engine_arg_flags,
    host_of,
    ready_timeout,
)
from ixci.engines.common import DTYPES, merged_env, opt, reject_unknown, require, server_component
from ixci.loadgen.dialect import DIALECTS

RESERVED = (
    "tp_size",
    "tp",
    "pp_size",
    "ep_size",
    "dp_size",
    "enable_dp_attention",
    "context_length",
    "speculative_algorithm",
    "model_path",
    "served_model_name",
    "host",
    "port",
)
ALGORITHMS = {
    "eagle": "EAGLE",
    "eagle3": "EAGLE3",
    "mtp": "NEXTN",
    "ngram": "NGRAM",
    "draft-model": "STANDALONE",
}

# SGLang's Prometheus series (`--enable-metrics`; docs.sglang.io references/production_metrics,
# python/sglang/srt/metrics/collector.py). The hit rate is SGLang's own gauge.
METRICS = MetricsMap(
    gauges={
        "queue_depth": ("sglang:num_queue_reqs",),
        "running": ("sglang:num_running_reqs",),
        "kv_cache_usage": ("sglang:token_usage",),
        "prefix_cache_hit_rate": ("sglang:cache_hit_rate",),
        # speculative decoding: the scheduler's acceptance over its last logging interval
        "spec_accept_rate": ("sglang:spec_accept_rate",),
        "spec_accept_length": ("sglang:spec_accept_length",),
    },
    counters={
        "preemptions": ("sglang:num_retracted_reqs",),
        "prompt_tokens": ("sglang:prompt_tokens",),
        "generation_tokens": ("sglang:generation_tokens",),
        "prefix_cache_hits": ("sglang:cached_tokens",),
    },
    hit_rate="gauge",
)
FLUSH = CacheFlush(kind="post", path="/flush_cache", needs="no request in flight")


def topology_flags(job: EngineJob) -> list[str]:
    """tp/pp/ep/dp-attention → SGLang flags."""
    require(job.dcp == 1, job, "decode context parallelism (dcp > 1)")
    flags = ["--tp-size", str(job.tp)]
    if job.pp > 1:
        flags += ["--pp-size", str(job.pp)]
    if job.ep > 1:
        flags += ["--ep-size", str(job.ep)]
    if job.dp_attention:
        flags += ["--enable-dp-attention", "--dp-size", str(job.attention_dp)]
    return flags


def spec_flags(job: EngineJob) -> list[str]:
    """Speculative decoding → SGLang's speculative flags."""
    sd = job.spec_decoding
    if sd is None:
        return []
    require(sd.method in ALGORITHMS, job, f"speculative method {sd.method!r}")
    flags = [
        "--speculative-algorithm",
        ALGORITHMS[sd.method],
        "--speculative-num-steps",
        str(sd.num_speculative_tokens),
        "--speculative-eagle-topk",
        "1",
        "--speculative-num-draft-tokens",
        str(sd.num_speculative_tokens + 1),
    ]
    return flags + opt("--speculative-draft-model-path", sd.draft_model)


BOOTSTRAP_PORT = 8998  # prefill worker k: BOOTSTRAP_PORT + k
DIST_INIT_PORT = 20000  # multi-node worker k: torch.distributed rendezvous on its head node


def multinode_flags(name: str, nodes: int, index: int) -> list[str]:
    """`--dist-init-addr/--nnodes/--node-rank` for a worker spanning `nodes` nodes (else none)."""
    if nodes <= 1:
        return []
    addr = f"{host_of(name)}:{DIST_INIT_PORT + index}"
    return ["--dist-init-addr", addr, "--nnodes", str(nodes), "--node-rank", NODE_RANK]


def _pool_job(job: EngineJob, pool: PoolJob) -> EngineJob:
    return job.with_topology(
        tp=pool.tp, ep=pool.ep, pp=pool.pp, dp=1, dp_attention=pool.dp_attention
    )


def _worker(job: EngineJob, pool: PoolJob, i: int, k: int) -> Component:
    """Worker `i` of `pool`, the k-th worker of the deployment (ports: job.port + 1 + k)."""
    reject_unknown(job, pool.engine_args, RESERVED)
    name, port = f"{pool.role}-{i}", job.port + 1 + k
    argv = _server_argv(_pool_job(job, pool), host="0.0.0.0", port=port,
                        args={**job.engine_args, **pool.engine_args})  # fmt: skip
    argv += ["--disaggregation-mode", pool.role,
             "--disaggregation-transfer-backend", str(job.kv_transfer)]  # fmt: skip
    if pool.role == "prefill":
        argv += ["--disaggregation-bootstrap-port", str(BOOTSTRAP_PORT + k)]
    argv += multinode_flags(name, pool.nodes_per_worker, k)
    return Component(name=name, role=pool.role, argv=tuple(argv), env=merged_env(job),
                     gpus=pool.tp * pool.pp, nodes=pool.nodes_per_worker, port=port)  # fmt: skip


def disaggregated_components(job: EngineJob) -> tuple[Component, ...]:
    """PD router on `job.port` + prefill and decode workers."""
    assert job.prefill is not None and job.decode is not None
    require(job.kv_transfer not in (None, "none"), job, "disaggregation without a KV transfer")
    require(
        job.router in (None, "sglang-router"), job, f"router {job.router!r} (use sglang-router)"
    )
    workers: list[Component] = []
    for pool in (job.prefill, job.decode):
        workers += [_worker(job, pool, i, len(workers) + i) for i in range(pool.workers)]
    router = ["python3", "-m", "sglang_router.launch_router", "--pd-disaggregation"]
    for k, w in enumerate(workers):
        url = f"http://{host_of(w.name)}:{w.port}"
        router += ["--prefill", url, str(BOOTSTRAP_PORT + k)] if w.role == "prefill" else []
        router += ["--decode", url] if w.role == "decode" else []
    router += ["--host", "0.0.0.0", "--port", str(job.port)]
    front = Component(name="router", role="frontend", argv=tuple(router), env=merged_env(job),
                      port=job.port)  # fmt: skip
    return (front, *workers)


def _server_argv(job: EngineJob, *, host: str, port: int, args: Mapping[str, object]) -> list[str]:
    argv = [
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        job.model_path,
        "--served-model-name",
        job.served_name,
        "--host",
        host,
        "--port",
        str(port),
        *topology_flags(job),
        "--enable-metrics",  # /metrics, sampled per point (ixci.run.servermetrics)
    ]
    argv += opt("--dtype", DTYPES.get(job.precision))
    argv += opt("--context-length", job.max_model_len)
    argv += spec_flags(job)
    return argv + engine_arg_flags(args)


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `sglang.launch_server` ServeSpec (pure); disaggregated → PD router + workers."""
    reject_unknown(job, job.engine_args, RESERVED)
    if job.disaggregated:
        return _spec(job, disaggregated_components(job), notes=_notes(job))
    argv = _server_argv(job, host=job.host, port=job.port, args=job.engine_args)
    server = server_component(job, argv)
    return _spec(job, (server,), notes=())


def _notes(job: EngineJob) -> tuple[str, ...]:
    return (f"router: {job.router or 'sglang-router'} {job.router_version or '(version not pinned)'}"
            f" (PD mode); KV transfer: {job.kv_transfer}",)  # fmt: skip


def _spec(
    job: EngineJob, components: tuple[Component, ...], *, notes: tuple[str, ...]
) -> ServeSpec:
    return ServeSpec(
        engine="sglang",
        image=job.image,
        components=components,
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/get_server_info",
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=600),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["sglang"],
        notes=notes,
        metrics=METRICS,
        cache_flush=FLUSH,
    )
