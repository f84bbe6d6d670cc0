"""The pull-request gate: which commit a maintainer approved, and the required status `ixci/gate`.

`.github/workflows/gate.yml` runs this (as `ixci gha gate`) on `pull_request_target`, from the
default branch's code, with the pull request's commit checked out as data. The model
(docs/workflows.md, "Security model"):

- The workflow that reaches self-hosted runners is `sweep.yml` on the default branch; a pull
  request reaches it only through `dispatch` here, with the approved commit as an input.
- Approved = the `safe-to-bench` label applied by a user whose repository permission is write
  or admin (maintain reads as write; triage and read are refused; bots are refused) whose
  latest decisive review APPROVES exactly the pull request's current head commit; or a push to a
  same-repository branch by such a user. A new push drops the approval: the status goes back to
  pending and the gate removes the label, so applying it again is the re-approval.
- Every pull request gets a final `ixci/gate`: success when nothing needs benchmarking, pending
  while a draft or awaiting approval, and the benchmark's outcome (set by sweep.yml's `report`).

`decide` is pure (event, plan, approval → `Decision`); `judge` asks the API who approved what;
`run` performs the decision. Every payload value is checked before use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ixci import cmd
from ixci.errors import GitHubError, UsageError
from ixci.github.gha import APPROVAL_LABEL
from ixci.github.github_api import SHA_RE, PullState, Review, check_login

CONTEXT = "ixci/gate"
LABEL = APPROVAL_LABEL  # "safe-to-bench", one definition for the gate and the summaries
WORKFLOW = "sweep.yml"
#: The `pull_request_target` actions gate.yml listens to; any other does nothing.
ACTIONS = frozenset(
    {"opened", "synchronize", "reopened", "ready_for_review", "converted_to_draft", "labeled"}
)
#: REST `permission` values that may approve (maintain is reported as write, triage as read).
MAY_APPROVE = frozenset({"admin", "write"})
_DECISIVE = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH_RE = re.compile(r"^(?!.*\.\.)(?!/)[A-Za-z0-9._/-]{1,255}(?<![./])$")


@dataclass(frozen=True, kw_only=True)
class PullRequestEvent:
    """The fields of a `pull_request_target` payload the gate uses, each checked."""

    action: str
    number: int
    repository: str
    default_branch: str
    head_sha: str
    base_sha: str
    head_repository: str | None  # None: the fork was deleted
    sender: str
    sender_is_bot: bool
    label: str | None  # the label of a `labeled` event

    @property
    def same_repository(self) -> bool:
        return self.head_repository == self.repository


def parse_event(payload: Mapping[str, Any]) -> PullRequestEvent:
    """Check and extract a `pull_request_target` payload; `UsageError` names the bad field."""
    pr = _obj(payload.get("pull_request"), "pull_request")
    repo = _obj(payload.get("repository"), "repository")
    head, base = (
        _obj(pr.get("head"), "pull_request.head"),
        _obj(pr.get("base"), "pull_request.base"),
    )
    sender = _obj(payload.get("sender"), "sender")
    head_repo = head.get("repo")
    number = pr.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise UsageError(f"event payload: pull_request.number {number!r} is not a positive integer")
    label = payload.get("label")
    return PullRequestEvent(
        action=str(payload.get("action", "")),
        number=number,
        repository=_match(repo.get("full_name"), _REPO_RE, "repository.full_name"),
        default_branch=_match(repo.get("default_branch"), _BRANCH_RE, "repository.default_branch"),
        head_sha=_match(head.get("sha"), SHA_RE, "pull_request.head.sha"),
        base_sha=_match(base.get("sha"), SHA_RE, "pull_request.base.sha"),
        head_repository=_match(head_repo.get("full_name"), _REPO_RE, "pull_request.head.repo")
        if isinstance(head_repo, Mapping)
        else None,
        sender=_login(sender.get("login"), "sender.login"),
        sender_is_bot=sender.get("type") == "Bot",
        label=str(label.get("name")) if isinstance(label, Mapping) else None,
    )


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"event payload: {where} is missing or not an object")
    return value


def _match(value: object, pattern: re.Pattern[str], where: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise UsageError(f"event payload: {where} {value!r} is not valid")
    return value


def _login(value: object, where: str) -> str:
    try:
        return check_login(value, where)
    except GitHubError as exc:
        raise UsageError(f"event payload: {exc.message}") from exc


# ---- the plan, as far as the gate needs it ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlanSummary:
    """`ixci plan --format json` of the pull request, reduced; `error` when planning failed."""

    jobs: int = 0
    gpu_hours: float = 0.0
    notes: tuple[str, ...] = ()
    error: str | None = None


def summarize_plan(text: str) -> PlanSummary:
    """Read the planner's JSON (its `summary` and `notes`); a malformed one is an error summary."""
    try:
        doc = json.loads(text)
        summary = doc["summary"]
        return PlanSummary(
            jobs=int(summary["jobs"]),
            gpu_hours=float(summary["gpu_hours"]),
            notes=tuple(str(n) for n in doc.get("notes") or ()),
        )
    except (ValueError, KeyError, TypeError) as exc:
        return PlanSummary(error=f"the planner's output is not a plan ({exc})")


