"""Security properties of the workflows, proven against recorded event payloads.

The central one: a pull request from a fork schedules no self-hosted job unless a maintainer
approved it (the `labeled` event of `safe-to-bench`). Each job's `if:` is evaluated as GitHub
would (tests/workflows/ghexpr.py), with a plan whose outputs send every leg to self-hosted GPU
runners — including a hostile plan, since the plan job runs the pull request's own code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ixci import gha

from . import ghexpr
from .simulate import (
    EVENTS,
    WORKFLOWS,
    event_name_of,
    github_context,
    leg,
    load_event,
    load_workflow,
    shard_outputs,
    simulate,
)

EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))
APPROVED = {
    "pull_request.fork.labeled-safe-to-bench.json",
    "pull_request.same-repo.opened.json",
    "pull_request.same-repo.synchronize.json",
    "schedule.json",
    "workflow_dispatch.json",
    "workflow_dispatch.defaults.json",
}
IGNORED = {"pull_request.fork.labeled-other.json", "pull_request.same-repo.labeled-other.json"}
LEGS = [
    leg("j-0123456789ab", ["self-hosted", "h200"]),
    leg("j-ba9876543210", ["self-hosted", "mi355x"]),
]
# What a hostile fork's planner could write: every shard full, GitHub-hosted-looking labels too.
HOSTILE = {
    "shards": json.dumps([f"shard-{i}" for i in range(4)]),
    **{
        f"shard-{i}": json.dumps({"include": [leg(f"j-{i:012x}", ["self-hosted", "gpu"])]})
        for i in range(4)
    },
}


def run(event_file: str, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    name = event_name_of(event_file)
    github = github_context(name, load_event(event_file))
    return simulate(
        load_workflow("sweep.yml"), github, plan_step_outputs=outputs or shard_outputs(LEGS)
    )


def test_every_recorded_event_is_classified() -> None:
    assert set(EVENT_FILES) >= APPROVED | IGNORED
    assert len(EVENT_FILES) >= 12


@pytest.mark.parametrize("event_file", EVENT_FILES)
@pytest.mark.parametrize("outputs", [None, HOSTILE], ids=["plan", "hostile-plan"])
def test_self_hosted_jobs_only_when_approved(
    event_file: str, outputs: dict[str, str] | None
) -> None:
    runs = run(event_file, outputs)
    self_hosted = sorted(n for n, r in runs.items() if r.result == "success" and r.self_hosted)
    if event_file in APPROVED:
        assert self_hosted, f"{event_file}: an approved event must reach the GPU runners"
    else:
        assert self_hosted == [], f"{event_file}: {self_hosted} would run on self-hosted runners"


@pytest.mark.parametrize("event_file", sorted(set(EVENT_FILES) - APPROVED - IGNORED))
def test_unapproved_fork_still_plans_and_fails_the_required_check(event_file: str) -> None:
    runs = run(event_file)
    assert runs["plan"].result == "success" and runs["plan"].runs_on == (("ubuntu-24.04",),)
    assert runs["collect"].result == "success"  # it runs, and `summary-results` exits non-zero:
    env = load_workflow("sweep.yml")["jobs"]["collect"]["steps"]
    step = next(s for s in env if "summary-results" in str(s.get("run")))
    github = github_context(event_name_of(event_file), load_event(event_file))
    assert ghexpr.render(step["env"]["BENCH_APPROVED"].strip(), {"github": github}) is False


@pytest.mark.parametrize("event_file", sorted(IGNORED))
def test_unrelated_labels_start_nothing_and_cancel_nothing(event_file: str) -> None:
    runs = run(event_file)
    assert all(r.result == "skipped" for r in runs.values()), runs
    wf = load_workflow("sweep.yml")
    github = github_context("pull_request", load_event(event_file))
    group = ghexpr.render(wf["concurrency"]["group"], {"github": github})
    approved_group = ghexpr.render(
        wf["concurrency"]["group"],
        {
            "github": github_context(
                "pull_request", load_event("pull_request.fork.synchronize.json")
            )
        },
    )
    assert group != approved_group and github["run_id"] in group
    assert re.fullmatch(r"sweep-\d+", approved_group)


def test_superseded_pull_request_runs_are_cancelled_but_nightly_ones_are_not() -> None:
    wf = load_workflow("sweep.yml")
    for event_file, cancels in [
        ("pull_request.fork.synchronize.json", True),
        ("schedule.json", False),
        ("workflow_dispatch.json", False),
    ]:
        github = github_context(event_name_of(event_file), load_event(event_file))
        assert ghexpr.render(wf["concurrency"]["cancel-in-progress"], {"github": github}) is cancels


@pytest.mark.parametrize("event_file", EVENT_FILES)
def test_the_gate_matches_ixci_and_is_identical_everywhere(event_file: str) -> None:
    """Every bench job and collect's BENCH_APPROVED use one rule, the same as gha.bench_approved."""
    wf = load_workflow("sweep.yml")
    payload = load_event(event_file)
    name = event_name_of(event_file)
    github = github_context(name, payload)
    expected = gha.bench_approved(name, payload, github["repository"])
    assert expected is (event_file in APPROVED)
    gates = {
        re.sub(r"\s+", " ", _gate(job["if"]))
        for n, job in wf["jobs"].items()
        if n.startswith("bench-")
    }
    collect_step = next(
        s for s in wf["jobs"]["collect"]["steps"] if "BENCH_APPROVED" in s.get("env", {})
    )
    gates.add(re.sub(r"\s+", " ", collect_step["env"]["BENCH_APPROVED"].strip()[3:-2].strip()))
    assert len(gates) == 1, gates
    assert ghexpr.truthy(ghexpr.Evaluator({"github": github}).evaluate(gates.pop())) is expected


