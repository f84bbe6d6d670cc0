"""`ixci publish`, `ixci compare`, `ixci comment`: the results branch and PR comparisons."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from ixci.cli import environ
from ixci.cli.collect import (
    economics_for,
    nothing_planned,
    report,
    run_attempt_from_env,
    run_collect,
)
from ixci.errors import GitHubError, UsageError, storage_error


@click.command("publish")
@click.argument("artifacts", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="Remote to push to: a path or a URL git can push to.")
@click.option("--run-id", required=True, help="The run id (GitHub run id, or any safe name).")
@click.option("--branch", default="results", show_default=True)
@click.option("--no-push", is_flag=True, help="Commit in the work clone only (dry run).")
@click.option(
    "--plan",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="`ixci plan --format json` output, for the coverage manifest.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Reuse this private clone (default: a temporary one).",
)
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Repository root whose matrix/hardware.yaml gives prices (recorded in economics.json).",
)
@click.option(
    "--date", help="Run date YYYY-MM-DD (default: the artifacts' earliest run.started_at)."
)
@click.option(
    "--site/--no-site",
    default=True,
    show_default=True,
    help="Build site/ if ixci.site is available.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild every derived file from all run folders (default: update what this run "
    "changes; a branch in the older layout or with other prices is rebuilt anyway).",
)
@click.option(
    "--run-attempt",
    type=click.IntRange(min=1),
    help="The workflow run attempt publishing (default: GITHUB_RUN_ATTEMPT, else 1); "
    "recorded in run.json. Re-run attempts of a run id merge (docs/results.md).",
)
@click.option("--max-attempts", type=click.IntRange(min=1), default=40, show_default=True)
@click.option(
    "--issues",
    is_flag=True,
    help="Open, update and close one GitHub issue per alerting configuration or SKU after a "
    "push (also on when IXCI_ALERT_ISSUES=1). Needs GITHUB_TOKEN; never in pull-request runs.",
)
@click.option("--issues-repo", help="owner/name for alert issues (default: $GITHUB_REPOSITORY).")
@click.pass_context
def publish(
    ctx: click.Context,
    artifacts: Path,
    repo: str,
    run_id: str,
    branch: str,
    no_push: bool,
    plan: Path | None,
    workdir: Path | None,
    catalog: Path,
    date: str | None,
    site: bool,
    rebuild: bool,
    run_attempt: int | None,
    max_attempts: int,
    issues: bool,
    issues_repo: str | None,
) -> None:
    """Validate ARTIFACTS (as `ixci collect` does) and publish what it accepts as one run.

    With --plan only the plan's jobs, exactly as scheduled, are published; rejected artifacts
    are listed in the run's skipped.json and the good ones published. A plan with no jobs
    publishes nothing (exit 0).
    """
    from ixci.results.publish import publish as do_publish

    attempt = run_attempt or run_attempt_from_env(environ(ctx))
    col = run_collect(ctx, [artifacts], plan=plan, run_id=run_id, repo=None, api_url=None)
    report(ctx, col)
    if nothing_planned(col):
        click.echo(f"run {run_id}: nothing to publish")
        return
    result = do_publish(
        col,
        repo=repo,
        run_id=run_id,
        branch=branch,
        push=not no_push,
        workdir=workdir,
        economics=economics_for(catalog),
        alerts=alerts_for(catalog),
        date=date,
        site=site,
        full=rebuild,
        run_attempt=attempt,
        max_attempts=max_attempts,
    )
    if not result.changed:
        click.echo(f"run {run_id} is already published at {result.run_path}: nothing to do")
    else:
        verb = "pushed" if result.pushed else "committed (not pushed)"
        click.echo(
            f"{verb} {result.commit} to {branch}: {result.run_path} ({len(result.files)} files, "
            f"{result.attempts} attempt(s))"
        )
    publish_summary(ctx, result)
    if issues or environ(ctx).get("IXCI_ALERT_ISSUES") == "1":
        sync_issues(ctx, result, issues_repo, pushed=not no_push)


def alerts_for(root: Path | None) -> Any:
    """The catalog's alert policy (`alerts` in matrix/hardware.yaml; defaults without one)."""
    from ixci.results.regress import AlertPolicy

    path = root / "matrix" / "hardware.yaml" if root is not None else None
    if path is None or not path.is_file():
        return AlertPolicy()
    from ixci.yamlio import load_file

    doc = load_file(path, display="matrix/hardware.yaml")  # validated by economics_for
    block = doc.data.get("alerts") if isinstance(doc.data, dict) else None
    return AlertPolicy.from_json(block, file="matrix/hardware.yaml")


def publish_summary(ctx: click.Context, result: Any) -> None:
    """Print the curves this run would have narrowed and the open alerts; the same markdown
    goes to $GITHUB_STEP_SUMMARY under Actions."""
    from ixci.results.curves import shrink_lines

    lines = shrink_lines(result.shrinks, result.config_names or {})
    counts = (result.regressions or {}).get("counts", {})
    text = (
        f"### ixci publish: run {result.run_id}\n\n"
        + (
            f"**Coverage shrank on {len(lines)} curve(s)** (the site keeps the denser run "
            "unless the recipe changed):\n\n" + "\n".join(lines) + "\n"
            if lines
            else "No published curve lost coverage.\n"
        )
        + f"\nAlerts: {counts.get('open', 0)} open regression(s), "
        f"{counts.get('recovered', 0)} recovered, {counts.get('missing', 0)} missing-data "
        "(regressions.json on the results branch).\n"
    )
    click.echo(text, nl=False)
    target = environ(ctx).get("GITHUB_STEP_SUMMARY")
    if target:
        from ixci.github import gha

        gha.append_summary(Path(target), text)


