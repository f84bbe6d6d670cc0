"""The eval step of `ixci run-job` on the real llama-server: after the points, on the same warm
server, with the scores, their intervals and the gate in the artifact.

A copy of the catalog gets one recipe with an `evals:` suite (all three committed tasks, 4 rows
each) and a gate the tiny random-weight llama cannot pass, so the gate's marking of the points
is exercised too. "No restart" is checked from the outside: the server's own log shows one
start, and the pid the step logged is the one that served the points.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ixci.results import result as artifact

from .test_run_job import IXCI, ROOT, _assert_clean, _bin_dir, _finish

pytestmark = [pytest.mark.engine, pytest.mark.timeout(420)]

RECIPE = """\
description: tiny-llama on llama.cpp with the eval suite (eval-step test).
model: tiny-llama
sku: cpu
framework: llamacpp
precision: fp16
runner: cpu-local
image: localhost/ixci/llama-server:b11434
engine-args: {parallel: 2, ctx-size: 4096, threads: 2, temp: 0}
scenarios: [local-short]
search-space:
  - concurrency: [1, 2]
evals:
  tasks: [gsm8k, multiple-choice, tool-call]
  limit: 4
  concurrency: 2
  gate:
    multiple-choice: {min-score: 0.9}
"""


def _catalog(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(ROOT / "matrix", root / "matrix")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    (root / "matrix" / "recipes" / "tiny-fp16-cpu-llamacpp-evals.yaml").write_text(RECIPE)
    return root


def _job(catalog: Path) -> str:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(catalog), "--event", "workflow_dispatch",
                          "--format", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    (job,) = [j for j in json.loads(out.stdout)["jobs"] if j["recipe"].endswith("-evals.yaml")]
    return str(job["id"])


def test_eval_step_runs_on_the_warm_server_and_gates_the_points(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    catalog = _catalog(tmp_path)
    job = _job(catalog)
    out, cache = tmp_path / "out", tmp_path / "models"
    env = {
        **os.environ,
        "PATH": f"{_bin_dir(tmp_path, llama_server_bin, None)}:{os.environ['PATH']}",
    }
    argv = [*IXCI, "run-job", job, "--catalog", str(catalog), "--output", str(out),
            "--port", str(free_port), "--runtime", "process", "--model-cache", str(cache),
            "--run-id", "test"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    rc, log = _finish(proc, timeout=380)
    assert rc == 0, log  # a failed gate marks the points; it does not fail the job
    _assert_clean(free_port)
    doc: dict[str, Any] = artifact.load(out / job / "result.json")  # schema-validated

    # the step ran once, after the points, against the deployment that served them
    started = re.findall(r"eval: 3 task\(s\) gsm8k, multiple-choice, tool-call on the warm "
                         r"server (\S+) \(same deployment as the points, pid (\d+); no restart\)",
                         log)  # fmt: skip
    assert len(started) == 1, log
    url, pid = started[0]
    assert url == f"http://127.0.0.1:{free_port}"
    evals = doc["evals"]
    assert evals["server"] == {"base_url": url, "pid": int(pid), "same_deployment": True,
                               "restarts": 0}  # fmt: skip
    logged = out / job / "server.log"
    if logged.is_file():
        server_log = logged.read_text(errors="replace")
    else:  # compressed when the job's folder is finalised for upload
        with gzip.open(out / job / "server.log.gz", "rt", errors="replace") as fh:
            server_log = fh.read()
    assert server_log.count("listening on http") == 1, "the server started more than once"
    last_point = max(dt.datetime.fromisoformat(p["finished_at"]) for p in doc["points"])
    assert dt.datetime.fromisoformat(evals["started_at"]) >= last_point  # after the points

    # scores with their intervals and data provenance, rows kept
    tasks = {t["task"]: t for t in evals["tasks"]}
    assert set(tasks) == {"gsm8k", "multiple-choice", "tool-call"}
    for t in tasks.values():
        lo, hi = t["ci95"]
        assert t["n"] == 4 and 0.0 <= lo <= t["score"] <= hi <= 1.0, t
        assert re.fullmatch(r"[0-9a-f]{64}", t["dataset"]["sha256"]), t["dataset"]
    with gzip.open(out / job / "evals.rows.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == 12 and {r["task"] for r in rows} == set(tasks)

    # the tiny random model cannot pass the gate: every measured point is marked
    assert evals["gate"]["passed"] is False and evals["quality_failed"] is True
    assert any("multiple-choice" in r for r in evals["gate"]["reasons"])
    measured = [p for p in doc["points"] if p["status"] in ("ok", "invalid")]
    assert measured and all(p["quality_failed"] is True for p in measured)
    shown = ", ".join(f"{k} {t['score']} {t['ci95']}" for k, t in tasks.items())
    print(f"eval step: {shown}; server pid {pid}, one start")
