"""Compare a candidate run with the published baseline at matched interactivity.

Per curve (config × scenario) both sides are reduced to their Pareto fronts over
(interactivity, throughput/GPU), and throughput/GPU is linearly interpolated along each
front at every interactivity value either front has inside the *overlap* of the two ranges —
never extrapolated. The change is the median relative difference over those matched points.
A change is flagged only beyond the noise band learned from that config's history: the
run-to-run changes between consecutive published curves, σ ≈ 1.4826 × median |change|,
band = max(floor, k·σ); with fewer than `MIN_HISTORY` pairs a default band is used.

Each curve also carries its points paired by load, with 95 % intervals from repeats and a
verdict per point that uses them (`ixci.results.compare_points`); the markdown shows them per curve
with a Mermaid chart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from ixci.results import pointstore
from ixci.results.aggregate import from_columnar
from ixci.results.compare_points import (
    PointComparison,
    cell,
    compare_points,
    mermaid_chart,
    points_table,
)

X, Y = "interactivity_median", "tput_per_gpu"  # x: tokens/s/user (higher better), y: tokens/s/GPU
DEFAULT_BAND = 0.05  # ±5 % until a config has history
BAND_FLOOR = 0.02
BAND_K = 3.0
MIN_HISTORY = 3
MAX_DETAILED = 12  # curves shown point by point (regressions first); a PR comment has a size cap


@dataclass(frozen=True, kw_only=True)
class CurveComparison:
    """One curve's verdict. Changes are relative (0.05 = +5 % throughput/GPU)."""

    config_id: str
    scenario: str
    label: str
    verdict: str  # improved | regressed | within_noise | no_overlap | new | not_in_candidate
    change: float | None
    change_min: float | None
    change_max: float | None
    band: float
    history_pairs: int
    matched: int
    x_range: tuple[float, float] | None
    points: tuple[PointComparison, ...] = ()


