"""Planner: golden plan of a fixed catalog, id stability, selection by event, shards, estimate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ixci.catalog.catalog import load_catalog
from ixci.cli import cli
from ixci.errors import InvalidInput, PlanError
from ixci.plan import plan

DATA = Path(__file__).resolve().parent.parent / "data" / "plan"
CATALOG = DATA / "catalog"
GOLDEN = DATA / "golden-schedule.json"


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def run_ixci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script: exit codes and messages as users see them."""
    return subprocess.run(
        ["ixci", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_golden_plan_is_exact_and_byte_identical() -> None:
    code, first = run_cli(
        "plan", "--catalog", str(CATALOG), "--event", "schedule", "--format", "json"
    )
    assert code == 0, first
    _, second = run_cli(
        "plan", "--catalog", str(CATALOG), "--event", "schedule", "--format", "json"
    )
    assert first == second
    assert first == GOLDEN.read_text(encoding="utf-8")


def test_warm_server_grouping_and_point_counts() -> None:
    jobs = plan.expand(load_catalog(CATALOG))
    by_name = {j.name: j for j in jobs}
    # entries 0 and 1 of the sglang recipe resolve to the same launch: one job, 7 concurrencies
    # (4..48 geometric + 64, 128) × 2 scenarios
    tp8 = by_name["dsr1 fp8 h200 sglang tp8"]
    assert [p.concurrency for p in tp8.points if p.scenario == "8k1k"] == [
        4,
        8,
        16,
        32,
        48,
        64,
        128,
    ]
    assert len(tp8.points) == 14
    assert len({p.id for j in jobs for p in j.points}) == sum(len(j.points) for j in jobs)
    assert len(jobs) == 8
    disagg = by_name["dsr1 fp4 b200 dynamo-trt p1xtp4-ep4-dpa d5xtp8-ep8"]
    assert disagg.topology.gpus == 4 + 5 * 8 and disagg.topology.nodes == 6
    for job in jobs:
        assert job.id.startswith("j-") and len(job.id) == 14
        assert job.estimate.total_gpu_hours <= job.estimate.restart_per_point_gpu_hours
        if len(job.points) > 1:
            assert job.estimate.total_gpu_hours < job.estimate.restart_per_point_gpu_hours


def _reorder(value: object) -> object:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def test_ids_do_not_depend_on_dict_ordering(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG, root)
    for path in root.rglob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(_reorder(data), sort_keys=False))
    shuffled = plan.expand(load_catalog(root))
    original = plan.expand(load_catalog(CATALOG))
    assert [j.to_dict() for j in shuffled] == [j.to_dict() for j in original]


def test_find_job_re_expands() -> None:
    catalog = load_catalog(CATALOG)
    some = plan.expand(catalog)[3]
    assert plan.find_job(catalog, some.id) == some
    with pytest.raises(PlanError, match="not in the catalog"):
        plan.find_job(catalog, "j-000000000000")


def _with_scenario_keys(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG, root)
    for path in (root / "benchmarks" / "scenarios").glob("*.yaml"):
        path.write_text(path.read_text() + text)
    return root


def test_nightlies_take_nightly_repeats_and_other_events_repeats(tmp_path: Path) -> None:
    """The default nightly R (3, docs/repeats.md) applies to `schedule` only; a pull request or
    dispatch measures once; ids (and so history) are the same on every event."""
    catalog = load_catalog(CATALOG)
    nightly, dispatch = plan.expand(catalog, "schedule"), plan.expand(catalog, "workflow_dispatch")
    assert (
        [j.id for j in nightly] == [j.id for j in dispatch] == [j.id for j in plan.expand(catalog)]
    )
    assert {p.repeats for j in nightly for p in j.points} == {3}
    assert {p.repeats for j in dispatch for p in j.points} == {1}
    assert [p.id for p in nightly[0].points] == [p.id for p in dispatch[0].points]
    a, b = nightly[0].estimate, dispatch[0].estimate
    assert a.points_s == pytest.approx(3 * b.points_s) and a.server_start_s == b.server_start_s
    assert plan.find_job(catalog, nightly[0].id, "schedule") == nightly[0]
    once = load_catalog(_with_scenario_keys(tmp_path / "a", "nightly-repeats: 1\n"))
    assert {p.repeats for j in plan.expand(once, "schedule") for p in j.points} == {1}
    five = load_catalog(_with_scenario_keys(tmp_path / "b", "repeats: 5\n"))  # a floor
    assert {p.repeats for j in plan.expand(five, "schedule") for p in j.points} == {5}
    for event, want in (("schedule", {3}), ("workflow_dispatch", {None})):
        code, out = run_cli("plan", "--catalog", str(CATALOG), "--event", event, "--format", "json")
        assert code == 0, out
        assert {p.get("repeats") for j in json.loads(out)["jobs"] for p in j["points"]} == want


def test_a_bad_nightly_repeats_is_a_pointed_error(tmp_path: Path) -> None:
    root = _with_scenario_keys(tmp_path, "nightly-repeats: 0\n")
    with pytest.raises(InvalidInput) as info:
        load_catalog(root)
    text = info.value.render()
    assert "benchmarks/scenarios/" in text and "nightly-repeats" in text, text


def test_dispatch_filters() -> None:
    code, out = run_cli(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "workflow_dispatch",
        "--only",
        "sku=cpu",
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert [j["sku"] for j in doc["jobs"]] == ["cpu"]
    assert doc["jobs"][0]["selected_because"] == ["workflow_dispatch: --only sku=cpu"]
    code, out = run_cli(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "workflow_dispatch",
        "--only",
        "sku=h200|mi355x,tp=8",
        "--exclude",
        "spec_decoding=mtp",
        "--format",
        "json",
    )
    names = sorted(j["name"] for j in json.loads(out)["jobs"])
    assert names == [
        "dsr1 fp8 h200 sglang tp8",
        "dsr1 fp8 h200 sglang tp8-ep8-dpa",
        "dsr1 fp8 mi355x vllm tp8",
    ]
    code, out = run_cli(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "workflow_dispatch",
        "--only",
        "sku=h200",
        "--only",
        "scenario=smoke",
        "--format",
        "json",
    )
    assert {j["sku"] for j in json.loads(out)["jobs"]} == {"h200", "cpu"}


def test_bad_filter_is_a_usage_error_with_suggestion() -> None:
    proc = run_ixci(
        "plan", "--catalog", str(CATALOG), "--event", "workflow_dispatch", "--only", "skus=h100"
    )
    assert proc.returncode == 2
    assert "unknown key 'skus'" in proc.stderr and "did you mean 'sku'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schedule_rotation_within_budget_oldest_first(tmp_path: Path) -> None:
    catalog = load_catalog(CATALOG)
    jobs = plan.expand(catalog, "schedule")  # the nightly's estimates (nightly-repeats)
    history = {
        "jobs": {j.id: {"last_measured": f"2026-11-{10 + i:02d}"} for i, j in enumerate(jobs)}
    }
    newest = jobs[-1]
    del history["jobs"][newest.id]  # never measured: goes first
    (tmp_path / "index.json").write_text(json.dumps(history))
    budget = newest.estimate.total_gpu_hours + jobs[0].estimate.total_gpu_hours + 0.001
    code, out = run_cli(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "schedule",
        "--budget-gpu-hours",
        str(budget),
        "--history",
        str(tmp_path / "index.json"),
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    chosen = {j["id"]: j["selected_because"][0] for j in doc["jobs"]}
    assert newest.id in chosen and "never measured" in chosen[newest.id]
    assert jobs[0].id in chosen and "last measured 2026-11-10" in chosen[jobs[0].id]
    assert doc["summary"]["gpu_hours"] <= budget


def test_table_shows_saving() -> None:
    code, out = run_cli("plan", "--catalog", str(CATALOG), "--event", "schedule", "--explain")
    assert code == 0, out
    assert "8 jobs, 46 points" in out and "restarting the server per point" in out
    assert "because schedule: all" in out


def test_github_outputs_shards(tmp_path: Path) -> None:
    out_file = tmp_path / "out"
    out_file.write_text("")
    code, out = run_cli(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "schedule",
        "--format",
        "github",
        env={"GITHUB_OUTPUT": str(out_file)},
    )
    assert code == 0, out
    values = _parse_outputs(out_file.read_text())
    assert json.loads(values["shards"]) == ["shard-0"]
    legs = json.loads(values["shard-0"])["include"]
    assert len(legs) == 8 and set(legs[0]) == {"id", "name", "runs-on", "timeout-minutes"}
    assert json.loads(values["shard-3"]) == {"include": []}


def _parse_outputs(text: str) -> dict[str, str]:
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        key, delim = line.split("<<", 1)
        body = []
        for inner in lines:
            if inner == delim:
                break
            body.append(inner)
        values[key] = "\n".join(body)
    return values


def test_shard_overflow_fails_naming_the_limit() -> None:
    catalog = load_catalog(CATALOG)
    job = plan.expand(catalog)[0]
    many = [plan.replace(job, id=f"j-{i:012x}") for i in range(257)]
    big = plan.make_plan(catalog, "schedule", many)
    with pytest.raises(PlanError, match=r"257 jobs .* at most 256 \(1 shard jobs × 256 legs"):
        plan.github_outputs(big, max_shards=1)
    assert len(plan.shard_legs(big, max_shards=2)[1]) == 1


def test_github_without_output_file_is_usage_error() -> None:
    proc = run_ixci(
        "plan",
        "--catalog",
        str(CATALOG),
        "--event",
        "schedule",
        "--format",
        "github",
        env={"GITHUB_OUTPUT": ""},
    )
    assert proc.returncode == 2 and "GITHUB_OUTPUT" in proc.stderr
