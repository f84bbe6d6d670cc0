"""Point-by-point comparison of a candidate curve with its baseline, with intervals and a chart.

Points pair up by load (concurrency, else request rate) within one curve (config × scenario).
Each side's throughput/GPU and interactivity carry their 95 % intervals when the point was
repeated (`tput_per_gpu_lo`/`_hi`, … in the tidy table, docs/repeats.md). The verdict per point
(`ixci.results.intervals.overlap_verdict`): with intervals on both sides a change counts only when they
do not overlap; otherwise the relative change must also exceed the curve's noise band. The
point's verdict is the worse of its throughput and interactivity verdicts.

The markdown is a table per curve and a Mermaid `xychart-beta` (bars: baseline, line:
candidate), which GitHub renders in comments and step summaries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ixci.metric_table import BY_NAME, HIGHER
from ixci.results.intervals import Interval, overlap_verdict

TPUT, INTER = "tput_per_gpu", "interactivity_median"
# which way is better, as the metric table declares it
HIGHER_TPUT, HIGHER_INTER = (BY_NAME[m].better == HIGHER for m in (TPUT, INTER))
MAX_CHART_POINTS = 24  # an xychart with more categories is unreadable in a comment


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a point: throughput/GPU (tokens/s/GPU) and interactivity (tokens/s/user)."""

    tput: Interval
    inter: Interval | None
    repeats: int


@dataclass(frozen=True, kw_only=True)
class PointComparison:
    """One load level of one curve; `change` is relative throughput/GPU (0.05 = +5 %)."""

    load: str
    order: float
    base: Side | None
    cand: Side | None
    change: float | None
    verdict: str  # improved | regressed | within_noise | new | not_in_candidate


def _float(row: Any, col: str) -> float | None:
    value = row.get(col) if hasattr(row, "get") else None
    if value is None or value is pd.NA:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _interval(row: Any, col: str, n: int) -> Interval | None:
    mean = _float(row, col)
    if mean is None:
        return None
    lo, hi = _float(row, f"{col}_lo"), _float(row, f"{col}_hi")
    if lo is None or hi is None:
        lo = hi = None
    return Interval(mean=mean, lo=lo, hi=hi, n=n)


def _load(row: Any) -> tuple[str, float] | None:
    conc, rate = _float(row, "concurrency"), _float(row, "request_rate")
    if conc is not None:
        return f"c={int(conc)}", conc
    if rate is not None:
        return f"{rate:g} req/s", rate
    return None


def _sides(rows: pd.DataFrame | None) -> dict[str, tuple[float, Side]]:
    """Valid measured rows by load label (the last row wins when a load repeats)."""
    out: dict[str, tuple[float, Side]] = {}
    if rows is None:
        return out
    ok = rows[(rows["status"] == "ok") & rows["valid"].astype(bool)]
    for row in ok.to_dict(orient="records"):
        load = _load(row)
        n = int(_float(row, "repeats") or 1)
        tput = _interval(row, TPUT, n)
        if load is None or tput is None:
            continue
        out[load[0]] = (load[1], Side(tput=tput, inter=_interval(row, INTER, n), repeats=n))
    return out


_RANK = {"regressed": 0, "improved": 1, "within_noise": 2}


def compare_points(
    base: pd.DataFrame | None, cand: pd.DataFrame | None, band: float
) -> tuple[PointComparison, ...]:
    """Every load level either side measured, in load order, with its verdict.

    `band` (a fraction) is the threshold when a side has no interval (one repeat).
    """
    b, c = _sides(base), _sides(cand)
    out = []
    for load in set(b) | set(c):
        order = (b.get(load) or c[load])[0]
        bs, cs = (b[load][1] if load in b else None), (c[load][1] if load in c else None)
        out.append(_point(load, order, bs, cs, band))
    return tuple(sorted(out, key=lambda p: p.order))


