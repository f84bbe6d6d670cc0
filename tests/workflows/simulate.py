"""Load the workflows and decide, as GitHub would, which jobs of a run start and where.

`simulate` walks the jobs in `needs` order: a job's `if:` is evaluated (ghexpr) with the
`github`, `needs`, `vars` and `inputs` contexts; a job that starts gets its matrix expanded
(`fromJSON` of the plan's outputs included) and `runs-on` rendered per leg; it is assumed to
succeed. The plan job's outputs are rendered through the workflow's own `outputs:` mapping from
the step outputs given (what `ixci plan --format github` wrote), so the wiring is exercised too.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import ghexpr

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
EVENTS = ROOT / "tests" / "data" / "events"
REPOSITORY = "ixci-dev/ixci"
GITHUB_HOSTED = re.compile(r"^(ubuntu|windows|macos)-(latest|\d[\w.-]*)$")


def load_workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:  # PyYAML reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def load_event(name: str) -> dict[str, Any]:
    payload = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(payload, dict)
    return payload


def event_name_of(file_name: str) -> str:
    return file_name.split(".", 1)[0]


def github_context(
    event_name: str, payload: Mapping[str, Any], *, run_id: int = 9123456789
) -> dict[str, Any]:
    if event_name == "pull_request":
        ref = f"refs/pull/{payload['number']}/merge"
    else:
        ref = str(payload.get("ref") or "refs/heads/main")
    return {
        "event_name": event_name,
        "event": payload,
        "repository": REPOSITORY,
        "repository_owner": REPOSITORY.split("/")[0],
        "ref": ref,
        "sha": "c0ffee0000000000000000000000000000000000",
        "run_id": str(run_id),
        "run_attempt": "1",
        "server_url": "https://github.com",
        "workflow": "sweep",
        "actor": (payload.get("sender") or {}).get("login", "github-actions[bot]"),
    }


@dataclass(frozen=True)
class JobRun:
    result: str  # success | skipped
    legs: tuple[dict[str, Any], ...]
    runs_on: tuple[tuple[str, ...], ...]
    outputs: dict[str, Any]

    @property
    def self_hosted(self) -> bool:
        return any(not is_github_hosted(labels) for labels in self.runs_on)


def is_github_hosted(labels: tuple[str, ...]) -> bool:
    return len(labels) == 1 and bool(GITHUB_HOSTED.match(labels[0]))


def job_order(jobs: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    pending = dict(jobs)
    while pending:
        ready = [n for n, j in pending.items() if all(d in order for d in _needs(j))]
        assert ready, f"cycle in needs: {sorted(pending)}"
        for name in ready:
            order.append(name)
            del pending[name]
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def simulate(
    workflow: Mapping[str, Any],
    github: Mapping[str, Any],
    *,
    plan_step_outputs: Mapping[str, str],
    variables: Mapping[str, str] | None = None,
) -> dict[str, JobRun]:
    runs: dict[str, JobRun] = {}
    jobs = workflow["jobs"]
    inputs = (
        (github["event"].get("inputs") or {}) if github["event_name"] == "workflow_dispatch" else {}
    )
    for name in job_order(jobs):
        job = jobs[name]
        needs = {n: {"result": runs[n].result, "outputs": runs[n].outputs} for n in _needs(job)}
        ctx = {"github": github, "needs": needs, "vars": dict(variables or {}), "inputs": inputs}
        status = ghexpr.Status(results=tuple(v["result"] for v in needs.values()))
        if not ghexpr.evaluate_if(job.get("if"), ctx, status):
            runs[name] = JobRun("skipped", (), (), {})
            continue
        legs = expand_matrix(job, ctx)
        runs_on = tuple(
            _labels(ghexpr.render(job["runs-on"], {**ctx, "matrix": leg})) for leg in legs
        )
        outputs = {}
        if name == "plan":
            steps = {"plan": {"outputs": dict(plan_step_outputs), "outcome": "success"}}
            outputs = {
                k: ghexpr.render(v, {**ctx, "steps": steps})
                for k, v in (job.get("outputs") or {}).items()
            }
        runs[name] = JobRun("success", tuple(legs), runs_on, outputs)
    return runs


def expand_matrix(job: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    strategy = job.get("strategy") or {}
    matrix = ghexpr.render(strategy.get("matrix"), ctx)
    if matrix is None:
        return [{}]
    assert isinstance(matrix, dict), f"matrix is not an object: {matrix!r}"
    vectors = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    legs = [
        dict(zip(vectors, combo, strict=True)) for combo in itertools.product(*vectors.values())
    ]
    if not vectors:
        legs = []
    legs += [dict(extra) for extra in matrix.get("include") or []]
    assert legs, f"a matrix with no legs fails the job: {matrix!r}"
    return legs


def _labels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if isinstance(value, dict) and "labels" in value:
        return _labels(value["labels"])
    raise AssertionError(f"cannot read runs-on {value!r}")


def shard_outputs(legs: list[dict[str, Any]], per_shard: int = 256) -> dict[str, str]:
    """Step outputs in the contract's shape: `shards` (names) and one `shard-N` per shard."""
    chunks = [legs[i : i + per_shard] for i in range(0, len(legs), per_shard)]
    out = {"shards": json.dumps([f"shard-{i}" for i in range(len(chunks))])}
    for i, chunk in enumerate(chunks):
        out[f"shard-{i}"] = json.dumps({"include": chunk})
    return out


def leg(job_id: str, runs_on: list[str], *, minutes: int = 90) -> dict[str, Any]:
    return {"id": job_id, "name": f"job {job_id}", "runs-on": runs_on, "timeout-minutes": minutes}
