"""`ixci plan`: the catalog → the jobs of one event, as JSON, a table or GitHub outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ixci.catalog.catalog_files import shown
from ixci.cli import environ
from ixci.errors import UsageError
from ixci.plan import plan as planner
from ixci.plan import selection

EVENTS = ("pull_request", "schedule", "workflow_dispatch")


DRAFT_NOTE = (
    "draft: a draft pull request is not benchmarked; mark it ready for review to plan its jobs"
)


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """click's FloatRange lets `nan` (and `inf`) through: a NaN budget planned nothing."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(
            f"{value} is not a number of GPU-hours (e.g. 40 or 12.5; leave it out for no budget)"
        )
    return value


@click.command("plan")
@click.option(
    "--catalog",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Repository root holding matrix/ and benchmarks/.",
)
@click.option("--event", type=click.Choice(EVENTS), required=True, help="What triggered the run.")
@click.option("--base", help="pull_request: base commit (SHA or ref).")
@click.option("--head", help="pull_request: head commit (SHA or ref).")
@click.option(
    "--draft", is_flag=True, help="pull_request: the pull request is a draft: plan no job."
)
@click.option(
    "--budget-gpu-hours",
    type=click.FloatRange(min=0),
    callback=_finite,
    help="GPU-hour budget. schedule: a rotation within it; other events: a ceiling "
    "(a selection over it is refused, or rotated with --rotate).",
)
@click.option(
    "--rotate",
    is_flag=True,
    help="workflow_dispatch: take the oldest-measured jobs that fit --budget-gpu-hours "
    "instead of refusing a selection over it.",
)
@click.option(
    "--history",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Rotations: results-branch index.json with the last-measured date per job.",
)
@click.option(
    "--only", multiple=True, help="workflow_dispatch: 'key=value[,key=value]' (repeatable; a|b)."
)
@click.option("--exclude", multiple=True, help="Drop jobs matching 'key=value[,key=value]'.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table", "github"]),
    default="table",
    show_default=True,
)
@click.option(
    "--max-shards",
    type=click.IntRange(min=1),
    default=planner.DEFAULT_MAX_SHARDS,
    show_default=True,
    help="github: shard jobs in the workflow (256 legs each).",
)
@click.option("--explain", is_flag=True, help="Say why each job was selected.")
@click.pass_context
def plan(
    ctx: click.Context,
    root: Path,
    event: str,
    base: str | None,
    head: str | None,
    draft: bool,
    budget_gpu_hours: float | None,
    rotate: bool,
    history: Path | None,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    fmt: str,
    max_shards: int,
    explain: bool,
) -> None:
    """Expand the catalog into jobs (one warm server each) and select them for EVENT.

    Budgets: a scheduled run takes a rotation within --budget-gpu-hours; any other event
    treats it as a ceiling and refuses (exit 4, with the figure) a selection over it, unless
    --rotate (workflow_dispatch) asks for the rotation. A --draft pull request plans no job.
    """
    from ixci.catalog.catalog import load_catalog

    _check_options(event, base, head, draft, budget_gpu_hours, rotate)
    catalog = load_catalog(root)
    if draft:
        _emit(ctx, planner.make_plan(catalog, event, [], [DRAFT_NOTE]), fmt, max_shards, explain)
        return
    jobs = planner.expand(catalog, event)  # a nightly's points take `nightly-repeats`
    dates = selection.history_dates(_read_json(history)) if history else None
    notes: list[str] = []
    if event == "pull_request":
        assert base is not None and head is not None
        changes = selection.git_changes(root, base, head)
        selected, notes = selection.select_pull_request(jobs, changes, catalog.canary)
    elif event == "schedule":
        selected = selection.select_schedule(
            jobs, budget_gpu_hours=budget_gpu_hours, last_measured=dates
        )
    else:
        selected = selection.select_dispatch(jobs, [], [])
    if only or exclude:
        selected = _filter(selected, only, exclude, keep_reasons=event != "workflow_dispatch")
    if budget_gpu_hours is not None and event != "schedule":
        if rotate:
            selected = selection.rotate(selected, budget_gpu_hours, dates, event=event)
        else:
            selection.check_budget(event, selected, budget_gpu_hours)
    result = planner.make_plan(catalog, event, selected, notes)
    _emit(ctx, result, fmt, max_shards, explain)


def _check_options(
    event: str, base: str | None, head: str | None, draft: bool, budget: float | None, rotate: bool
) -> None:
    """Option combinations click cannot express; `UsageError` (exit 2) naming the fix."""
    if draft and event != "pull_request":
        raise UsageError(f"--draft applies to --event pull_request, not {event}")
    if event == "pull_request" and not draft and (not base or not head):
        raise UsageError("--event pull_request needs --base SHA and --head SHA (or --draft)")
    if rotate and event != "workflow_dispatch":
        raise UsageError(
            f"--rotate applies to --event workflow_dispatch, not {event}",
            hint="a scheduled run always rotates within its budget",
        )
    if rotate and budget is None:
        raise UsageError("--rotate needs --budget-gpu-hours", hint="e.g. --budget-gpu-hours 40")


def _filter(
    jobs: list[planner.Job], only: tuple[str, ...], exclude: tuple[str, ...], *, keep_reasons: bool
) -> list[planner.Job]:
    chosen = selection.select_dispatch(
        jobs,
        [selection.parse_filter(t) for t in only],
        [selection.parse_filter(t) for t in exclude],
    )
    if not keep_reasons:
        return chosen
    before = {j.id: j for j in jobs}
    return [before[j.id] for j in chosen]


def _read_json(path: Path) -> dict[str, object]:
    """The history index: a regular file of at most `yamlio.MAX_BYTES`, parsed as JSON."""
    from ixci.yamlio import MAX_BYTES, read_bounded

    raw, problem = read_bounded(path, str(path), MAX_BYTES)
    if problem is not None or raw is None:
        raise UsageError(f"{shown(str(path))}: {problem.message if problem else 'not readable'}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{shown(str(path))}: not readable JSON ({str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{shown(str(path))}: expected a JSON object")
    return data


def _emit(
    ctx: click.Context, result: planner.Plan, fmt: str, max_shards: int, explain: bool
) -> None:
    if fmt == "json":
        click.echo(result.to_json(), nl=False)
        return
    if fmt == "table":
        click.echo(planner.to_table(result, explain=explain), nl=False)
        return
    from ixci.github import gha

    env = environ(ctx)
    outputs = planner.github_outputs(result, max_shards=max_shards)
    target = env.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError(
            "--format github writes to the file named by $GITHUB_OUTPUT, which is not set"
        )
    gha.write_outputs(Path(target), outputs)
    if env.get("GITHUB_STEP_SUMMARY"):
        table = planner.to_table(result, explain=explain)
        gha.append_summary(Path(env["GITHUB_STEP_SUMMARY"]), f"### Plan\n\n```\n{table}```")
    click.echo(planner.summary_line(result))
    click.echo(
        f"shards: {outputs['shards']} ({outputs['legs']} legs, ≤ {planner.MATRIX_LIMIT} each)"
    )
    if explain:
        click.echo(planner.to_table(result, explain=True), nl=False)
