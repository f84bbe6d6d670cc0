"""`ixci run-job` with a scenario that declares its cache state, on the real llama-server.

A copy of the repository's catalog in `tmp_path` gives the tiny llama.cpp recipe's scenario
`cache: {before-point: prime}`; the job then runs as a real subprocess with the process
runtime. Every point must record the flush (one erase per slot; `partial`, because the recipe
keeps llama-server's host-memory prompt cache, which an erase does not clear) and the priming
run, and its server metrics must show the measured run served from the cache it primed. The
prompts of a point outnumber the 4 slots, so it is the host prompt cache that holds them: with
`cache-ram: 0` the slots keep only the last 4 prompts of the priming run and the measured run
finds none of its early prompts (hit rate 0, measured while writing this test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ixci.results import result as artifact

ROOT = Path(__file__).resolve().parents[2]
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]
RECIPE = "tiny-fp16-cpu-llamacpp-docker.yaml"  # 4 slots, points at concurrency 1 and 4

pytestmark = [pytest.mark.engine, pytest.mark.timeout(400)]


def _catalog(tmp: Path, before_point: str) -> Path:
    root = tmp / "catalog"
    for part in ("matrix", "benchmarks"):
        shutil.copytree(ROOT / part, root / part)
    scenario = root / "benchmarks" / "scenarios" / "local-short.yaml"
    scenario.write_text(scenario.read_text() + f"cache: {{before-point: {before_point}}}\n")
    return root


def _job(root: Path) -> dict[str, Any]:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(root), "--event", "workflow_dispatch",
                          "--format", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    jobs = [j for j in json.loads(out.stdout)["jobs"] if j.get("recipe", "").endswith(RECIPE)]
    assert len(jobs) == 1, [j.get("recipe") for j in jobs]
    return dict(jobs[0])


def test_prime_flushes_then_runs_the_point_once_unmeasured(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    root = _catalog(tmp_path, "prime")
    job = _job(root)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{llama_server_bin.parent}:{os.environ['PATH']}"}
    proc = subprocess.run([*IXCI, "run-job", job["id"], "--catalog", str(root), "--output", str(out),
                           "--port", str(free_port), "--runtime", "process", "--model-cache",
                           str(tmp_path / "models"), "--run-id", "cache-test"],
                          env=env, capture_output=True, text=True, timeout=380, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = artifact.load(out / job["id"] / "result.json")  # schema-validated
    assert len(doc["points"]) == 2
    for point in doc["points"]:
        cache, metrics = point["cache"], point["server_metrics"]
        print(point["id"], point["concurrency"], cache["status"], f"prime {cache['prime_s']:.1f} s",
              "hit rate", metrics["prefix_cache_hit_rate"], "samples", metrics["samples"])  # fmt: skip
        assert cache["action"] == "prime" and cache["status"] == "partial", cache
        assert "cache-ram" in cache["detail"]
        erased = [s["request"] for s in cache["steps"] if s["request"].startswith("POST")]
        assert erased == [f"POST /slots/{i}?action=erase" for i in range(4)]
        assert cache["prime_s"] > 0 and cache["duration_s"] >= cache["prime_s"]
        assert cache["kv_offload"] == []  # the recipe sets no offload cap
        assert metrics["samples"] >= 2 and metrics["failed_samples"] == 0
        series = metrics["series"]
        assert series["prompt_tokens"]["delta"] > 0 and series["generation_tokens"]["delta"] > 0
        # the measured run replays the prompts the priming run left in the slots
        assert metrics["prefix_cache_hit_rate"]["value"] > 0.5
    assert not (out / job["id"] / ".prime").exists()
