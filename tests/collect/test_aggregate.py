"""aggregate: derived metrics by their formulas, Pareto fronts, the incumbent's export, compare."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from collect.factory import make_job, make_result
from ixci.cli import cli
from ixci.results import compare as cmp
from ixci.results.aggregate import Economics, columns_for, mark_front, tidy_table
from ixci.results.export import to_inferencex

ECON = Economics(
    usd_per_gpu_hour={"h100": {"hyperscaler": 1.30, "neocloud": 1.69}}, all_in_kw={"h100": 1.73}
)


def test_columns_follow_the_contract() -> None:
    df = tidy_table([make_result(make_job())], ECON)
    assert list(df.columns) == columns_for(("hyperscaler", "neocloud"))
    assert "usd_per_output_mtok_neocloud" in df.columns and df.columns[-1] == "engine_version"


def test_per_gpu_cost_and_facility_figures() -> None:
    doc = make_result(make_job(tp=4))
    row = tidy_table([doc], ECON).iloc[1]
    m = doc["points"][1]["metrics"]
    tput = m["total_token_throughput"] / 4
    assert row["tput_per_gpu"] == pytest.approx(tput)
    assert row["output_tput_per_gpu"] == pytest.approx(m["output_throughput"] / 4)
    assert row["input_tput_per_gpu"] == pytest.approx(m["input_throughput"] / 4)
    assert row["usd_per_mtok_neocloud"] == pytest.approx(1.69 / (tput * 3600 / 1e6))
    assert row["usd_per_output_mtok_hyperscaler"] == pytest.approx(
        1.30 / (m["output_throughput"] / 4 * 3600 / 1e6)
    )
    assert row["tokens_per_s_per_mw"] == pytest.approx(tput * 1000 / 1.73)
    assert row["joules_per_output_token"] == pytest.approx(
        doc["points"][1]["telemetry"]["joules_per_output_token"]
    )
    assert row["interactivity_median"] == pytest.approx(m["interactivity"]["median"])
    assert math.isnan(row["input_tput_per_prefill_gpu"])


def test_disaggregated_is_cluster_wide_and_role_local() -> None:
    doc = make_result(make_job(disagg=(2, 6)))
    df = tidy_table([doc])
    row, m = df.iloc[0], doc["points"][0]["metrics"]
    assert (row["gpus"], row["prefill_gpus"], row["decode_gpus"]) == (8, 2, 6)
    assert row["tput_per_gpu"] == pytest.approx(m["total_token_throughput"] / 8)
    assert row["input_tput_per_prefill_gpu"] == pytest.approx(m["input_throughput"] / 2)
    assert row["output_tput_per_decode_gpu"] == pytest.approx(m["output_throughput"] / 6)
    ix = to_inferencex(df)[0]  # the incumbent divides output by decode, input by prefill GPUs
    assert ix["output_tput_per_gpu"] == pytest.approx(m["output_throughput"] / 6)
    assert ix["input_tput_per_gpu"] == pytest.approx(m["input_throughput"] / 2)
    assert ix["num_decode_gpu"] == 6 and ix["is_multinode"] is True


def test_pareto_front_by_hand() -> None:
    pts = [(10, 100), (20, 90), (15, 80), (30, 50), (5, 120), (30, 40), (25, 30)]
    df = pd.DataFrame(
        {
            "g": ["a"] * len(pts),
            "interactivity_median": [x for x, _ in pts],
            "tput_per_gpu": [y for _, y in pts],
            "valid": True,
            "status": "ok",
        }
    )
    df.loc[len(df)] = ["a", 100, 1000, False, "invalid"]  # invalid points never dominate
    on = mark_front(df, ["g"])
    assert [tuple(p) for p, f in zip(pts, on, strict=False) if f] == [
        (10, 100),
        (20, 90),
        (30, 50),
        (5, 120),
    ]


def test_export_inferencex_names_and_units() -> None:
    doc = make_result(make_job(tp=2), statuses={2: "invalid"})
    rows = to_inferencex(tidy_table([doc]))
    assert len(rows) == 2  # the invalid point is left out
    r, m = rows[1], doc["points"][1]["metrics"]
    assert {
        "tput_per_gpu",
        "output_tput_per_gpu",
        "input_tput_per_gpu",
        "median_intvty",
        "p99_ttft",
        "conc",
        "hw",
        "framework",
        "precision",
        "isl",
        "osl",
    } <= set(r)
    assert (r["conc"], r["hw"], r["tp"], r["isl"]) == (
        doc["points"][1]["concurrency"],
        "h100",
        2,
        1024,
    )
    assert r["p99_ttft"] == pytest.approx(m["ttft"]["p99"])  # seconds
    assert r["median_intvty"] == pytest.approx(m["interactivity"]["median"])


def test_cli_aggregate_and_export(tmp_path: Path) -> None:
    res_dir = tmp_path / "collected" / "results"
    res_dir.mkdir(parents=True)
    doc = make_result(make_job())
    (res_dir / f"{doc['job']['id']}.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(
        cli,
        [
            "aggregate",
            str(tmp_path / "collected"),
            "--out",
            str(tmp_path / "agg"),
            "--catalog",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    table = json.loads((tmp_path / "agg" / "points.json").read_text())
    assert len(table["rows"]) == 3
    r = CliRunner().invoke(
        cli, ["export", str(tmp_path / "agg" / "points.json"), "--format", "inferencex"]
    )
    assert r.exit_code == 0, r.output
    assert [row["conc"] for row in json.loads(r.output)] == [1, 4, 16]


# --- compare ---------------------------------------------------------------------------------


def _curve(
    scale: float, run_id: str = "base", concs: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
) -> pd.DataFrame:
    return tidy_table([make_result(make_job(concurrencies=concs), run_id=run_id, scale=scale)])


def test_matched_interactivity_flags_only_beyond_the_band() -> None:
    base = _curve(1.0)
    for scale, verdict in ((1.25, "improved"), (0.8, "regressed"), (1.01, "within_noise")):
        [res] = cmp.compare_tables(base, _curve(scale, "cand"))
        assert res.verdict == verdict, (scale, res)
        assert res.matched >= 2 and res.band == cmp.DEFAULT_BAND


def test_no_extrapolation_outside_the_overlap() -> None:
    fast = _curve(1.0, concs=(1, 2))  # high interactivity only
    slow = _curve(1.0, run_id="cand", concs=(64, 128))  # low interactivity only
    [res] = cmp.compare_tables(fast, slow)
    assert res.verdict == "no_overlap" and res.change is None
    b = cmp.front(_curve(1.0))
    c = cmp.front(_curve(1.1, run_id="c", concs=(4, 8, 16, 32, 64)))
    diffs, rng = cmp.matched_changes(b, c)
    assert rng is not None and len(diffs) >= 2
    lo, hi = rng
    assert (diffs > 0.1).all()  # faster per user at the same load: better wherever matched
    assert lo >= max(b[0].min(), c[0].min()) and hi <= min(b[0].max(), c[0].max())


def test_noise_band_is_learned_from_history() -> None:
    scales = [1.0, 1.06, 0.95, 1.04, 0.97, 1.05]  # a noisy config: ±5 % run to run
    history = pd.concat(
        [_curve(s, run_id=f"h{i}") for i, s in enumerate(scales)], ignore_index=True
    )
    cfg = history["config_id"].iloc[0]
    band, pairs = cmp.noise_band(history, "1k1k", [f"h{i}" for i in range(len(scales))])
    assert pairs == len(scales) - 1 and band > cmp.DEFAULT_BAND
    [res] = cmp.compare_tables(
        _curve(1.05),
        _curve(1.05 * 1.08, "cand"),
        {cfg: history},
        [f"h{i}" for i in range(len(scales))],
    )
    assert res.verdict == "within_noise"  # +8 % is inside this config's noise
    md = cmp.to_markdown([res])
    assert "within noise" in md and "| config |" in md
