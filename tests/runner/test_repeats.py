"""Repeats of a point: the round-robin schedule, the folded point record, and `ixci run-job`
with `repeats: 2` on the real llama-server (interleaved, each repeat kept, intervals stated)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ixci.job import Point
from ixci.loadgen.dialect import DIALECTS
from ixci.results import result as artifact
from ixci.run import repeats
from ixci.run.jobspec import PointSpec
from ixci.run.loaddriver import point_config

from .test_run_job import IXCI, ROOT, _assert_clean, _bin_dir, _finish


@dataclass(frozen=True)
class _P:
    repeats: int


def test_schedule_is_round_robin() -> None:
    assert list(repeats.schedule([_P(3), _P(3)])) == [
        (0, 1),
        (1, 1),
        (0, 2),
        (1, 2),
        (0, 3),
        (1, 3),
    ]


def test_schedule_with_one_repeat_is_plan_order() -> None:
    assert list(repeats.schedule([_P(1), _P(1), _P(1)])) == [(0, 1), (1, 1), (2, 1)]


def test_schedule_mixed_counts_skip_finished_points() -> None:
    assert list(repeats.schedule([_P(1), _P(2)])) == [(0, 1), (1, 1), (1, 2)]


def _measured(tput: float, ttft_p99: float, *, valid: bool = True, t: str = "00") -> dict[str, Any]:
    return {
        "id": "p-000000000001", "status": "ok" if valid else "invalid", "failure_class": None,
        "valid": valid, "invalid_reasons": [] if valid else ["error rate 0.5 > threshold 0.05"],
        "started_at": f"2026-12-04T10:{t}:00Z", "finished_at": f"2026-12-04T10:{t}:30Z",
        "metrics": {"completed": 10, "failed": 0, "error_rate": 0.0, "errors": {"cut": 1},
                    "output_throughput": tput, "ttft": {"p99": ttft_p99, "mean": 0.1},
                    "token_count_source": "usage"},
        "client": {"saturated": False, "workers": 1},
        "telemetry": {"power_valid": True, "energy_j": 100.0, "joules_per_output_token": 2.0,
                      "gpus": 1, "invalid_reasons": []},
    }  # fmt: skip


def test_fold_keeps_each_repeat_and_means_the_headlines() -> None:
    entry = repeats.fold({}, _measured(10.0, 1.0, t="00"), repeat=1, planned=3)
    assert entry["valid"] is False and entry["invalid_reasons"] == ["1 of 3 repeats measured"]
    entry = repeats.fold(entry, _measured(12.0, 2.0, t="05"), repeat=2, planned=3)
    entry = repeats.fold(entry, _measured(14.0, 3.0, t="10"), repeat=3, planned=3)
    assert entry["valid"] is True and entry["status"] == "ok" and entry["repeats_planned"] == 3
    assert [r["repeat"] for r in entry["repeats"]] == [1, 2, 3]
    assert [r["metrics"]["output_throughput"] for r in entry["repeats"]] == [10.0, 12.0, 14.0]
    m = entry["metrics"]
    assert m["output_throughput"] == 12.0 and m["ttft"]["p99"] == 2.0
    assert m["completed"] == 30 and m["errors"] == {"cut": 3} and m["error_rate"] == 0.0
    assert entry["telemetry"]["energy_j"] == 300.0 and entry["telemetry"]["gpus"] == 1
    assert entry["started_at"] == "2026-12-04T10:00:00Z"
    assert entry["finished_at"] == "2026-12-04T10:10:30Z"
    iv = entry["intervals"]["metrics"]["output_throughput"]
    # mean 12, s = 2, t(0.975, 2) = 4.302652730: half-width 4.302652730 * 2 / sqrt(3)
    assert iv["n"] == 3 and iv["mean"] == 12.0
    assert iv["hi"] - 12.0 == pytest.approx(4.96827542, abs=1e-7)
    assert entry["intervals"]["method"] == "student-t"


def test_fold_an_invalid_repeat_makes_the_point_invalid_and_stays_out_of_intervals() -> None:
    entry = repeats.fold({}, _measured(10.0, 1.0), repeat=1, planned=2)
    entry = repeats.fold(entry, _measured(99.0, 9.0, valid=False), repeat=2, planned=2)
    assert entry["valid"] is False and entry["status"] == "invalid"
    assert entry["invalid_reasons"] == ["repeat 2: error rate 0.5 > threshold 0.05"]
    assert entry["metrics"]["output_throughput"] == 10.0  # the valid repeat only
    assert entry["intervals"]["metrics"]["output_throughput"] == {
        "mean": 10.0, "lo": None, "hi": None, "n": 1}  # fmt: skip


def test_a_repeat_draws_other_prompts() -> None:
    point = PointSpec(
        point=Point(id="p-000000000001", scenario="s", isl=8, osl=8, concurrency=1, repeats=2)
    )
    from dataclasses import replace

    class _Serve:  # point_config reads only these fields of the ServeSpec
        engine = "llamacpp"
        dialect = DIALECTS["llamacpp"]
        model_name = "m"
        base_url = "http://127.0.0.1:1"

    class _Job:
        tokenizer = None

    def seed(p: PointSpec) -> int:
        return int(point_config(_Serve(), p, _Job())["seed"])  # type: ignore[arg-type]

    seeds = [seed(replace(point, repeat=r)) for r in (1, 2, 3)]
    assert len(set(seeds)) == 3
    single = PointSpec(point=Point(id="p-000000000001", scenario="s", isl=8, osl=8, concurrency=1))
    assert seed(single) == seeds[0]  # one repeat: the prompts of today


def test_run_job_derives_the_request_timeout_from_the_point() -> None:
    """run-job passed min(600 s, max-duration) as every request's timeout: a request to a
    server that never answers waited ten minutes. The point's own derived timeout is used now."""
    from ixci.loadgen.config import TIMEOUT_BASE_S, PointConfig

    class _Serve:
        engine = "llamacpp"
        dialect = DIALECTS["llamacpp"]
        model_name = "m"
        base_url = "http://127.0.0.1:1"

    class _Job:
        tokenizer = None

    point = PointSpec(
        point=Point(id="p-000000000001", scenario="s", isl=1024, osl=128, concurrency=4)
    )
    raw = point_config(_Serve(), point, _Job())  # type: ignore[arg-type]
    assert raw["request_timeout_s"] is None
    config = PointConfig(
        url=raw["url"], model="m", isl=1024, osl=128, concurrency=4, num_requests=16
    )
    assert TIMEOUT_BASE_S < config.timeout_s < 120.0  # 60 + 1.024 + 32 s, not 600 s


