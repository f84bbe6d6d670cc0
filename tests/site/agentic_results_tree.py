"""A results tree of multi-turn (sessions) points for the site's agentic view.

Built the way ixci builds one: result documents whose points carry the load generator's
`metrics`, the `sessions` block of `ixci.loadgen.sessions_metrics` and a `server_metrics`
record of `ixci.run.servermetrics.summary`, all computed from simulated turn records; the documents
are checked against the result schema and go through ixci's own tidy table.

The base document is the real llama.cpp H200 artifact (tests/data/gpu); a second document is
the same deployment served by vLLM. The simulation is a closed loop of sessions whose context
grows turn by turn: a warm turn prefills only the tokens its cached prefix does not cover, so
warm TTFT is below cold TTFT at equal prompt length; at the highest concurrency the KV cache
thrashes (cache hits fall, decode slows, vLLM preempts), so that point is off the Pareto front.
Deterministic for a given seed.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import json
import random
from pathlib import Path
from typing import Any

from site_results_tree import GPU_RESULT, REPO, _dump

from ixci.engines import llamacpp, vllm
from ixci.engines.base import MetricsMap
from ixci.loadgen.metrics import RequestRecord, point_metrics
from ixci.loadgen.sessions_metrics import TurnRecord, sessions_metrics
from ixci.run.servermetrics import _Samples, summary

SCENARIO = "agentic-coding"
TURNS = 4
SYSTEM_TOKENS = 2048
THRASH = 128  # from this concurrency on the KV cache no longer holds the sessions in flight
NS = 1_000_000_000
FRAMEWORKS: dict[str, tuple[MetricsMap, float, str]] = {
    # framework → (its metrics map, relative speed, image)
    "llamacpp": (llamacpp.METRICS, 1.0, "localhost/ixci/llama-server:b11434"),
    "vllm": (vllm.METRICS, 1.6, "vllm/vllm-openai:v0.11.2"),
}


def simulate(conc: int, speed: float, rng: random.Random) -> list[TurnRecord]:
    """`conc` slots replay 2 × conc sessions (at least 8) of TURNS turns each, closed loop."""
    thrash = conc >= THRASH
    prefill_tps = 9000.0 * speed / (1 + conc / 64)
    tpot = 0.006 / speed * (1 + conc / 24) ** 0.8 * (1.6 if thrash else 1.0)
    slots = [(0, k) for k in range(conc)]
    turns: list[TurnRecord] = []
    for s in range(max(8, 2 * conc)):
        t, slot = heapq.heappop(slots)
        prompt = SYSTEM_TOKENS + rng.randint(1024, 6144)
        cached_prefix = SYSTEM_TOKENS if s else 0  # the shared system prompt hits from session 2 on
        for turn in range(TURNS):
            cached = int(cached_prefix * (0.3 if thrash and turn else 1.0))
            ttft = 0.02 + (prompt - cached) / prefill_tps
            out = rng.randint(64, 256)
            sizes = [8] * (out // 8) + ([out % 8] if out % 8 else [])
            times, at = [], t + int(ttft * NS)
            for k in sizes:
                times.append(at)
                at += int(k * tpot * NS)
            record = RequestRecord(
                index=len(turns), worker=slot, warmup=False, t_send_ns=t, t_end_ns=times[-1] + 1000,
                ok=True, chunk_times_ns=tuple(times), output_tokens=out, prompt_tokens=prompt,
                requested_input_tokens=prompt, requested_output_tokens=out, chunk_tokens=tuple(sizes),
            )  # fmt: skip
            turns.append(TurnRecord(record=record, session=f"s{s}", turn=turn,
                                    prompt_tokens_requested=prompt, cached_tokens=cached))  # fmt: skip
            pause = int(rng.uniform(0.2, 1.0) * NS)
            t = record.t_end_ns + pause
            cached_prefix = prompt  # the next turn's prompt begins with this one
            prompt += out + rng.randint(128, 768)  # tool output, a new user message
        heapq.heappush(slots, (t, slot))
    return turns


def server_record(mapping: MetricsMap, turns: list[TurnRecord], conc: int) -> dict[str, Any]:
    """The `server_metrics` record a scrape every second would have made during the point."""
    start = min(t.record.t_send_ns for t in turns)
    end = max(t.record.t_end_ns for t in turns)
    seconds = max(2, int((end - start) / NS) + 2)
    cached = sum(t.cached_tokens or 0 for t in turns)
    prompt = sum(t.prompt_tokens for t in turns)
    generated = sum(t.record.output_tokens for t in turns)
    thrash = conc >= THRASH
    data = _Samples()
    for k in range(seconds):
        f = k / (seconds - 1)  # counters grow linearly from 0 to their totals
        values = {
            "queue_depth": float(max(0, conc - 96)) if 0 < k < seconds - 1 else 0.0,
            "running": float(min(conc, 96)) if 0 < k < seconds - 1 else 0.0,
            "kv_cache_usage": min(1.0, 0.05 + conc / 140) if 0 < k < seconds - 1 else 0.02,
            "prefix_cache_hits": f * cached,
            "prefix_cache_queries": f * prompt,
            "prompt_tokens": f
            * (prompt if "prefix_cache_queries" in mapping.counters else prompt - cached),
            "generation_tokens": f * generated,
            "preemptions": f * (conc // 4 if thrash else 0),
        }
        data.values.append(
            {n: v for n, v in values.items() if n in mapping.gauges or n in mapping.counters}
        )
    data.raw = {n: (mapping.gauges.get(n) or mapping.counters[n])[0] for n in data.values[0]}
    return summary(mapping, data, interval_s=1.0)


def agentic_documents(seed: int = 5) -> list[dict[str, Any]]:
    """Two result documents (llama.cpp and vLLM on one H200), every point a sessions point."""
    rng = random.Random(seed)
    base = json.loads(GPU_RESULT.read_text())
    docs = []
    for framework, (mapping, speed, image) in FRAMEWORKS.items():
        doc = copy.deepcopy(base)
        job = doc["job"]
        if framework != job["framework"]:
            job.update(framework=framework, image=image, engine_args={"max-num-seqs": 256},
                       name=job["name"].replace(job["framework"], framework))  # fmt: skip
            doc["provenance"].update(image=image, runtime="docker")
        job["id"] = "j-" + hashlib.sha256(f"{job['name']}|{SCENARIO}".encode()).hexdigest()[:12]
        for p in doc["points"]:
            conc = p["concurrency"]
            turns = simulate(conc, speed, rng)
            p["id"] = (
                "p-" + hashlib.sha256(f"{job['id']}|{SCENARIO}|{conc}".encode()).hexdigest()[:12]
            )
            p.update(scenario=SCENARIO, isl=24576, osl=512, status="ok", valid=True, invalid_reasons=[],
                     failure_class=None)  # fmt: skip
            p["metrics"] = point_metrics([t.record for t in turns], concurrency=conc).to_json()
            block = sessions_metrics(turns, gpus=job["topology"]["gpus"])
            p["sessions"] = {"workload": {"kind": "sessions", "trace": "synthetic"}, "arrivals": "closed",
                             "prompts": "token_ids", **block}  # fmt: skip
            p["server_metrics"] = server_record(mapping, turns, conc)
            p.pop("roofline", None)
        docs.append(doc)
    return docs


def write_agentic_tree(root: Path, docs: list[dict[str, Any]] | None = None) -> Path:
    """A results tree of one run holding `docs` (default: `agentic_documents()`), through
    ixci's schema check and its own tidy table."""
    from ixci.results import result as artifact
    from ixci.results.aggregate import tidy_table, to_columnar

    docs = docs if docs is not None else agentic_documents()
    for k, doc in enumerate(docs):  # the artifact's own reader: schema-validated
        path = root / "artifacts" / f"{k}.json"
        _dump(path, doc)
        artifact.load(path)
    df = tidy_table(docs)
    run_id, date = "agentic-1", "2026-12-05T03:00:00Z"
    for doc in docs:
        doc["run"].update(run_id=run_id, started_at=date)
    df["run_id"], df["run_date"] = run_id, date
    rel = f"runs/{date[:10].replace('-', '/')}/{run_id}"
    jobs = [{"job_id": d["job"]["id"], "name": d["job"]["name"], "model": d["job"]["model"],
             "sku": d["job"]["sku"], "framework": d["job"]["framework"],
             "precision": d["job"]["precision"], "scenario": d["points"][0]["scenario"], "image": d["job"]["image"],
             "status": "ok", "failure_class": None, "failure_message": None,
             "points_expected": len(d["points"]), "points_ok": len(d["points"])}
            for d in docs]  # fmt: skip
    summary_counts = {"ok": len(jobs), "partial": 0, "failed": 0, "missing": 0}
    cov = {
        "run_id": run_id,
        "expected": len(jobs),
        "arrived": len(jobs),
        "summary": summary_counts,
        "jobs": jobs,
    }
    run = {"run_id": run_id, "date": date, "event": "schedule", "sha": "1" * 40}
    _dump(root / rel / "run.json", {**run, "repository": REPO, "path": rel})
    _dump(root / rel / "coverage.json", cov)
    _dump(root / "data" / "points.json", to_columnar(df))
    _dump(root / "index.json", {
        "schema_versions": {"result": 1, "points": 1},
        "runs": [{"run_id": run_id, "date": date, "event": "schedule", "path": rel, "coverage": summary_counts}],
        "configs": sorted(set(df["config_id"])),
    })  # fmt: skip
    return root
