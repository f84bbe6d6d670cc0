"""The `ixci gha` helpers: event -> planner arguments, changed-line annotations, summaries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from collect.factory import make_job, plan_json, planned

from ixci.cli import cli
from ixci.errors import InvalidInput, PlanError, UsageError
from ixci.github import gha
from ixci.job import load_plan

from .simulate import EVENTS, ROOT, load_event

HEAD = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
BASE = "3f1c2a9d8e7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"


# ---- plan-args ----


@pytest.mark.parametrize(
    "event_file", sorted(p.name for p in EVENTS.glob("pull_request_target.*.json"))
)
def test_pull_requests_plan_against_base_and_head(event_file: str) -> None:
    payload = load_event(event_file)
    head = payload["pull_request"]["head"]["sha"]
    for name in ("pull_request_target", "pull_request"):
        args = gha.plan_args(name, payload)
        assert args == ["--event", "pull_request", "--base", BASE, "--head", head]


def test_a_pull_request_dispatch_plans_that_pull_request() -> None:
    """The gate's dispatch (inputs pr, sha, base) plans exactly the approved commit."""
    args = gha.plan_args("workflow_dispatch", load_event("workflow_dispatch.pull-request.json"))
    assert args == ["--event", "pull_request", "--base", BASE, "--head", HEAD]
    filtered = {"inputs": {"pr": "42", "sha": HEAD, "base": BASE, "only": "sku=h200"}}
    assert gha.plan_args("workflow_dispatch", filtered)[-2:] == ["--only", "sku=h200"]


def test_schedule_and_dispatch_arguments(tmp_path: Path) -> None:
    assert gha.plan_args("schedule", load_event("schedule.json")) == ["--event", "schedule"]
    index = tmp_path / "index.json"
    assert gha.plan_args("schedule", {}, nightly_budget=" 40 ", history=index) == [
        "--event", "schedule", "--budget-gpu-hours", "40", "--history", str(index),
    ]  # fmt: skip
    assert gha.plan_args("workflow_dispatch", load_event("workflow_dispatch.json")) == [
        "--event", "workflow_dispatch", "--only", "sku=h100,framework=vllm", "--budget-gpu-hours", "100",
    ]  # fmt: skip
    assert gha.plan_args("workflow_dispatch", load_event("workflow_dispatch.defaults.json")) == [
        "--event", "workflow_dispatch",
    ]  # fmt: skip
    dispatch = {"inputs": {"only": "sku=h100|h200", "exclude": "framework=trtllm"}}
    assert gha.plan_args("workflow_dispatch", dispatch, history=index)[-2:] == [
        "--exclude",
        "framework=trtllm",
    ]


@pytest.mark.parametrize(
    ("event", "payload", "fragment"),
    [
        ("push", {}, "does not plan for the event 'push'"),
        ("workflow_dispatch", {"inputs": {"only": "sku=h100\n--catalog=/etc"}}, "is not a filter"),
        ("workflow_dispatch", {"inputs": {"only": "sku = h100"}}, "is not a filter"),
        ("workflow_dispatch", {"inputs": {"exclude": "--format=json"}}, "is not a filter"),
        ("workflow_dispatch", {"inputs": {"budget-gpu-hours": "-3"}}, "not a positive number"),
        ("workflow_dispatch", {"inputs": {"budget-gpu-hours": "nan"}}, "not a positive number"),
        (
            "pull_request",
            {"pull_request": {"base": {"sha": "main"}, "head": {"sha": HEAD}}},
            "not a commit sha",
        ),
        ("pull_request", {}, "pull_request is missing"),
        ("workflow_dispatch", {"inputs": {"pr": "42"}}, "'sha': '' is not a 40-hex commit SHA"),
        ("workflow_dispatch", {"inputs": {"pr": "42", "sha": HEAD}}, "'base': '' is not a 40-hex"),
        ("workflow_dispatch", {"inputs": {"pr": "42", "sha": HEAD.upper(), "base": BASE}}, "'sha'"),
        ("workflow_dispatch", {"inputs": {"pr": "42", "sha": "HEAD~1", "base": BASE}}, "'sha'"),
        (
            "workflow_dispatch",
            {"inputs": {"pr": "#42", "sha": HEAD, "base": BASE}},
            "pull request number",
        ),
        (
            "workflow_dispatch",
            {"inputs": {"pr": "0", "sha": HEAD, "base": BASE}},
            "pull request number",
        ),
        (
            "workflow_dispatch",
            {"inputs": {"pr": "٤٢", "sha": HEAD, "base": BASE}},
            "pull request number",
        ),
    ],
)
def test_bad_events_and_inputs_are_clear_usage_errors(
    event: str, payload: dict[str, object], fragment: str
) -> None:
    with pytest.raises(UsageError, match=fragment.replace("|", r"\|")):
        gha.plan_args(event, payload)