def checkout_planner(
    checkout: Path, *, python: str, env: Mapping[str, str], timeout: float = 600.0
) -> Callable[[PullRequestEvent], PlanSummary]:
    """A planner that runs this (trusted) ixci's `ixci plan` over the pull request's checkout.

    The checkout is data: the planner reads its catalog files and asks git for the diff
    base..head; nothing in it is imported or executed. `env` should hold no token.
    """

    def plan(event: PullRequestEvent) -> PlanSummary:
        proc = cmd.run(
            [
                python, "-c", "import sys; from ixci.cli import main; main(sys.argv[1:])",
                "plan", "--catalog", str(checkout), "--event", "pull_request",
                "--base", event.base_sha, "--head", event.head_sha, "--format", "json",
            ],
            check=False, env=env, timeout=timeout,
        )  # fmt: skip
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            return PlanSummary(error=lines[0] if lines else f"ixci plan exited {proc.returncode}")
        return summarize_plan(proc.stdout)

    return plan


# ---- approval -----------------------------------------------------------------------------


class ApprovalSource(Protocol):
    """What `judge` asks GitHub (github_api.RepoClient has these)."""

    def permission(self, login: str) -> tuple[str, str]: ...

    def reviews(self, number: int) -> list[Review]: ...


@dataclass(frozen=True, kw_only=True)
class Approval:
    """Whether the head commit is approved, by whom, and why (not) — for people to read."""

    approved: bool
    reason: str
    by: str | None = None
    refused: bool = False  # an approval was attempted (the label) and is refused


def judge(event: PullRequestEvent, head_sha: str, api: ApprovalSource) -> Approval:
    """Is `head_sha` (the pull request's current head) approved by this event?"""
    if event.action == "labeled" and event.label == LABEL:
        return _judge_label(event, head_sha, api)
    if event.action == "labeled":
        return Approval(approved=False, reason=f"the label {event.label!r} approves nothing")
    if event.same_repository and not event.sender_is_bot:
        permission, role = api.permission(event.sender)
        if permission in MAY_APPROVE:
            return Approval(
                approved=True,
                by=event.sender,
                reason=f"pushed to a branch of this repository by {event.sender} ({role or permission})",
            )
    return Approval(
        approved=False,
        reason=f"a maintainer approves the review on {head_sha[:12]}, then applies `{LABEL}`",
    )


