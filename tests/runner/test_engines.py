"""Golden tests: each engine adapter maps a job to the exact argv/env/endpoints expected.

Golden files live in tests/runner/golden/<case>.json and were reviewed by hand against each
engine's CLI reference (docs/engines.md). Regenerate after an intended change with
`IXCI_UPDATE_GOLDEN=1 pytest tests/runner/test_engines.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from ixci.engines import ADAPTERS, adapter_for
from ixci.engines.base import (
    EngineJob,
    PoolJob,
    ServeSpec,
    SpecDecoding,
    engine_arg_flags,
    frozen_env,
    frozen_map,
)
from ixci.errors import InvalidJob
from tests.runner.jobs import engine_job_of

GOLDEN = Path(__file__).parent / "golden"


def _job(framework: str, **kw: object) -> EngineJob:
    base: dict[str, object] = dict(
        job_id="j-0123456789ab",
        framework=framework,
        image=f"example.org/{framework}:1.0",
        model_key="deepseek-r1",
        model_path="/models/deepseek-r1",
        served_name="deepseek-r1",
        precision="fp8",
        tp=8,
        gpus=8,
        max_concurrency=64,
        model_size_gb=700.0,
    )
    base.update(kw)
    return engine_job_of(**base)  # type: ignore[arg-type]


CASES: dict[str, EngineJob] = {
    "atom-tp8-ep-mtp": _job(
        "atom",
        image="rocm/atom:rocm7.2.3_ubuntu24.04_py3.12_pytorch_release_2.10.0_atom20260511",
        ep=8,
        dp_attention=True,
        device="rocm",
        max_model_len=10240,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=3),
        engine_args=frozen_map({"kv_cache_dtype": "fp8", "block_size": 16}),
    ),
    "atom-plain": _job("atom", precision="fp4", tp=4, gpus=4, device="rocm"),
    "vllm-tp8": _job(
        "vllm",
        max_model_len=10240,
        engine_args=frozen_map(
            {
                "max_num_seqs": 256,
                "kv_cache_dtype": "fp8",
                "compilation_config": {"cudagraph_mode": "FULL"},
            }
        ),
    ),
    "vllm-dpattn-ep-mtp": _job(
        "vllm",
        ep=8,
        dp_attention=True,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=2),
    ),
    "vllm-bf16-pp2-dcp2": _job(
        "vllm", precision="bf16", tp=4, pp=2, dcp=2, env=frozen_env({"VLLM_USE_V1": "1"})
    ),
    "sglang-dpattn-ep-eagle": _job(
        "sglang",
        ep=8,
        dp_attention=True,
        max_model_len=9216,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=3),
        engine_args=frozen_map(
            {
                "mem_fraction_static": 0.82,
                "enable_torch_compile": True,
                "disable_radix_cache": False,
            }
        ),
    ),
    "trtllm-mtp-dpattn": _job(
        "trtllm",
        ep=8,
        dp_attention=True,
        max_model_len=9216,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=3),
        engine_args=frozen_map(
            {
                "max_batch_size": 256,
                "kv_cache_free_gpu_memory_fraction": 0.8,
                "cuda_graph_config": {"enable_padding": True, "max_batch_size": 256},
            }
        ),
    ),
    "trtllm-plain": _job("trtllm", precision="fp4", tp=4, gpus=4),
    "dynamo-sglang-disagg": _job(
        "dynamo-sglang",
        gpus=24,
        prefill=PoolJob(role="prefill", workers=1, tp=8, ep=8, dp_attention=True),
        decode=PoolJob(role="decode", workers=2, tp=8, ep=8, dp_attention=True),
        kv_transfer="nixl",
    ),
    "dynamo-trt-disagg": _job(
        "dynamo-trt",
        gpus=12,
        prefill=PoolJob(
            role="prefill", workers=2, tp=2, engine_args=frozen_map({"max_num_tokens": 8192})
        ),
        decode=PoolJob(role="decode", workers=1, tp=8, ep=8, dp_attention=True),
    ),
    "dynamo-vllm-agg": _job("dynamo-vllm", tp=8),
    # recipe/entry args under the pool's (the pool wins), MTP on both roles
    "dynamo-sglang-disagg-mtp-args": _job(
        "dynamo-sglang",
        gpus=12,
        prefill=PoolJob(
            role="prefill",
            workers=1,
            tp=4,
            engine_args=frozen_map({"mem_fraction_static": 0.7, "chunked_prefill_size": 16384}),
        ),
        decode=PoolJob(role="decode", workers=1, tp=8, ep=8, dp_attention=True),
        kv_transfer="nixl",
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=3),
        engine_args=frozen_map({"mem_fraction_static": 0.8, "disable_radix_cache": True}),
    ),
    # TP-8 on GB200 (4 GPUs/node): one MPI world over 2 nodes, MTP in the engine yaml
    "dynamo-trt-agg-2node-mtp": _job(
        "dynamo-trt",
        nodes=2,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=3),
        engine_args=frozen_map({"max_batch_size": 64, "router_mode": "round-robin"}),
    ),
    # aggregated SGLang over 2 nodes: --dist-init-addr/--nnodes/--node-rank, EAGLE-3 draft
    "dynamo-sglang-agg-2node-eagle3": _job(
        "dynamo-sglang",
        nodes=2,
        spec_decoding=SpecDecoding(
            method="eagle3", num_speculative_tokens=3, draft_model="example/eagle3-head"
        ),
        engine_args=frozen_map({"enable_hierarchical_cache": True, "hicache_size": 168}),
    ),
    # TP-8 × PP-2 over 2 nodes of 8: head + one headless node, vLLM MTP config
    "dynamo-vllm-agg-2node-pp2-mtp": _job(
        "dynamo-vllm",
        pp=2,
        gpus=16,
        nodes=2,
        spec_decoding=SpecDecoding(method="mtp", num_speculative_tokens=2),
    ),
    # DP-attention decode worker over 2 nodes: each node its share of the DP ranks
    "dynamo-vllm-disagg-2node-dep": _job(
        "dynamo-vllm",
        gpus=16,
        prefill=PoolJob(role="prefill", workers=1, tp=8, nodes_per_worker=2),
        decode=PoolJob(role="decode", workers=1, tp=8, ep=8, dp_attention=True, nodes_per_worker=2),
        kv_transfer="nixl",
        engine_args=frozen_map({"kv_cache_dtype": "fp8"}),
    ),
    "llamacpp-cpu": _job(
        "llamacpp",
        image=None,
        model_path="/tmp/tiny.gguf",
        served_name="tiny-llama",
        precision="q8_0",
        tp=1,
        gpus=0,
        device="cpu",
        max_concurrency=4,
        max_model_len=2048,
        model_size_gb=0.01,
        engine_args=frozen_map({"threads": 2}),
    ),
    "llamacpp-gpu": _job("llamacpp", model_path="/models/m.gguf", tp=1, gpus=1, max_concurrency=8),
    "transformers-gpu": _job(
        "transformers",
        image=None,
        precision="bf16",
        model_path="/tmp/llama-1b",
        tp=1,
        gpus=1,
        model_size_gb=2.1,
    ),
    "transformers-cpu": _job(
        "transformers",
        image=None,
        precision="fp32",
        model_path="/tmp/llama-tiny",
        tp=1,
        gpus=0,
        device="cpu",
        model_size_gb=0.01,
    ),
}


def _render(spec: ServeSpec) -> dict[str, object]:
    return {
        "engine": spec.engine,
        "image": spec.image,
        "port": spec.port,
        "health_path": spec.health_path,
        "version_path": spec.version_path,
        "version_argv": list(spec.version_argv or []),
        "ready_timeout_s": spec.ready_timeout_s,
        "model_name": spec.model_name,
        "dialect": spec.dialect.name,
        "files": dict(spec.files),
        "gpus": spec.gpus,
        "components": [
            {
                "name": c.name,
                "role": c.role,
                "argv": list(c.argv),
                "env": dict(c.env),
                "gpus": c.gpus,
                "nodes": c.nodes,
                "port": c.port,
            }
            for c in spec.components
        ],
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    job = CASES[case]
    got = _render(adapter_for(job.framework)(job))
    path = GOLDEN / f"{case}.json"
    if os.environ.get("IXCI_UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_every_adapter_has_a_golden_case() -> None:
    assert {job.framework for job in CASES.values()} == set(ADAPTERS)


def test_adapters_are_pure() -> None:
    for job in CASES.values():
        adapter = adapter_for(job.framework)
        assert adapter(job) == adapter(job)


@pytest.mark.parametrize(
    ("framework", "kw", "needle"),
    [
        ("llamacpp", {"tp": 2}, "tp/ep/pp/dcp"),
        ("sglang", {"dcp": 2}, "decode context"),
        (
            "transformers",
            {"tp": 1, "spec_decoding": SpecDecoding(method="eagle", num_speculative_tokens=2)},
            "spec decoding",
        ),
        ("vllm", {"engine_args": frozen_map({"tensor_parallel_size": 4})}, "tensor_parallel_size"),
        (
            "trtllm",
            {"spec_decoding": SpecDecoding(method="ngram", num_speculative_tokens=2)},
            "ngram",
        ),
        ("dynamo-sglang", {"engine_args": frozen_map({"node_rank": 1})}, "node_rank"),
        (
            "dynamo-trt",
            {
                "prefill": PoolJob(
                    role="prefill",
                    workers=1,
                    tp=2,
                    engine_args=frozen_map({"tensor_parallel_size": 4}),
                ),
                "decode": PoolJob(role="decode", workers=1, tp=2),
            },
            "tensor_parallel_size",
        ),
        ("dynamo-vllm", {"dp": 2, "gpus": 16}, "whole-model replicas"),
        ("dynamo-vllm", {"tp": 6, "gpus": 6, "nodes": 4}, "split unevenly over 4 nodes"),
        (
            "dynamo-trt",
            {"spec_decoding": SpecDecoding(method="eagle", num_speculative_tokens=3)},
            "without a draft model",
        ),
    ],
)
def test_unsupported_options_are_invalid_jobs(
    framework: str, kw: dict[str, object], needle: str
) -> None:
    with pytest.raises(InvalidJob) as info:
        adapter_for(framework)(_job(framework, **kw))
    assert needle in str(info.value) and info.value.exit_code == 10


def test_dynamo_workers_get_the_recipe_args_under_the_pool_args() -> None:
    spec = adapter_for("dynamo-sglang")(CASES["dynamo-sglang-disagg-mtp-args"])
    prefill, decode = (c for c in spec.components if c.role in ("prefill", "decode"))
    assert prefill.argv[prefill.argv.index("--mem-fraction-static") + 1] == "0.7"  # the pool's
    assert decode.argv[decode.argv.index("--mem-fraction-static") + 1] == "0.8"  # the recipe's
    assert "--disable-radix-cache" in prefill.argv and "--disable-radix-cache" in decode.argv
    assert all("--speculative-num-steps" in c.argv for c in (prefill, decode))


def test_dynamo_router_mode_stays_with_the_front_end() -> None:
    spec = adapter_for("dynamo-trt")(CASES["dynamo-trt-agg-2node-mtp"])
    front, worker = spec.components
    assert front.argv[-2:] == ("--router-mode", "round-robin")
    assert (
        "router_mode" not in spec.files["worker.yaml"]
        and "max_batch_size: 64" in spec.files["worker.yaml"]
    )
    assert (worker.nodes, worker.gpus, worker.tasks_per_node) == (2, 8, 4)


def test_dynamo_multi_node_vllm_worker_is_one_component_per_node() -> None:
    spec = adapter_for("dynamo-vllm")(CASES["dynamo-vllm-disagg-2node-dep"])
    names = [c.name for c in spec.components if c.gpus]
    assert names == ["prefill-0", "prefill-0-node1", "decode-0", "decode-0-node1"]
    assert sum(c.gpus for c in spec.components) == 16
    head, other = spec.components[3], spec.components[4]
    assert "--headless" not in head.argv and other.argv[-1] == "--headless"
    assert other.argv[other.argv.index("--master-addr") + 1] == "{host:prefill-0}"


def test_engine_job_carries_the_launch_nodes() -> None:
    from ixci.engines.resolve import Checkpoint, engine_job

    planned = engine_job_of(job_id="j-1", framework="dynamo-vllm", model_key="m",
                            precision="fp4", tp=8, nodes=2, gpus=8, image=None,
                            model_path="/m", served_name="m").job  # fmt: skip
    ejob = engine_job(planned.to_dict(), checkpoint=Checkpoint(path="/m", tokenizer=None, size_gb=1.0),
                      served_name="m", device="cuda", files_dir="/f", image=None)  # fmt: skip
    assert ejob.nodes == 2
    assert [
        c.nodes
        for c in adapter_for("dynamo-sglang")(
            replace(ejob, job=replace(ejob.job, framework="dynamo-sglang"))
        ).components
    ] == [1, 2]


def test_unknown_adapter() -> None:
    with pytest.raises(InvalidJob, match="tgi") as info:
        adapter_for("tgi")
    assert "llamacpp" in info.value.render()


def test_engine_arg_flags() -> None:
    flags = engine_arg_flags(
        {"a_b": 1, "flag": True, "off": False, "none": None, "lst": [1, 2], "m": {"z": 1, "a": 2}}
    )
    assert flags == ["--a-b", "1", "--flag", "--lst", "1", "2", "--m", '{"a":2,"z":1}']
