"""What a catalog precision means physically: weight bytes per parameter and the peak-FLOP/s
figure of `matrix/hardware.yaml` its matrix products run at.

One table for the planner's memory-fit check and estimates (ixci/plan/plan.py) and the roofline
(ixci/run/roofline.py), so a precision added here is known to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# 4-bit formats carry one 8-bit scale per 16–32 values (0.5625 B); GGUF q8_0 stores 32 int8
# weights with one fp16 scale (34 / 32 B); q4_k_m averages ~4.85 bits per weight.
BYTES_PER_PARAM: Mapping[str, float] = MappingProxyType({
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0,
    "fp8": 1.0, "int8": 1.0, "q8": 1.0, "q8_0": 34 / 32,
    "fp4": 0.5625, "mxfp4": 0.5625, "nvfp4": 0.5625, "int4": 0.5625, "q4": 0.5625,
    "q4_k_m": 0.606,
})  # fmt: skip

# The peak FLOP/s figure a precision's matrix products run at (weight-only quantisations
# dequantise to bf16 for the products).
COMPUTE_PRECISION: Mapping[str, str] = MappingProxyType({
    "fp32": "bf16", "fp16": "bf16", "bf16": "bf16",
    "fp8": "fp8", "int8": "fp8", "q8": "fp8",
    "q8_0": "bf16", "q4_k_m": "bf16", "q4": "bf16", "int4": "bf16",
    "fp4": "fp4", "mxfp4": "fp4", "nvfp4": "fp4",
})  # fmt: skip

DEFAULT_BYTES_PER_PARAM = 2.0  # an unknown precision is assumed 16-bit (the common case)


def bytes_per_param(precision: str) -> float:
    """Weight bytes per parameter of `precision` (case-insensitive; unknown → 16-bit)."""
    return BYTES_PER_PARAM.get(precision.lower(), DEFAULT_BYTES_PER_PARAM)
