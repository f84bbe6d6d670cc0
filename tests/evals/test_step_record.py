"""The eval step's record in result.json: a block the result schema accepts is written with the
points it gates; a block it rejects never costs the measured points (the artifact is written
with the reason instead)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from collect.factory import make_job, make_result

from ixci.evals.step import EvalStep
from ixci.evals.suite import EvalPlan
from ixci.results import result as artifact

BLOCK: dict[str, Any] = {
    "started_at": "2026-12-05T10:00:00+00:00",
    "finished_at": "2026-12-05T10:01:00+00:00",
    "tasks": [],
    "gate": {"passed": False, "reasons": ["multiple-choice: 0.25 < min-score 0.9"]},
    "quality_failed": True,
    "server": {"base_url": "http://127.0.0.1:8000", "pid": 1, "same_deployment": True,
               "restarts": 0},
}  # fmt: skip


def _job_run(tmp_path: Path) -> SimpleNamespace:
    doc = make_result(make_job(), run_id="7")
    folder = tmp_path / doc["job"]["id"]
    folder.mkdir()
    return SimpleNamespace(result=artifact.ResultFile(folder, doc))


def _step(lines: list[str]) -> EvalStep:
    return EvalStep(plan=EvalPlan(tasks=("gsm8k",)), tasks=(), log=lines.append)


def test_a_failed_gate_is_written_with_its_points_marked(tmp_path: Path) -> None:
    run = _job_run(tmp_path)
    _step([])._record(run, dict(BLOCK))
    doc = artifact.load(run.result.path)  # schema-valid: `evals` is a top-level key
    assert doc["evals"]["quality_failed"] is True and doc["evals"]["server"]["restarts"] == 0
    measured = [p for p in doc["points"] if p["status"] in ("ok", "invalid")]
    assert measured and all(p["quality_failed"] is True for p in measured)


def test_a_block_the_schema_rejects_never_costs_the_points(tmp_path: Path) -> None:
    run, lines = _job_run(tmp_path), []
    bad = {**BLOCK, "quality_failed": "yes"}  # not a boolean
    _step(lines)._record(run, bad)
    doc = json.loads(run.result.path.read_text())
    artifact.load(run.result.path)  # still schema-valid
    assert doc["evals"]["error"].startswith("eval results not recorded:")
    assert "quality_failed" in doc["evals"]["error"]
    assert not any("quality_failed" in p for p in doc["points"])
    assert len(doc["points"]) == len(make_result(make_job(), run_id="7")["points"])
    assert any("not recorded" in line for line in lines)