def _point(load: str, order: float, b: Side | None, c: Side | None, band: float) -> PointComparison:
    if b is None or c is None:
        verdict = "new" if b is None else "not_in_candidate"
        return PointComparison(load=load, order=order, base=b, cand=c, change=None, verdict=verdict)
    verdicts = [overlap_verdict(b.tput, c.tput, higher_is_better=HIGHER_TPUT, threshold=band)]
    if b.inter is not None and c.inter is not None:
        verdicts.append(
            overlap_verdict(b.inter, c.inter, higher_is_better=HIGHER_INTER, threshold=band)
        )
    worst = min((v.replace(" ", "_") for v in verdicts), key=lambda v: _RANK[v])
    change = (c.tput.mean - b.tput.mean) / b.tput.mean if b.tput.mean else None
    return PointComparison(load=load, order=order, base=b, cand=c, change=change, verdict=worst)


# --- markdown ------------------------------------------------------------------------------

_MARK = {
    "improved": "🟢 improved",
    "regressed": "🔴 regressed",
    "within_noise": "⚪ within noise",
    "new": "🆕 new",
    "not_in_candidate": "— not in candidate",
}


def cell(text: str) -> str:
    """Untrusted text safe in a markdown table cell (no pipes, line breaks, code or HTML)."""
    clean = re.sub(r"[\r\n\t]+", " ", text).replace("|", "/").replace("`", "'")
    clean = clean.replace("<", "‹").replace(">", "›")
    return clean[:120]


def _fmt(iv: Interval | None, digits: int = 1) -> str:
    if iv is None:
        return "—"
    if iv.lo is None or iv.hi is None:
        return f"{iv.mean:.{digits}f} (n={iv.n})"
    return f"{iv.mean:.{digits}f} [{iv.lo:.{digits}f}, {iv.hi:.{digits}f}] (n={iv.n})"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def points_table(points: Sequence[PointComparison]) -> list[str]:
    """Markdown rows: load, both sides with 95 % intervals, change and verdict."""
    lines = [
        "| load | baseline tok/s/GPU [95 % CI] | candidate tok/s/GPU [95 % CI] | Δ | "
        "tok/s/user baseline → candidate | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for p in points:
        b, c = p.base, p.cand
        inter = f"{_fmt(b.inter if b else None)} → {_fmt(c.inter if c else None)}"
        lines.append(
            f"| {p.load} | {_fmt(b.tput if b else None)} | {_fmt(c.tput if c else None)} | "
            f"{_pct(p.change)} | {inter} | {_MARK[p.verdict]} |"
        )
    return lines


def _title(text: str) -> str:
    """A Mermaid string literal's content: no quotes, backslashes, newlines or code fences."""
    return re.sub(r"[\"`\\\r\n;{}\[\]<>#%]+", " ", text).strip()[:80] or "curve"


def _num(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def mermaid_chart(title: str, points: Sequence[PointComparison]) -> list[str]:
    """A Mermaid `xychart-beta` of throughput/GPU per load: bars baseline, line candidate.

    Only loads both sides measured; empty when fewer than one pairs up. Mermaid draws no error
    bars, so the candidate's interval ends are two thin extra lines when it has them.
    """
    both = [p for p in points if p.base is not None and p.cand is not None][:MAX_CHART_POINTS]
    if not both:
        return []
    base = [p.base.tput.mean for p in both if p.base is not None]
    cand = [p.cand.tput.mean for p in both if p.cand is not None]
    ends = [(p.cand.tput.lo, p.cand.tput.hi) for p in both if p.cand is not None]
    top = max([*base, *cand, *(h for _, h in ends if h is not None)]) * 1.1 or 1.0
    labels = ", ".join(f'"{p.load}"' for p in both)
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{_title(title)}"',
        f"    x-axis [{labels}]",
        f'    y-axis "tok/s/GPU" 0 --> {_num(top)}',
        f"    bar [{', '.join(_num(v) for v in base)}]",
        f"    line [{', '.join(_num(v) for v in cand)}]",
    ]
    if all(lo is not None and hi is not None for lo, hi in ends):
        lines.append(f"    line [{', '.join(_num(float(lo or 0)) for lo, _ in ends)}]")
        lines.append(f"    line [{', '.join(_num(float(hi or 0)) for _, hi in ends)}]")
    return [*lines, "```"]