def _judge_label(event: PullRequestEvent, head_sha: str, api: ApprovalSource) -> Approval:
    who = event.sender

    def refuse(why: str) -> Approval:
        return Approval(approved=False, refused=True, reason=f"`{LABEL}` by {who} refused: {why}")

    if event.sender_is_bot or who.endswith("[bot]"):
        return refuse("a bot cannot approve a benchmark")
    permission, role = api.permission(who)
    if permission not in MAY_APPROVE:
        return refuse(
            f"{who} has {role or permission} permission; write, maintain or admin is needed"
        )
    review = latest_decisive_review(api.reviews(event.number), who)
    if review is None or review.state != "APPROVED":
        state = "no review" if review is None else f"their latest review is {review.state}"
        return refuse(f"{state}; approve the review on {head_sha[:12]}, then label again")
    if review.commit_id != head_sha:
        on = review.commit_id[:12] if review.commit_id else "an unknown commit"
        return refuse(
            f"their approval is on {on}, the head is {head_sha[:12]}; approve the review on "
            f"{head_sha[:12]}, then label again"
        )
    return Approval(
        approved=True, by=who, reason=f"{who} ({role or permission}) approved {head_sha[:12]}"
    )


def latest_decisive_review(reviews: list[Review], login: str) -> Review | None:
    """`login`'s last review that approves, requests changes or was dismissed (comments don't count)."""
    mine = [r for r in reviews if r.login.lower() == login.lower() and r.state in _DECISIVE]
    return mine[-1] if mine else None


# ---- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the gate does: the status on the head commit, whether to dispatch, whether to unlabel."""

    state: str | None  # pending | success | failure; None: leave the status alone
    description: str
    dispatch: bool = False
    remove_label: bool = False
    approved_by: str | None = None


def decide(
    event: PullRequestEvent, pull: PullState, plan: PlanSummary | None, approval: Approval | None
) -> Decision:
    """The gate's decision for `event`, given the pull request now, its plan and its approval.

    `plan` and `approval` may be None where the decision does not need them (a closed, stale or
    draft pull request, an unrelated label).
    """
    has_label = LABEL in pull.labels
    if event.action not in ACTIONS or (event.action == "labeled" and event.label != LABEL):
        return Decision(
            state=None,
            description=f"nothing to do for `{event.action}` ({event.label or 'no label'})",
        )
    if pull.state != "open":
        return Decision(state=None, description=f"the pull request is {pull.state}")
    if pull.head_sha != event.head_sha:
        return Decision(
            state=None,
            description=f"the head moved to {pull.head_sha[:12]} since this event; "
            "the gate runs again for that push",
        )
    if pull.draft:
        return Decision(
            state="pending",
            description="draft: benchmarks are planned when it is marked ready for review",
            remove_label=has_label,
        )
    assert plan is not None
    if plan.error is not None:
        return Decision(
            state="failure", description=f"the pull request does not plan: {plan.error}"
        )
    if plan.jobs == 0:
        return Decision(state="success", description=f"nothing to benchmark: {_why_nothing(plan)}")
    cost = f"{plan.jobs} job(s), {plan.gpu_hours:.1f} GPU-h"
    assert approval is not None
    if not approval.approved:
        return Decision(
            state="pending",
            description=f"awaiting approval: {cost}; {approval.reason}",
            remove_label=has_label,
        )
    return Decision(
        state="pending",
        description=f"benchmarking {pull.head_sha[:12]}: {cost} (approved by {approval.by})",
        dispatch=True,
        # a push approves nothing by label: the label approved an older commit
        remove_label=has_label and event.action == "synchronize",
        approved_by=approval.by,
    )


def _why_nothing(plan: PlanSummary) -> str:
    if plan.notes:
        return "; ".join(plan.notes)
    return "the change touches no benchmark input"


def needs_plan(event: PullRequestEvent, pull: PullState) -> bool:
    """Whether `decide` will look at the plan (planning costs a checkout's worth of git)."""
    relevant = event.action in ACTIONS and (event.action != "labeled" or event.label == LABEL)
    return relevant and pull.state == "open" and pull.head_sha == event.head_sha and not pull.draft


