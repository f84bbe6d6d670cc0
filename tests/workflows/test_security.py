"""Security properties of the workflows, proven statically and against recorded event payloads.

The central one: code from a pull request never reaches a self-hosted runner unless a maintainer
approved that exact commit. Three layers, each tested here or in test_gate/test_doctor:

1. No workflow that a pull-request-family event can start has a self-hosted (or computed)
   `runs-on`; sweep.yml, the only workflow with self-hosted jobs, has no such trigger.
2. gate.yml (`pull_request_target`) runs only the default branch's code: the pull request's
   commit is checked out as data, never installed or executed, credentials never persisted.
3. A pull request that edits sweep.yml (or adds a workflow) runs it at `refs/pull/N/merge`,
   which a runner group restricted to sweep.yml on the default branch refuses (test_doctor).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from . import ghexpr
from .simulate import (
    EVENTS,
    WORKFLOWS,
    event_name_of,
    github_context,
    is_github_hosted,
    leg,
    load_event,
    load_workflow,
    shard_outputs,
    simulate,
)

WORKFLOW_FILES = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
#: Events whose workflow definition or input a pull request's author controls (GitHub's
#: "Events that trigger workflows"); `workflow_run` follows them.
PR_FAMILY = {
    "pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
    "issue_comment", "issues", "discussion", "discussion_comment", "workflow_run", "merge_group",
    "check_run", "check_suite", "status", "label", "fork", "watch", "create", "delete", "push",
}  # fmt: skip
SWEEP_EVENTS = ["schedule.json", "workflow_dispatch.json", "workflow_dispatch.defaults.json",
                "workflow_dispatch.pull-request.json"]  # fmt: skip
LEGS = [
    leg("j-0123456789ab", ["self-hosted", "h200"]),
    leg("j-ba9876543210", ["self-hosted", "mi355x"]),
]


def triggers(wf: dict[str, Any]) -> set[str]:
    on = wf["on"]
    return {on} if isinstance(on, str) else set(on)


def run_sweep(event_file: str, *, run_id: int = 9123456789) -> dict[str, Any]:
    github = github_context(event_name_of(event_file), load_event(event_file), run_id=run_id)
    return simulate(load_workflow("sweep.yml"), github, plan_step_outputs=shard_outputs(LEGS))


# ---- layer 1: which workflows can reach a self-hosted runner ----


def pr_reachable_runners(wf: dict[str, Any]) -> list[str]:
    """Jobs of a pull-request-triggered workflow whose `runs-on` is not a literal hosted label."""
    if not triggers(wf) & PR_FAMILY:
        return []
    return [
        f"{name}: {job.get('runs-on')!r}"
        for name, job in wf["jobs"].items()
        if not (
            isinstance(job.get("runs-on"), str)
            and "${{" not in job["runs-on"]
            and is_github_hosted((job["runs-on"],))
        )
    ]


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_no_pull_request_triggered_workflow_has_a_self_hosted_job(wf_file: str) -> None:
    assert pr_reachable_runners(load_workflow(wf_file)) == [], wf_file


def test_a_pull_request_that_edits_sweep_to_drop_the_gate_is_caught() -> None:
    """What a fork would push: sweep.yml with a `pull_request` trigger and no conditions. In the
    repository this test fails (layer 1); on GitHub the fork's copy runs at refs/pull/N/merge,
    which the restricted runner group refuses (layer 3, test_doctor)."""
    hostile = copy.deepcopy(load_workflow("sweep.yml"))
    hostile["on"]["pull_request"] = {"types": ["opened", "synchronize"]}
    for job in hostile["jobs"].values():
        job.pop("if", None)
    assert sorted(pr_reachable_runners(hostile))[:1] == ["bench-0: '${{ matrix.runs-on }}'"]
    added = {"on": {"pull_request": None}, "jobs": {"x": {"runs-on": ["self-hosted", "h200"]}}}
    assert pr_reachable_runners(added) == ["x: ['self-hosted', 'h200']"]


def test_only_sweep_has_self_hosted_jobs_and_only_schedule_and_dispatch_start_it() -> None:
    computed = {
        (wf_file, name)
        for wf_file in WORKFLOW_FILES
        for name, job in load_workflow(wf_file)["jobs"].items()
        if not is_github_hosted((str(job.get("runs-on")),))
    }
    assert computed == {("sweep.yml", f"bench-{i}") for i in range(4)}
    assert triggers(load_workflow("sweep.yml")) == {"schedule", "workflow_dispatch"}


@pytest.mark.parametrize("event_file", SWEEP_EVENTS)
def test_sweep_reaches_the_gpu_runners_for_its_events(event_file: str) -> None:
    runs = run_sweep(event_file)
    assert sorted(n for n, r in runs.items() if r.self_hosted) == ["bench-0"]
    assert runs["plan"].runs_on == (("ubuntu-24.04",),)


def test_a_pull_request_run_reports_and_never_publishes() -> None:
    runs = run_sweep("workflow_dispatch.pull-request.json")
    assert runs["report"].result == "success" and runs["publish"].result == "skipped"
    for event_file in ("schedule.json", "workflow_dispatch.json"):
        runs = run_sweep(event_file)
        assert runs["publish"].result == "success" and runs["report"].result == "skipped"


def test_publish_only_from_the_default_branch() -> None:
    payload = load_event("workflow_dispatch.json")
    payload["ref"] = "refs/heads/feature"
    github = github_context("workflow_dispatch", payload)
    runs = simulate(load_workflow("sweep.yml"), github, plan_step_outputs=shard_outputs(LEGS))
    assert runs["publish"].result == "skipped"


def test_publish_and_collect_skip_cancelled_runs_but_report_does_not() -> None:
    jobs = load_workflow("sweep.yml")["jobs"]
    for name in ("collect", "publish"):
        assert "!cancelled()" in jobs[name]["if"] and "always()" not in jobs[name]["if"], name
    assert "always()" in jobs["report"]["if"]  # a cancelled run still resolves `ixci/gate`
    status = ghexpr.Status(results=("cancelled",), cancelled=True)
    ctx = {"github": github_context("schedule", load_event("schedule.json")), "inputs": {},
           "needs": {"plan": {"result": "success", "outputs": {"shards": '["shard-0"]'}},
                     "collect": {"result": "success", "outputs": {}}}}  # fmt: skip
    assert not ghexpr.evaluate_if(jobs["publish"]["if"], ctx, status)


# ---- concurrency: nothing silently dropped, superseded pull-request runs cancelled ----


def _concurrency(event_file: str, run_id: int) -> tuple[str, bool]:
    wf = load_workflow("sweep.yml")
    payload = load_event(event_file)
    name = event_name_of(event_file)
    ctx = {
        "github": github_context(name, payload, run_id=run_id),
        "inputs": payload.get("inputs") or {} if name == "workflow_dispatch" else {},
    }
    group = ghexpr.render(wf["concurrency"]["group"], ctx)
    cancel = ghexpr.render(wf["concurrency"]["cancel-in-progress"], ctx)
    return str(group), bool(cancel)


def test_nightly_and_dispatch_runs_never_share_a_pending_slot() -> None:
    runs = enumerate(f for f in ("schedule.json", "workflow_dispatch.json") for _ in range(3))
    groups = {_concurrency(f, run_id)[0] for run_id, f in runs}  # run ids are unique per run
    assert len(groups) == 6  # every run its own group: none waits behind, or replaces, another
    assert _concurrency("schedule.json", 1)[1] is False


def test_a_newer_approval_supersedes_the_older_run_of_the_same_pull_request() -> None:
    first, second = (_concurrency("workflow_dispatch.pull-request.json", r) for r in (1, 2))
    assert first == second == ("sweep-pr-42", True)


def test_publishers_and_gate_events_queue_instead_of_dropping() -> None:
    publish = load_workflow("sweep.yml")["jobs"]["publish"]["concurrency"]
    assert publish == {"group": "ixci-publish-results", "cancel-in-progress": False, "queue": "max"}
    gate = load_workflow("gate.yml")["concurrency"]
    assert gate["cancel-in-progress"] is False and gate["queue"] == "max"


# ---- layer 2: gate.yml runs trusted code only ----


def test_gate_is_github_hosted_and_executes_no_pull_request_code() -> None:
    wf = load_workflow("gate.yml")
    assert triggers(wf) == {"pull_request_target"}
    [(_, job)] = wf["jobs"].items()
    assert job["runs-on"] == "ubuntu-24.04"
    steps = job["steps"]
    checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
    trusted, data = checkouts
    assert trusted["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    assert "path" not in trusted["with"]
    assert data["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    assert data["with"]["path"] == "pr"
    install = next(i for i, s in enumerate(steps) if "pip install" in str(s.get("run", "")))
    assert install < steps.index(data), "ixci is installed before the pull request is fetched"
    for step in steps:
        uses, script = str(step.get("uses", "")), str(step.get("run", ""))
        assert not uses.startswith("./"), "no local action (it would come from the checkout)"
        assert "working-directory" not in step
        if step is not steps[install]:
            assert "pip" not in script and "pr/" not in script and "python" not in script
    [judge] = [s for s in steps if "run" in s and "gate" in s["run"]]
    assert judge["run"] == "ixci gha gate --checkout pr"


def test_gate_is_the_always_reporting_check() -> None:
    """No path or branch filter: every pull request gets `ixci/gate`, so it can be required."""
    trigger = load_workflow("gate.yml")["on"]["pull_request_target"]
    assert set(trigger) == {"types"}
    assert set(trigger["types"]) == {
        "opened", "synchronize", "reopened", "ready_for_review", "converted_to_draft", "labeled",
    }  # fmt: skip
    text = (WORKFLOWS / "gate.yml").read_text(encoding="utf-8")
    assert "# zizmor: ignore[dangerous-triggers]" in text
    assert "never installed, imported or executed" in text


# ---- hardening rules, checked on every workflow file ----

PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
#: The first major release of each action that runs on Node 24 (Node 20 leaves the runners).
NODE24_MAJOR = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
}


def _steps(wf: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, j in wf["jobs"].items() for s in j.get("steps", [])]


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_actions_are_pinned_by_sha_to_node24_releases(wf_file: str) -> None:
    text = (WORKFLOWS / wf_file).read_text(encoding="utf-8")
    uses = re.findall(r"(?<![\w-])uses:\s*(\S+)(.*)", text)
    assert uses
    by_action: dict[str, set[str]] = {}
    for ref, comment in uses:
        assert PINNED.match(ref), f"{wf_file}: {ref} is not pinned to a full commit SHA"
        version = re.match(r"\s*# v(\d+)\.\d+\.\d+", comment)
        assert version, f"{wf_file}: {ref} lacks a '# vX.Y.Z' comment"
        action, sha = ref.split("@")
        assert int(version.group(1)) >= NODE24_MAJOR[action], f"{wf_file}: {ref}{comment}"
        by_action.setdefault(action, set()).add(sha)
    assert all(len(v) == 1 for v in by_action.values()), by_action


def test_dependabot_keeps_actions_and_pip_current() -> None:
    import yaml

    config = yaml.safe_load((WORKFLOWS.parent / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert config["version"] == 2 and ecosystems == {"github-actions", "pip"}


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_no_expressions_in_run_scripts(wf_file: str) -> None:
    for job, step in _steps(load_workflow(wf_file)):
        assert "${{" not in str(step.get("run", "")), f"{wf_file}:{job}: ${{{{ }}}} inside run:"


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_checkouts_do_not_persist_credentials(wf_file: str) -> None:
    for job, step in _steps(load_workflow(wf_file)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{wf_file}:{job}"


ALLOWED_WRITES = {
    ("sweep.yml", "publish"): {"contents"},
    ("sweep.yml", "report"): {"pull-requests", "statuses"},
    ("gate.yml", "gate"): {"actions", "statuses", "pull-requests"},
}


@pytest.mark.parametrize("wf_file", WORKFLOW_FILES)
def test_permissions_are_empty_at_top_and_minimal_per_job(wf_file: str) -> None:
    wf = load_workflow(wf_file)
    assert wf["permissions"] == {}
    for name, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{wf_file}:{name} has no permissions block"
        writes = {k for k, v in perms.items() if v == "write"}
        assert writes == ALLOWED_WRITES.get((wf_file, name), set()), f"{wf_file}:{name}: {perms}"
        assert set(perms) - writes <= {"contents"}, f"{wf_file}:{name}: {perms}"


def test_tokens_only_where_they_are_needed() -> None:
    holders = set()
    for wf_file in WORKFLOW_FILES:
        text = (WORKFLOWS / wf_file).read_text(encoding="utf-8")
        assert "secrets." not in text, wf_file
        for name, job in load_workflow(wf_file)["jobs"].items():
            if "github.token" in json.dumps(job):
                holders.add((wf_file, name))
    assert holders == set(ALLOWED_WRITES)


def test_report_runs_the_default_branchs_code() -> None:
    """report holds write tokens: it checks out the workflow's own commit, not `inputs.sha`."""
    for name in ("report", "publish"):
        for step in load_workflow("sweep.yml")["jobs"][name]["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert "inputs.sha" not in json.dumps(step), name


def test_recorded_payloads_are_the_documented_shape() -> None:
    for path in sorted(EVENTS.glob("*.json")):
        payload = load_event(path.name)
        assert payload["repository"]["full_name"] == "ixci-dev/ixci"
        assert payload["repository"]["default_branch"] == "main"
        if path.name.startswith("pull_request_target"):
            pr = payload["pull_request"]
            assert {"number", "head", "base", "labels", "user", "draft"} <= set(pr)
            assert payload["action"] in {
                "opened", "synchronize", "reopened", "labeled", "ready_for_review",
                "converted_to_draft",
            }  # fmt: skip
            assert ("label" in payload) is (payload["action"] == "labeled")
            assert {"login", "type"} <= set(payload["sender"])
    assert "fork" in (EVENTS / "README.md").read_text(encoding="utf-8")


def test_an_empty_plan_collects_nothing_and_reports_green() -> None:
    """Zero jobs: no bench job, collect and publish skipped (no `artifacts/` to fail on), and
    a pull request's report still runs and turns `ixci/gate` green."""
    from ixci.github import gate

    empty = {"shards": "[]", **{f"shard-{i}": '{"include":[]}' for i in range(4)}}
    for event_file in SWEEP_EVENTS:
        github = github_context(event_name_of(event_file), load_event(event_file))
        runs = simulate(load_workflow("sweep.yml"), github, plan_step_outputs=empty)
        assert [n for n, r in runs.items() if r.result == "success"] == (
            ["plan", "report"] if "pull-request" in event_file else ["plan"]
        ), event_file
    state, _ = gate.final_status(
        plan_result="success", collect_result="skipped", shards="[]", sha="9" * 40
    )
    assert state == "success"
