"""ATOM (AMD's inference engine for ROCm): `python3 -m atom.entrypoints.openai_server`.

Flags as the `rocm/atom` images launch it (the ATOM launch lines of the InferenceX scripts at
commit 843c6254, e.g. benchmarks/single_node/fixed_seq_len/dsr1_fp8_mi355x_atom.sh, and ATOM's
own examples): `--model`, `--host`, `--server-port`, `-tp/--tensor-parallel-size`,
`--enable-expert-parallel`, `--enable-dp-attention`, `--max-model-len`, speculative decoding as
`--method mtp --num-speculative-tokens N` (MTP only), anything else as structured engine args
(`kv_cache_dtype: fp8` → `--kv_cache_dtype fp8`; ATOM keeps that one flag in snake case).
Health: GET /health (what the incumbent polls). Single node only: no pipeline or decode-context
parallelism, no disaggregated pools (the incumbent's one `atom-disagg` entry runs a custom
multi-node script; ixci reports it instead of guessing).
"""

from __future__ import annotations

from ixci.engines.base import EngineJob, ServeSpec, engine_arg_flags, ready_timeout
from ixci.engines.common import opt, reject_unknown, require, server_component
from ixci.loadgen.dialect import DIALECTS

RESERVED = (
    "model",
    "host",
    "server_port",
    "tensor_parallel_size",
    "enable_expert_parallel",
    "enable_dp_attention",
    "max_model_len",
    "method",
    "num_speculative_tokens",
)


def topology_flags(job: EngineJob) -> list[str]:
    """tp/ep/dp-attention → ATOM flags (EP and DP-attention are switches over the TP ranks)."""
    require(job.pp == 1, job, "pipeline parallelism")
    require(job.dcp == 1, job, "decode context parallelism")
    flags = ["-tp", str(job.tp)]
    if job.ep > 1:
        flags.append("--enable-expert-parallel")
    if job.dp_attention:
        flags.append("--enable-dp-attention")
    return flags


def spec_flags(job: EngineJob) -> list[str]:
    """MTP speculative decoding → `--method mtp --num-speculative-tokens N`."""
    sd = job.spec_decoding
    if sd is None:
        return []
    require(sd.method == "mtp", job, f"speculative method {sd.method!r} (ATOM runs MTP only)")
    return ["--method", "mtp", "--num-speculative-tokens", str(sd.num_speculative_tokens)]


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → ATOM `openai_server` ServeSpec (pure)."""
    require(not job.disaggregated, job, "disaggregated prefill/decode pools")
    reject_unknown(job, job.engine_args, RESERVED)
    argv = [
        "python3", "-m", "atom.entrypoints.openai_server",
        "--model", job.model_path,
        "--host", job.host,
        "--server-port", str(job.port),
        *topology_flags(job),
    ]  # fmt: skip
    argv += opt("--max-model-len", job.max_model_len)
    argv += spec_flags(job)
    argv += _flags(job)
    return ServeSpec(
        engine="atom",
        image=job.image,
        components=(server_component(job, argv),),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path=None,
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=900),
        model_name=job.model_path,
        model_path=job.model_path,
        dialect=DIALECTS["vllm"],
    )


def _flags(job: EngineJob) -> list[str]:
    """Structured engine args; `kv_cache_dtype` keeps its underscores (ATOM's spelling)."""
    out: list[str] = []
    for flag in engine_arg_flags(job.engine_args):
        out.append("--kv_cache_dtype" if flag == "--kv-cache-dtype" else flag)
    return out
