"""SGLang: `python3 -m sglang.launch_server` (checked against SGLang 0.5 server arguments).

Topology: `--tp-size`, `--pp-size`, `--ep-size`; attention data parallelism is
`--enable-dp-attention --dp-size N` over the TP ranks. Speculative decoding:
`--speculative-algorithm EAGLE|EAGLE3|NEXTN|NGRAM` with `--speculative-num-steps`,
`--speculative-eagle-topk 1`, `--speculative-num-draft-tokens steps+1`. Context length:
`--context-length`. Version: GET /get_server_info (`version`).
"""

from __future__ import annotations

from ixci.engines.base import Component, EngineJob, ServeSpec, engine_arg_flags, ready_timeout
from ixci.engines.common import DTYPES, merged_env, opt, reject_unknown, require
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


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `sglang.launch_server` ServeSpec (pure)."""
    reject_unknown(job, job.engine_args, RESERVED)
    argv = [
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        job.model_path,
        "--served-model-name",
        job.served_name,
        "--host",
        job.host,
        "--port",
        str(job.port),
        *topology_flags(job),
    ]
    argv += opt("--dtype", DTYPES.get(job.precision))
    argv += opt("--context-length", job.max_model_len)
    argv += spec_flags(job)
    argv += engine_arg_flags(job.engine_args)
    server = Component(
        name="server",
        role="server",
        argv=tuple(argv),
        env=merged_env(job),
        gpus=job.gpus,
        port=job.port,
    )
    return ServeSpec(
        engine="sglang",
        image=job.image,
        components=(server,),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/get_server_info",
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=600),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["sglang"],
    )
