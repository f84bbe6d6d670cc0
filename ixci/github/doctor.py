"""`ixci gha doctor`: read a repository's settings through the REST API and say what is unsafe.

The workflows alone cannot keep fork code off the GPU runners: a pull request from a fork can
add its own workflow (or edit sweep.yml) with `runs-on: [self-hosted, …]`, and GitHub runs the
pull request's version of a `pull_request` workflow. What stops it is configuration
(docs/workflows.md, "Repository settings"), which this module checks:

- fork pull request workflows need approval for **all** outside contributors;
- the default workflow token is read-only and cannot approve pull requests;
- self-hosted runners sit only in runner groups restricted to
  `<owner>/<repo>/.github/workflows/sweep.yml@refs/heads/<default branch>` (runners registered
  on the repository itself cannot be restricted); ephemeral runners are recommended;
- the default branch requires the status `ixci/gate`.

Each check is a pure function of the documented response shapes; `examine` fetches them. What
the token may not read is reported as unchecked, never as safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ixci.errors import GitHubError, IxciError
from ixci.github.github_api import RestClient, check_repo

Kind = Literal["unsafe", "unchecked", "advice"]
GATE_CONTEXT = "ixci/gate"
SWEEP = ".github/workflows/sweep.yml"
_ADMIN = "admin rights on the repository (and `admin:org` read for runner groups)"


class UnsafeSettings(IxciError):
    """The repository's settings let unreviewed code reach the GPU runners (or merge ungated)."""

    exit_code = 9


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing wrong (or unknown) about the repository's settings, and how to fix it."""

    kind: Kind
    setting: str
    problem: str
    fix: str

    def render(self) -> str:
        return f"[{self.kind}] {self.setting}: {self.problem}\n    fix: {self.fix}"


def sweep_ref(repo: str, default_branch: str) -> str:
    """The one workflow ref a GPU runner group may admit."""
    return f"{repo}/{SWEEP}@refs/heads/{default_branch}"


def _same_ref(entry: str, repo: str, default_branch: str) -> bool:
    # GitHub accepts the short branch form (`@main`) for the same ref
    return entry in (sweep_ref(repo, default_branch), f"{repo}/{SWEEP}@{default_branch}")


def runner_group_admits(group: Mapping[str, Any], workflow_ref: str) -> bool:
    """Whether a job of the workflow run at `workflow_ref` may use the group's runners.

    GitHub's rule: an unrestricted group admits every workflow of the repositories it is visible
    to; a restricted one only the refs listed in `selected_workflows`.
    """
    if group.get("restricted_to_workflows") is not True:
        return True
    selected = [str(s) for s in group.get("selected_workflows") or []]
    repo_file, _, ref = workflow_ref.partition("@")
    short = ref.removeprefix("refs/heads/")
    return workflow_ref in selected or f"{repo_file}@{short}" in selected


# ---- the checks (pure) --------------------------------------------------------------------


def check_fork_approval(body: Mapping[str, Any]) -> list[Finding]:
    """`GET /repos/{o}/{r}/actions/permissions/fork-pr-contributor-approval`."""
    policy = body.get("approval_policy")
    if policy == "all_external_contributors":
        return []
    return [
        Finding(
            kind="unsafe",
            setting="fork pull request approval",
            problem=f"approval_policy is {policy!r}: a returning contributor's fork pull request "
            "runs its own workflows without approval",
            fix="Settings → Actions → General → 'Require approval for all external contributors' "
            "(approval_policy: all_external_contributors)",
        )
    ]


def check_workflow_permissions(body: Mapping[str, Any]) -> list[Finding]:
    """`GET /repos/{o}/{r}/actions/permissions/workflow`."""
    found = []
    if body.get("default_workflow_permissions") != "read":
        found.append(
            Finding(
                kind="unsafe",
                setting="default workflow token",
                problem=f"default_workflow_permissions is {body.get('default_workflow_permissions')!r}: "
                "a workflow without a `permissions:` block gets a write token",
                fix="Settings → Actions → General → Workflow permissions → 'Read repository contents'",
            )
        )
    if body.get("can_approve_pull_request_reviews") is not False:
        found.append(
            Finding(
                kind="unsafe",
                setting="default workflow token",
                problem="can_approve_pull_request_reviews is not false: a workflow could approve "
                "the review the gate requires",
                fix="Settings → Actions → General → clear 'Allow GitHub Actions to create and "
                "approve pull requests'",
            )
        )
    return found