# ---- performing it -------------------------------------------------------------------------


class GateApi(ApprovalSource, Protocol):
    """Everything `run` does through github_api.RepoClient."""

    def pull(self, number: int) -> PullState: ...

    def set_status(
        self, sha: str, *, state: str, description: str, context: str, target_url: str | None
    ) -> None: ...

    def dispatch(self, workflow: str, *, ref: str, inputs: Mapping[str, str]) -> None: ...

    def remove_label(self, number: int, name: str) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What `run` did, for the step summary and the tests."""

    decision: Decision
    plan: PlanSummary | None
    approval: Approval | None
    head_sha: str
    label_removed: bool


def run(
    event: PullRequestEvent,
    api: GateApi,
    planner: Callable[[PullRequestEvent], PlanSummary],
    *,
    target_url: str | None,
) -> Outcome:
    """Judge the event and act: status on the head commit, dispatch, label removal."""
    pull = api.pull(event.number)
    plan = planner(event) if needs_plan(event, pull) else None
    approval = None
    if plan is not None and plan.error is None and plan.jobs:
        approval = judge(event, pull.head_sha, api)
    decision = decide(event, pull, plan, approval)
    removed = False
    if decision.remove_label:
        removed = api.remove_label(event.number, LABEL)
    if decision.dispatch:
        api.dispatch(
            WORKFLOW,
            ref=event.default_branch,
            inputs={
                "pr": str(event.number),
                "sha": pull.head_sha,
                "base": pull.base_sha,
                "approved-by": decision.approved_by or "",
            },
        )
    if decision.state is not None:
        api.set_status(
            pull.head_sha,
            state=decision.state,
            description=decision.description,
            context=CONTEXT,
            target_url=target_url,
        )
    return Outcome(
        decision=decision,
        plan=plan,
        approval=approval,
        head_sha=pull.head_sha,
        label_removed=removed,
    )


def summary_markdown(event: PullRequestEvent, outcome: Outcome) -> str:
    """The gate's step summary: the decision in full (the status description is cut to 140)."""
    d = outcome.decision
    lines = [
        f"### ixci gate: #{event.number} at `{outcome.head_sha[:12]}` ({event.action})",
        "",
        f"**{d.state or 'unchanged'}** — {d.description}",
        "",
    ]
    if outcome.plan is not None and outcome.plan.error is None:
        lines.append(f"- plan: {outcome.plan.jobs} job(s), {outcome.plan.gpu_hours:.1f} GPU-h")
        lines += [f"- note: {n}" for n in outcome.plan.notes]
    if outcome.approval is not None:
        lines.append(f"- approval: {outcome.approval.reason}")
    if d.dispatch:
        lines.append(f"- dispatched `{WORKFLOW}` on `{event.default_branch}` for this commit")
    if outcome.label_removed:
        lines.append(
            f"- removed `{LABEL}`: it does not approve this commit (apply it again to approve)"
        )
    return "\n".join(lines)


def final_status(
    *, plan_result: str, collect_result: str, shards: str, sha: str
) -> tuple[str, str]:
    """`(state, description)` for `ixci/gate` after a pull request's benchmark run (sweep.yml
    `report`), from the `needs.<job>.result` values and the plan's `shards` output."""
    short = sha[:12]
    if plan_result == "cancelled" or collect_result == "cancelled":
        return (
            "error",
            f"the benchmark run of {short} was cancelled; the gate dispatches again on approval",
        )
    if plan_result != "success":
        return "failure", f"planning {short} failed ({plan_result or 'did not run'}); see the run"
    if shards.strip() in ("", "[]") and collect_result == "skipped":
        return "success", f"nothing to benchmark at {short}"
    if collect_result == "success":
        return "success", f"benchmarked {short}: every planned job produced valid results"
    return "failure", f"benchmark of {short}: {collect_result or 'no result'}; see the run"
