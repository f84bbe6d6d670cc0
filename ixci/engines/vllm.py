"""vLLM: `vllm serve MODEL` (checked against the vLLM 0.11–0.12 CLI reference).

Topology: `--tensor-parallel-size`, `--pipeline-parallel-size`, `--decode-context-parallel-size`;
expert parallelism is `--enable-expert-parallel` (EP size = TP × DP); attention data
parallelism is `--data-parallel-size N` with `-tp 1` (each DP rank holds full attention).
Speculative decoding: `--speculative-config` JSON. Version: GET /version.
"""

from __future__ import annotations

import json

from ixci.engines.base import (
    CacheFlush,
    EngineJob,
    MetricsMap,
    ServeSpec,
    engine_arg_flags,
    ready_timeout,
)
from ixci.engines.common import DTYPES, opt, reject_unknown, server_component
from ixci.loadgen.dialect import DIALECTS

RESERVED = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "enable_expert_parallel",
    "max_model_len",
    "speculative_config",
    "served_model_name",
    "host",
    "port",
    "decode_context_parallel_size",
)

# vLLM's Prometheus series (v1 engine names first, the v0 name of KV usage after; docs.vllm.ai
# "Production Metrics"). prefix_cache_queries/hits count tokens.
METRICS = MetricsMap(
    gauges={
        "queue_depth": ("vllm:num_requests_waiting",),
        "running": ("vllm:num_requests_running",),
        "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    },
    counters={
        "prefix_cache_hits": ("vllm:prefix_cache_hits",),
        "prefix_cache_queries": ("vllm:prefix_cache_queries",),
        "preemptions": ("vllm:num_preemptions",),
        "prompt_tokens": ("vllm:prompt_tokens",),
        "generation_tokens": ("vllm:generation_tokens",),
        # speculative decoding: draft rounds, proposed and accepted draft tokens
        "spec_drafts": ("vllm:spec_decode_num_drafts",),
        "spec_draft_tokens": ("vllm:spec_decode_num_draft_tokens",),
        "spec_accepted_tokens": ("vllm:spec_decode_num_accepted_tokens",),
    },
    hit_rate="queries",
)
# a development endpoint: mounted only when the server runs with VLLM_SERVER_DEV_MODE=1
FLUSH = CacheFlush(kind="post", path="/reset_prefix_cache",
                   needs="the environment variable VLLM_SERVER_DEV_MODE=1 (recipe env)")  # fmt: skip


def topology_flags(job: EngineJob) -> list[str]:
    """tp/pp/dcp/ep/dp-attention → vLLM flags."""
    if job.dp_attention:
        flags = ["--tensor-parallel-size", "1", "--data-parallel-size", str(job.attention_dp)]
    else:
        flags = ["--tensor-parallel-size", str(job.tp)]
    if job.pp > 1:
        flags += ["--pipeline-parallel-size", str(job.pp)]
    if job.dcp > 1:
        flags += ["--decode-context-parallel-size", str(job.dcp)]
    if job.ep > 1:
        flags.append("--enable-expert-parallel")
    return flags


def spec_config(job: EngineJob) -> list[str]:
    """Speculative decoding → `--speculative-config {"method", "num_speculative_tokens", "model"}`."""
    sd = job.spec_decoding
    if sd is None:
        return []
    method = {
        "mtp": "mtp",
        "eagle": "eagle",
        "eagle3": "eagle3",
        "ngram": "ngram",
        "draft-model": "draft_model",
    }
    cfg: dict[str, object] = {
        "method": method.get(sd.method, sd.method),
        "num_speculative_tokens": sd.num_speculative_tokens,
    }
    if sd.draft_model:
        cfg["model"] = sd.draft_model
    return ["--speculative-config", json.dumps(cfg, separators=(",", ":"), sort_keys=True)]


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `vllm serve` ServeSpec (pure)."""
    reject_unknown(job, job.engine_args, RESERVED)
    argv = [
        "vllm",
        "serve",
        job.model_path,
        "--host",
        job.host,
        "--port",
        str(job.port),
        "--served-model-name",
        job.served_name,
        *topology_flags(job),
    ]
    argv += opt("--dtype", DTYPES.get(job.precision))
    argv += opt("--max-model-len", job.max_model_len)
    argv += spec_config(job)
    argv += engine_arg_flags(job.engine_args)
    server = server_component(job, argv)
    return ServeSpec(
        engine="vllm",
        image=job.image,
        components=(server,),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/version",
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=600),
        model_name=job.served_name,
        model_path=job.model_path,
        dialect=DIALECTS["vllm"],
        metrics=METRICS,
        cache_flush=FLUSH,
    )
