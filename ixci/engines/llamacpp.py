"""llama.cpp: `llama-server` — the embedded engine (CPU, or GPU offload with `-ngl`).

Flags checked against the llama-server `--help` of the build used here (llama.cpp 2025-2026):
`-m`, `--host`, `--port`, `-a/--alias` (model name in requests), `-c/--ctx-size` (total KV
context, split over `-np/--parallel` slots — so ctx = max_model_len × slots), `-ngl`,
`--spec-type draft-simple` + `-md/--spec-draft-model` + `--spec-draft-n-max` for draft-model
speculative decoding (this build removed `--draft-max` and drafts nothing without a
`--spec-type`), `--metrics`. No tensor/expert
parallelism. Version: GET /props (`build_info`), else `llama-server --version`.

Disaggregated jobs: one llama-server per prefill and decode worker (each on its own port, bound
to all interfaces so a router on another node reaches it) behind SGLang's router
(`python3 -m sglang_router.launch_router --policy round_robin --worker-urls URL...`, flags checked
against sglang-router 0.3.2 `--help`). llama.cpp cannot hand a KV cache from one server to
another, so the router balances over the DECODE workers only and the prefill workers serve
health checks alone; the recipe must say `kv-transfer: none`, and the result's provenance notes
say so.
"""

from __future__ import annotations

from collections.abc import Mapping