# --- run-job on the real llama-server ----------------------------------------------------


def _catalog_with_repeats(tmp_path: Path, scenario: str, count: int) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(ROOT / "matrix", root / "matrix")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    path = root / "benchmarks" / "scenarios" / f"{scenario}.yaml"
    path.write_text(path.read_text() + f"repeats: {count}\n")
    return root


def _two_point_job(catalog: Path) -> dict[str, Any]:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(catalog), "--event", "workflow_dispatch",
                          "--format", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    jobs = [j for j in json.loads(out.stdout)["jobs"] if j["framework"] == "llamacpp"
            and j["model"] == "tiny-llama" and len(j["points"]) >= 2]  # fmt: skip
    return dict(min(jobs, key=lambda j: (len(j["points"]), j["id"])))


@pytest.mark.engine
@pytest.mark.timeout(400)
def test_run_job_interleaves_repeats_on_one_server(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    plain = _two_point_job(ROOT)
    catalog = _catalog_with_repeats(tmp_path, plain["points"][0]["scenario"], 2)
    job = _two_point_job(catalog)
    assert job["id"] == plain["id"] and [p["id"] for p in job["points"]] == [
        p["id"] for p in plain["points"]]  # same job and points: history lines up  # fmt: skip
    assert all(p.get("repeats") == 2 for p in job["points"] if p["scenario"] == "local-short")
    assert job["estimate"]["points_s"] == pytest.approx(
        2 * plain["estimate"]["points_s"], rel=0.01
    )  # rounded to 0.1 s
    out = tmp_path / "out"
    bindir = _bin_dir(tmp_path, llama_server_bin, None)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    argv = [*IXCI, "run-job", job["id"], "--catalog", str(catalog), "--output", str(out),
            "--port", str(free_port), "--runtime", "process", "--model-cache",
            str(tmp_path / "models"), "--run-id", "test"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    rc, log = _finish(proc, timeout=380)
    assert rc == 0, log
    _check_artifact(out, job["id"], len(job["points"]))
    _assert_clean(free_port)


def _check_artifact(out: Path, job_id: str, n_points: int) -> None:
    doc = artifact.load(out / job_id / "result.json")  # schema-validated
    points = doc["points"]
    assert len(points) == n_points
    starts = sorted((r["started_at"], p["id"], r["repeat"]) for p in points for r in p["repeats"])
    # round-robin: every point's first repeat before any point's second
    assert [r for _, _, r in starts] == [1] * n_points + [2] * n_points, starts
    for p in points:
        assert p["valid"] and p["repeats_planned"] == 2 and len(p["repeats"]) == 2
        iv = p["intervals"]["metrics"]["output_throughput"]
        values = [r["metrics"]["output_throughput"] for r in p["repeats"]]
        assert iv["n"] == 2 and iv["mean"] == pytest.approx(sum(values) / 2)
        assert iv["lo"] <= min(values) <= max(values) <= iv["hi"]
        assert p["metrics"]["output_throughput"] == pytest.approx(iv["mean"])
    with gzip.open(out / job_id / "requests.jsonl.gz", "rt") as fh:
        tags = {(r["point_id"], r["repeat"]) for r in map(json.loads, fh)}
    assert tags == {(p["id"], k) for p in points for k in (1, 2)}


def test_run_job_takes_the_plans_repeats_and_refuses_a_bad_count(tmp_path: Path) -> None:
    """With --plan, a point's `repeats` is the plan's (the event decided it); a count that is not
    an integer in 1..20 is a pointed error, not a traceback."""
    plan = json.loads(subprocess.run(
        [*IXCI, "plan", "--catalog", str(ROOT), "--event", "schedule", "--format", "json"],
        capture_output=True, text=True, check=True).stdout)  # fmt: skip
    job = next(j for j in plan["jobs"] if j["framework"] == "llamacpp")
    assert {p["repeats"] for p in job["points"]} == {3}  # a nightly's default (docs/repeats.md)
    job["points"][0]["repeats"] = "three"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**plan, "jobs": [job]}))
    proc = subprocess.run(
        [*IXCI, "run-job", job["id"], "--plan", str(path), "--catalog", str(ROOT), "--dry-run",
         "--model-cache", str(tmp_path / "models")],
        capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"point {job['points'][0]['id']}: repeats 'three' is not an integer in 1..20" in (
        proc.stderr
    )
