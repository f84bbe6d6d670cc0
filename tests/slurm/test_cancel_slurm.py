"""Cancelling `ixci run-job` on the real local Slurm cluster the way the GitHub runner does
(SIGINT; SIGTERM after 7.5 s; SIGKILL after 2.5 s more), mid-point in the disaggregated
llama.cpp deployment (1 prefill + 2 decode behind sglang-router): the job ends as `cancelled`
within the stop budget, keeps its finished point, and its Slurm allocation is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ixci.run.runner import STOP_BUDGET_S
from tests.conftest import SlurmCluster
from tests.runner.test_cancel import RunnerCancel
from tests.slurm.specs import free_port_block
from tests.slurm.test_run_job_disagg import _catalog_with_slow_points, _job, _queued, _wait

pytestmark = [pytest.mark.slurm, pytest.mark.engine, pytest.mark.timeout(300)]


def test_runner_cancel_mid_point_on_slurm(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, sglang_router: None, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    _catalog_with_slow_points(root)
    job = _job(root)
    out = tmp_path / "out"
    result = out / job["id"] / "result.json"
    owner = f"t-cancel-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "RUNNER_NAME": owner, "XDG_STATE_HOME": str(tmp_path / "state")}
    argv = ["ixci", "run-job", job["id"], "--catalog", str(root), "--output", str(out),
            "--run-id", "slurm-cancel", "--port", str(free_port_block(4)),
            "--model-cache", str(tmp_path / "models")]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    cancel = RunnerCancel()
    try:

        def first_point_done() -> bool:
            return result.exists() and json.loads(result.read_text())["points"][0]["status"] == "ok"

        _wait(first_point_done, 150, "the first point to finish")
        time.sleep(3)  # into the second point (it lasts at least 15 s)
        queued = _queued(job["id"])
        assert "RUNNING" in queued, queued
        rc = cancel(proc)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            subprocess.run(["scancel", "--name", f"ixci-{job['id']}", "--me"], check=False)
    assert rc == 18, output
    assert cancel.sent == ["SIGINT"], f"needed {cancel.sent}: exit took {cancel.exit_after_s:.1f} s"
    assert cancel.exit_after_s <= STOP_BUDGET_S, cancel.exit_after_s
    assert _queued(job["id"]) == "", "the Slurm allocation was left behind"
    doc = json.loads(result.read_text())
    assert doc["status"] == "partial" and doc["failure_class"] == "cancelled"
    first, second = doc["points"]
    assert first["status"] == "ok" and first["metrics"]["completed"] > 0
    assert second["status"] == "failed" and second["failure_class"] == "cancelled"
    script = (out / job["id"] / "slurm-batch.sh").read_text()
    assert f"ixci.owner={owner}" in script  # `ixci cleanup` of this runner would find it
