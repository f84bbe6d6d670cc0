"""The physical limit of a point: how fast the hardware could at best have served its workload.

One definition, used by run-job (recorded per point in result.json) and documented with a
worked example in docs/roofline.md. Units: bytes, FLOP, seconds, tokens per second.

For a point with concurrency B, prompt length ISL and answer length OSL on G GPUs:

* decode step (one token for each of the B sequences) must at least
  - move   W(B) = bytes_per_param × min(total_params, active_params × B)   weights (a dense model
           reads all of them once; a MoE model at least each token's active experts, at most all)
         + B × ctx × kv_bytes_per_token                                    the batch's KV cache
    through HBM at G × bandwidth, and
  - compute B × (2 × active_params + 4 × layers × ctx × heads × head_dim)  FLOP
    at G × peak FLOP/s,
  where ctx = ISL + OSL / 2 is a sequence's mean context while it decodes;
* prefill must compute ISL × (2 × active_params + 4 × layers × (ISL / 2) × heads × head_dim) FLOP
  per request at G × peak FLOP/s.

A request needs its prefill and OSL decode steps shared with B − 1 others, so output tokens per
second can be at most  OSL / (ISL / prefill_tps + OSL × step_s / B). Every term is a lower bound
on the work (weights at most once per step, no recomputation, peak rates), so the result is an
upper bound on throughput: a measured point above it means a measurement or catalog error.
`binding` names the largest of the three time terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ixci.precision import BYTES_PER_PARAM, COMPUTE_PRECISION

KV_BYTES_PER_ELEMENT = 2.0  # fp16/bf16 KV cache (an fp8 cache would halve it)


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """The deployment's GPUs: count, HBM bandwidth per GPU (TB/s), dense peaks (TFLOP/s)."""

    gpus: int
    bandwidth_tbs: float
    peak_tflops: Mapping[str, float]


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """Architecture facts from matrix/models.yaml (billions of parameters)."""

    total_params_b: float
    active_params_b: float
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int


@dataclass(frozen=True, kw_only=True)
class Bound:
    """The roofline of one point; `*_s` are seconds per request-equivalent of work."""

    output_tps: float  # upper bound of output tokens per second over the deployment
    decode_step_s: float  # lower bound of one decode step for the batch
    prefill_tps: float  # upper bound of prompt tokens per second
    binding: str  # decode_memory | decode_compute | prefill_compute
    weight_bytes: float
    kv_bytes: float

    def to_json(self, measured_output_tps: float | None, gpus: int) -> dict[str, Any]:
        """The result.json `roofline` object of a point (see schemas/result.schema.json)."""
        fraction = (
            measured_output_tps / self.output_tps
            if measured_output_tps is not None and self.output_tps > 0
            else None
        )
        return {
            "bound_output_tps": self.output_tps,
            "bound_output_tps_per_gpu": self.output_tps / max(gpus, 1),
            "fraction": fraction,
            "binding": self.binding,
            "decode_step_s": self.decode_step_s,
            "prefill_tps": self.prefill_tps,
            "weight_bytes_per_step": self.weight_bytes,
            "kv_bytes_per_step": self.kv_bytes,
            "above_bound": fraction is not None and fraction > 1.0,
        }


def kv_bytes_per_token(m: ModelFacts) -> float:
    """K and V for every layer and KV head of one token."""
    return 2.0 * m.layers * m.kv_heads * m.head_dim * KV_BYTES_PER_ELEMENT


def point_bound(
    m: ModelFacts, hw: Hardware, *, precision: str, isl: int, osl: int, concurrency: int
) -> Bound:
    """The upper bound of output throughput for B = `concurrency` sequences of ISL/OSL tokens."""
    b = max(concurrency, 1)
    bpp = BYTES_PER_PARAM[precision]
    peak = hw.gpus * hw.peak_tflops[COMPUTE_PRECISION[precision]] * 1e12
    bandwidth = hw.gpus * hw.bandwidth_tbs * 1e12
    ctx = isl + osl / 2
    attn = 4.0 * m.layers * m.attention_heads * m.head_dim  # FLOP per token per context token
    weights = bpp * 1e9 * min(m.total_params_b, m.active_params_b * b)
    kv = b * ctx * kv_bytes_per_token(m)
    memory_s = (weights + kv) / bandwidth
    compute_s = b * (2.0 * m.active_params_b * 1e9 + attn * ctx) / peak
    step_s = max(memory_s, compute_s)
    prefill_tps = peak / (2.0 * m.active_params_b * 1e9 + attn * isl / 2)
    terms = {
        "prefill_compute": isl / prefill_tps,
        "decode_memory": osl * memory_s / b,
        "decode_compute": osl * compute_s / b,
    }
    per_request_s = terms["prefill_compute"] + osl * step_s / b
    return Bound(
        output_tps=osl / per_request_s,
        decode_step_s=step_s,
        prefill_tps=prefill_tps,
        binding=max(terms, key=lambda k: terms[k]),
        weight_bytes=weights,
        kv_bytes=kv,
    )


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What run-job knows of a job's physical limit: the model, the GPUs, the precision."""

    model: ModelFacts
    hardware: Hardware
    precision: str

    def point(self, *, isl: int, osl: int, concurrency: int | None,
              metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:  # fmt: skip
        """The `roofline` object of a closed-loop point, measured against its steady-state
        output throughput (the whole measured window when there is no steady state)."""
        if not concurrency or not metrics:
            return None
        steady = metrics.get("steady_state") or {}
        measured = steady.get("output_throughput")
        window = "steady_state"
        if measured is None:
            measured, window = metrics.get("output_throughput"), "measured"
        bound = point_bound(self.model, self.hardware, precision=self.precision, isl=isl,
                            osl=osl, concurrency=concurrency)  # fmt: skip
        return {**bound.to_json(measured, self.hardware.gpus), "window": window}


def inputs_for(model: Any, sku: Any, *, precision: str, gpus: int) -> Inputs | None:
    """`Inputs` from catalog objects (`catalog.Model`, `catalog.Sku`), or None when a fact the
    bound needs is unknown (the point then records no roofline rather than a wrong one)."""
    facts = (model.total_params_b, model.active_params_b, model.layers, model.attention_heads,
             model.kv_heads, model.head_dim)  # fmt: skip
    compute = COMPUTE_PRECISION.get(precision)
    peaks = dict(sku.peak_tflops or {})
    if any(f is None for f in facts) or gpus < 1 or compute not in peaks:
        return None
    if precision not in BYTES_PER_PARAM or not sku.memory_bandwidth_tbs:
        return None
    return Inputs(
        model=ModelFacts(total_params_b=float(model.total_params_b),
                         active_params_b=float(model.active_params_b), layers=int(model.layers),
                         attention_heads=int(model.attention_heads),
                         kv_heads=int(model.kv_heads), head_dim=int(model.head_dim)),
        hardware=Hardware(gpus=gpus, bandwidth_tbs=float(sku.memory_bandwidth_tbs),
                          peak_tflops=peaks),
        precision=precision,
    )  # fmt: skip
