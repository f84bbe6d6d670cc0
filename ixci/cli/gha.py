"""`ixci gha …`: the small helpers the GitHub Actions workflows call.

Each one keeps a decision out of workflow YAML and bash (STYLE rule 9): which planner arguments
an event means, which validation errors sit on the pull request's changed lines, the step
summaries (per-job results, coverage; the plan table is the planner's own), the pull-request gate
and its required status, and the repository-settings check (`doctor`). Outside GitHub Actions the
summaries go to stdout, so every helper can be run by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ixci import cmd
from ixci.cli import environ
from ixci.errors import UsageError
from ixci.github import gha as ghaio


@click.group(name="gha")
def gha() -> None:
    """Helpers for ixci's GitHub Actions workflows (.github/workflows/gate.yml and sweep.yml)."""


def _read_payload(path: Path) -> dict[str, object]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the event payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise UsageError(f"{path}: the event payload is not a JSON object")
    return payload


def _token(env: dict[str, str], needs: str) -> str:
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise UsageError(
            "GITHUB_TOKEN is not set", hint=f"the workflow passes github.token; it needs {needs}"
        )
    return token


def _summary(ctx: click.Context, markdown: str) -> None:
    target = environ(ctx).get("GITHUB_STEP_SUMMARY")
    if target:
        ghaio.append_summary(Path(target), markdown)
    else:
        click.echo(markdown)


@gha.command("plan-args")
@click.option("--event-name", help="Default: $GITHUB_EVENT_NAME.")
@click.option(
    "--event-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The webhook payload. Default: $GITHUB_EVENT_PATH.",
)
@click.option(
    "--nightly-budget",
    default="",
    help="GPU-hour budget for scheduled runs (empty: plan everything).",
)
@click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The results branch's index.json; passed on for scheduled runs when it exists.",
)
@click.pass_context
def plan_args(
    ctx: click.Context,
    event_name: str | None,
    event_path: Path | None,
    nightly_budget: str,
    history: Path | None,
) -> None:
    """Print the `ixci plan` arguments for this workflow event, one per line."""
    env = environ(ctx)
    name = event_name or env.get("GITHUB_EVENT_NAME", "")
    path = event_path or (Path(env["GITHUB_EVENT_PATH"]) if env.get("GITHUB_EVENT_PATH") else None)
    if not name or path is None:
        raise UsageError(
            "no workflow event given",
            hint="pass --event-name and --event-path (GitHub Actions sets both in the environment)",
        )
    payload = _read_payload(path)
    found = history if history is not None and history.is_file() else None
    args = ghaio.plan_args(name, payload, nightly_budget=nightly_budget, history=found)
    click.echo("\n".join(args))


@gha.command("annotate-changed-lines")
@click.option("--base", required=True, help="The pull request's base commit.")
@click.option("--head", required=True, help="The pull request's head commit.")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The git checkout holding both commits.",
)
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def annotate_changed_lines(ctx: click.Context, base: str, head: str, repo: Path, log: Path) -> None:
    """Annotate validation errors on the lines the pull request changed.

    LOG is `ixci validate`'s output. GitHub shows only the first ten error annotations of a
    step, so errors on changed lines that validate's own annotations did not reach are
    emitted again here, and every problem is listed in the step summary, changed lines first.
    """
    problems = ghaio.parse_reported(log.read_text(encoding="utf-8", errors="replace"))
    diff = cmd.run(
        [
            "git", "-C", str(repo), "-c", "core.quotePath=false", "diff", "--unified=0",
            "--no-prefix", "--no-color", "--no-ext-diff", f"{base}...{head}",
        ]
    ).stdout  # fmt: skip
    changed = ghaio.changed_lines(diff)
    for line in ghaio.changed_line_annotations(problems, changed):
        click.echo(line)
    if problems:
        _summary(ctx, ghaio.problems_markdown(problems, changed))


