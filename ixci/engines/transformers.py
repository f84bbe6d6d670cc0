"""Hugging Face `transformers serve MODEL` (checked against transformers 5.x `serve`).

The positional MODEL is preloaded and never unloaded; the model name in requests is that
same string. `--continuous-batching` (the paged-attention batch scheduler), `--device
cuda:0|cpu`, `--dtype`, `--attn-implementation`. Only the chat endpoint; no `[DONE]`; unknown
request fields → HTTP 422 (dialect `transformers`). Single device: no TP/EP/PP.
Health: GET /health. Version: the installed package (`python3 -c ...`).
"""

from __future__ import annotations

from ixci.engines.base import Component, EngineJob, ServeSpec, engine_arg_flags, ready_timeout
from ixci.engines.common import DTYPES, merged_env, opt, reject_unknown, require
from ixci.loadgen.dialect import DIALECTS

RESERVED = ("host", "port", "device", "force_model", "dtype")
VERSION_ARGV = ("python3", "-c", "import transformers; print(transformers.__version__)")


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `transformers serve` ServeSpec (pure). Continuous batching is on by default."""
    reject_unknown(job, job.engine_args, RESERVED)
    require(job.tp == 1 and job.pp == 1 and job.ep == 1 and job.dcp == 1, job, "tp/ep/pp/dcp > 1")
    require(
        job.spec_decoding is None and not job.dp_attention, job, "spec decoding or dp-attention"
    )
    args = {"continuous_batching": True, **dict(job.engine_args)}
    device = "cpu" if job.device == "cpu" else "cuda:0"
    argv = [
        "transformers",
        "serve",
        job.model_path,
        "--host",
        job.host,
        "--port",
        str(job.port),
        "--device",
        device,
        *opt("--dtype", DTYPES.get(job.precision)),
        *engine_arg_flags(args),
    ]
    env = merged_env(job, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    server = Component(
        name="server", role="server", argv=tuple(argv), env=env, gpus=job.gpus, port=job.port
    )
    return ServeSpec(
        engine="transformers",
        image=job.image,
        components=(server,),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path=None,
        version_argv=VERSION_ARGV,
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=300),
        model_name=job.model_path,
        model_path=job.model_path,
        dialect=DIALECTS["transformers"],
    )
