"""Confidence intervals of a point's headline metrics over its repeats (docs/repeats.md).

Method: a two-sided 95 % Student-t interval on the repeat values, mean ± t(0.975, n−1) · s/√n,
for n ≥ 2 valid repeats. One repeat carries no interval (`lo`/`hi` null, `n` 1): the noise that
matters for a published number is between runs (a GPU throughput that swings 2× from minute to
minute), and a bootstrap over one run's requests sees only the noise within that run, so it
would print a narrow interval that a second run does not honour.

Pure standard library; the t quantiles come from a table (checked against scipy in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METHOD = "student-t"
CONFIDENCE = 0.95
MAX_REPEATS = 20
"""The schema's ceiling on `repeats`; the table below covers n − 1 up to it."""

T_975: tuple[float, ...] = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836,
    2.446911851, 2.364624252, 2.306004135, 2.262157163, 2.228138852,
    2.200985160, 2.178812830, 2.160368656, 2.144786688, 2.131449546,
    2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447,
)  # fmt: skip
"""t(0.975, df) for df = 1 … 20 (two-sided 95 %)."""

HEADLINES: Mapping[str, tuple[str, ...]] = {
    "output_throughput": ("metrics", "output_throughput"),
    "total_token_throughput": ("metrics", "total_token_throughput"),
    "request_throughput": ("metrics", "request_throughput"),
    "ttft_mean": ("metrics", "ttft", "mean"),
    "ttft_p99": ("metrics", "ttft", "p99"),
    "tpot_mean": ("metrics", "tpot", "mean"),
    "tpot_median": ("metrics", "tpot", "median"),
    "itl_p99": ("metrics", "itl", "p99"),
    "e2el_median": ("metrics", "e2el", "median"),
    "interactivity_median": ("metrics", "interactivity", "median"),
    "joules_per_output_token": ("telemetry", "joules_per_output_token"),
}
"""Headline metric → its path in one repeat's record (base units: tokens/s, s, J/token)."""


@dataclass(frozen=True, kw_only=True)
class Interval:
    """Mean of `n` values and its two-sided interval; `lo`/`hi` are None when n < 2."""

    mean: float
    lo: float | None
    hi: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        """(hi − lo) / 2, same unit as the metric; None without an interval."""
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2.0

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}


def t_quantile(df: int) -> float:
    """t(0.975, df) for 1 ≤ df ≤ `MAX_REPEATS`; ValueError outside (the schema caps repeats)."""
    if not 1 <= df <= len(T_975):
        raise ValueError(f"degrees of freedom {df} outside 1..{len(T_975)}")
    return T_975[df - 1]


def student_t(values: Sequence[float]) -> Interval | None:
    """The 95 % Student-t interval of `values`' mean; None when `values` is empty.

    mean ± t(0.975, n−1) · s / √n with s the sample standard deviation (n − 1 denominator).
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return None
    mean = math.fsum(xs) / n
    if n < 2:
        return Interval(mean=mean, lo=None, hi=None, n=1)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(mean=mean, lo=mean - half, hi=mean + half, n=n)


def dig(record: Mapping[str, Any] | None, path: Sequence[str]) -> float | None:
    """The number at `path` in nested mappings; None when any step is missing or not a number."""
    node: Any = record
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def headline_intervals(repeats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The artifact's `intervals` block for a point's valid repeat records.

    Lower ends are cut at 0 (`nonnegative`). J/token counts only from repeats whose power telemetry is valid. Metrics no repeat
    reports are left out.
    """
    out: dict[str, Any] = {}
    for name, path in HEADLINES.items():
        recs = [r for r in repeats if path[0] != "telemetry" or _power_ok(r)]
        iv = student_t([v for v in (dig(r, path) for r in recs) if v is not None])
        if iv is not None:
            out[name] = nonnegative(iv).to_json()
    return {"method": METHOD, "confidence": CONFIDENCE, "metrics": out}


def nonnegative(iv: Interval) -> Interval:
    """`iv` with its lower end cut at 0: every headline is a rate, a time or an energy, and a
    few wild repeats (a contended host) can put mean − t·s/√n below zero, which no repeat can
    measure. The cut changes no coverage: the true value is never below zero."""
    if iv.lo is None or iv.lo >= 0:
        return iv
    return Interval(mean=iv.mean, lo=0.0, hi=iv.hi, n=iv.n)


def _power_ok(record: Mapping[str, Any]) -> bool:
    tele = record.get("telemetry")
    return isinstance(tele, Mapping) and bool(tele.get("power_valid"))


def overlap_verdict(
    base: Interval, cand: Interval, *, higher_is_better: bool, threshold: float
) -> str:
    """improved / regressed / within noise for a candidate against its baseline.

    With an interval on both sides, the change counts only when the intervals do not overlap
    (a conservative test at about the 99 % level for equal widths). With an interval on one
    side or none, the relative change must also exceed `threshold` (a fraction, e.g. 0.05).
    """
    if base.mean == 0:
        return "within noise"
    change = (cand.mean - base.mean) / abs(base.mean)
    both = None not in (base.lo, base.hi, cand.lo, cand.hi)
    if both:
        assert base.lo is not None and base.hi is not None  # for mypy: checked above
        assert cand.lo is not None and cand.hi is not None
        if cand.lo > base.hi:
            better = True
        elif cand.hi < base.lo:
            better = False
        else:
            return "within noise"
    elif abs(change) > threshold and _outside(base, cand):
        better = change > 0
    else:
        return "within noise"
    return "improved" if better == higher_is_better else "regressed"


def _outside(base: Interval, cand: Interval) -> bool:
    """With one interval known, the other side's mean must lie outside it."""
    if base.lo is not None and base.hi is not None:
        return not base.lo <= cand.mean <= base.hi
    if cand.lo is not None and cand.hi is not None:
        return not cand.lo <= base.mean <= cand.hi
    return True
