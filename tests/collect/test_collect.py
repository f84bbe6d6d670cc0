"""collect: every damaged artifact rejected with the right reason, good ones kept, coverage."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from collect.factory import make_job, make_plan, make_result, planned
from ixci.cli import cli
from ixci.errors import CollectError
from ixci.results.collect import collect

DAMAGED = Path(__file__).resolve().parents[1] / "data" / "damaged"
EXPECTED: dict[str, str] = json.loads((DAMAGED / "EXPECTED.json").read_text())


def _case(source: str) -> str:
    # sources are labelled relative to the collected folder's parent: damaged/<case>/...
    return Path(source.split("!")[0]).relative_to(DAMAGED.name).parts[0]


def test_damaged_corpus_is_rejected_with_the_right_reasons() -> None:
    col = collect([DAMAGED], run_id="2001")
    got = {_case(s.source): s.category for s in col.skipped}
    got.update({_case(a.source): "accepted" for a in col.accepted})
    assert got == EXPECTED
    assert sum(1 for v in EXPECTED.values() if v != "accepted") >= 20
    for s in col.skipped:
        assert s.reasons and all(r.strip() for r in s.reasons), s


def test_reasons_name_the_field() -> None:
    col = collect([DAMAGED], run_id="2001")
    reasons = {_case(s.source): " ".join(s.reasons) for s in col.skipped}
    assert "'ttft' is a required property" in reasons["missing-ttft"]
    assert "points/0/metrics" in reasons["missing-ttft"]
    assert "gpu_names lists 8 GPUs but the job has 2" in reasons["gpu-names-too-many"]
    assert "NaN" in reasons["nan"]
    assert "truncated" in reasons["truncated"]
    assert "1999" in reasons["other-run"]


def _write(root: Path, doc: dict, name: str | None = None) -> Path:
    folder = root / (name or f"result-{doc['job']['id']}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(doc))
    return folder


def test_coverage_against_a_plan(tmp_path: Path) -> None:
    ok, failed, missing, rejected = (
        planned(make_job(name=n, tp=t))
        for n, t in (("ok", 1), ("failed", 2), ("missing", 4), ("rejected", 8))
    )
    partial = planned(make_job(name="partial", tp=1, concurrencies=(1, 2, 4, 8)))
    plan = make_plan(ok, failed, missing, rejected, partial)
    _write(tmp_path, make_result(ok))
    _write(tmp_path, make_result(failed, statuses={0: "failed", 1: "not_run", 2: "not_run"}))
    _write(tmp_path, make_result(partial, statuses={3: "invalid"}))
    bad = make_result(rejected)
    bad["provenance"]["gpu_names"] = ["x"] * 3
    _write(tmp_path, bad)
    col = collect([tmp_path], plan=plan)
    states = {j["job_id"]: (j["state"], j["status"]) for j in col.coverage["jobs"]}
    assert states == {
        ok["id"]: ("present", "ok"),
        failed["id"]: ("failed", "failed"),
        missing["id"]: ("missing", "missing"),
        rejected["id"]: ("rejected", "failed"),
        partial["id"]: ("partial", "partial"),
    }
    by_id = {j["job_id"]: j for j in col.coverage["jobs"]}
    assert by_id[failed["id"]]["failure_class"] == "crash"
    assert by_id[partial["id"]]["points"] == {
        "expected": 4,
        "ok": 3,
        "invalid": 1,
        "failed": 0,
        "not_run": 0,
        "missing": 0,
    }
    assert "gpu_count" in by_id[rejected["id"]]["failure_message"]
    summary = col.coverage["summary"]
    assert (summary["present"], summary["missing"], summary["rejected"], summary["complete"]) == (
        1,
        1,
        1,
        False,
    )
    assert summary["points_expected"] == 3 + 3 + 3 + 3 + 4


def test_plan_disagreeing_gpu_count_is_rejected(tmp_path: Path) -> None:
    job = planned(make_job(tp=2))
    in_plan = json.loads(json.dumps(job))
    in_plan["topology"]["gpus"] = 4
    _write(tmp_path, make_result(job))
    col = collect([tmp_path], plan=make_plan(in_plan))
    assert [s.category for s in col.skipped] == ["gpu_count"]
    assert "plan" in col.skipped[0].reasons[0]


def test_retries_keep_the_latest_attempt_and_report_the_rest(tmp_path: Path) -> None:
    job = make_job()
    first = make_result(job, attempt=1, statuses={2: "failed"})
    second = make_result(job, attempt=2)
    _write(tmp_path, first, "a")
    _write(tmp_path, second, "b")
    _write(tmp_path, second, "c")
    col = collect([tmp_path])
    assert [a.attempt for a in col.accepted] == [2]
    assert sorted(s.category for s in col.skipped) == ["duplicate", "superseded"]
    assert col.coverage["summary"]["complete"] is True


def test_cli_collect_writes_results_skip_report_and_coverage(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["collect", str(DAMAGED), "--out", str(out), "--run-id", "2001"])
    assert res.exit_code == 0, res.output
    assert "accepted 3 artifact(s)" in res.output
    assert len(list((out / "results").glob("j-*.json"))) == 3
    skipped = json.loads((out / "skipped.json").read_text())["skipped"]
    assert len(skipped) == sum(1 for v in EXPECTED.values() if v != "accepted")
    strict = CliRunner().invoke(cli, ["collect", str(DAMAGED), "--out", str(out), "--strict"])
    assert isinstance(strict.exception, CollectError) and strict.exception.exit_code == 6
    assert "collection incomplete" in strict.exception.message
