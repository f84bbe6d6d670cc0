"""Re-run attempts of one run id publish: nothing lost, nothing duplicated, nothing rewritten.

Real git: a bare repository as the remote, private clones in tmp_path (as test_publish.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collect.factory import make_job, make_plan, make_result, plan_json, planned
from collect.test_publish import artifacts, assert_derived_fresh, checkout, git, points
from ixci.cli import cli
from ixci.cli.collect import run_attempt_from_env
from ixci.errors import PublishError, UsageError
from ixci.job import load_plan
from ixci.results.collect import collect
from ixci.results.publish import publish

RUN = "4242"
A = planned(make_job(name="a", tp=1))
B = planned(make_job(name="b", tp=2))
C = planned(make_job(name="c", tp=4))
PLAN = make_plan(A, B, C)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(path))
    return path


def result(job: dict[str, Any], attempt: int, *, date: str = "2026-11-28", **kw: Any) -> dict:
    doc = make_result(job, run_id=RUN, date=date, **kw)
    doc["run"]["run_attempt"] = attempt
    return doc


def publish_attempt(tmp_path: Path, remote: Path, attempt: int, docs: list[dict], tag: str = ""):
    src = artifacts(tmp_path / f"att{attempt}{tag}", docs)
    col = collect([src], plan=PLAN, run_id=RUN)
    return publish(col, repo=str(remote), run_id=RUN, run_attempt=attempt,
                   workdir=tmp_path / f"w{attempt}{tag}", site=False)  # fmt: skip


FAILED_B = {0: "failed", 1: "not_run", 2: "not_run"}


def test_attempt_two_completes_attempt_one(tmp_path: Path, remote: Path) -> None:
    a1, b1 = result(A, 1), result(B, 1, statuses=FAILED_B)
    first = publish_attempt(tmp_path, remote, 1, [a1, b1])  # C never ran in attempt 1
    assert first.pushed
    # "re-run failed jobs": A's artifact from attempt 1 is downloaded again, B and C re-ran
    second = publish_attempt(tmp_path, remote, 2, [a1, result(B, 2), result(C, 2)])
    assert second.pushed and second.run_path == first.run_path
    tree = checkout(remote, tmp_path / "c")
    run = tree / first.run_path
    assert sorted(p.stem for p in (run / "results").glob("*.json")) == sorted(
        j["id"] for j in (A, B, C)
    )
    kept = {
        p.stem: json.loads(p.read_text())["run"]["run_attempt"]
        for p in (run / "results").glob("*.json")
    }
    assert kept == {A["id"]: 1, B["id"]: 2, C["id"]: 2}
    # attempt 1's document of B is not lost: kept under attempts/1/
    assert json.loads((run / "attempts" / "1" / f"{B['id']}.json").read_text()) == b1
    meta = json.loads((run / "run.json").read_text())
    assert meta["run_attempts"] == [1, 2] and meta["jobs"] == 3
    rows = points(tree)
    keys = [(r["job_id"], r["point_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 9  # every point once
    assert {r["status"] for r in rows} == {"ok"}
    coverage = json.loads((run / "coverage.json").read_text())
    assert coverage["summary"]["complete"] is True
    assert {j["job_id"]: j["run_attempt"] for j in coverage["jobs"]} == kept
    index = json.loads((tree / "index.json").read_text())
    assert [r["run_id"] for r in index["runs"]] == [RUN] and index["runs"][0][
        "status"
    ] == "complete"
    assert_derived_fresh(tree)
    # publishing either attempt again changes nothing
    tip = git("rev-parse", "results", cwd=remote)
    assert not publish_attempt(tmp_path, remote, 2, [a1, result(B, 2), result(C, 2)], "x").changed
    assert not publish_attempt(tmp_path, remote, 1, [a1, b1], "y").changed
    assert git("rev-parse", "results", cwd=remote) == tip


def test_an_attempt_with_only_the_rerun_jobs_keeps_the_rest(tmp_path: Path, remote: Path) -> None:
    publish_attempt(tmp_path, remote, 1, [result(A, 1), result(B, 1, statuses=FAILED_B)])
    publish_attempt(tmp_path, remote, 2, [result(B, 2)])
    rows = points(checkout(remote, tmp_path / "c"))
    assert {r["job_id"] for r in rows} == {A["id"], B["id"]}
    assert len(rows) == 6


def test_a_successful_job_is_never_replaced(tmp_path: Path, remote: Path) -> None:
    first = publish_attempt(tmp_path, remote, 1, [result(A, 1)])
    publish_attempt(tmp_path, remote, 2, [result(A, 2, scale=3.0)])
    tree = checkout(remote, tmp_path / "c")
    run = tree / first.run_path
    assert json.loads((run / "results" / f"{A['id']}.json").read_text())["run"]["run_attempt"] == 1
    assert (run / "attempts" / "2" / f"{A['id']}.json").is_file()  # kept, not published as data


def test_a_later_attempt_that_loses_points_does_not_replace(tmp_path: Path, remote: Path) -> None:
    first = publish_attempt(tmp_path, remote, 1, [result(B, 1, statuses={2: "failed"})])
    publish_attempt(tmp_path, remote, 2, [result(B, 2, statuses=FAILED_B)])
    run = checkout(remote, tmp_path / "c") / first.run_path
    kept = json.loads((run / "results" / f"{B['id']}.json").read_text())
    assert kept["run"]["run_attempt"] == 1
    assert sum(p["status"] == "ok" for p in kept["points"]) == 2


def test_same_attempt_with_different_content_is_an_error(tmp_path: Path, remote: Path) -> None:
    publish_attempt(tmp_path, remote, 1, [result(A, 1)])
    tip = git("rev-parse", "results", cwd=remote)
    with pytest.raises(PublishError, match="run attempt 1 is already published with different"):
        publish_attempt(tmp_path, remote, 1, [result(A, 1, scale=2.0)], "b")
    assert git("rev-parse", "results", cwd=remote) == tip


def test_a_later_day_keeps_the_run_in_its_folder(tmp_path: Path, remote: Path) -> None:
    first = publish_attempt(tmp_path, remote, 1, [result(B, 1, statuses=FAILED_B)])
    second = publish_attempt(tmp_path, remote, 2, [result(B, 2, date="2026-11-30")])
    assert second.run_path == first.run_path == f"runs/2026/11/28/{RUN}"


def test_run_attempt_option_and_environment() -> None:
    assert run_attempt_from_env({}) == 1
    assert run_attempt_from_env({"GITHUB_RUN_ATTEMPT": "3"}) == 3
    for bad in ("0", "-1", "abc", "1e3", "9" * 30):
        with pytest.raises(UsageError):
            run_attempt_from_env({"GITHUB_RUN_ATTEMPT": bad})
    for command in (["publish", "--help"], ["run-job", "--help"]):
        out = CliRunner().invoke(cli, command).output
        assert "--run-attempt" in out


@pytest.mark.engine
@pytest.mark.timeout(300)
def test_run_job_records_the_run_attempt_and_publish_merges_it(
    tmp_path: Path, remote: Path, llama_server_bin: Path, free_port: int
) -> None:
    """A real `ixci run-job` on the real llama-server (process runtime), attempt 2 of a run."""
    root = Path(__file__).resolve().parents[2]
    ixci = [sys.executable, "-c", "from ixci.cli import main; main()"]
    plan = subprocess.run([*ixci, "plan", "--catalog", str(root), "--event", "workflow_dispatch",
                           "--only", "framework=llamacpp,model=tiny-llama", "--format", "json"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    job = min(json.loads(plan)["jobs"], key=lambda j: (len(j["points"]), j["id"]))
    (tmp_path / "plan.json").write_text(json.dumps({**json.loads(plan), "jobs": [job]}))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "llama-server").symlink_to(llama_server_bin)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "GITHUB_RUN_ATTEMPT": "2"}
    out = tmp_path / "artifacts"
    proc = subprocess.run([*ixci, "run-job", job["id"], "--catalog", str(root), "--output", str(out),
                           "--port", str(free_port), "--runtime", "process", "--model-cache",
                           str(tmp_path / "models"), "--run-id", RUN],
                          env=env, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / job["id"] / "result.json").read_text())
    assert (doc["run"]["run_attempt"], doc["run"]["attempt"]) == (2, 1)
    col = collect([out], plan=load_plan(tmp_path / "plan.json"), run_id=RUN)
    assert [a.run_attempt for a in col.accepted] == [2]
    res = publish(col, repo=str(remote), run_id=RUN, run_attempt=2, workdir=tmp_path / "w",
                  site=False)  # fmt: skip
    meta = json.loads((checkout(remote, tmp_path / "c") / res.run_path / "run.json").read_text())
    assert meta["run_attempts"] == [2] and meta["jobs"] == 1


def test_cli_publish_records_the_attempt_from_the_environment(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = artifacts(tmp_path / "a", [result(A, 1), result(B, 1, statuses=FAILED_B)])
    argv = ["publish", str(src), "--repo", str(remote), "--run-id", RUN, "--no-site",
            "--catalog", str(tmp_path)]  # fmt: skip
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
    first = CliRunner().invoke(cli, argv)
    assert first.exit_code == 0, first.output
    src2 = artifacts(tmp_path / "b", [result(B, 2)])
    argv2 = [*argv[:1], str(src2), *argv[2:]]
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    second = CliRunner().invoke(cli, argv2)
    assert second.exit_code == 0, second.output
    tree = checkout(remote, tmp_path / "c")
    meta = json.loads(next(tree.glob(f"runs/*/*/*/{RUN}/run.json")).read_text())
    assert meta["run_attempts"] == [1, 2]


def test_cli_publish_of_a_plan_without_jobs_publishes_nothing(tmp_path: Path, remote: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json())
    res = CliRunner().invoke(cli, ["publish", str(tmp_path / "artifacts"), "--repo", str(remote),
                                   "--run-id", RUN, "--plan", str(plan), "--no-site"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "nothing planned" in res.output and "nothing to publish" in res.output
    assert git("for-each-ref", cwd=remote).strip() == ""
