"""`ixci gha doctor` against recorded REST responses (tests/data/github/doctor/).

GitHub's API cannot run here; the responses are in the shapes GitHub documents for each endpoint
(repository, fork-PR contributor approval, workflow token permissions, repository runners,
organization runner groups and their runners, required status checks, branch rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import responses
from click.testing import CliRunner

from ixci.cli import cli
from ixci.github import doctor

from .simulate import ROOT

API = "https://api.github.test"
DATA = ROOT / "tests" / "data" / "github" / "doctor"
R = "/repos/ixci-dev/ixci"
G = "/orgs/ixci-dev/actions/runner-groups"
SAFE = {
    R: "repo.json",
    f"{R}/actions/permissions/fork-pr-contributor-approval": "fork-approval.all.json",
    f"{R}/actions/permissions/workflow": "workflow-permissions.read.json",
    f"{R}/actions/runners": "runners.repo.none.json",
    f"{R}/branches/main/protection/required_status_checks": (404, "branch-not-protected.json"),
    f"{R}/rules/branches/main": "rules-branch.gate.json",
    G: "runner-groups.restricted.json",
    f"{G}/1/runners": "group-runners.none.json",
    f"{G}/4/runners": "group-runners.ephemeral.json",
}
UNSAFE = {
    **SAFE,
    f"{R}/actions/permissions/fork-pr-contributor-approval": "fork-approval.first-time.json",
    f"{R}/actions/permissions/workflow": "workflow-permissions.write.json",
    f"{R}/actions/runners": "runners.repo.one.json",
    f"{R}/branches/main/protection/required_status_checks": "required-status-checks.json",
    f"{R}/rules/branches/main": "rules-branch.none.json",
    G: "runner-groups.unrestricted.json",
    f"{G}/4/runners": "group-runners.persistent.json",
}


@pytest.fixture()
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve(rsps: responses.RequestsMock, answers: dict[str, str | tuple[int, str]]) -> None:
    for path, answer in answers.items():
        status, name = answer if isinstance(answer, tuple) else (200, answer)
        rsps.add(
            responses.GET,
            re.compile(re.escape(API + path) + r"(\?.*)?$"),
            body=(DATA / name).read_text(),
            status=status,
            content_type="application/json",
        )


def run(rsps: responses.RequestsMock, answers: dict[str, str | tuple[int, str]], *args: str):  # type: ignore[no-untyped-def]
    serve(rsps, answers)
    return CliRunner().invoke(
        cli, ["gha", "doctor", "--repo", "ixci-dev/ixci", *args],
        env={"GITHUB_API_URL": API, "GITHUB_TOKEN": "admin-token"},
    )  # fmt: skip


def test_a_safe_repository_passes(rsps: responses.RequestsMock) -> None:
    result = run(rsps, SAFE)
    assert result.exit_code == 0, result.output
    assert "ixci-dev/ixci: no unsafe setting found" in result.output


def test_every_unsafe_setting_is_named(rsps: responses.RequestsMock) -> None:
    result = run(rsps, UNSAFE)
    assert isinstance(result.exception, doctor.UnsafeSettings) and result.exception.exit_code == 9
    out = result.output
    assert out.startswith("ixci-dev/ixci: 6 unsafe, 0 unchecked, 1 advice")
    for expected in (
        "approval_policy is 'first_time_contributors'",
        "default_workflow_permissions is 'write'",
        "can_approve_pull_request_reviews is not false",
        "1 self-hosted runner(s) registered on the repository (h200-box-01)",
        "runner group 'gpu': not restricted to workflows",
        "ixci/gate is not required",
        "1 persistent runner(s) (h200-box-02)",
        "restrict it to the selected workflow ixci-dev/ixci/.github/workflows/sweep.yml@refs/heads/main",
    ):
        assert expected in out, expected
    assert "'Default'" not in out  # a group without runners risks nothing
    assert "allows_public_repositories" not in out


def test_a_group_admitting_other_refs_is_flagged(rsps: responses.RequestsMock) -> None:
    result = run(rsps, {**SAFE, G: "runner-groups.restricted-any-ref.json"})
    assert result.exit_code == 9 or isinstance(result.exception, doctor.UnsafeSettings)
    assert (
        "admits ixci-dev/ixci/.github/workflows/sweep.yml@refs/pull/42/merge, "
        "ixci-dev/ixci/.github/workflows/ci.yml@main" in result.output
    )


def test_what_cannot_be_read_is_unchecked_not_safe(rsps: responses.RequestsMock) -> None:
    weak = {
        **SAFE,
        **{
            path: (403, "forbidden.json")
            for path in SAFE
            if "/actions/" in path or "protection" in path
        },
    }
    result = run(rsps, weak)
    assert result.exit_code == 0, result.output
    assert "0 unsafe, 5 unchecked" in result.output
    assert "HTTP 403 Resource not accessible by integration" in result.output
    strict = CliRunner().invoke(
        cli, ["gha", "doctor", "--repo", "ixci-dev/ixci", "--strict"],
        env={"GITHUB_API_URL": API, "GITHUB_TOKEN": "t"},
    )  # fmt: skip
    assert isinstance(strict.exception, doctor.UnsafeSettings)


def test_a_pull_requests_own_workflow_never_reaches_a_restricted_group() -> None:
    """A fork that edits sweep.yml (say, adds `pull_request:` and drops every gate) runs it at
    refs/pull/N/merge: a group restricted to sweep.yml on the default branch refuses it; an
    unrestricted group — which the doctor flags — would not."""
    import json

    groups = json.loads((DATA / "runner-groups.restricted.json").read_text())["runner_groups"]
    gpu = next(g for g in groups if g["name"] == "gpu")
    sweep = "ixci-dev/ixci/.github/workflows/sweep.yml"
    assert doctor.runner_group_admits(gpu, f"{sweep}@refs/heads/main")
    assert not doctor.runner_group_admits(gpu, f"{sweep}@refs/pull/42/merge")
    assert not doctor.runner_group_admits(
        gpu, "ixci-dev/ixci/.github/workflows/evil.yml@refs/pull/42/merge"
    )
    assert not doctor.runner_group_admits(gpu, f"{sweep}@refs/heads/feature")
    open_group = next(g for g in groups if g["name"] == "Default")
    assert doctor.runner_group_admits(open_group, f"{sweep}@refs/pull/42/merge")
    flagged = doctor.check_runner_group(
        open_group, [{"name": "gpu-1", "ephemeral": True}], repo="ixci-dev/ixci",
        default_branch="main", public=True,
    )  # fmt: skip
    assert [f.kind for f in flagged] == ["unsafe"]
    assert "not restricted to workflows" in flagged[0].problem


def test_bad_repository_names_are_refused() -> None:
    result = CliRunner().invoke(
        cli, ["gha", "doctor", "--repo", "ixci-dev/ixci/../x"], env={"GITHUB_TOKEN": "t"}
    )
    assert result.exception is not None and "owner/name" in str(result.exception)
