"""Repeats of a point on one warm server: the interleaved schedule and the folded point record.

A scenario's `repeats: R` measures each of its points R times. The runner walks the points
round-robin (p1 r1, p2 r1, …, p1 r2, …) so that slow drift of the server or the host (clocks,
thermals, a neighbour) spreads over every point instead of landing on one point's repeats.

Each repeat's measurement is kept whole under the point's `repeats` list; the point's own
`metrics`/`telemetry` become the mean over its valid repeats (counts and energy summed), and
`intervals` carries the headline metrics' Student-t intervals (`ixci.results.intervals`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from ixci.results.intervals import headline_intervals
from ixci.run import specdec

SUMMED = frozenset(
    {"completed", "failed", "total_input_tokens", "total_output_tokens", "duration_s",
     "energy_j", "samples", "errors"}
)  # fmt: skip
"""Keys whose values add up over repeats (counts, totals); every other number is averaged."""

ANY_TRUE = frozenset({"saturated", "above_bound"})
"""Booleans true when true in any repeat (every other boolean must hold in all)."""

REPEAT_KEYS: tuple[str, ...] = (
    "valid", "invalid_reasons", "failure_class", "started_at", "finished_at", "metrics",
    "client", "telemetry", "speculative",
)  # fmt: skip
"""What one repeat's record keeps of the runner's measured point entry."""


class Repeated(Protocol):
    """A point with a repeat count (`ixci.run.runner.PointSpec`)."""

    @property
    def repeats(self) -> int: ...


def schedule(points: Sequence[Repeated]) -> Iterator[tuple[int, int]]:
    """(point index, repeat number from 1) in round-robin order over the points.

    Round r visits, in plan order, every point that asks for at least r repeats; with every
    point at R = 1 this is the plain plan order.
    """
    rounds = max((max(p.repeats, 1) for p in points), default=0)
    for r in range(1, rounds + 1):
        for index, point in enumerate(points):
            if max(point.repeats, 1) >= r:
                yield index, r


def fold(
    previous: Mapping[str, Any], measured: Mapping[str, Any], *, repeat: int, planned: int
) -> dict[str, Any]:
    """The point entry after repeat `repeat` of `planned`: `measured` is the runner's entry for
    this repeat alone, `previous` the point's entry before it (with earlier repeats, if any).
    """
    earlier = [r for r in previous.get("repeats") or [] if int(r.get("repeat", 0)) < repeat]
    record = {"repeat": repeat, **{k: measured.get(k) for k in REPEAT_KEYS}}
    runs = [*earlier, record]
    good = [r for r in runs if r.get("valid") and r.get("metrics")]
    reasons = sorted({f"repeat {r['repeat']}: {why}" for r in runs
                      for why in r.get("invalid_reasons") or []})  # fmt: skip
    if len(runs) < planned:
        reasons.append(f"{len(runs)} of {planned} repeats measured")
    failure = next((r["failure_class"] for r in runs if r.get("failure_class")), None)
    metrics = merge([r["metrics"] for r in good]) if good else measured.get("metrics")
    if good and isinstance(metrics, dict):
        done = int(metrics.get("completed") or 0) + int(metrics.get("failed") or 0)
        metrics["error_rate"] = (int(metrics.get("failed") or 0) / done) if done else 0.0
    entry = dict(measured)
    entry.update(
        started_at=runs[0].get("started_at"),
        valid=not reasons,
        status="ok" if not reasons else "invalid",
        failure_class=failure,
        invalid_reasons=reasons,
        metrics=metrics,
        telemetry=_merged_telemetry(good) if good else measured.get("telemetry"),
        client=merge([r["client"] for r in good if r.get("client")]) or measured.get("client"),
        repeats=runs,
        repeats_planned=planned,
        intervals=headline_intervals(good),
        speculative=_merged_speculative(good),
    )
    return entry


def _merged_speculative(good: Sequence[Mapping[str, Any]]) -> Any:
    """Draft counts summed over the valid repeats (rates recomputed from the sums); gauge
    figures, which have no counts, averaged."""
    blocks = [r["speculative"] for r in good if r.get("speculative")]
    if not blocks or not all(b.get("draft_tokens") for b in blocks):
        return merge(blocks) if blocks else None

    def total(key: str) -> int | None:
        values = [b.get(key) for b in blocks]
        return None if any(v is None for v in values) else sum(values)

    return specdec.block(str(blocks[0]["source"]), draft_tokens=total("draft_tokens") or 0,
                         accepted_tokens=total("accepted_tokens"), drafts=total("drafts"),
                         requests=total("requests"))  # fmt: skip


def _merged_telemetry(good: Sequence[Mapping[str, Any]]) -> Any:
    teles = [r["telemetry"] for r in good if isinstance(r.get("telemetry"), Mapping)]
    return merge(teles) if teles else None


def merge(values: Sequence[Any], key: str = "") -> Any:
    """Combine the same field of several repeats: numbers averaged (summed for `SUMMED` keys),
    mappings key by key, booleans all-true, equal strings kept (else "mixed"), lists and
    anything that differs in shape taken from the first repeat, any None → None."""
    if not values or any(v is None for v in values):
        return None
    first = values[0]
    if isinstance(first, bool):  # a flag of trouble in any repeat stays raised
        return any(bool(v) for v in values) if key in ANY_TRUE else all(bool(v) for v in values)
    if isinstance(first, int | float) and all(_number(v) for v in values):
        return _combine([float(v) for v in values], key, all(isinstance(v, int) for v in values))
    if isinstance(first, Mapping) and all(isinstance(v, Mapping) for v in values):
        keys = [k for k in first if all(k in v for v in values)]
        summed = key in SUMMED  # e.g. errors: kind -> count, summed per kind
        return {k: merge([v[k] for v in values], key if summed else k) for k in keys}
    if isinstance(first, str):
        return first if all(v == first for v in values) else "mixed"
    return first


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _combine(xs: list[float], key: str, ints: bool) -> float | int:
    total = math.fsum(xs)
    if key in SUMMED:
        return int(total) if ints else total
    if ints and all(x == xs[0] for x in xs):
        return int(xs[0])  # e.g. a GPU count or worker count: the same in every repeat
    return total / len(xs)