@gha.command("summary-results")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="plan.json from the plan job.",
)
@click.option(
    "--bench-approved",
    type=bool,
    default=True,
    show_default=True,
    help="false when the bench jobs were held back (a fork's pull request without approval).",
)
@click.argument("artifacts", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def summary_results(
    ctx: click.Context, plan_path: Path, bench_approved: bool, artifacts: Path
) -> None:
    """Write per-job results and coverage to the step summary.

    ARTIFACTS holds the downloaded `result-<job id>` artifacts (it may be missing: nothing
    arrived). Exits 4 when planned jobs were held back for approval, so the required check
    stays red until a maintainer approves.
    """
    from ixci.job import load_plan

    plan = load_plan(plan_path)
    outcomes = ghaio.read_outcomes(artifacts)
    _summary(ctx, ghaio.results_markdown(plan, outcomes, approved=bench_approved))
    cov = ghaio.coverage(plan, outcomes)
    click.echo(
        f"coverage: {cov.ok + cov.partial}/{cov.planned} jobs with results "
        f"({cov.failed} failed, {cov.missing} missing), {cov.points_ok}/{cov.points_planned} points ok",
        file=sys.stderr,
    )
    ghaio.require_approval(plan, approved=bench_approved)


@gha.command("gate")
@click.option(
    "--checkout",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The pull request's head commit checked out as data (gate.yml: pr/); never executed.",
)
@click.option(
    "--event-path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The pull_request_target payload. Default: $GITHUB_EVENT_PATH.",
)
@click.pass_context
def gate_(ctx: click.Context, checkout: Path, event_path: Path | None) -> None:
    """Judge a pull request: set `ixci/gate`, dispatch sweep.yml for an approved commit.

    Runs in gate.yml from the default branch's code. Plans the checkout with this ixci's
    planner, checks the approval through the REST API ($GITHUB_API_URL, token $GITHUB_TOKEN)
    and sets the commit status; docs/workflows.md has the rules. Exits 0 whatever it decided
    (the status is the verdict); non-zero only when it could not decide.
    """
    import requests

    from ixci.github import gate
    from ixci.github.github_api import API_URL, RepoClient

    env = environ(ctx)
    name = env.get("GITHUB_EVENT_NAME", "pull_request_target")
    if name != "pull_request_target":
        raise UsageError(f"the gate judges pull_request_target events, not {name!r}")
    path = event_path or (Path(env["GITHUB_EVENT_PATH"]) if env.get("GITHUB_EVENT_PATH") else None)
    if path is None:
        raise UsageError(
            "no event payload", hint="pass --event-path (Actions sets GITHUB_EVENT_PATH)"
        )
    event = gate.parse_event(_read_payload(path))
    expected = env.get("GITHUB_REPOSITORY")
    if expected and expected != event.repository:
        raise UsageError(f"the payload is for {event.repository}, this run for {expected}")
    api = RepoClient(
        requests.Session(),
        _token(env, "statuses: write, actions: write, pull-requests: write"),
        event.repository,
        api_url=env.get("GITHUB_API_URL") or API_URL,
    )
    child_env = {k: v for k, v in env.items() if k not in ("GITHUB_TOKEN", "ACTIONS_RUNTIME_TOKEN")}
    planner = gate.checkout_planner(checkout, python=sys.executable, env=child_env)
    outcome = gate.run(event, api, planner, target_url=_run_url(env))
    _summary(ctx, gate.summary_markdown(event, outcome))
    if outcome.approval is not None and outcome.approval.refused:
        ghaio.emit_annotation(sys.stdout, "warning", outcome.approval.reason, title="ixci gate")
    d = outcome.decision
    click.echo(f"{gate.CONTEXT}: {d.state or 'unchanged'}: {d.description}")


def _run_url(env: dict[str, str]) -> str | None:
    parts = [env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


@gha.command("gate-status")
@click.option("--repo", required=True, help="owner/name.")
@click.option("--sha", required=True, help="The benchmarked commit (sweep.yml input `sha`).")
@click.option("--plan-result", required=True, help="needs.plan.result.")
@click.option("--collect-result", default="", help="needs.collect.result.")
@click.option("--shards", default="", help="needs.plan.outputs.shards.")
@click.option("--target-url", default=None, help="The run's URL, linked from the status.")
@click.pass_context
def gate_status(
    ctx: click.Context,
    repo: str,
    sha: str,
    plan_result: str,
    collect_result: str,
    shards: str,
    target_url: str | None,
) -> None:
    """Set the final `ixci/gate` status of a pull request's benchmarked commit (sweep.yml report)."""
    import requests

    from ixci.github import gate
    from ixci.github.github_api import API_URL, SHA_RE, RepoClient

    env = environ(ctx)
    if not SHA_RE.match(sha):
        raise UsageError(
            f"--sha {sha!r} is not a 40-hex commit SHA", hint="sweep.yml passes inputs.sha"
        )
    state, description = gate.final_status(
        plan_result=plan_result, collect_result=collect_result, shards=shards, sha=sha
    )
    api = RepoClient(
        requests.Session(),
        _token(env, "statuses: write"),
        repo,
        api_url=env.get("GITHUB_API_URL") or API_URL,
    )
    api.set_status(
        sha, state=state, description=description, context=gate.CONTEXT, target_url=target_url
    )
    click.echo(f"{gate.CONTEXT}: {state}: {description}")


@gha.command("doctor")
@click.option("--repo", required=True, help="owner/name of the repository to examine.")
@click.option(
    "--strict", is_flag=True, help="Also fail when a setting could not be read (token too weak)."
)
@click.pass_context
def doctor(ctx: click.Context, repo: str, strict: bool) -> None:
    """Say which repository settings let unreviewed code reach the GPU runners.

    Reads through the REST API ($GITHUB_API_URL; token $GITHUB_TOKEN or $GH_TOKEN, with admin
    rights to see runner and Actions settings): fork approval policy, default workflow token,
    runners and runner groups, required status checks. Exits 9 when something is unsafe (with
    --strict also when something could not be read); docs/workflows.md lists the settings.
    """
    import requests

    from ixci.github import doctor as doc
    from ixci.github.github_api import API_URL, RestClient, check_repo

    env = environ(ctx)
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or None
    api = RestClient(requests.Session(), token, api_url=env.get("GITHUB_API_URL") or API_URL)
    findings = doc.examine(api, check_repo(repo))
    click.echo(doc.report(repo, findings))
    failing = [f for f in findings if f.kind == "unsafe" or (strict and f.kind == "unchecked")]
    if failing:
        raise doc.UnsafeSettings(
            f"{len(failing)} finding(s) to fix in {repo}'s settings (listed above)",
            hint="docs/workflows.md, 'Repository settings', says what each one protects",
        )
