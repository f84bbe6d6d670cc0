"""The roofline of a point (ixci/run/roofline.py) on hand-computed cases.

Each expected figure below was worked out by hand from the definition in the module docstring
(and docs/roofline.md); the arithmetic is spelled out so a reader can redo it.
"""

from __future__ import annotations

import pytest

from ixci.run.roofline import Hardware, ModelFacts, kv_bytes_per_token, point_bound

H200 = {"bf16": 989.0, "fp8": 1979.0}
# An 8B-class dense llama (docs/examples/gpu-llamacpp-h200): 7.92 B params, 32 layers,
# 32 heads, 8 KV heads, head dim 128.
DENSE = ModelFacts(total_params_b=7.92, active_params_b=7.92, layers=32, attention_heads=32,
                   kv_heads=8, head_dim=128)  # fmt: skip
# A MoE model: 100 B total, 10 B active per token, 10 layers, 8 heads = 8 KV heads, head dim 128.
MOE = ModelFacts(total_params_b=100.0, active_params_b=10.0, layers=10, attention_heads=8,
                 kv_heads=8, head_dim=128)  # fmt: skip


def test_kv_bytes_per_token() -> None:
    # K and V × 32 layers × 8 KV heads × 128 dims × 2 bytes
    assert kv_bytes_per_token(DENSE) == 2 * 32 * 8 * 128 * 2 == 131_072


def test_dense_model_one_gpu_concurrency_1() -> None:
    """f16 8B on one H200 at ISL 1024 / OSL 256, one sequence.

    weights 2 B × 7.92e9 = 15.84e9 B; KV: ctx 1024 + 256/2 = 1152 tokens × 131,072 B = 0.151e9 B;
    memory time (15.84e9 + 0.150995e9) / 4.8e12 = 3.33146 ms; compute time
    (2 × 7.92e9 + 4·32·32·128 × 1152) / 989e12 = 0.0166 ms → the step is 3.33146 ms (memory).
    Prefill: 989e12 / (15.84e9 + 524,288 × 512) = 61,396 tok/s. A request: 1024 / 61,396
    + 256 × 3.33146 ms = 0.01668 + 0.85285 = 0.86953 s → 256 / 0.86953 = 294.4 tok/s.
    """
    b = point_bound(DENSE, Hardware(gpus=1, bandwidth_tbs=4.8, peak_tflops=H200),
                    precision="fp16", isl=1024, osl=256, concurrency=1)  # fmt: skip
    assert b.weight_bytes == pytest.approx(15.84e9)
    assert b.kv_bytes == pytest.approx(1152 * 131_072)
    assert b.decode_step_s == pytest.approx(3.33146e-3, rel=1e-5)
    assert b.prefill_tps == pytest.approx(61_396.4, rel=1e-5)
    assert b.output_tps == pytest.approx(294.41, rel=1e-4)
    assert b.binding == "decode_memory"
    # the measured point (179.0 tok/s on the H200) is 61 % of it
    assert b.to_json(179.0, 1)["fraction"] == pytest.approx(0.608, abs=1e-3)


def test_dense_model_tensor_parallel_halves_the_step() -> None:
    """The same model with tp 2: twice the bandwidth and FLOP/s, so the step is 1.66573 ms and
    a request 1024 / 122,793 + 256 × 1.66573 ms = 0.00834 + 0.42643 = 0.43477 s → 588.8 tok/s
    over the deployment, 294.4 per GPU."""
    hw = Hardware(gpus=2, bandwidth_tbs=4.8, peak_tflops=H200)
    b = point_bound(DENSE, hw, precision="fp16", isl=1024, osl=256, concurrency=1)
    assert b.decode_step_s == pytest.approx(1.66573e-3, rel=1e-5)
    assert b.output_tps == pytest.approx(588.82, rel=1e-4)
    assert b.to_json(None, 2)["bound_output_tps_per_gpu"] == pytest.approx(294.41, rel=1e-4)