def check_repository_runners(runners: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """`GET /repos/{o}/{r}/actions/runners`: runners registered on the repository itself."""
    names = sorted(str(r.get("name")) for r in runners)
    if not names:
        return []
    return [
        Finding(
            kind="unsafe",
            setting="repository runners",
            problem=f"{len(names)} self-hosted runner(s) registered on the repository "
            f"({', '.join(names[:5])}): they run any workflow of the repository, a fork's included",
            fix="register them in an organization runner group restricted to sweep.yml on the "
            "default branch (runner groups are an organization feature)",
        )
    ]


def check_runner_group(
    group: Mapping[str, Any],
    runners: list[Mapping[str, Any]],
    *,
    repo: str,
    default_branch: str,
    public: bool,
) -> list[Finding]:
    """One organization runner group visible to the repository, with its runners."""
    if not runners:
        return []
    name = f"runner group {group.get('name')!r}"
    found = _workflow_restriction(group, name, repo=repo, default_branch=default_branch)
    if public and group.get("allows_public_repositories") is not True:
        found.append(
            Finding(
                kind="unsafe",
                setting=name,
                problem="allows_public_repositories is false: the public repository's sweep "
                "cannot use it",
                fix="allow public repositories once the workflow restriction above is in place",
            )
        )
    persistent = sorted(str(r.get("name")) for r in runners if r.get("ephemeral") is not True)
    if persistent:
        found.append(
            Finding(
                kind="advice",
                setting=name,
                problem=f"{len(persistent)} persistent runner(s) ({', '.join(persistent[:5])}): "
                "one job's leftovers (files, processes, caches) meet the next job",
                fix="register runners with --ephemeral (or autoscale them) so every job starts clean",
            )
        )
    return found


def _workflow_restriction(
    group: Mapping[str, Any], name: str, *, repo: str, default_branch: str
) -> list[Finding]:
    """The group admits this repository's sweep workflow on the default branch, and only it."""
    wanted = sweep_ref(repo, default_branch)
    found = []
    if group.get("restricted_to_workflows") is not True:
        found.append(
            Finding(
                kind="unsafe",
                setting=name,
                problem=f"not restricted to workflows: any workflow of {repo} (a fork pull "
                "request's own included) can use its runners",
                fix=f"restrict it to the selected workflow {wanted}",
            )
        )
    else:
        mine = [
            str(s) for s in group.get("selected_workflows") or [] if str(s).startswith(f"{repo}/")
        ]
        extra = [s for s in mine if not _same_ref(s, repo, default_branch)]
        if extra:
            found.append(
                Finding(
                    kind="unsafe",
                    setting=name,
                    problem=f"admits {', '.join(extra)}: only {wanted} may reach the GPU runners",
                    fix=f"keep {wanted} as this repository's only selected workflow",
                )
            )
        if not any(_same_ref(s, repo, default_branch) for s in mine):
            found.append(
                Finding(
                    kind="unsafe",
                    setting=name,
                    problem=f"does not admit {wanted}: the benchmarks cannot run",
                    fix=f"add {wanted} to the selected workflows",
                )
            )
    return found


def required_contexts(protection: Mapping[str, Any] | None, rules: Iterable[Any]) -> set[str]:
    """Required status contexts from classic branch protection and from rulesets."""
    out: set[str] = set()
    if protection:
        out |= {str(c) for c in protection.get("contexts") or []}
        out |= {
            str(c.get("context")) for c in protection.get("checks") or [] if isinstance(c, dict)
        }
    for rule in rules:
        if isinstance(rule, dict) and rule.get("type") == "required_status_checks":
            params = rule.get("parameters") or {}
            out |= {str(c.get("context")) for c in params.get("required_status_checks") or []}
    return out


def check_required_status(
    protection: Mapping[str, Any] | None, rules: Iterable[Any], *, branch: str
) -> list[Finding]:
    """`…/branches/{b}/protection/required_status_checks` (None: not protected) and
    `…/rules/branches/{b}` (active rulesets)."""
    if GATE_CONTEXT in required_contexts(protection, rules):
        return []
    return [
        Finding(
            kind="unsafe",
            setting=f"required status checks on {branch}",
            problem=f"{GATE_CONTEXT} is not required: a pull request can merge unbenchmarked "
            "or with a failed benchmark",
            fix=f"a branch ruleset (or branch protection) on {branch} requiring the status "
            f"{GATE_CONTEXT}",
        )
    ]


# ---- fetching ------------------------------------------------------------------------------


def examine(api: RestClient, repo: str) -> list[Finding]:
    """Every finding for `repo`; what cannot be read becomes an `unchecked` finding."""
    base = f"/repos/{check_repo(repo)}"
    info = api.get_json(base, f"reading {repo}", needs="`metadata: read`")
    branch = str(info.get("default_branch") or "main")
    public = info.get("private") is False
    owner = info.get("owner") or {}
    findings: list[Finding] = []
    reads: list[tuple[str, Any]] = [
        ("fork pull request approval", lambda: check_fork_approval(
            api.get_json(f"{base}/actions/permissions/fork-pr-contributor-approval", "fork approval", needs=_ADMIN))),
        ("default workflow token", lambda: check_workflow_permissions(
            api.get_json(f"{base}/actions/permissions/workflow", "workflow permissions", needs=_ADMIN))),
        ("repository runners", lambda: check_repository_runners(
            api.get_pages(f"{base}/actions/runners", "repository runners", needs=_ADMIN, key="runners"))),
        (f"required status checks on {branch}", lambda: check_required_status(
            api.get_json(f"{base}/branches/{branch}/protection/required_status_checks",
                         "branch protection", needs=_ADMIN, optional=True),
            api.get_pages(f"{base}/rules/branches/{branch}", "branch rules", needs="`metadata: read`"),
            branch=branch)),
    ]  # fmt: skip
    if owner.get("type") == "Organization":
        reads.append(
            ("organization runner groups",
             lambda: _check_groups(api, str(owner.get("login")), repo, branch, public))
        )  # fmt: skip
    for setting, read in reads:
        try:
            findings += read()
        except GitHubError as exc:
            findings.append(
                Finding(kind="unchecked", setting=setting, problem=exc.message, fix=exc.hint or "")
            )
    return findings


def _check_groups(api: RestClient, org: str, repo: str, branch: str, public: bool) -> list[Finding]:
    name = repo.split("/", 1)[1]
    groups = api.get_pages(
        f"/orgs/{org}/actions/runner-groups?visible_to_repository={name}",
        "organization runner groups", needs=_ADMIN, key="runner_groups",
    )  # fmt: skip
    found: list[Finding] = []
    for group in groups:
        runners = api.get_pages(
            f"/orgs/{org}/actions/runner-groups/{int(group['id'])}/runners",
            f"runners of group {group.get('name')!r}", needs=_ADMIN, key="runners",
        )  # fmt: skip
        found += check_runner_group(group, runners, repo=repo, default_branch=branch, public=public)
    return found


def report(repo: str, findings: list[Finding]) -> str:
    """Findings as text, worst first; a line saying so when there are none."""
    if not findings:
        return f"{repo}: no unsafe setting found"
    order = {"unsafe": 0, "unchecked": 1, "advice": 2}
    ranked = sorted(findings, key=lambda f: order[f.kind])
    counts = {k: sum(f.kind == k for f in findings) for k in order}
    head = f"{repo}: {counts['unsafe']} unsafe, {counts['unchecked']} unchecked, {counts['advice']} advice"
    return "\n".join([head, *(f.render() for f in ranked)])
