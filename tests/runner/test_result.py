"""The artifact model: fresh documents validate, writes are atomic, the kept artifacts are valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ixci.errors import InvalidInput
from ixci.results import result

DATA = Path(__file__).resolve().parents[1] / "data" / "artifacts"
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
JOB = {
    "id": "j-0123456789ab",
    "name": "x",
    "model": "m",
    "sku": "cpu",
    "framework": "llamacpp",
    "precision": "fp16",
    "image": None,
    "topology": {"tp": 1, "gpus": 0},
    "points": [
        {
            "id": "p-0123456789ab",
            "scenario": "s",
            "isl": 8,
            "osl": 4,
            "concurrency": 1,
            "request_rate": None,
        }
    ],
}
PROV = {
    "image": None,
    "image_digest": None,
    "engine_version": None,
    "server_argv": ["llama-server"],
    "runtime": "process",
    "runner_name": None,
    "hostname": "h",
    "driver_version": None,
    "gpu_names": [],
    "client": {"name": "ixci-loadgen", "version": "0"},
    "notes": [],
}


def _doc() -> dict:
    return result.new_result(
        job=JOB,
        run={
            "run_id": "r",
            "attempt": 1,
            "event": "local",
            "repository": None,
            "started_at": result.utc_now(),
        },
        provenance=PROV,
        git_sha=None,
        metrics_version=1,
    )


def test_fresh_document_is_valid_and_running(tmp_path: Path) -> None:
    rf = result.ResultFile(tmp_path, _doc())
    rf.write()
    doc = json.loads(rf.path.read_text())
    assert doc["status"] == "running" and doc["points"][0]["status"] == "not_run"
    rf.finish(failure_class="not_ready", failure_message="slow")
    done = result.load(rf.path)
    assert done["status"] == "failed" and done["run"]["finished_at"]


def test_invalid_document_is_never_written(tmp_path: Path) -> None:
    rf = result.ResultFile(tmp_path, _doc())
    rf.write()
    before = rf.path.read_bytes()
    rf.doc["status"] = "great"
    with pytest.raises(InvalidInput, match="status"):
        rf.write()
    assert rf.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**_doc(), "schema_version": 99}))
    with pytest.raises(InvalidInput, match="unsupported schema_version 99"):
        result.load(path)


@pytest.mark.parametrize(
    "path",
    sorted([*DATA.glob("*/result.json"), *EXAMPLES.glob("*/result.json")]),
    ids=lambda p: p.parent.name,
)
def test_kept_artifacts_are_valid(path: Path) -> None:
    doc = result.load(path)
    assert doc["status"] in ("ok", "partial") and (path.parent / "requests.jsonl.gz").exists()