def test_moe_reads_only_active_experts_at_low_batch_and_all_at_high() -> None:
    """fp8 MoE on 8 H200 (38.4 TB/s, 15,832 TFLOP/s fp8), ISL = OSL = 1000.

    B = 1: weights 1 B × 10e9 (active) = 10e9 B; KV 1500 × 40,960 B = 61.44e6 B; memory
    10.06144e9 / 38.4e12 = 0.262017 ms; prefill 15.832e15 / (20e9 + 40,960 × 500) = 790,790
    tok/s; a request 1000 / 790,790 + 1000 × 0.262017 ms = 0.263281 s → 3,798.2 tok/s.
    B = 4: weights min(100, 4 × 10) = 40e9 B, so the step is 4× (1.04807 ms) and the bound is
    the same 3,798.2 tok/s. B = 64: weights min(100, 640) = 100e9 B (every expert), KV
    64 × 61.44e6 = 3.93216e9 B → 103.93216e9 / 38.4e12 = 2.70657 ms; a request
    1.26456 ms + 1000 × 2.70657 / 64 ms = 43.5547 ms → 22,959.7 tok/s.
    """
    hw = Hardware(gpus=8, bandwidth_tbs=4.8, peak_tflops=H200)
    one = point_bound(MOE, hw, precision="fp8", isl=1000, osl=1000, concurrency=1)
    assert one.weight_bytes == pytest.approx(10e9)
    assert one.decode_step_s == pytest.approx(0.262017e-3, rel=1e-5)
    assert one.prefill_tps == pytest.approx(790_790.2, rel=1e-6)
    assert one.output_tps == pytest.approx(3_798.22, rel=1e-5)
    four = point_bound(MOE, hw, precision="fp8", isl=1000, osl=1000, concurrency=4)
    assert four.weight_bytes == pytest.approx(40e9)
    assert four.decode_step_s == pytest.approx(1.04807e-3, rel=1e-5)
    many = point_bound(MOE, hw, precision="fp8", isl=1000, osl=1000, concurrency=64)
    assert many.weight_bytes == pytest.approx(100e9)
    assert many.decode_step_s == pytest.approx(2.70657e-3, rel=1e-5)
    assert many.output_tps == pytest.approx(22_959.65, rel=1e-5)


def test_long_prompts_at_high_batch_are_bound_by_prefill_compute() -> None:
    """At B = 128, ISL 1024 / OSL 256: prefill 1024 / 61,396 = 16.68 ms per request against
    decode 256 × 7.3265 ms / 128 = 14.65 ms: prefill binds."""
    b = point_bound(DENSE, Hardware(gpus=1, bandwidth_tbs=4.8, peak_tflops=H200),
                    precision="fp16", isl=1024, osl=256, concurrency=128)  # fmt: skip
    assert b.binding == "prefill_compute"
    assert b.output_tps == pytest.approx(8_170.7, rel=1e-4)


def test_a_point_above_its_bound_is_flagged() -> None:
    b = point_bound(DENSE, Hardware(gpus=1, bandwidth_tbs=4.8, peak_tflops=H200),
                    precision="fp16", isl=1024, osl=256, concurrency=1)  # fmt: skip
    assert b.to_json(400.0, 1)["above_bound"] is True
    assert b.to_json(200.0, 1)["above_bound"] is False
    assert b.to_json(None, 1)["fraction"] is None


@pytest.mark.parametrize(
    ("artifact", "c1_fraction"),
    [
        ("llamacpp-h200", 0.610),  # llama.cpp f16, 8B, H200 (docs/examples/gpu-llamacpp-h200)
        ("llamacpp-f16-h100", 0.704),  # the same on an H100 (docs/examples/gpu-h100)
        ("llamacpp-q8_0-h100", 0.477),  # q8_0: half the bytes, kernels that dequantise
        ("transformers-h100", 0.027),  # transformers serve, 1B bf16: a Python-bound engine
    ],
)
def test_the_real_gpu_runs_are_below_their_bounds_at_every_point(
    artifact: str, c1_fraction: float
) -> None:
    """run-job's inputs from the example catalog, applied to each real GPU artifact: the bound
    computed here is the one run-job wrote on the GPU host, and every point is below 100 %."""
    import json
    from pathlib import Path

    from ixci.catalog.catalog import load_catalog
    from ixci.run import roofline

    repo = Path(__file__).resolve().parents[2]
    cat = load_catalog(repo / "docs" / "examples" / "catalog")
    doc = json.loads((repo / "tests" / "data" / "gpu" / f"{artifact}-result.json").read_text())
    job = doc["job"]
    inputs = roofline.inputs_for(cat.models[job["model"]], cat.skus[job["sku"]],
                                 precision=job["precision"], gpus=job["topology"]["gpus"])  # fmt: skip
    assert inputs is not None
    assert roofline.inputs_for(cat.models[job["model"]], cat.skus["cpu"],
                               precision=job["precision"], gpus=1) is None  # fmt: skip
    fractions = {}
    for p in doc["points"]:
        r = inputs.point(isl=p["isl"], osl=p["osl"], concurrency=p["concurrency"],
                         metrics=p.get("metrics"))  # fmt: skip
        assert r is not None
        fractions[p["concurrency"]] = r["fraction"]
        assert r["window"] == "steady_state" and not r["above_bound"]
        assert r == p["roofline"]  # what run-job wrote on the GPU host
    assert sorted(fractions) == [p["concurrency"] for p in job["points"]]
    assert fractions[1] == pytest.approx(c1_fraction, abs=0.002)
    assert all(0 < f < 1 for f in fractions.values())
