"""llama.cpp: `llama-server` — the embedded engine (CPU, or GPU offload with `-ngl`).

Flags checked against the llama-server `--help` of the build used here (llama.cpp 2025-2026):
`-m`, `--host`, `--port`, `-a/--alias` (model name in requests), `-c/--ctx-size` (total KV
context, split over `-np/--parallel` slots — so ctx = max_model_len × slots), `-ngl`,
`-md/--model-draft` + `--draft-max` for speculative decoding, `--metrics`. No tensor/expert
parallelism. Version: GET /props (`build_info`), else `llama-server --version`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ixci.engines.base import Component, EngineJob, ServeSpec, engine_arg_flags, ready_timeout
from ixci.engines.common import merged_env, reject_unknown, require
from ixci.loadgen.dialect import DIALECTS

RESERVED = ("model", "m", "host", "port", "alias", "a", "model_draft", "md")
DEFAULT_CONTEXT = 4096  # per slot, when the recipe sets neither max_model_len nor ctx_size
DERIVED = ("parallel", "np", "ctx_size", "c")  # the recipe may set these; else ixci derives them


def _arg(args: Mapping[str, object], *names: str) -> object | None:
    norm = {k.replace("-", "_"): v for k, v in args.items()}
    return next((norm[n] for n in names if norm.get(n) is not None), None)


def topology_flags(job: EngineJob) -> list[str]:
    """Slots, context and offload; llama-server runs one process without TP/EP/PP.

    Slots: the recipe's `parallel`, else the job's highest concurrency. Context: the recipe's
    `ctx_size` (total over slots), else max_model_len (or 4096) × slots.
    """
    require(job.tp == 1 and job.pp == 1 and job.ep == 1 and job.dcp == 1, job, "tp/ep/pp/dcp > 1")
    require(not job.dp_attention and not job.disaggregated, job, "dp-attention or disaggregation")
    slots = int(str(_arg(job.engine_args, "parallel", "np") or max(job.max_concurrency, 1)))
    ctx = _arg(job.engine_args, "ctx_size", "c") or (job.max_model_len or DEFAULT_CONTEXT) * slots
    flags = ["-np", str(slots), "-c", str(ctx)]
    if job.device != "cpu":
        flags += ["-ngl", "999"]
    return flags


def spec_flags(job: EngineJob) -> list[str]:
    """Speculative decoding with a draft GGUF."""
    sd = job.spec_decoding
    if sd is None:
        return []
    require(
        sd.method == "draft-model" and sd.draft_model is not None,
        job,
        f"speculative method {sd.method!r}",
    )
    return ["-md", str(sd.draft_model), "--draft-max", str(sd.num_speculative_tokens)]


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `llama-server` ServeSpec (pure)."""
    reject_unknown(job, job.engine_args, RESERVED)
    argv = [
        "llama-server",
        "-m",
        job.model_path,
        "--host",
        job.host,
        "--port",
        str(job.port),
        "-a",
        job.served_name,
        *topology_flags(job),
        *spec_flags(job),
        "--metrics",
        *engine_arg_flags(
            {k: v for k, v in job.engine_args.items() if k.replace("-", "_") not in DERIVED}
        ),
    ]
    server = Component(
        name="server",
        role="server",
        argv=tuple(argv),
        env=merged_env(job),
        gpus=job.gpus,
        port=job.port,
    )
    return ServeSpec(
        engine="llamacpp",
        image=job.image,
        components=(server,),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/props",
        version_argv=("llama-server", "--version"),
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=60),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["llamacpp"],
    )
