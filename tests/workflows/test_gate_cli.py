"""`ixci gha gate` end to end: a real git repository, the real planner, recorded API responses.

The pull request's commit is a real checkout (as gate.yml makes under `pr/`); the planner runs
as the subprocess the gate starts; GitHub's REST API is played from recorded responses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from ixci.cli import cli
from ixci.errors import UsageError

from .gateapi import API, REPO, RecordedApi, data
from .simulate import ROOT, load_event

CATALOG = ROOT / "tests" / "data" / "plan" / "catalog"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture()
def pr_repo(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "pr"
    shutil.copytree(CATALOG, root)
    (root / "docs").mkdir()
    (root / "docs" / "notes.md").write_text("hello\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root, git(root, "rev-parse", "HEAD")


def _head(root: Path) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change")
    return git(root, "rev-parse", "HEAD")


def _gate(tmp_path: Path, root: Path, base: str, head: str) -> tuple[RecordedApi, str, str]:
    payload = load_event("pull_request_target.fork.opened.json")
    payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"] = head, base
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    pull = json.loads(data("pull-42.unlabelled.json").read_text())
    pull["head"]["sha"], pull["base"]["sha"] = head, base
    (tmp_path / "pull.json").write_text(json.dumps(pull))
    summary = tmp_path / "summary.md"
    api = RecordedApi(pull=str(tmp_path / "pull.json"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api.install(rsps)
        result = CliRunner().invoke(
            cli,
            ["gha", "gate", "--checkout", str(root), "--event-path", str(event)],
            env={
                "GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_REPOSITORY": REPO,
                "GITHUB_API_URL": API, "GITHUB_TOKEN": "test-token",
                "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SERVER_URL": "https://github.test",
                "GITHUB_RUN_ID": "77",
            },
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return api, result.output, summary.read_text()


def test_docs_only_pull_request_is_green(tmp_path: Path, pr_repo: tuple[Path, str]) -> None:
    root, base = pr_repo
    (root / "docs" / "notes.md").write_text("changed\n")
    head = _head(root)
    api, output, summary = _gate(tmp_path, root, base, head)
    [(sha, body)] = api.statuses()
    assert sha == head and body["state"] == "success"
    assert body["description"].startswith(
        "nothing to benchmark: docs/notes.md: not a benchmark input"
    )
    assert body["target_url"] == f"https://github.test/{REPO}/actions/runs/77"
    assert api.dispatches() == []
    assert "ixci/gate: success" in output and "nothing to benchmark" in summary


def test_recipe_change_from_a_fork_waits_with_its_cost(
    tmp_path: Path, pr_repo: tuple[Path, str]
) -> None:
    root, base = pr_repo
    path = root / "matrix" / "recipes" / "dsr1-fp8-mi355x-vllm.yaml"
    path.write_text(path.read_text().replace("max-model-len: 10240", "max-model-len: 12288"))
    head = _head(root)
    api, _, summary = _gate(tmp_path, root, base, head)
    [(sha, body)] = api.statuses()
    assert sha == head and body["state"] == "pending"
    assert body["description"].startswith("awaiting approval: 2 job(s), ")
    assert api.dispatches() == []
    assert "- plan: 2 job(s)" in summary


def test_a_catalog_that_does_not_plan_fails_the_gate(
    tmp_path: Path, pr_repo: tuple[Path, str]
) -> None:
    root, base = pr_repo
    path = root / "matrix" / "recipes" / "dsr1-fp8-mi355x-vllm.yaml"
    path.write_text(path.read_text() + "\nnot-a-key: [\n")
    head = _head(root)
    api, _, _ = _gate(tmp_path, root, base, head)
    [(_, body)] = api.statuses()
    assert body["state"] == "failure" and body["description"].startswith(
        "the pull request does not plan"
    )


def test_gate_status_sets_the_final_state(tmp_path: Path) -> None:
    head = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
    api = RecordedApi()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api.install(rsps)
        result = CliRunner().invoke(
            cli,
            ["gha", "gate-status", "--repo", REPO, "--sha", head, "--plan-result", "success",
             "--collect-result", "failure", "--shards", '["shard-0"]', "--target-url", "https://r/1"],
            env={"GITHUB_API_URL": API, "GITHUB_TOKEN": "t"},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(sha, body)] = api.statuses()
    assert sha == head and body["state"] == "failure" and body["context"] == "ixci/gate"


def test_gate_status_refuses_a_bad_sha() -> None:
    result = CliRunner().invoke(
        cli, ["gha", "gate-status", "--repo", REPO, "--sha", "HEAD~1", "--plan-result", "success"],
        env={"GITHUB_API_URL": API, "GITHUB_TOKEN": "t"},
    )  # fmt: skip
    assert isinstance(result.exception, UsageError) and result.exception.exit_code == 2
    assert "not a 40-hex commit SHA" in result.exception.message


def test_gate_refuses_other_events(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["gha", "gate", "--checkout", str(tmp_path)],
        env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_TOKEN": "t"},
    )  # fmt: skip
    assert isinstance(result.exception, UsageError) and "pull_request_target" in str(
        result.exception
    )
