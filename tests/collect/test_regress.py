"""Regression and missing-data alerts: the step detector on synthetic series, and
regressions.json derived from real run folders (stage → derive, as publish does)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collect.factory import make_job, make_plan, make_result, planned
from ixci.catalog.catalog import load_catalog
from ixci.errors import InvalidInput
from ixci.github import alert_issues
from ixci.results.collect import collect
from ixci.results.publish import ALERTS_FILE, derive, write_alerts
from ixci.results.regress import AlertPolicy
from ixci.results.runfolder import stage_attempt
from ixci.results.stepdetect import StepRule, detect, detectable_drop
from ixci.schemas import validate_instance

REPO = Path(__file__).resolve().parents[2]


def noisy(n: int, sd: float, seed: int) -> np.ndarray:
    return np.exp(np.random.default_rng(seed).normal(0.0, sd, n)) * 1000.0


# --- the detector alone --------------------------------------------------------------------


def test_an_injected_step_is_found_where_it_is_with_its_size() -> None:
    y = noisy(40, 0.03, seed=1)
    y[25:] *= 0.8  # -20 % from run 25 on
    steps, _, s = detect(y, StepRule())
    assert [st.at for st in steps] == [25]
    lo, hi = steps[0].relative_ci95()
    assert lo < -0.2 < hi and steps[0].z < -4
    assert 0.015 < s < 0.06  # the noise scale is recovered (sd 3 %)


def test_pure_noise_a_single_bad_night_and_a_short_tail_raise_nothing() -> None:
    rule = StepRule()
    assert detect(noisy(60, 0.05, seed=2), rule)[0] == []
    outlier = noisy(30, 0.02, seed=3)
    outlier[15] *= 0.5  # one bad night is never a regression
    assert detect(outlier, rule)[0] == []
    tail = noisy(30, 0.02, seed=4)
    tail[-2:] *= 0.7  # two bad nights: fewer than min-runs-after
    assert detect(tail, rule)[0] == []


@pytest.mark.parametrize("noise", ["normal", "laplace"])
def test_false_alerts_and_stated_power_on_synthetic_histories(noise: str) -> None:
    """Fixed-seed Monte Carlo of the acceptance claims (perf/stepdetect_power.py prints the full
    tables): no regression alert on ≥ 95 % of pure-noise histories; a drop of the stated size
    (`detectable_drop`, computed with the noise scale known) found where it was injected in
    ≥ 85 % of histories, and 1.2 × that drop in ≥ 95 % — the scale is estimated from each
    series (as publish does), which costs normal noise ~5 points of power at the stated size."""
    rule, rng, sd = StepRule(), np.random.default_rng(11), 0.05

    def series(n: int) -> np.ndarray:
        e = rng.normal(0.0, sd, n) if noise == "normal" else rng.laplace(0.0, sd / np.sqrt(2), n)
        return np.exp(e) * 1000.0

    def found(drop: float, histories: int = 100) -> int:
        hits = 0
        for _ in range(histories):
            y = series(60)
            y[40:] *= 1.0 - drop
            hits += any(abs(st.at - 40) <= 2 and st.shift < 0 for st in detect(y, rule)[0])
        return hits

    alerts = sum(any(st.shift < 0 for st in detect(series(60), rule)[0]) for _ in range(200))
    assert alerts <= 10, f"{alerts} of 200 pure-noise histories raised a regression"
    drop = detectable_drop(sd, rule, n_before=rule.window, n_after=rule.window)
    assert 0.15 < drop < 0.2  # the stated power at 5 % noise: a drop of about 17 %
    assert found(drop) >= 85
    assert found(1.2 * drop) >= 95
    assert found(drop / 2) <= 50  # not vacuous: half the stated drop is mostly missed


def test_a_step_below_min_step_is_not_an_alert_however_significant() -> None:
    y = np.ones(40) * 1000.0
    y[20:] *= 0.98  # -2 %: far beyond the noise floor but smaller than min-step (5 %)
    assert detect(y, StepRule())[0] == []
    assert len(detect(y, StepRule(min_step=0.01))[0]) == 1


# --- regressions.json from run folders -----------------------------------------------------


def stage(tree: Path, work: Path, run_id: str, date: str, docs: list[dict[str, Any]],
          plan: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    folder = work / run_id
    for doc in docs:
        sub = folder / f"result-{doc['job']['id']}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "result.json").write_text(json.dumps(doc))
    col = collect([folder], run_id=run_id, plan=make_plan(*plan) if plan is not None else None)
    stage_attempt(tree, col, run_id, date=date, run_attempt=1)


def derived(tree: Path) -> dict[str, Any]:
    files, _ = derive(tree)
    doc = json.loads(files["regressions.json"])
    assert validate_instance("regressions", doc) == []
    return doc


def test_a_regression_names_the_run_date_and_image_change_then_recovers(tmp_path: Path) -> None:
    tree, rng = tmp_path / "tree", np.random.default_rng(5)
    images = ["vllm/vllm-openai:v0.11.0"] * 8 + ["vllm/vllm-openai:v0.12.0"] * 5
    for i, image in enumerate(images):
        job = make_job(image=image)
        scale = (0.8 if i >= 8 else 1.0) * float(np.exp(rng.normal(0, 0.02)))
        doc = make_result(job, run_id=f"r{i:02d}", date=f"2026-11-{i + 1:02d}", scale=scale)
        stage(tree, tmp_path / "a", f"r{i:02d}", f"2026-11-{i + 1:02d}", [doc])
    doc = derived(tree)
    tput = [f for f in doc["regressions"] if f["metric"] == "tput_per_gpu"]
    assert len(tput) == 3  # each of the three concurrencies
    f = tput[0]
    assert (f["first_bad_run"], f["first_bad_date"][:10]) == ("r08", "2026-11-09")
    assert (f["last_good_run"], f["state"]) == ("r07", "open")
    digest = "sha256:" + "ab" * 32  # the factory's: the tag changed, the digest did not
    assert f["image_change"] == {"from": images[7], "to": images[8], "from_digest": digest,
                                 "to_digest": digest}  # fmt: skip
    lo, hi = f["step"]["ci95"]
    assert lo < f["step"]["relative"] < hi and -0.25 < f["step"]["relative"] < -0.15
    assert doc["counts"]["open"] == 6  # tput and interactivity × 3 points

    for i in range(13, 17):  # a fixed image brings it back
        job = make_job(image="vllm/vllm-openai:v0.12.1")
        res = make_result(job, run_id=f"r{i:02d}", date=f"2026-11-{i + 1:02d}",
                          scale=float(np.exp(rng.normal(0, 0.02))))  # fmt: skip
        stage(tree, tmp_path / "a", f"r{i:02d}", f"2026-11-{i + 1:02d}", [res])
    doc = derived(tree)
    assert doc["counts"] == {"open": 0, "recovered": 6, "missing": 0}
    assert {f["recovered_run"] for f in doc["regressions"]} == {"r13"}


def test_a_moved_tag_is_named_by_its_digests(tmp_path: Path) -> None:
    tree, rng = tmp_path / "tree", np.random.default_rng(6)
    for i in range(12):
        job = make_job(image="vllm/vllm-openai:nightly")  # one tag, rebuilt after night 7
        scale = (0.8 if i >= 7 else 1.0) * float(np.exp(rng.normal(0, 0.02)))
        doc = make_result(job, run_id=f"t{i:02d}", date=f"2026-11-{i + 1:02d}", scale=scale)
        doc["provenance"]["image_digest"] = "sha256:" + ("11" if i < 7 else "22") * 32
        stage(tree, tmp_path / "a", f"t{i:02d}", f"2026-11-{i + 1:02d}", [doc])
    f = derived(tree)["regressions"][0]
    assert f["first_bad_run"] == "t07"
    assert f["image_change"] == {"from": "vllm/vllm-openai:nightly", "to": "vllm/vllm-openai:nightly",
                                 "from_digest": "sha256:" + "11" * 32,
                                 "to_digest": "sha256:" + "22" * 32}  # fmt: skip
    issue = alert_issues.wanted_issues(derived(tree), {})[0]
    assert (
        "`vllm/vllm-openai:nightly` rebuilt: `sha256:111111111111` → `sha256:222222222222`"
        in issue.body
    )


def test_missing_nights_raise_config_and_sku_alerts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    a, b = planned(make_job(name="a", sku="h100")), planned(make_job(name="b", sku="h100", tp=2))
    c = planned(make_job(name="c", sku="h200"))
    plan = [a, b, c]
    for i in range(6):
        run_id, date = f"n{i}", f"2026-11-{i + 1:02d}"
        jobs = [a] + ([b] if i < 3 else []) + ([c] if i < 2 else [])
        stage(tree, tmp_path / "w", run_id, date, [make_result(j, run_id=run_id, date=date)
                                                   for j in jobs], plan)  # fmt: skip
    write_alerts(tree, AlertPolicy(missing_nights=3))
    alerts = derived(tree)["missing"]
    got = {(m["scope"], m["sku"], m["config_id"] is not None, m["nights"]) for m in alerts}
    assert got == {
        ("config", "h100", True, 3),
        ("config", "h200", True, 4),
        ("sku", "h200", False, 4),
    }
    sku = next(m for m in alerts if m["scope"] == "sku")
    assert (sku["first_dark_night"], sku["last_valid_night"]) == ("2026-11-03", "2026-11-02")
    write_alerts(tree, AlertPolicy(missing_nights=5))
    assert derived(tree)["missing"] == []


def test_nights_of_other_events_do_not_count(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    a, b = planned(make_job(name="a")), planned(make_job(name="b", tp=2))
    for i in range(5):
        run_id, date = f"d{i}", f"2026-11-{i + 1:02d}"
        docs = [make_result(j, run_id=run_id, date=date) for j in ([a, b] if i == 0 else [a])]
        for d in docs:
            d["run"]["event"] = "workflow_dispatch"
        stage(tree, tmp_path / "w", run_id, date, docs, [a, b])
    assert derived(tree)["missing"] == []


# --- the policy in the catalog -------------------------------------------------------------


def test_a_bad_alert_policy_in_the_catalog_is_a_pointed_error(tmp_path: Path) -> None:
    shutil.copytree(REPO / "matrix", tmp_path / "matrix")
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")
    hw = tmp_path / "matrix" / "hardware.yaml"
    base = hw.read_text()
    hw.write_text(base + "alerts:\n  missing-nights: 0\n  regression: {z-score: 3}\n")
    line = len(base.splitlines()) + 3  # the `regression:` line
    with pytest.raises(InvalidInput) as info:
        load_catalog(tmp_path)
    text = info.value.render()
    assert "matrix/hardware.yaml" in text and "alerts.missing-nights" in text
    assert f"hardware.yaml:{line}:" in text and "'z-score'; allowed: metrics, z," in text


def test_policy_round_trips_and_a_tampered_alerts_json_is_refused(tmp_path: Path) -> None:
    policy = AlertPolicy.from_json({"missing-nights": 5, "regression": {"z": 6, "window": 5}})
    assert AlertPolicy.from_json(policy.to_json()) == policy
    assert (policy.missing_nights, policy.rule.z, policy.rule.window) == (5, 6.0, 5)
    tree = tmp_path / "tree"
    stage(tree, tmp_path / "w", "r1", "2026-11-01", [make_result(make_job(), run_id="r1")])
    (tree / ALERTS_FILE).write_text(json.dumps({"missing-nights": "three"}))
    with pytest.raises(InvalidInput, match="missing-nights"):
        derive(tree)