def front(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto front of one curve's valid points, as (x ascending, y) arrays."""
    ok = rows[
        (rows["status"] == "ok") & rows["valid"].astype(bool) & rows[X].notna() & rows[Y].notna()
    ]
    pts = sorted(
        zip(ok[X].astype(float), ok[Y].astype(float), strict=True), key=lambda p: (-p[0], -p[1])
    )
    xs: list[float] = []
    ys: list[float] = []
    best = -math.inf
    for x, y in pts:  # walk from the most interactive point; keep those that raise throughput
        if y > best:
            xs.append(x)
            ys.append(y)
            best = y
    return np.array(xs[::-1]), np.array(ys[::-1])


def matched_changes(
    base: tuple[np.ndarray, np.ndarray], cand: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Relative changes (cand − base)/base at the fronts' x values inside their overlap."""
    (bx, by), (cx, cy) = base, cand
    if len(bx) == 0 or len(cx) == 0:
        return np.array([]), None
    lo, hi = max(bx.min(), cx.min()), min(bx.max(), cx.max())
    if lo > hi:
        return np.array([]), None
    grid = np.unique(np.concatenate([bx, cx]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    b = np.interp(grid, bx, by)
    c = np.interp(grid, cx, cy)
    keep = b > 0
    return (c[keep] - b[keep]) / b[keep], (float(lo), float(hi))


def noise_band(history: pd.DataFrame, scenario: str, run_order: Sequence[str]) -> tuple[float, int]:
    """(band, pairs) from consecutive runs of one config's history for `scenario`."""
    rows = history[history["scenario"] == scenario]
    rank = {r: i for i, r in enumerate(run_order)}
    runs = sorted(
        rows["run_id"].unique(),
        key=lambda r: (rank.get(r, -1), str(rows[rows["run_id"] == r]["run_date"].iloc[0]), r),
    )
    fronts = [front(rows[rows["run_id"] == r]) for r in runs]
    changes = []
    for prev, nxt in itertools.pairwise(fronts):
        diffs, _ = matched_changes(prev, nxt)
        if len(diffs):
            changes.append(float(np.median(diffs)))
    if len(changes) < MIN_HISTORY:
        return DEFAULT_BAND, len(changes)
    sigma = 1.4826 * float(np.median(np.abs(changes)))
    return max(BAND_FLOOR, BAND_K * sigma), len(changes)


def label(rows: pd.DataFrame) -> str:
    """A short human name of a config from its first row."""
    r = rows.iloc[0]
    topo = (
        f"disagg {r['prefill_gpus']}P+{r['decode_gpus']}D"
        if bool(r["disaggregated"])
        else f"tp{r['tp']}"
    )
    extra = f" ep{r['ep']}" if r["ep"] not in (None, 1) and not pd.isna(r["ep"]) else ""
    spec = (
        f" {r['spec_decoding']}"
        if isinstance(r["spec_decoding"], str) and r["spec_decoding"]
        else ""
    )
    return f"{r['model']} {r['precision']} {r['sku']} {r['framework']} {topo}{extra}{spec}"


def compare_tables(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    history: Mapping[str, pd.DataFrame] | None = None,
    run_order: Sequence[str] = (),
) -> list[CurveComparison]:
    """Compare every curve of `candidate` (and report baseline curves it lacks)."""
    history = history or {}
    out = []
    base_groups = dict(iter(baseline.groupby(["config_id", "scenario"], sort=True)))
    cand_groups = dict(iter(candidate.groupby(["config_id", "scenario"], sort=True)))
    for key in sorted(set(base_groups) | set(cand_groups), key=str):
        cfg, scen = str(key[0]), str(key[1])
        hist = history.get(cfg)
        band, pairs = noise_band(hist, scen, run_order) if hist is not None else (DEFAULT_BAND, 0)
        b, c = base_groups.get(key), cand_groups.get(key)
        name = label(c if c is not None else b)  # type: ignore[arg-type]
        out.append(_verdict(cfg, scen, name, b, c, band, pairs))
    return out


def _verdict(
    cfg: str,
    scen: str,
    name: str,
    b: pd.DataFrame | None,
    c: pd.DataFrame | None,
    band: float,
    pairs: int,
) -> CurveComparison:
    diffs, rng = np.array([]), None
    if b is None or c is None:
        verdict = "new" if b is None else "not_in_candidate"
    else:
        diffs, rng = matched_changes(front(b), front(c))
        change = float(np.median(diffs)) if len(diffs) else 0.0
        verdict = (
            "no_overlap"
            if not len(diffs)
            else "improved"
            if change > band
            else "regressed"
            if change < -band
            else "within_noise"
        )
    have = bool(len(diffs))
    return CurveComparison(
        points=compare_points(b, c, band),
        config_id=cfg,
        scenario=scen,
        label=name,
        verdict=verdict,
        change=float(np.median(diffs)) if have else None,
        change_min=float(diffs.min()) if have else None,
        change_max=float(diffs.max()) if have else None,
        band=band,
        history_pairs=pairs,
        matched=len(diffs),
        x_range=rng,
    )


_MARK = {
    "improved": "🟢 improved",
    "regressed": "🔴 regressed",
    "within_noise": "⚪ within noise",
    "no_overlap": "⚠️ no overlap",
    "new": "🆕 new",
    "not_in_candidate": "— not in candidate",
}


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def to_markdown(
    results: Sequence[CurveComparison], *, title: str = "ixci benchmark comparison"
) -> str:
    """Markdown for the job summary / PR comment: one line per curve, regressions first."""
    order = {
        "regressed": 0,
        "improved": 1,
        "no_overlap": 2,
        "within_noise": 3,
        "new": 4,
        "not_in_candidate": 5,
    }
    counts = {k: sum(1 for r in results if r.verdict == k) for k in order}
    lines = [
        f"### {title}",
        "",
        f"{counts['regressed']} regressed · {counts['improved']} improved · "
        f"{counts['within_noise']} within noise · {counts['no_overlap']} without overlap · "
        f"{counts['new']} new · {counts['not_in_candidate']} not run",
        "",
        "Throughput/GPU compared at matched interactivity (interpolated along each Pareto front, "
        "no extrapolation); flagged only beyond the config's noise band.",
        "",
        "| config | scenario | Δ tok/s/GPU (median) | range | noise band | interactivity tok/s/user | verdict |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for r in sorted(results, key=lambda r: (order[r.verdict], r.label, r.scenario)):
        span = "—" if r.change_min is None else f"{_pct(r.change_min)} … {_pct(r.change_max)}"
        xr = (
            "—"
            if r.x_range is None
            else f"{r.x_range[0]:.1f} – {r.x_range[1]:.1f} ({r.matched} pts)"
        )
        band = f"±{r.band * 100:.1f} %" + ("" if r.history_pairs >= MIN_HISTORY else " (default)")
        lines.append(
            f"| {cell(r.label)} | {cell(r.scenario)} | {_pct(r.change)} | {span} | {band} | {xr} | {_MARK[r.verdict]} |"
        )
    return "\n".join([*lines, *_per_point(results, order)]) + "\n"


def _per_point(results: Sequence[CurveComparison], order: Mapping[str, int]) -> list[str]:
    """The per-point section: curves with points on both sides, regressions first."""
    paired = [r for r in results if any(p.base and p.cand for p in r.points)]
    if not paired:
        return []
    counts = {k: sum(p.verdict == k for r in paired for p in r.points)
              for k in ("regressed", "improved", "within_noise")}  # fmt: skip
    lines = [
        "",
        "#### Per point",
        "",
        f"{counts['regressed']} points regressed · {counts['improved']} improved · "
        f"{counts['within_noise']} within noise. Intervals are 95 % Student-t over a point's "
        "repeats (n = repeats); with an interval on both sides a change counts only when they do "
        "not overlap, otherwise it must also exceed the curve's noise band. Chart: bars baseline, "
        "line candidate (thin lines: the candidate's interval).",
    ]
    worst = sorted(paired, key=lambda r: (_point_rank(r), order[r.verdict], r.label, r.scenario))
    for r in worst[:MAX_DETAILED]:
        title = f"{r.label} · {r.scenario}"
        lines += ["", f"**{cell(title)}**", "", *points_table(r.points), ""]
        lines += mermaid_chart(title, r.points)
    if len(worst) > MAX_DETAILED:
        lines += ["", f"({len(worst) - MAX_DETAILED} more curves not detailed.)"]
    return lines


def _point_rank(r: CurveComparison) -> int:
    verdicts = {p.verdict for p in r.points}
    return 0 if "regressed" in verdicts else 1 if "improved" in verdicts else 2


def load_baseline(path: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[str]]:
    """(latest rows, history per config, run order) from a results tree or a points.json file.

    A tree's history is read from its point partitions (`ixci.results.pointstore`), one frame per config.
    """
    if path.is_dir():
        latest = from_columnar(orjson.loads((path / "data" / "latest.json").read_bytes()))
        points = pointstore.read_points(path)
        history = (
            {str(c): rows.reset_index(drop=True) for c, rows in points.groupby("config_id")}
            if len(points)
            else {}
        )
        index = orjson.loads((path / "index.json").read_bytes())
        return latest, history, [str(r["run_id"]) for r in index.get("runs", [])]
    return from_columnar(orjson.loads(path.read_bytes())), {}, []
