"""A sessions workload through `ixci plan` and `ixci run-job` on the real llama-server
(prompt cache on, as llama-server ships): every point of the launch runs on one warm server,
turns carry the whole conversation as token ids, and the engine's prefix cache really hits.

The catalog is a copy of the repository's with one extra recipe and two scenarios (the plan's
goldens stay as they are)."""

from __future__ import annotations

import gzip
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

RECIPE = """\
description: tiny-llama on llama.cpp (CPU), multi-turn sessions.
model: tiny-llama
sku: cpu
framework: llamacpp
precision: fp16
runner: cpu-local
image: localhost/ixci/llama-server:b11434
engine-args: {parallel: 4, ctx-size: 4096, threads: 2, batch-size: 512}
scenarios: [accept-sessions, mooncake-sessions]
search-space:
  - concurrency: [8]
"""
# First turns span the same prompt lengths as later turns, so cold and warm turns compare at
# equal prompt length (the 256-512 bucket holds both).
ACCEPT = """\
name: accept-sessions
isl: 256
osl: 4
warmup-requests: 0
min-requests: 1
max-duration-s: 600
error-threshold: 0.01
workload:
  kind: sessions
  sessions: 200
  turns: 6
  system-prompt-tokens: 32
  first-turn-tokens: {min: 16, max: 480}
  new-tokens: {min: 8, max: 32}
  output-tokens: 4
"""
MOONCAKE = """\
name: mooncake-sessions
isl: 512
osl: 4
warmup-requests: 0
min-requests: 1
max-duration-s: 300
workload: {kind: sessions, trace: mooncake, file: benchmarks/traces/shared-blocks.jsonl, block-tokens: 64}
"""


def _catalog(tmp: Path) -> Path:
    root = tmp / "catalog"
    for part in ("matrix", "benchmarks"):
        shutil.copytree(ROOT / part, root / part)
    (root / "matrix" / "recipes" / "tiny-fp16-cpu-llamacpp-sessions.yaml").write_text(RECIPE)
    (root / "benchmarks" / "scenarios" / "accept-sessions.yaml").write_text(ACCEPT)
    (root / "benchmarks" / "scenarios" / "mooncake-sessions.yaml").write_text(MOONCAKE)
    traces = root / "benchmarks" / "traces"
    traces.mkdir(exist_ok=True)
    # 12 requests in 3 groups: each group shares its first 3 blocks of 64 tokens (hash ids)
    lines = [
        {
            "timestamp": 100 * i,
            "input_length": 4 * 64 - 10,
            "output_length": 4,
            "hash_ids": [1000 * (i % 3) + b for b in range(3)] + [50_000 + i],
        }
        for i in range(12)
    ]
    (traces / "shared-blocks.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def _job(root: Path) -> dict[str, Any]:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(root), "--event", "workflow_dispatch", "--format", "json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    jobs = [
        j
        for j in json.loads(out.stdout)["jobs"]
        if "matrix/recipes/tiny-fp16-cpu-llamacpp-sessions.yaml" in j["recipes"]
    ]
    assert len(jobs) == 1, "every point of one launch belongs to one job (one warm server)"
    return dict(jobs[0])


def test_planner_keeps_sessions_points_on_one_server(tmp_path: Path) -> None:
    job = _job(_catalog(tmp_path))
    assert sorted(p["scenario"] for p in job["points"]) == ["accept-sessions", "mooncake-sessions"]


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sessions_replay_on_real_llama_server(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    root = _catalog(tmp_path)
    job = _job(root)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{llama_server_bin.parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [*IXCI, "run-job", job["id"], "--catalog", str(root), "--output", str(out), "--port", str(free_port),
         "--runtime", "process", "--model-cache", str(tmp_path / "models"), "--run-id", "sessions"],
        env=env, capture_output=True, text=True, timeout=880, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = artifact.load(out / job["id"] / "result.json")  # schema-validated
    points = {p["scenario"]: p for p in doc["points"]}
    with gzip.open(out / job["id"] / "requests.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]

    accept = points["accept-sessions"]
    s = accept["sessions"]
    assert accept["valid"] and s["sessions_completed"] == 200 and s["turns_completed"] == 1200
    assert s["prompts"] == "token_ids" and s["arrivals"] == "closed"
    bucket = s["ttft_by_context"]["256-512"]
    cold, warm = bucket["cold"], bucket["warm"]
    print(
        f"256-512 prompt tokens: cold TTFT median {cold['median'] * 1e3:.2f} ms (n={cold['count']}), "
        f"warm {warm['median'] * 1e3:.2f} ms (n={warm['count']}); client hit rate "
        f"{s['prefix_cache_hit_rate']:.3f}; by turn "
        + ", ".join(f"{k}: {v['median'] * 1e3:.2f} ms" for k, v in s["ttft_by_turn"].items())
    )
    assert cold["count"] >= 20 and warm["count"] >= 20
    assert warm["median"] < cold["median"] and warm["mean"] < cold["mean"]
    assert s["cached_tokens_reported"] == 1200 and s["prefix_cache_hit_rate"] > 0.3
    turns = [r for r in rows if r["point_id"] == accept["id"]]
    assert {r["turn"] for r in turns} == set(range(6)) and len({r["session"] for r in turns}) == 200
    later = [r for r in turns if r["turn"] > 0]
    assert sum(r["cached_tokens"] > 0 for r in later) > 0.5 * len(later)
    # the server's own metrics over the point agree with the client's token accounting: the
    # cached prompt tokens to within 1 %, the hit rate to within 0.01 (stated tolerance; the
    # counters are scraped before and after the point, with no other request in between)
    server = accept["server_metrics"]
    client_cached = sum(r["cached_tokens"] for r in turns)
    server_hits = server["series"]["prefix_cache_hits"]["delta"]
    rate = server["prefix_cache_hit_rate"]
    print(f"sessions point: client cached {client_cached} tokens, hit rate "
          f"{s['prefix_cache_hit_rate']:.4f}; server hits {server_hits:.0f}, hit rate "
          f"{rate['value']:.4f} ({rate['basis']})")  # fmt: skip
    assert rate["basis"] == "uncached" and rate["value"] is not None
    assert abs(server_hits - client_cached) <= 0.01 * client_cached
    assert abs(rate["value"] - s["prefix_cache_hit_rate"]) <= 0.01

    moon = points["mooncake-sessions"]
    mrows = sorted((r for r in rows if r["point_id"] == moon["id"]), key=lambda r: r["t_send_ns"])
    assert moon["valid"] and moon["sessions"]["arrivals"] == "trace" and len(mrows) == 12
    # the first request of each hash-id group is cold; later ones hit its 3 shared blocks
    assert all(r["cached_tokens"] >= 3 * 64 - 8 for r in mrows[3:]), [
        r["cached_tokens"] for r in mrows
    ]
    # and the server's /metrics saw those hits: at least the 9 later requests' shared blocks
    mhits = moon["server_metrics"]["series"]["prefix_cache_hits"]["delta"]
    print(f"mooncake point: server hits {mhits:.0f}, client cached "
          f"{sum(r['cached_tokens'] for r in mrows)}")  # fmt: skip
    assert mhits >= 9 * (3 * 64 - 8)
    assert abs(mhits - sum(r["cached_tokens"] for r in mrows)) <= 0.01 * mhits