from ixci.engines.base import (
    CacheFlush,
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
from ixci.loadgen.dialect import DIALECTS

RESERVED = ("model", "m", "host", "port", "alias", "a", "model_draft", "md", "spec_draft_model",
            "slot_save_path")  # fmt: skip
DEFAULT_CONTEXT = 4096  # per slot, when the recipe sets neither max_model_len nor ctx_size
DERIVED = ("parallel", "np", "ctx_size", "c")  # the recipe may set these; else ixci derives them
# `--slot-save-path` must name an existing folder: the files folder, which the runtime creates
# (and mounts into containers) because it holds this one file
SLOT_FILES = {"slot-save-path.txt": "llama-server --slot-save-path (enables slot erase)\n"}

# llama-server's `--metrics` series, read off a real server (`GET /metrics`). Its prompt counter
# excludes tokens served from the cache, hence the `uncached` hit-rate basis. Builds that report
# KV usage call it `kv_cache_usage_ratio`; the build checked here has no such series. Its
# speculative counters (verification steps, draft and accepted tokens) carry vLLM's names.
METRICS = MetricsMap(
    gauges={
        "queue_depth": ("llamacpp:requests_deferred",),
        "running": ("llamacpp:requests_processing",),
        "kv_cache_usage": ("llamacpp:kv_cache_usage_ratio",),
    },
    counters={
        "prompt_tokens": ("llamacpp:prompt_tokens",),
        "generation_tokens": ("llamacpp:tokens_predicted",),
        "prefix_cache_hits": ("llamacpp:prompt_tokens_cached",),
        "spec_drafts": ("llamacpp:spec_decode_num_drafts",),
        "spec_draft_tokens": ("llamacpp:spec_decode_num_draft_tokens",),
        "spec_accepted_tokens": ("llamacpp:spec_decode_num_accepted_tokens",),
    },
    hit_rate="uncached",
)
# `POST /slots/{id}?action=erase` answers 501 unless the server runs with --slot-save-path; the
# host-memory prompt cache (`--cache-ram`, on by default) survives an erase (ixci.run.cachestate)
FLUSH = CacheFlush(kind="slots", path="/slots", needs="--slot-save-path (set by ixci)")


def _arg(args: Mapping[str, object], *names: str) -> object | None:
    norm = {k.replace("-", "_"): v for k, v in args.items()}
    return next((norm[n] for n in names if norm.get(n) is not None), None)


def check_topology(job: EngineJob) -> None:
    """llama-server runs one process: no TP/EP/PP/DCP, no attention data parallelism."""
    require(job.tp == 1 and job.pp == 1 and job.ep == 1 and job.dcp == 1, job, "tp/ep/pp/dcp > 1")
    require(not job.dp_attention, job, "dp-attention")


def slot_flags(job: EngineJob, args: Mapping[str, object]) -> list[str]:
    """Slots, context and offload from the engine args `args`.

    Slots: the recipe's `parallel`, else the job's highest concurrency. Context: the recipe's
    `ctx_size` (total over slots), else max_model_len (or 4096) × slots.
    """
    slots = int(str(_arg(args, "parallel", "np") or max(job.max_concurrency, 1)))
    ctx = _arg(args, "ctx_size", "c") or (job.max_model_len or DEFAULT_CONTEXT) * slots
    flags = ["-np", str(slots), "-c", str(ctx)]
    if job.device != "cpu":
        flags += ["-ngl", "999"]
    return flags


def spec_flags(job: EngineJob) -> list[str]:
    """Speculative decoding with a draft GGUF (drafting `num-tokens` tokens per step at most)."""
    sd = job.spec_decoding
    if sd is None:
        return []
    require(
        sd.method == "draft-model" and sd.draft_model is not None,
        job,
        f"speculative method {sd.method!r}",
    )
    return ["--spec-type", "draft-simple", "-md", str(sd.draft_model),
            "--spec-draft-n-max", str(sd.num_speculative_tokens)]  # fmt: skip


def _server_argv(job: EngineJob, *, host: str, port: int, args: Mapping[str, object]) -> list[str]:
    return [
        "llama-server",
        "-m",
        job.model_path,
        "--host",
        host,
        "--port",
        str(port),
        "-a",
        job.served_name,
        *slot_flags(job, args),
        *spec_flags(job),
        "--metrics",
        "--slot-save-path",
        job.files_dir,
        *engine_arg_flags({k: v for k, v in args.items() if k.replace("-", "_") not in DERIVED}),
    ]


def _check_pool(job: EngineJob, pool: PoolJob) -> None:
    single = pool.tp == 1 and pool.pp == 1 and pool.ep == 1 and not pool.dp_attention
    require(single, job, f"{pool.role} workers with tp/ep/pp/dp-attention (one process each)")
    require(pool.nodes_per_worker == 1, job, f"{pool.role} workers spanning several nodes")
    reject_unknown(job, pool.engine_args, RESERVED)


def disaggregated_components(job: EngineJob) -> tuple[Component, ...]:
    """Router + one llama-server per prefill and decode worker (ports: job.port + 1, + 2, ...).

    The router listens on `job.port` on all interfaces and sends every request round-robin to
    a decode worker, named by host placeholder (the runtime puts in the node's address).
    """
    assert job.prefill is not None and job.decode is not None
    require(job.kv_transfer in (None, "none"), job,
            f"kv-transfer {job.kv_transfer!r}: llama.cpp has no KV hand-off (use kv-transfer: none)")  # fmt: skip
    require(
        job.router in (None, "sglang-router"), job, f"router {job.router!r} (use sglang-router)"
    )
    workers: list[Component] = []
    for pool in (job.prefill, job.decode):
        _check_pool(job, pool)
        args = {**job.engine_args, **pool.engine_args}
        for i in range(pool.workers):
            port = job.port + 1 + len(workers)
            argv = _server_argv(job, host="0.0.0.0", port=port, args=args)
            workers.append(Component(name=f"{pool.role}-{i}", role=pool.role, argv=tuple(argv),
                                     env=merged_env(job), gpus=pool.tp if job.gpus else 0, port=port))  # fmt: skip
    urls = [f"http://{host_of(w.name)}:{w.port}" for w in workers if w.role == "decode"]
    router = Component(
        name="router", role="frontend", env=merged_env(job), port=job.port,
        argv=("python3", "-m", "sglang_router.launch_router", "--host", "0.0.0.0",
              "--port", str(job.port), "--policy", "round_robin", "--worker-urls", *urls),
    )  # fmt: skip
    return (router, *workers)


def _notes(job: EngineJob) -> tuple[str, ...]:
    if not job.disaggregated:
        return ()
    return (
        f"router: {job.router or 'sglang-router'} {job.router_version or '(version not pinned)'}, "
        "round-robin over the decode workers",
        "llama.cpp cannot hand a KV cache from a prefill server to a decode server: each decode "
        "worker runs prefill and decode of its requests; the prefill workers are started and "
        "health-checked but serve no requests (no prefill/decode hand-off measured)",
    )


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `llama-server` ServeSpec (pure); disaggregated → router + prefill/decode servers."""
    reject_unknown(job, job.engine_args, RESERVED)
    if job.disaggregated:
        components = disaggregated_components(job)
    else:
        check_topology(job)
        argv = _server_argv(job, host=job.host, port=job.port, args=job.engine_args)
        components = (Component(name="server", role="server", argv=tuple(argv),
                                env=merged_env(job), gpus=job.gpus, port=job.port),)  # fmt: skip
    return ServeSpec(
        engine="llamacpp",
        image=job.image,
        components=components,
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/props",
        version_argv=("llama-server", "--version"),
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=60),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["llamacpp"],
        notes=_notes(job),
        metrics=METRICS,
        cache_flush=FLUSH,
        files=frozen_env(SLOT_FILES),
        files_dir=job.files_dir,
    )
