"""TensorRT-LLM: `trtllm-serve MODEL --backend pytorch` (checked against TensorRT-LLM 1.0/1.1).

CLI flags: `--tp_size`, `--pp_size`, `--ep_size`, `--max_seq_len`, `--max_batch_size`,
`--max_num_tokens`, `--kv_cache_free_gpu_memory_fraction`. Everything else goes to the LLM
API through `--extra_llm_api_options FILE.yaml`: `enable_attention_dp: true` for attention
DP, `speculative_config: {decoding_type: MTP|Eagle, ...}`, and the recipe's structured
engine args (`cuda_graph_config`, `kv_cache_config`, `moe_config`, ...). Version: GET /version.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ixci.engines.base import EngineJob, MetricsMap, ServeSpec, frozen_env, ready_timeout
from ixci.engines.common import opt, reject_unknown, require, server_component
from ixci.loadgen.dialect import DIALECTS

CLI_ARGS = (
    "max_batch_size",
    "max_num_tokens",
    "kv_cache_free_gpu_memory_fraction",
    "trust_remote_code",
)
RESERVED = (
    "tp_size",
    "pp_size",
    "ep_size",
    "max_seq_len",
    "enable_attention_dp",
    "speculative_config",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "moe_expert_parallel_size",
)
OPTIONS_FILE = "extra_llm_api_options.yaml"


def speculative_config(job: EngineJob) -> dict[str, object] | None:
    """Speculative decoding → the LLM API's `speculative_config`."""
    sd = job.spec_decoding
    if sd is None:
        return None
    if sd.method == "mtp":
        return {"decoding_type": "MTP", "num_nextn_predict_layers": sd.num_speculative_tokens}
    require(
        sd.method in {"eagle", "eagle3"} and sd.draft_model is not None,
        job,
        f"speculative method {sd.method!r} without a draft model",
    )
    return {
        "decoding_type": "Eagle",
        "max_draft_len": sd.num_speculative_tokens,
        "speculative_model_dir": sd.draft_model,
        "eagle3_one_model": sd.method == "eagle3",
    }


def llm_api_options(job: EngineJob, args: Mapping[str, object]) -> dict[str, object]:
    """The extra LLM API options document (dp-attention, spec decoding, structured args)."""
    doc: dict[str, object] = {k: v for k, v in args.items() if k not in CLI_ARGS}
    if job.dp_attention:
        doc["enable_attention_dp"] = True
    spec = speculative_config(job)
    if spec is not None:
        doc["speculative_config"] = spec
    return doc


def cli_flags(job: EngineJob) -> list[str]:
    """Topology and the CLI-level engine args → trtllm-serve flags (underscore style)."""
    require(job.dcp == 1, job, "decode context parallelism (dcp > 1)")
    flags = ["--tp_size", str(job.tp), "--pp_size", str(job.pp), "--ep_size", str(job.ep)]
    flags += opt("--max_seq_len", job.max_model_len)
    for key in CLI_ARGS:
        value = job.engine_args.get(key)
        if value is True:
            flags.append(f"--{key}")
        elif value not in (None, False):
            flags += [f"--{key}", str(value)]
    return flags


def serve_spec(job: EngineJob) -> ServeSpec:
    """Job → `trtllm-serve` ServeSpec (pure); the options file travels in `files`."""
    reject_unknown(job, job.engine_args, RESERVED)
    options = llm_api_options(job, job.engine_args)
    argv = [
        "trtllm-serve",
        job.model_path,
        "--host",
        job.host,
        "--port",
        str(job.port),
        "--backend",
        "pytorch",
        *cli_flags(job),
    ]
    files: Mapping[str, str] = frozen_env()
    if options:
        argv += ["--extra_llm_api_options", f"{job.files_dir}/{OPTIONS_FILE}"]
        files = frozen_env({OPTIONS_FILE: yaml.safe_dump(options, sort_keys=True)})
    server = server_component(job, argv)
    return ServeSpec(
        engine="trtllm",
        image=job.image,
        components=(server,),
        host=job.host,
        port=job.port,
        health_path="/health",
        version_path="/version",
        ready_timeout_s=ready_timeout(job.model_size_gb, base_s=900),
        model_name=job.model_path,
        model_path=job.model_path,
        dialect=DIALECTS["trtllm"],
        files=files,
        files_dir=job.files_dir,
        # trtllm-serve's Prometheus endpoint (TensorRT-LLM docs, examples/serve/prometheus_metrics
        # .py): request histograms and counters only (1.1), none of ixci's series; no flush
        metrics=MetricsMap(path="/prometheus/metrics"),
    )
