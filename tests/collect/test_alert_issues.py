"""Alert issues through PyGithub against recorded responses in GitHub's documented shapes
(GitHub's API cannot run here: `responses` replays the JSON of tests/data/github/), and the
`ixci publish --issues` path end to end against a real git remote."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import responses
from click.testing import CliRunner

from collect.factory import make_job, make_result
from ixci.cli import cli
from ixci.github import alert_issues, github_api

DATA = Path(__file__).resolve().parents[1] / "data" / "github"
BASE = "/repos/acme/bench"


def api(path: str) -> re.Pattern[str]:
    """PyGithub spells the host with an explicit :443; match both spellings."""
    return re.compile(r"https://api\.github\.com(:443)?" + re.escape(path) + r"(\?.*)?$")


def listing() -> list[dict[str, Any]]:
    return json.loads((DATA / "alert-issues.json").read_text())


def register(rsps: responses.RequestsMock) -> dict[int, dict[str, Any]]:
    """The repository, its labelled issues, and echoing PATCH / POST endpoints."""
    issues = {i["number"]: i for i in listing()}
    rsps.get(api(BASE), json=json.loads((DATA / "repo.json").read_text()))
    rsps.get(
        api(f"{BASE}/issues"),
        json=list(issues.values()),
        match=[responses.matchers.query_param_matcher(
            {"state": "all", "labels": "ixci-alert"}, strict_match=False)],
    )  # fmt: skip

    def patch(req: Any) -> tuple[int, dict[str, str], str]:
        number = int(req.url.rsplit("/", 1)[1])
        return 200, {}, json.dumps({**issues[number], **json.loads(req.body)})

    def create(req: Any) -> tuple[int, dict[str, str], str]:
        sent = json.loads(req.body)
        made = {**issues[21], "number": 27, "id": 7027, "state": "open", "body": sent["body"],
                "title": sent["title"], "html_url": "https://github.com/acme/bench/issues/27",
                "url": "https://api.github.com/repos/acme/bench/issues/27"}  # fmt: skip
        return 201, {}, json.dumps(made)

    def comment(req: Any) -> tuple[int, dict[str, str], str]:
        number = int(req.url.rsplit("/", 2)[1])
        return 201, {}, json.dumps({
            "id": 8000 + number, "node_id": f"IC_{number}", "body": json.loads(req.body)["body"],
            "html_url": f"https://github.com/acme/bench/issues/{number}#issuecomment-{8000 + number}",
            "url": f"https://api.github.com/repos/acme/bench/issues/comments/{8000 + number}",
            "issue_url": f"https://api.github.com/repos/acme/bench/issues/{number}",
            "created_at": "2026-11-28T06:00:00Z", "updated_at": "2026-11-28T06:00:00Z",
        })  # fmt: skip

    rsps.add_callback(
        "PATCH", re.compile(r"https://api\.github\.com(:443)?/repos/acme/bench/issues/\d+$"), patch
    )
    rsps.add_callback("POST", api(f"{BASE}/issues"), create)
    rsps.add_callback(
        "POST",
        re.compile(r"https://api\.github\.com(:443)?/repos/acme/bench/issues/\d+/comments$"),
        comment,
    )
    return issues


def sent(method: str, pattern: str) -> list[dict[str, Any]]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method == method and re.search(pattern, c.request.url)
    ]


@responses.activate
def test_one_issue_per_key_updated_reopened_created_and_closed() -> None:
    register(responses.mock)
    steady = next(i for i in listing() if i["number"] == 26)["body"].split("\n", 1)[1]
    wanted = [
        github_api.AlertIssue(key="config:c-aaaaaaaaaaaa", title="ixci: regression in a", body="new"),
        github_api.AlertIssue(key="config:c-bbbbbbbbbbbb", title="ixci: regression in b", body="again"),
        github_api.AlertIssue(key="config:c-cccccccccccc", title="ixci: regression in c", body="first"),
        github_api.AlertIssue(key="config:c-dddddddddddd", title="ixci: regression in d", body=steady),
    ]  # fmt: skip
    actions = github_api.sync_alert_issues(
        "acme/bench", wanted, token="tok", closing={"sku:h200": "Recovered: h200 reports again."}
    )
    got = {(a.key, a.action, a.number) for a in actions}
    assert got == {
        ("config:c-aaaaaaaaaaaa", "updated", 21),
        ("config:c-bbbbbbbbbbbb", "reopened", 22),
        ("config:c-cccccccccccc", "created", 27),  # #24 is a pull request quoting the marker
        ("config:c-dddddddddddd", "unchanged", 26),
        ("sku:h200", "closed", 23),
    }
    created = sent("POST", r"/issues$")
    assert len(created) == 1 and created[0]["labels"] == ["ixci-alert"]
    assert created[0]["body"].startswith("<!-- ixci:alert config:c-cccccccccccc -->\n")
    patched = {
        c.request.url.rsplit("/", 1)[1] for c in responses.calls if c.request.method == "PATCH"
    }
    assert patched == {"21", "22", "23"}  # never the look-alike (#25), the PR or the steady one
    assert sent("PATCH", r"/issues/23$")[0]["state"] == "closed"
    assert sent("POST", r"/issues/23/comments$")[0]["body"] == "Recovered: h200 reports again."
    assert sent("PATCH", r"/issues/22$")[0]["state"] == "open"


@responses.activate
def test_an_api_failure_is_a_github_error_naming_the_permission() -> None:
    responses.get(api(BASE), status=403, json={"message": "Resource not accessible by integration"})
    try:
        github_api.sync_alert_issues("acme/bench", [], token="tok", closing={})
    except github_api.GitHubError as exc:
        assert "HTTP 403" in str(exc) and "issues: write" in (exc.hint or "")
    else:
        raise AssertionError("no GitHubError")


def test_issue_texts_from_a_regressions_document() -> None:
    reg = {
        "config_id": "c-aaaaaaaaaaaa", "scenario": "1k1k", "concurrency": 16, "request_rate": None,
        "metric": "tput_per_gpu", "state": "open", "first_bad_run": "r08",
        "first_bad_date": "2026-11-09T10:00:00Z", "step": {"relative": -0.2, "ci95": [-0.25, -0.15], "z": -9.0},
        "image_change": {"from": "vllm:v0.11.0", "to": "vllm:v0.12.0"},
    }  # fmt: skip
    dark = {"scope": "sku", "sku": "h200", "config_id": None, "nights": 4, "threshold": 3,
            "first_dark_night": "2026-11-03", "last_dark_night": "2026-11-06",
            "last_valid_night": "2026-11-02"}  # fmt: skip
    folded = {**dark, "scope": "config", "config_id": "c-bbbbbbbbbbbb"}
    doc = {"regressions": [reg, {**reg, "config_id": "c-cccccccccccc", "state": "recovered",
                                 "recovered_run": "r13", "recovered_date": "2026-11-14"}],
           "missing": [dark, folded]}  # fmt: skip
    issues = alert_issues.wanted_issues(doc, {"c-aaaaaaaaaaaa": "tiny fp8 h100 vllm tp1"})
    assert [i.key for i in issues] == ["sku:h200", "config:c-aaaaaaaaaaaa"]  # c-bbbb folded
    body = issues[1].body
    assert (
        "-20.0 %" in body
        and "r08 (2026-11-09)" in body
        and "`vllm:v0.11.0` → `vllm:v0.12.0`" in body
    )
    assert issues[1].title == "ixci: regression in tiny fp8 h100 vllm tp1"
    closing = alert_issues.closing_comments(doc)
    assert "r13" in closing["config:c-cccccccccccc"]


# --- publish --issues end to end -------------------------------------------------------------


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def publish_cli(tmp_path: Path, env: dict[str, str], *extra: str) -> Any:
    remote = tmp_path / "remote.git"
    if not remote.exists():
        git("init", "-q", "--bare", str(remote))
    arts = tmp_path / "a"
    doc = make_result(make_job(), run_id="501")
    (arts / f"result-{doc['job']['id']}").mkdir(parents=True, exist_ok=True)
    (arts / f"result-{doc['job']['id']}" / "result.json").write_text(json.dumps(doc))
    args = ["publish", str(arts), "--repo", str(remote), "--run-id", "501", "--no-site",
            "--catalog", str(tmp_path / "no-catalog"), *extra]  # fmt: skip
    unset = dict.fromkeys(("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_REPOSITORY", "IXCI_ALERT_ISSUES",
                           "GITHUB_EVENT_NAME", "GITHUB_API_URL", "GITHUB_STEP_SUMMARY"))  # fmt: skip
    return CliRunner().invoke(cli, args, env={**unset, **env})


@responses.activate
def test_publish_closes_the_alert_issues_that_cleared(tmp_path: Path) -> None:
    register(responses.mock)
    env = {"GITHUB_TOKEN": "tok", "GITHUB_REPOSITORY": "acme/bench", "IXCI_ALERT_ISSUES": "1",
           "GITHUB_EVENT_NAME": "schedule"}  # fmt: skip
    res = publish_cli(tmp_path, env)
    assert res.exit_code == 0, res.output
    assert "No published curve lost coverage." in res.output
    closed = {
        c.request.url.rsplit("/", 1)[1] for c in responses.calls if c.request.method == "PATCH"
    }
    assert closed == {"21", "23", "26"}  # every open alert issue: nothing alerts any more
    assert "alert issue #23 closed (sku:h200)" in res.output


@responses.activate
def test_publish_never_touches_issues_in_a_pull_request_run(tmp_path: Path) -> None:
    env = {"GITHUB_TOKEN": "tok", "GITHUB_REPOSITORY": "acme/bench",
           "GITHUB_EVENT_NAME": "pull_request"}  # fmt: skip
    res = publish_cli(tmp_path, env, "--issues")
    assert res.exit_code == 0, res.output
    assert "alert issues not synced: this is a pull-request run" in res.output
    assert len(responses.calls) == 0
    res = publish_cli(tmp_path / "b", {"GITHUB_REPOSITORY": "acme/bench"}, "--issues")
    assert "alert issues not synced: no GITHUB_TOKEN" in res.output and len(responses.calls) == 0


def test_a_narrower_run_keeps_the_dense_curve_and_the_summary_names_the_shrink(
    tmp_path: Path,
) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    job = make_job()
    outputs = []
    for run_id, date, lost in (("r1", "2026-11-01", {}), ("r2", "2026-11-02", {2: "failed"})):
        doc = make_result(job, run_id=run_id, date=date, statuses=lost)
        folder = tmp_path / run_id / f"result-{job['id']}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(doc))
        args = ["publish", str(tmp_path / run_id), "--repo", str(remote), "--run-id", run_id,
                "--no-site", "--catalog", str(tmp_path / "none")]  # fmt: skip
        res = CliRunner().invoke(cli, args, env={"GITHUB_STEP_SUMMARY": None})
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    assert "No published curve lost coverage." in outputs[0]
    assert "Coverage shrank on 1 curve(s)" in outputs[1]
    assert "run r2 measured 2 points, missing c=16; kept run r1" in outputs[1]
    git("clone", "-q", "--branch", "results", str(remote), str(tmp_path / "c"))
    latest = json.loads((tmp_path / "c" / "data" / "latest.json").read_text())
    assert {r[latest["columns"].index("run_id")] for r in latest["rows"]} == {"r1"}
    assert len(latest["rows"]) == 3  # the published curve keeps its density
