"""Intervals: the Student-t golden cases, the tidy table's `_lo`/`_hi` columns and CSV, and the
point-by-point PR comparison (verdicts from intervals, Mermaid chart) on hand-made artifacts."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collect.factory import make_job, make_result
from ixci.results import compare as cmp
from ixci.results.aggregate import INTERVAL_COLUMNS, tidy_table, write_tables
from ixci.results.compare_points import compare_points, mermaid_chart
from ixci.results.intervals import T_975, Interval, overlap_verdict, student_t, t_quantile
from ixci.run import repeats

# --- Student-t, by hand --------------------------------------------------------------------


def test_three_values() -> None:
    # mean 12; s = sqrt(((−2)² + 0 + 2²) / 2) = 2; half = t(0.975, 2) · 2 / √3
    iv = student_t([10.0, 12.0, 14.0])
    assert iv is not None and iv.n == 3 and iv.mean == 12.0
    assert iv.half_width == pytest.approx(4.302652730 * 2 / math.sqrt(3), abs=1e-9)
    assert iv.half_width == pytest.approx(4.968275424, abs=1e-9)


def test_two_values() -> None:
    # mean 1.5; s = √0.5; half = 12.706204736 · √0.5 / √2 = 6.353102368
    iv = student_t([1.0, 2.0])
    assert iv is not None and (iv.lo, iv.hi) == pytest.approx(
        (1.5 - 6.353102368, 1.5 + 6.353102368)
    )


def test_equal_values_have_zero_width() -> None:
    iv = student_t([5.0] * 4)
    assert iv is not None and iv.lo == iv.hi == 5.0


def test_one_value_has_no_interval_and_none_is_none() -> None:
    assert student_t([3.0]) == Interval(mean=3.0, lo=None, hi=None, n=1)
    assert student_t([]) is None
    assert student_t([float("nan"), 2.0]) == Interval(mean=2.0, lo=None, hi=None, n=1)


def test_t_table_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, len(T_975) + 1):
        assert t_quantile(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=1e-8)
    with pytest.raises(ValueError):
        t_quantile(0)


@pytest.mark.parametrize(
    ("base", "cand", "higher", "want"),
    [
        ((100, 95, 105), (120, 115, 125), True, "improved"),  # disjoint, above
        ((100, 95, 105), (80, 75, 85), True, "regressed"),  # disjoint, below
        ((100, 90, 110), (108, 98, 118), True, "within noise"),  # +8 % but overlapping
        ((1.0, 0.9, 1.1), (1.3, 1.25, 1.35), False, "regressed"),  # latency up: worse
        ((100, None, None), (108, None, None), True, "improved"),  # no intervals: 8 % > 5 %
        ((100, None, None), (103, None, None), True, "within noise"),  # 3 % < 5 %
        ((100, 90, 110), (108, None, None), True, "within noise"),  # inside the baseline's CI
        ((100, 98, 102), (108, None, None), True, "improved"),  # outside it and beyond 5 %
    ],
)
def test_overlap_verdict(
    base: tuple[Any, ...], cand: tuple[Any, ...], higher: bool, want: str
) -> None:
    b = Interval(mean=base[0], lo=base[1], hi=base[2], n=3 if base[1] is not None else 1)
    c = Interval(mean=cand[0], lo=cand[1], hi=cand[2], n=3 if cand[1] is not None else 1)
    assert overlap_verdict(b, c, higher_is_better=higher, threshold=0.05) == want


# --- artifacts with repeats -----------------------------------------------------------------


def _scaled(point: dict[str, Any], f: float) -> dict[str, Any]:
    """One repeat of `point` whose throughput is ×f and per-token times ÷f: the same tokens in a
    window ÷f, so each repeat stays consistent (throughput = tokens / window)."""
    out = copy.deepcopy(point)
    m = out["metrics"]
    m["duration_s"] /= f
    for key in ("request_throughput", "input_throughput", "output_throughput",
                "total_token_throughput"):  # fmt: skip
        m[key] *= f
    for key in ("ttft", "tpot", "itl", "e2el"):
        m[key] = {k: v / f for k, v in m[key].items()}
    m["interactivity"] = {k: v * f for k, v in m["interactivity"].items()}
    return out


def with_repeats(doc: dict[str, Any], factors: tuple[float, ...]) -> dict[str, Any]:
    """`doc` with every measured point repeated once per factor, folded as run-job does."""
    for i, point in enumerate(doc["points"]):
        entry: dict[str, Any] = dict(point)
        for r, f in enumerate(factors, start=1):
            entry = repeats.fold(entry, _scaled(point, f), repeat=r, planned=len(factors))
        doc["points"][i] = entry
    return doc


def _doc(
    scale: float, run_id: str, factors: tuple[float, ...] | None, tp: int = 2
) -> dict[str, Any]:
    doc = make_result(make_job(tp=tp, concurrencies=(1, 4, 16)), run_id=run_id, scale=scale)
    return with_repeats(doc, factors) if factors else doc


def test_artifact_with_repeats_is_schema_valid() -> None:
    from ixci.results import result

    doc = _doc(1.0, "r", (0.95, 1.0, 1.05))
    assert result.problems(doc) == []
    p = doc["points"][0]
    assert p["repeats_planned"] == 3 and len(p["repeats"]) == 3
    assert p["intervals"]["metrics"]["ttft_p99"]["n"] == 3


def test_collect_accepts_repeats_whose_mean_rate_is_not_the_pooled_rate(tmp_path: Path) -> None:
    """A repeated point's throughput is the mean over its repeats, its tokens and window are sums:
    with repeats at 0.5×, 1× and 2× the mean rate (1.17×) is far from Σtokens/Σwindow (0.86×),
    and collect still accepts it — checking each repeat, and the point as their mean. A point
    or a repeat whose numbers do not add up is refused, with where."""
    import json

    from ixci.results.collect import collect

    def collected(doc: dict[str, Any], name: str) -> Any:
        folder = tmp_path / name / f"result-{doc['job']['id']}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(doc))
        return collect([tmp_path / name])

    good = _doc(1.0, "r", (0.5, 1.0, 2.0))
    m = good["points"][0]["metrics"]
    assert m["output_throughput"] / (m["total_output_tokens"] / m["duration_s"]) > 1.3
    col = collected(good, "good")
    assert len(col.accepted) == 1 and not col.skipped
    bad_mean = copy.deepcopy(good)
    bad_mean["points"][1]["metrics"]["output_throughput"] *= 1.5
    bad_mean["points"][1]["metrics"]["total_token_throughput"] = (
        bad_mean["points"][1]["metrics"]["input_throughput"]
        + bad_mean["points"][1]["metrics"]["output_throughput"]
    )
    (skip,) = collected(bad_mean, "mean").skipped
    assert "points/1/metrics.output_throughput" in skip.reasons[0]
    assert "the mean over its 3 valid repeats" in skip.reasons[0]
    bad_rep = copy.deepcopy(good)
    bad_rep["points"][2]["repeats"][1]["metrics"]["duration_s"] *= 3
    (skip,) = collected(bad_rep, "repeat").skipped
    assert "points/2/repeats/1/metrics.output_throughput" in skip.reasons[0]


def test_tidy_table_carries_intervals(tmp_path: Path) -> None:
    doc = _doc(1.0, "r", (0.9, 1.0, 1.1), tp=2)
    df = tidy_table([doc])
    row = df.iloc[0]
    raw = doc["points"][0]["intervals"]["metrics"]
    assert row["repeats"] == 3
    assert row["output_throughput_lo"] == pytest.approx(raw["output_throughput"]["lo"])
    assert row["output_tput_per_gpu_hi"] == pytest.approx(raw["output_throughput"]["hi"] / 2)
    assert row["tput_per_gpu_lo"] == pytest.approx(raw["total_token_throughput"]["lo"] / 2)
    assert row["ttft_p99_s_hi"] == pytest.approx(raw["ttft_p99"]["hi"])
    assert (
        row["output_tput_per_gpu_lo"] < row["output_tput_per_gpu"] < row["output_tput_per_gpu_hi"]
    )
    assert row["joules_per_output_token_lo"] == pytest.approx(raw["joules_per_output_token"]["lo"])
    write_tables(df, tmp_path)
    csv = pd.read_csv(tmp_path / "points.csv")
    assert set(INTERVAL_COLUMNS) <= set(csv.columns)
    assert csv["tput_per_gpu_hi"].iloc[0] == pytest.approx(row["tput_per_gpu_hi"])


def test_single_sample_rows_have_no_interval() -> None:
    df = tidy_table([_doc(1.0, "r", None)])
    assert (df["repeats"] == 1).all() and df["tput_per_gpu_lo"].isna().all()


# --- the PR comparison ----------------------------------------------------------------------


def _tables(cand_scale: float, cand_factors: tuple[float, ...] | None,
            base_factors: tuple[float, ...] | None = (0.97, 1.0, 1.03)) -> list[cmp.CurveComparison]:  # fmt: skip
    base = tidy_table([_doc(1.0, "base", base_factors)])
    cand = tidy_table([_doc(cand_scale, "cand", cand_factors)])
    return cmp.compare_tables(base, cand)


def test_disjoint_intervals_regress_every_point() -> None:
    [curve] = _tables(0.8, (0.97, 1.0, 1.03))
    assert [p.verdict for p in curve.points] == ["regressed"] * 3
    assert [p.load for p in curve.points] == ["c=1", "c=4", "c=16"]
    assert curve.points[0].change == pytest.approx(-0.2)


def test_overlapping_intervals_are_within_noise_beyond_the_band() -> None:
    # +6 % is beyond the 5 % default band, but repeats spreading ±20 % make it noise
    [curve] = _tables(1.06, (0.8, 1.0, 1.2), base_factors=(0.8, 1.0, 1.2))
    assert {p.verdict for p in curve.points} == {"within_noise"}


def test_without_repeats_the_band_decides() -> None:
    [curve] = _tables(1.10, None, base_factors=None)
    assert {p.verdict for p in curve.points} == {"improved"}
    [curve] = _tables(1.02, None, base_factors=None)
    assert {p.verdict for p in curve.points} == {"within_noise"}


def test_markdown_shows_intervals_verdicts_and_a_mermaid_chart() -> None:
    md = cmp.to_markdown(_tables(0.8, (0.97, 1.0, 1.03)))
    assert "#### Per point" in md and "3 points regressed" in md
    assert "```mermaid\nxychart-beta" in md and 'x-axis ["c=1", "c=4", "c=16"]' in md
    assert md.count("    line [") == 3  # candidate mean, then its interval's two ends
    row = next(line for line in md.splitlines() if line.startswith("| c=4 |"))
    assert "[" in row and "(n=3)" in row and "🔴 regressed" in row


def test_points_only_on_one_side() -> None:
    base = tidy_table([make_result(make_job(concurrencies=(1, 4)), run_id="b")])
    cand = tidy_table([make_result(make_job(concurrencies=(4, 64)), run_id="c")])
    pts = compare_points(base, cand, 0.05)
    assert [(p.load, p.verdict) for p in pts] == [
        ("c=1", "not_in_candidate"), ("c=4", "within_noise"), ("c=64", "new")]  # fmt: skip
    chart = mermaid_chart("x", pts)
    assert 'x-axis ["c=4"]' in "\n".join(chart) and chart[-1] == "```"


def test_hostile_label_cannot_break_the_table_or_the_chart() -> None:
    base = tidy_table([_doc(1.0, "b", None)])
    cand = tidy_table([_doc(0.5, "c", None)])
    for df in (base, cand):
        df["model"] = 'evil|model\n```\n"]; click'
    md = cmp.to_markdown(cmp.compare_tables(base, cand))
    chart = md[md.index("```mermaid") :]
    title = next(line for line in chart.splitlines() if "title" in line)
    assert title.count('"') == 2 and "`" not in title and "]" not in title
    assert md.count("```") == 2  # one chart, opened and closed: the label opened no fence
    assert all(line.count("|") == 8 for line in md.splitlines() if line.startswith("| evil"))


def test_hostile_label_keeps_the_curve_table_whole() -> None:
    """A pipe or line break in an artifact's model name split the curve table's row."""
    base = tidy_table([_doc(1.0, "b", None)])
    cand = tidy_table([_doc(1.0, "c", None)])
    for df in (base, cand):
        df["model"] = "evil|model\n| x | y |"
    lines = cmp.to_markdown(cmp.compare_tables(base, cand)).splitlines()
    rows = [line for line in lines if "evil" in line and line.startswith("|")]
    assert rows and all(line.count("|") == 8 for line in rows)
    assert not any(line.startswith("| x |") for line in lines)


def test_headline_lower_end_is_cut_at_zero() -> None:
    """Repeats measured on a contended host (24, 22, 1199 tok/s, as seen on a shared CPU) put
    mean − t·s/√n below zero; no throughput is negative, so the artifact says 0."""
    from ixci.results.intervals import headline_intervals

    recs = [
        {"metrics": {"output_throughput": v, "ttft": {"p99": 0.2}}} for v in (24.0, 22.0, 1199.0)
    ]
    block = headline_intervals(recs)["metrics"]
    raw = student_t([24.0, 22.0, 1199.0])
    assert raw is not None and raw.lo is not None and raw.lo < 0
    assert block["output_throughput"]["lo"] == 0.0 and block["output_throughput"]["hi"] == raw.hi
    ttft = block["ttft_p99"]
    assert ttft["n"] == 3 and [ttft[k] for k in ("mean", "lo", "hi")] == pytest.approx([0.2] * 3)
