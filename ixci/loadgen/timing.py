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

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from ixci.loadgen.metrics import NS, PERCENTILES, RequestRecord
from ixci.loadgen.spill import Values, pairwise_sum, summarize_values

TIMING_TOLERANCE_S = 0.001  # the published accuracy of TTFT, ITL, TPOT and E2EL statistics
TIMED = ("ttft", "tpot", "itl", "itl_per_token", "e2el", "interactivity")

Intervals = tuple[Values, Values, Values]  # (stamped, lowest true, highest true)


def _chunk_slack(r: RequestRecord) -> tuple[np.ndarray | None, int, int]:
    """The record's slack per content chunk (ns; None without chunks), its number of slack
    marks, and the largest mark (0 without marks)."""
    pairs = r.chunk_slack_ns
    marks = np.fromiter(chain.from_iterable(pairs), dtype=np.int64, count=2 * len(pairs))
    marks = marks.reshape(-1, 2)
    largest = int(marks[:, 1].max()) if len(pairs) else 0
    t = r.chunk_times_ns
    if not t:
        return None, len(pairs), largest
    slack = np.zeros(len(t), dtype=np.int64)
    if len(pairs):
        marks = marks[(marks[:, 0] >= 0) & (marks[:, 0] < len(t))]
        np.maximum.at(slack, marks[:, 0], marks[:, 1])
    return slack, len(pairs), largest


def _intervals(ok: Iterable[RequestRecord]) -> tuple[dict[str, Intervals], int, int]:
    """Per distribution: the stamped values and the interval ends that hold the true ones
    (bounded memory: `spill.Values`, closed by the caller); and the number of slack marks and
    the largest slack (ns). Each record's chunk gaps are computed as arrays: the same float64
    operations, value for value, as one at a time."""
    out: dict[str, Intervals] = {name: (Values(), Values(), Values()) for name in TIMED}
    marked = most = 0

    def put(name: str, v: float, lo: float, hi: float) -> None:
        vals, los, his = out[name]
        vals.append(v)
        los.append(lo)
        his.append(hi)

    def put_array(name: str, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        vals, los, his = out[name]
        vals.extend_array(v)
        los.extend_array(lo)
        his.extend_array(hi)

    for r in ok:
        slack, n_marks, largest = _chunk_slack(r)
        marked, most = marked + n_marks, max(most, largest)
        t = r.chunk_times_ns
        if slack is None:
            continue
        s0, s_last = int(slack[0]) * NS, int(slack[-1]) * NS
        ttft, e2el = (t[0] - r.t_send_ns) * NS, (t[-1] - r.t_send_ns) * NS
        put("ttft", ttft, ttft - s0, ttft)
        put("e2el", e2el, e2el - s_last, e2el)
        if len(t) > 1:
            # int64 → float64, then × NS: what Python does for `int * float`, value for value
            g = np.diff(np.asarray(t, dtype=np.int64)).astype(np.float64) * NS
            sl = slack.astype(np.float64) * NS
            lo, hi = g - sl[1:], g + sl[:-1]
            put_array("itl", g, lo, hi)
            tokens = np.asarray(r.tokens_per_chunk()[1:], dtype=np.float64)
            keep = tokens > 0
            k = tokens[keep]
            put_array("itl_per_token", g[keep] / k, lo[keep] / k, hi[keep] / k)
        if r.output_tokens > 1:
            n = r.output_tokens - 1
            span = e2el - ttft
            tpot, lo_t, hi_t = span / n, (span - s_last) / n, (span + s0) / n
            put("tpot", tpot, lo_t, hi_t)
            if tpot > 0:
                put(
                    "interactivity",
                    1.0 / tpot,
                    1.0 / hi_t,
                    1.0 / lo_t if lo_t > 0 else float("inf"),
                )
    return out, marked, most


def _bound(vals: Values, los: Values, his: Values) -> tuple[float, float]:
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
    sv, slo, shi = (summarize_values(x, with_p10=True) for x in (vals, los, his))
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


def withhold_unsure(
    values: dict[str, Any], ok: Sequence[RequestRecord] | Callable[[], Iterable[RequestRecord]]
) -> None:
    """Add the `timing` block to a point's `values`; null the distributions it cannot vouch for.

    `timing`: `slack_chunks` (chunks whose stamp may be late), `slack_max_s`, `bounds_s`
    (distribution → the most its mean or percentiles may be off, seconds or tokens/s for
    interactivity; `<name>.std` for its std), `tolerance_s`, and `invalid` (distribution, or
    `<name>.std` when only the std is unsure → reason) for those withheld.
    """
    passes: Callable[[], Iterable[RequestRecord]] = ok if callable(ok) else (lambda: ok)
    intervals, chunks, worst = _intervals(passes())  # one pass: the marks and the intervals
    try:
        block: dict[str, Any] = {
            "slack_chunks": chunks,
            "slack_max_s": worst * NS,
            "bounds_s": {},
            "tolerance_s": TIMING_TOLERANCE_S,
            "invalid": {},
        }
        values["timing"] = block
        if not chunks:
            return
        why = f"stamps of {chunks} chunks read together after a client stall may be late by up to {worst * NS * 1e3:.1f} ms"
        bounds = {name: _bound(*v) for name, v in intervals.items()}
    finally:
        for trio in intervals.values():
            for v in trio:
                v.close()
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
