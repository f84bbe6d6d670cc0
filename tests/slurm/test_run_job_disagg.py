"""`ixci run-job` end to end on the real local Slurm cluster (.ci/slurm-up) with the catalog's
disaggregated cpu recipe: 1 prefill + 2 decode llama-servers behind sglang-router, per-role
results that `ixci collect`/`aggregate`/`publish` accept; and a worker killed mid-point fails
the job as a crash (exit 15), ends the whole allocation and keeps the finished points."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, SlurmCluster
from tests.slurm.specs import free_port_block

pytestmark = [pytest.mark.slurm, pytest.mark.engine]

RECIPE = "matrix/recipes/tiny-fp16-cpu-llamacpp-disagg.yaml"


def _ixci(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ixci", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _job(root: Path) -> dict[str, Any]:
    proc = _ixci("plan", "--event", "schedule", "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    jobs = [j for j in json.loads(proc.stdout)["jobs"] if j["recipe"] == RECIPE]
    assert len(jobs) == 1 and jobs[0]["topology"]["disaggregated"]
    return dict(jobs[0])


def _queued(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-n", f"ixci-{job_id}", "-o", "%i %T"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


def test_run_job_disaggregated_end_to_end(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, sglang_router: None, tmp_path: Path
) -> None:
    job = _job(REPO)
    out = tmp_path / "out"
    run = _ixci("run-job", job["id"], "--output", str(out), "--run-id", "slurm-e2e",
                "--port", str(free_port_block(4)), "--model-cache", str(tmp_path / "models"))  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    assert _queued(job["id"]) == ""
    folder = out / job["id"]
    doc = json.loads((folder / "result.json").read_text())
    assert doc["status"] == "ok" and doc["provenance"]["runtime"] == "slurm-enroot"
    assert [p["status"] for p in doc["points"]] == ["ok", "ok", "ok"]
    notes = " ".join(doc["provenance"]["notes"])
    assert "cannot hand a KV cache" in notes and "sglang-router 0.3.2" in notes
    for point in doc["points"]:
        roles = point["telemetry"]["roles"]
        assert {r: roles[r]["gpus"] for r in roles} == {"prefill": 1, "decode": 2}
        for role in roles.values():
            assert role["energy_j"] is None and not role["power_valid"]
            assert "cpu SKU" in role["invalid_reasons"][0]
    # every worker was its own Slurm step on its own node, the router started last
    batch = (folder / "slurm-batch.log").read_text()
    assert batch.index("decode-1 healthy") < batch.index("start router")
    assert dict(ln.split("=") for ln in (folder / "slurm-nodes").read_text().split()) == {
        "router": "127.0.0.1", "prefill-0": "127.0.0.1", "decode-0": "127.0.0.1",
        "decode-1": "127.0.0.1"}  # fmt: skip
    for name in ("prefill-0", "decode-0", "decode-1"):
        assert f"srun --job-name {name} --nodes=1" in (folder / "slurm-batch.sh").read_text()
    # the two decode servers completed every request (llama.cpp logs "total time =" per
    # request), the prefill server none
    served = {n: (folder / f"slurm-{n}.log").read_text().count("total time =")
              for n in ("prefill-0", "decode-0", "decode-1")}  # fmt: skip
    with gzip.open(folder / "requests.jsonl.gz", "rt") as fh:
        sent = sum(1 for _ in fh)
    assert served["decode-0"] > 0 and served["decode-1"] > 0 and served["prefill-0"] == 0, served
    assert served["decode-0"] + served["decode-1"] >= sent

    collected = tmp_path / "collected"
    assert _ixci("collect", str(out), "--out", str(collected), "--strict").returncode == 0
    agg = _ixci("aggregate", str(collected), "--out", str(tmp_path / "agg"))
    assert agg.returncode == 0, agg.stderr
    df = pd.read_csv(tmp_path / "agg" / "points.csv")
    assert set(df["prefill_gpus"]) == {1} and set(df["decode_gpus"]) == {2}
    assert set(df["gpus"]) == {3} and df["disaggregated"].all()
    pd.testing.assert_series_equal(df["output_tput_per_gpu"], df["output_throughput"] / 3,
                                   check_names=False)  # fmt: skip
    pd.testing.assert_series_equal(df["output_tput_per_decode_gpu"], df["output_throughput"] / 2,
                                   check_names=False)  # fmt: skip
    pd.testing.assert_series_equal(df["input_tput_per_prefill_gpu"], df["input_throughput"] / 1,
                                   check_names=False)  # fmt: skip

    remote = tmp_path / "results.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    pub = _ixci("publish", str(out), "--repo", str(remote), "--run-id", "slurm-e2e", "--no-site")
    assert pub.returncode == 0, pub.stderr + pub.stdout
    tree = subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only",
                           "results"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"/slurm-e2e/results/{job['id']}.json" in tree


def _catalog_with_slow_points(root: Path) -> None:
    """A copy of the repository's catalog whose disaggregated cpu recipe has two points of at
    least 15 s each (time enough to kill a worker in the middle of the second one)."""
    for name in ("matrix", "benchmarks"):
        shutil.copytree(REPO / name, root / name)
    scenario = yaml.safe_load((root / "benchmarks/scenarios/local-short.yaml").read_text())
    scenario.update({"name": "local-slow", "min-duration-s": 15})
    (root / "benchmarks/scenarios/local-slow.yaml").write_text(yaml.safe_dump(scenario))
    recipe = yaml.safe_load((root / RECIPE).read_text())
    recipe["scenarios"] = ["local-slow"]
    recipe["search-space"][0]["concurrency"] = [1, 2]
    (root / RECIPE).write_text(yaml.safe_dump(recipe, sort_keys=False))


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_fails_the_job_and_keeps_finished_points(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, sglang_router: None, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    _catalog_with_slow_points(root)
    job = _job(root)
    out = tmp_path / "out"
    result = out / job["id"] / "result.json"
    argv = ["ixci", "run-job", job["id"], "--catalog", str(root), "--output", str(out),
            "--run-id", "slurm-kill", "--port", str(free_port_block(4)),
            "--model-cache", str(tmp_path / "models")]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:

        def first_point_done() -> bool:  # the artifact is rewritten after every point
            return result.exists() and json.loads(result.read_text())["points"][0]["status"] == "ok"

        try:  # launch (4 servers as Slurm steps) + warm-up + 15 s; slow on a loaded 2-core host
            _wait(first_point_done, 300, "the first point to finish")
        except AssertionError as late:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=60)
            batch = out / job["id"] / "slurm-batch.log"
            log = batch.read_text()[-4000:] if batch.exists() else "(no batch log)"
            raise AssertionError(
                f"the first point did not finish in 300 s\n{output[-4000:]}\n{log}"
            ) from late
        time.sleep(3)  # into the second point (it lasts at least 15 s)
        slurm_id = _queued(job["id"]).split()[0]
        steps = subprocess.run(["squeue", "-h", "-s", "-j", slurm_id, "-o", "%i %j"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        victim = dict(reversed(ln.split()) for ln in steps.splitlines())["decode-1"]
        subprocess.run(["scancel", "--signal=KILL", victim], check=True)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    assert proc.returncode == 15, output  # crash
    assert _queued(job["id"]) == "", "the whole allocation must be gone"
    doc = json.loads(result.read_text())
    assert doc["status"] == "partial" and doc["failure_class"] == "crash"
    assert "decode-1 exited" in doc["failure_message"]
    first, second = doc["points"]
    assert first["status"] == "ok" and first["metrics"]["completed"] > 0
    assert second["status"] == "failed" and second["failure_class"] == "crash"
    assert "slurm step log: decode-1" in (out / job["id"] / "server.log").read_text()
