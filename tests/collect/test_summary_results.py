"""`ixci gha summary-results` reads hostile artifacts without crashing: each one is shown as
unreadable with its reason, every other job as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collect.factory import make_job, make_result, plan_json, planned
from ixci.cli import cli

GOOD = planned(make_job(name="good", tp=1))
BAD = planned(make_job(name="bad", tp=2))


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(GOOD, BAD))
    return plan


def _bad_doc(field: str, value: object) -> bytes:
    doc = make_result(BAD)
    doc[field] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (_bad_doc("failure_class", 5), "failure_class is a int"),
        (_bad_doc("failure_message", {"x": 1}), "failure_message is a dict"),
        (_bad_doc("status", ["ok"]), "status is a list"),
        (_bad_doc("points", "many"), "points is not a list"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"job": {"id": 1e400}}', "number"),
        (b'{"job": {"id": ' + b"1" * 400 + b"}}", "number"),
        (b"\xff\xfe", "not_utf8"),
    ],
    ids=[
        "class-5",
        "message-dict",
        "status-list",
        "points-str",
        "deep",
        "1e400",
        "int-400",
        "utf16",
    ],
)
def test_hostile_artifact_is_shown_as_unreadable(tmp_path: Path, data: bytes, shown: str) -> None:
    arts = tmp_path / "artifacts"
    (arts / f"result-{GOOD['id']}").mkdir(parents=True)
    (arts / f"result-{GOOD['id']}" / "result.json").write_text(json.dumps(make_result(GOOD)))
    (arts / f"result-{BAD['id']}").mkdir(parents=True)
    (arts / f"result-{BAD['id']}" / "result.json").write_bytes(data)
    res = CliRunner().invoke(
        cli, ["gha", "summary-results", "--plan", str(_plan(tmp_path)), str(arts)]
    )
    assert res.exception is None, res.output
    assert res.exit_code == 0
    good_row = next(line for line in res.output.splitlines() if GOOD["id"] in line)
    assert "| ok | 3/3 |" in good_row
    bad_row = next(line for line in res.output.splitlines() if BAD["id"] in line)
    assert "unreadable" in bad_row and shown in bad_row


def test_a_plan_without_jobs_and_no_artifacts_is_green(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(event="pull_request"))
    res = CliRunner().invoke(
        cli, ["gha", "summary-results", "--plan", str(plan), str(tmp_path / "none")]
    )
    assert res.exit_code == 0, res.output
    assert "The plan has no jobs." in res.output