def sync_issues(ctx: click.Context, result: Any, repo: str | None, *, pushed: bool) -> None:
    """Open/update/close the alert issues (skipped, with a note, where they must not run)."""
    from ixci.github import alert_issues, github_api

    env = environ(ctx)
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    repo = repo or env.get("GITHUB_REPOSITORY")
    why = (
        "this is a pull-request run" if env.get("GITHUB_EVENT_NAME", "").startswith("pull_request")
        else "nothing was pushed (--no-push)" if not pushed
        else "no GITHUB_TOKEN" if not token
        else "no repository (pass --issues-repo or set GITHUB_REPOSITORY)" if not repo
        else None
    )  # fmt: skip
    if why is not None or result.regressions is None:
        click.echo(f"alert issues not synced: {why or 'no regressions.json'}")
        return
    assert token is not None and repo is not None
    doc, names = result.regressions, result.config_names or {}
    actions = github_api.sync_alert_issues(
        repo,
        alert_issues.wanted_issues(doc, names),
        token=token,
        closing=alert_issues.closing_comments(doc),
        api_url=env.get("GITHUB_API_URL") or github_api.API_URL,
    )
    for a in actions:
        if a.action != "unchanged":
            click.echo(f"alert issue #{a.number} {a.action} ({a.key}): {a.url}")


@click.command("compare")
@click.option(
    "--baseline",
    required=True,
    type=click.Path(path_type=Path),
    help="A checkout of the results branch, or a points.json (absent: 'no baseline').",
)
@click.option(
    "--candidate",
    required=True,
    type=click.Path(path_type=Path),
    help="Artifacts (or a collect output), or a points.json (absent: nothing was benchmarked).",
)
@click.option(
    "--plan",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="`ixci plan --format json` output: only its jobs, as scheduled, are compared.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the markdown here."
)
@click.option("--summary/--no-summary", default=False, help="Append to $GITHUB_STEP_SUMMARY.")
@click.pass_context
def compare(
    ctx: click.Context,
    baseline: Path,
    candidate: Path,
    plan: Path | None,
    out: Path | None,
    summary: bool,
) -> None:
    """Compare CANDIDATE with the published baseline at matched interactivity (markdown).

    A plan with no jobs, or no candidate artifacts at all, is not a failure: the markdown says
    that nothing was benchmarked, and the exit status is 0.
    """
    text = _comparison(baseline, candidate, plan, ctx)
    click.echo(text, nl=False)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise storage_error(exc, str(out)) from exc
    target = environ(ctx).get("GITHUB_STEP_SUMMARY")
    if summary and target:
        from ixci.github import gha

        gha.append_summary(Path(target), text)


_HEAD = "### ixci benchmark comparison\n\n"
_NO_CANDIDATE = "No candidate artifacts arrived: nothing was benchmarked.\n"


def _comparison(baseline: Path, candidate: Path, plan: Path | None, ctx: click.Context) -> str:
    import orjson

    from ixci.results import compare as cmp
    from ixci.results.aggregate import from_columnar, tidy_table

    note = ""
    if candidate.is_file():
        cand = from_columnar(orjson.loads(candidate.read_bytes()))
    else:
        if plan is None and not candidate.exists():
            return _HEAD + _NO_CANDIDATE
        col = run_collect(ctx, [candidate], plan=plan, run_id=None, repo=None, api_url=None)
        if nothing_planned(col):
            return (
                _HEAD + "Nothing planned: this change needs no benchmark (the plan has no jobs).\n"
            )
        if not candidate.exists():
            return _HEAD + _NO_CANDIDATE
        cand = tidy_table([a.document for a in col.accepted])
        note = _rejections(col)
    has_base = (
        (baseline / "data" / "latest.json").is_file() if baseline.is_dir() else baseline.is_file()
    )
    if not has_base:
        return (
            _HEAD + "No baseline: the results branch has no published data yet "
            f"({len(cand)} candidate points not compared).\n" + note
        )
    base, history, order = cmp.load_baseline(baseline)
    return cmp.to_markdown(cmp.compare_tables(base, cand, history, order)) + note


def _rejections(col: Any) -> str:
    """A markdown note on the candidate artifacts that were rejected (they are not compared)."""
    rejected = col.rejected
    if not rejected:
        return ""
    counts = Counter(s.category for s in rejected)
    listed = ", ".join(f"{n} {cat}" for cat, n in sorted(counts.items()))
    return (
        f"\n**{len(rejected)} candidate artifact(s) rejected and not compared** ({listed}); "
        "the collect step lists each with its reasons.\n"
    )


@click.command("comment")
@click.option("--pr", type=click.IntRange(min=1), required=True, help="Pull request number.")
@click.option(
    "--body-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True
)
@click.option("--repo", help="owner/name (default: $GITHUB_REPOSITORY).")
@click.option("--api-url", help="GitHub API URL (default: $GITHUB_API_URL or api.github.com).")
@click.pass_context
def comment(
    ctx: click.Context, pr: int, body_file: Path, repo: str | None, api_url: str | None
) -> None:
    """Post or update the one sticky ixci comment on pull request PR."""
    from ixci.github import github_api

    env = environ(ctx)
    repo = repo or env.get("GITHUB_REPOSITORY")
    if not repo:
        raise UsageError("no repository: pass --repo owner/name or set GITHUB_REPOSITORY")
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    if not token:
        raise GitHubError(
            "no token: set GITHUB_TOKEN", hint="the workflow passes ${{ github.token }} via env"
        )
    url = api_url or env.get("GITHUB_API_URL") or github_api.API_URL
    res = github_api.upsert_sticky_comment(
        repo, pr, body_file.read_text(encoding="utf-8"), token=token, api_url=url
    )
    click.echo(f"{res.action} comment {res.comment_id}: {res.url}")