def test_plan_args_cli_reads_the_github_environment(tmp_path: Path) -> None:
    env = {
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(EVENTS / "workflow_dispatch.json"),
    }
    result = CliRunner().invoke(
        cli, ["gha", "plan-args", "--history", str(tmp_path / "absent.json")], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["--event", "workflow_dispatch"]
    (tmp_path / "index.json").write_text("{}")
    env = {"GITHUB_EVENT_NAME": "schedule", "GITHUB_EVENT_PATH": str(EVENTS / "schedule.json")}
    result = CliRunner().invoke(
        cli, ["gha", "plan-args", "--history", str(tmp_path / "index.json")], env=env
    )
    assert result.output.splitlines() == [
        "--event",
        "schedule",
        "--history",
        str(tmp_path / "index.json"),
    ]


# ---- step outputs are sized as GitHub sizes them (UTF-16) ----


def test_output_size_counts_utf16_bytes() -> None:
    assert gha.output_size({"k": "a"}) == 4  # 1 + 1 code units, 2 bytes each
    assert gha.output_size({"k": "日本"}) == 2 + 4  # CJK: 1 unit each (UTF-8: 3 bytes)
    assert gha.output_size({"k": "😀"}) == 2 + 4  # outside the BMP: a surrogate pair
    assert gha.output_size({"k": "e\u0301"}) == 2 + 4  # a combining mark is its own unit


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("a" * 499_990, True),
        ("a" * 600_000, False),  # 0.6 MB in UTF-8, but 1.2 MB as GitHub counts: refused
        ("日" * 499_990, True),  # 1.5 MB in UTF-8, but 1.0 MB as GitHub counts: fits
        ("😀" * 249_990, True),
        ("😀" * 250_001, False),
    ],
    ids=["ascii-fits", "ascii-over", "cjk-fits", "emoji-fits", "emoji-over"],
)
def test_write_outputs_refuses_what_github_would_truncate(
    tmp_path: Path, value: str, fits: bool
) -> None:
    out = tmp_path / "github_output"
    if fits:
        gha.write_outputs(out, {"shard-0": value})
        assert value in out.read_text(encoding="utf-8")
    else:
        with pytest.raises(PlanError, match="UTF-16"):
            gha.write_outputs(out, {"shard-0": value})
        assert not out.exists()


