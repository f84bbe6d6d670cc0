"""How far CPU contention may have moved the published timing metrics, and withholding them.

A chunk's stamp is the kernel's receive time of the read that carried it. When the client is
off the CPU longer than one inter-token gap, loopback TCP merges the segments that wait in the
socket and the merged data keeps the newest segment's time: earlier chunks take a later
chunk's stamp. The client cannot see the merge itself, but it sees its trace: one read that
completes several of the server's writes (HTTP chunks). Every chunk in such a read but the last
may be late by up to (its stamp − the previous read of that connection): its data cannot have
arrived before the client last emptied the socket. The framer records that slack per chunk
(`RequestRecord.chunk_slack_ns`); a stamp is never early.

From the slacks each per-request value gets an interval that holds its true value (TTFT in
[ttft − s₀, ttft]; a gap closing chunk i in [g − sᵢ, g + sᵢ₋₁]; …). Means, percentiles (linear
interpolation is monotone in every value) and the population std (|σ(x) − σ(y)| ≤ rms(x − y))
of the true values are then bounded by the same statistics over the interval ends. A timing
distribution whose bound exceeds `TIMING_TOLERANCE_S` is not published: its statistics become
null and `timing.invalid` says why and by how much.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ixci.loadgen.metrics import NS, PERCENTILES
from ixci.loadgen.spill import Joined, pairwise_sum, summarize_values

TIMING_TOLERANCE_S = 0.001  # the published accuracy of TTFT, ITL, TPOT and E2EL statistics
TIMED = ("ttft", "tpot", "itl", "itl_per_token", "e2el", "interactivity")

Intervals = tuple[Joined, Joined, Joined]  # (stamped, lowest true, highest true)


def _bound(
    vals: Joined, los: Joined, his: Joined, stamped: Mapping[str, float | None] | None = None
) -> tuple[float, float]:
    """(the most the mean or any percentile of `vals` may differ from the true values', the
    most their population std may differ)."""
    if not len(vals):
        return 0.0, 0.0
    if not (vals.spilled or los.spilled or his.spilled):
        v, lo, hi = (x.block(0, len(x)) for x in (vals, los, his))
        qs = [*PERCENTILES.values(), 10.0]
        pv, plo, phi = (np.percentile(x, qs, method="linear") for x in (v, lo, hi))
        worst = float(
            max(np.max(phi - pv), np.max(pv - plo), hi.mean() - v.mean(), v.mean() - lo.mean())
        )
        rms = float(np.sqrt(np.mean(np.maximum(hi - v, v - lo) ** 2)))  # |σ(x) − σ(y)| ≤ rms(x − y)
        return worst, rms
    # the same figures, bit for bit, over values too many to hold (spill.summarize_values)
    # `stamped`: the summary of `vals` (with p10) the point already made, not made again
    sv = stamped if stamped is not None else summarize_values(vals, with_p10=True)
    slo, shi = (summarize_values(x, with_p10=True) for x in (los, his))
    keys = [*PERCENTILES, "p10"]
    pv, plo, phi = (np.asarray([s[k] for k in keys], dtype=np.float64) for s in (sv, slo, shi))
    mv, mlo, mhi = (np.float64(s["mean"]) for s in (sv, slo, shi))
    worst = float(max(np.max(phi - pv), np.max(pv - plo), mhi - mv, mv - mlo))

    def dev2(a: int, b: int) -> np.ndarray:
        v = vals.block(a, b)
        return np.asarray(np.maximum(his.block(a, b) - v, v - los.block(a, b)) ** 2)

    n = len(vals)
    rms = float(np.sqrt(np.float64(pairwise_sum(n, dev2, vals.cap)) / n))
    return worst, rms


def judge(
    values: dict[str, Any],
    intervals: Mapping[str, Intervals],
    chunks: int,
    worst_ns: int,
    stamped: Mapping[str, Mapping[str, float | None]] | None = None,
) -> None:
    """Add the `timing` block to a point's `values`; null the distributions it cannot vouch for.

    `intervals`: per distribution, the stamped values and the interval ends that hold the true
    ones (`ixci.loadgen.fold`); `chunks`: the chunks whose stamp may be late, by at most
    `worst_ns`; `stamped`: each distribution's summary with p10, when already made. The block: `slack_chunks`, `slack_max_s`, `bounds_s` (distribution → the most
    its mean or percentiles may be off, seconds or tokens/s for interactivity; `<name>.std` for
    its std), `tolerance_s`, and `invalid` (distribution, or `<name>.std` when only the std is
    unsure → reason) for those withheld.
    """
    block: dict[str, Any] = {
        "slack_chunks": chunks,
        "slack_max_s": worst_ns * NS,
        "bounds_s": {},
        "tolerance_s": TIMING_TOLERANCE_S,
        "invalid": {},
    }
    values["timing"] = block
    if not chunks:
        return
    why = f"stamps of {chunks} chunks read together after a client stall may be late by up to {worst_ns * NS * 1e3:.1f} ms"
    stamped = stamped or {}
    bounds: dict[str, tuple[float, float]] = {}
    for name in TIMED:  # distributions given the same intervals object are bounded once
        same = next((b for b in bounds if intervals[b] is intervals[name]), None)
        bounds[name] = bounds[same] if same else _bound(*intervals[name], stamped.get(name))
    for name, (bound, std_bound) in bounds.items():
        block["bounds_s"][name] = bound
        block["bounds_s"][name + ".std"] = std_bound
        if name == "interactivity":
            continue  # judged through TPOT, its inverse (below)
        for key, b in ((name, bound), (name + ".std", std_bound)):
            if b > TIMING_TOLERANCE_S and name not in block["invalid"]:
                block["invalid"][key] = (
                    f"{why}: {key} may be off by {b * 1e3:.2f} ms (> {TIMING_TOLERANCE_S * 1e3:.0f} ms)"
                )
    for name in ("tpot", "tpot.std"):
        if name in block["invalid"]:
            block["invalid"]["interactivity" + name[4:]] = (
                "derived from TPOT: " + block["invalid"][name]
            )
    for key in block["invalid"]:
        name, _, stat = key.partition(".")
        values[name] = {k: (None if not stat or k == stat else v) for k, v in values[name].items()}


def invalid_timing(values: Mapping[str, Any]) -> list[str]:
    """One line per withheld timing distribution (for a point's `invalid_reasons`)."""
    timing = values.get("timing") or {}
    return [
        f"{name} withheld: {why}" for name, why in sorted((timing.get("invalid") or {}).items())
    ]