def _gate(condition: str) -> str:
    # `contains(...shards...) && (<gate>)`: the gate is everything after the first `&&`.
    return condition.split("&&", 1)[1].strip()


def test_gate_never_reads_plan_outputs() -> None:
    for name, job in load_workflow("sweep.yml")["jobs"].items():
        if name.startswith("bench-"):
            assert "needs." not in _gate(job["if"]), name


# ---- hardening rules, checked on every workflow file ----

WORKFLOW_FILES = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _steps(wf: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, j in wf["jobs"].items() for s in j.get("steps", [])]


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_actions_are_pinned_by_sha_with_a_version_comment(wf_file: str) -> None:
    text = (WORKFLOWS / wf_file).read_text(encoding="utf-8")
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for ref, comment in uses:
        assert PINNED.match(ref), f"{wf_file}: {ref} is not pinned to a full commit SHA"
        assert re.match(r"\s*# v\d+\.\d+\.\d+", comment), (
            f"{wf_file}: {ref} lacks a '# vX.Y.Z' comment"
        )
    # one version per action across the file
    by_action: dict[str, set[str]] = {}
    for ref, _ in uses:
        action, sha = ref.split("@")
        by_action.setdefault(action, set()).add(sha)
    assert all(len(v) == 1 for v in by_action.values()), by_action


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_no_expressions_in_run_scripts(wf_file: str) -> None:
    for job, step in _steps(load_workflow(wf_file)):
        assert "${{" not in str(step.get("run", "")), f"{wf_file}:{job}: ${{{{ }}}} inside run:"


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_checkouts_do_not_persist_credentials(wf_file: str) -> None:
    for job, step in _steps(load_workflow(wf_file)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{wf_file}:{job}"


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_permissions_are_empty_at_top_and_minimal_per_job(wf_file: str) -> None:
    wf = load_workflow(wf_file)
    assert wf["permissions"] == {}
    allowed_writes = {
        ("sweep.yml", "publish"): {"contents"},
        ("sweep.yml", "report"): {"pull-requests"},
    }
    for name, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{wf_file}:{name} has no permissions block"
        writes = {k for k, v in perms.items() if v == "write"}
        assert writes == allowed_writes.get((wf_file, name), set()), f"{wf_file}:{name}: {perms}"


def test_no_secrets_reach_pull_request_code() -> None:
    text = (WORKFLOWS / "sweep.yml").read_text(encoding="utf-8")
    assert "secrets." not in text
    wf = load_workflow("sweep.yml")
    for name, job in wf["jobs"].items():
        for step in job.get("steps", []):
            if "github.token" in json.dumps(step.get("env", {})):
                # only in publish (main / schedule) and the same-repository comment step
                cond = f"{job.get('if', '')} {step.get('if', '')}"
                assert name == "publish" or "head.repo.full_name == github.repository" in cond, name
    on = wf["on"]
    assert "pull_request_target" not in on and "workflow_run" not in on


def test_publish_only_on_main_and_queued() -> None:
    wf = load_workflow("sweep.yml")
    job = wf["jobs"]["publish"]
    assert job["concurrency"] == {"group": "ixci-publish-results", "cancel-in-progress": False}
    for event_file in EVENT_FILES:
        runs = run(event_file)
        expect = not event_file.startswith("pull_request")
        assert (runs["publish"].result == "success") is expect, event_file


def test_pull_request_paths_cover_what_changes_a_benchmark() -> None:
    paths = load_workflow("sweep.yml")["on"]["pull_request"]["paths"]
    for needed in (
        "matrix/**",
        "benchmarks/**",
        "schemas/**",
        "ixci/engines/**",
        "ixci/runtimes/**",
        "ixci/loadgen/**",
        "ixci/runner.py",
    ):
        assert needed in paths
    for path in paths:  # every listed path exists (a typo would silently never trigger)
        base = path.split("*")[0].rstrip("/")
        assert (Path(WORKFLOWS).parents[1] / base).exists(), path


def test_event_payloads_are_the_documented_shape() -> None:
    for event_file in EVENT_FILES:
        payload = load_event(event_file)
        assert payload["repository"]["full_name"] == "ixci-dev/ixci"
        if event_file.startswith("pull_request"):
            pr = payload["pull_request"]
            assert {"number", "head", "base", "labels", "user"} <= set(pr)
            assert payload["action"] in {"opened", "synchronize", "reopened", "labeled"}
            assert ("label" in payload) is (payload["action"] == "labeled")
    assert "fork" in (EVENTS / "README.md").read_text(encoding="utf-8")