# ---- changed lines ----


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}  # fmt: skip
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def test_changed_lines_from_a_real_diff(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.yaml").write_text("".join(f"line{i}\n" for i in range(1, 11)))
    (repo / "gone.yaml").write_text("x\n")
    (repo / "dir with space").mkdir()
    (repo / "dir with space" / "ü.yaml").write_text("a\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    lines = (repo / "a.yaml").read_text().splitlines()
    lines[2] = "changed3"
    lines.insert(6, "inserted")
    del lines[0]
    (repo / "a.yaml").write_text("\n".join(lines) + "\n")
    (repo / "gone.yaml").unlink()
    (repo / "new.yaml").write_text("n1\nn2\n")
    (repo / "dir with space" / "ü.yaml").write_text("a\nb\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "head")
    diff = _git(
        repo, "-c", "core.quotePath=false", "diff", "--unified=0", "--no-prefix", f"{base}...HEAD"
    )
    changed = gha.changed_lines(diff)
    assert changed == {
        "a.yaml": frozenset({2, 6}),  # line 1 deleted shifts everything up by one
        "new.yaml": frozenset({1, 2}),
        "dir with space/ü.yaml": frozenset({2}),
    }


def test_parse_reported_merges_both_forms_and_marks_the_first_ten_shown() -> None:
    text = "\n".join(
        [f"::error file=m.yaml,line={i},col=1::k{i}: unknown key" for i in range(1, 13)]
        + [f"m.yaml:{i}:1: k{i}: unknown key" for i in range(1, 13)]
        + [
            "error: x.yaml:3:5: a%b: odd, message",
            "::error file=x%2Cy.yaml,line=2::comma%0Afile",
            "noise",
        ]
    )
    found = {(p.file, p.line): p for p in gha.parse_reported(text)}
    assert len(found) == 14
    assert found[("m.yaml", 10)].shown and not found[("m.yaml", 11)].shown
    assert found[("x.yaml", 3)].message == "a%b: odd, message" and not found[("x.yaml", 3)].shown
    assert found[("x,y.yaml", 2)].message == "comma\nfile"


def _catalog_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "catalog"
    repo.mkdir()
    shutil.copytree(ROOT / "matrix", repo / "matrix")
    shutil.copytree(ROOT / "benchmarks", repo / "benchmarks")
    _git(repo, "init", "-q", "-b", "main")
    return repo


def test_annotations_reach_errors_on_changed_lines_past_githubs_limit(tmp_path: Path) -> None:
    """Real `ixci validate` output: 11 old errors hide a new one; the helper annotates it."""
    repo = _catalog_repo(tmp_path)
    first = sorted((repo / "matrix" / "recipes").glob("*.yaml"))[0]
    last = sorted((repo / "matrix" / "recipes").glob("*.yaml"))[-1]
    first.write_text(first.read_text() + "".join(f"bogus_{i}: 1\n" for i in range(11)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base with 11 errors")
    base = _git(repo, "rev-parse", "HEAD")
    text = last.read_text()
    last.write_text(text + "another_bogus_key: 2\n")
    new_line = text.count("\n") + 1
    _git(repo, "commit", "-qam", "head adds one")
    head = _git(repo, "rev-parse", "HEAD")
    validate = subprocess.run(
        [sys.executable, "-c", "import sys; from ixci.cli import main; main(sys.argv[1:])", "validate", "--root", str(repo)], capture_output=True, text=True, check=False,
        env={**os.environ, "GITHUB_ACTIONS": "true"},
    )  # fmt: skip
    assert validate.returncode == 3
    log = tmp_path / "validate.log"
    log.write_text(validate.stdout + validate.stderr)
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        cli,
        [
            "gha",
            "annotate-changed-lines",
            "--base",
            base,
            "--head",
            head,
            "--repo",
            str(repo),
            str(log),
        ],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 0, result.output
    rel = str(last.relative_to(repo))
    assert result.output.splitlines() == [
        line
        for line in result.output.splitlines()
        if line.startswith(f"::error file={rel},line={new_line},")
    ]
    assert len(result.output.splitlines()) == 1
    table = summary.read_text()
    assert "12 problem(s), 1 on lines this pull request changed" in table
    assert table.index(f"{rel}:{new_line}") < table.index(str(first.relative_to(repo)))


def test_nothing_new_to_annotate_when_validate_already_showed_it(tmp_path: Path) -> None:
    problems = gha.parse_reported(
        "::error file=a.yaml,line=2,col=1::bad\na.yaml:2:1: bad\na.yaml:9:1: old"
    )
    changed = {"a.yaml": frozenset({2})}
    assert gha.changed_line_annotations(problems, changed) == []
    assert "1 on lines this pull request changed" in gha.problems_markdown(problems, changed)


# ---- results summary ----


def _plan(tmp_path: Path, jobs: list[dict[str, object]]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(plan_json(*jobs, event="pull_request"))
    return path


def _job(i: int, name: str, points: int) -> dict[str, object]:
    """A planned job with the short id `j-<i>`, `name` and `points` points."""
    job = planned(make_job(name=f"n{i}", concurrencies=tuple(range(1, points + 1))))
    return {**job, "id": f"j-{i}", "name": name}


def _result(
    root: Path, job_id: str, status: str, points: list[str], failure: str | None = None
) -> None:
    folder = root / f"result-{job_id}"
    folder.mkdir(parents=True)
    doc = {"job": {"id": job_id}, "status": status, "failure_class": failure,
           "failure_message": "server exited" if failure else None,
           "points": [{"id": f"p{i}", "status": s} for i, s in enumerate(points)]}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(doc))


def test_results_summary_and_coverage(tmp_path: Path) -> None:
    jobs = [_job(i, f"job | {i}", 2) for i in range(4)]
    plan = _plan(tmp_path, jobs)
    art = tmp_path / "artifacts"
    _result(art, "j-0", "ok", ["ok", "ok"])
    _result(art, "j-1", "partial", ["ok", "failed"])
    _result(art, "j-2", "failed", ["not_run", "not_run"], failure="server_start")
    _result(art, "j-9", "ok", ["ok"])
    (art / "result-j-3").mkdir()
    (art / "result-j-3" / "result.json").write_text('{"truncated": ')
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        cli,
        ["gha", "summary-results", "--plan", str(plan), str(art)],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 0, result.output
    text = summary.read_text()
    assert "1/4 job(s) ok, 1 partial, 2 failed, 0 missing — 3/8 point(s) measured" in text
    assert "| `j-2` | job \\| 2 | failed | 0/2 | server_start: server exited |" in text
    assert "| `j-3` | job \\| 3 | unreadable |" in text
    assert "not in the plan: `j-9`" in text
    cov = gha.coverage(load_plan(plan), gha.read_outcomes(art))
    assert (cov.ok, cov.partial, cov.failed, cov.missing, cov.unexpected) == (1, 1, 2, 0, 1)


def test_unapproved_fork_fails_the_check_with_the_way_out(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [_job(1, "a", 1)])
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        cli,
        [
            "gha",
            "summary-results",
            "--plan",
            str(plan),
            "--bench-approved",
            "false",
            str(tmp_path / "none"),
        ],
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert (
        isinstance(result.exception, PlanError) and result.exception.exit_code == 4
    )  # cli.main maps it
    assert "waiting for approval" in summary.read_text() and "safe-to-bench" in summary.read_text()
    assert "1 missing" in summary.read_text()
    empty = _plan(tmp_path, [])
    gha.require_approval(load_plan(empty), approved=False)  # nothing planned: nothing held back


@pytest.mark.parametrize(
    "content", ["", "[]", '{"jobs": {}}', '{"jobs": [{"name": "x"}]}', '{"jobs": [{"id": "j"}]}']
)
def test_a_bad_plan_is_invalid_input_naming_the_field(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(InvalidInput) as info:
        load_plan(path)
    assert str(path) in info.value.render()
