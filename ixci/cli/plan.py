"""`ixci plan`: the catalog → the jobs of one event, as JSON, a table or GitHub outputs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ixci import plan as planner
from ixci.cli import environ
from ixci.errors import UsageError

EVENTS = ("pull_request", "schedule", "workflow_dispatch")


@click.command("plan")
@click.option("--catalog", "root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Repository root holding matrix/ and benchmarks/.")
@click.option("--event", type=click.Choice(EVENTS), required=True, help="What triggered the run.")
@click.option("--base", help="pull_request: base commit (SHA or ref).")
@click.option("--head", help="pull_request: head commit (SHA or ref).")
@click.option("--budget-gpu-hours", type=click.FloatRange(min=0), help="schedule: GPU-hour budget.")
@click.option("--history", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="schedule: results-branch index.json with the last-measured date per job.")
@click.option("--only", multiple=True, help="workflow_dispatch: 'key=value[,key=value]' (repeatable; a|b).")
@click.option("--exclude", multiple=True, help="Drop jobs matching 'key=value[,key=value]'.")
@click.option("--format", "fmt", type=click.Choice(["json", "table", "github"]), default="table",
              show_default=True)
@click.option("--max-shards", type=click.IntRange(min=1), default=planner.DEFAULT_MAX_SHARDS,
              show_default=True, help="github: shard jobs in the workflow (256 legs each).")
@click.option("--explain", is_flag=True, help="Say why each job was selected.")
@click.pass_context
def plan(ctx: click.Context, root: Path, event: str, base: str | None, head: str | None,
         budget_gpu_hours: float | None, history: Path | None, only: tuple[str, ...],
         exclude: tuple[str, ...], fmt: str, max_shards: int, explain: bool) -> None:
    """Expand the catalog into jobs (one warm server each) and select them for EVENT."""
    from ixci.catalog import load_catalog

    catalog = load_catalog(root)
    jobs = planner.expand(catalog)
    notes: list[str] = []
    if event == "pull_request":
        if not base or not head:
            raise UsageError("--event pull_request needs --base SHA and --head SHA")
        changes = planner.git_changes(root, base, head)
        selected, notes = planner.select_pull_request(jobs, changes, catalog.canary)
    elif event == "schedule":
        dates = planner.history_dates(_read_json(history)) if history else None
        selected = planner.select_schedule(jobs, budget_gpu_hours=budget_gpu_hours, last_measured=dates)
    else:
        selected = list(jobs)
    if only or exclude:
        selected = _filter(selected, only, exclude, keep_reasons=event != "workflow_dispatch")
    result = planner.make_plan(catalog, event, selected, notes)
    _emit(ctx, result, fmt, max_shards, explain)


def _filter(jobs: list[planner.Job], only: tuple[str, ...], exclude: tuple[str, ...],
            *, keep_reasons: bool) -> list[planner.Job]:
    chosen = planner.select_dispatch(jobs, [planner.parse_filter(t) for t in only],
                                     [planner.parse_filter(t) for t in exclude])
    if not keep_reasons:
        return chosen
    before = {j.id: j for j in jobs}
    return [before[j.id] for j in chosen]


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _emit(ctx: click.Context, result: planner.Plan, fmt: str, max_shards: int, explain: bool) -> None:
    if fmt == "json":
        click.echo(result.to_json(), nl=False)
        return
    if fmt == "table":
        click.echo(planner.to_table(result, explain=explain), nl=False)
        return
    from ixci import gha

    env = environ(ctx)
    outputs = planner.github_outputs(result, max_shards=max_shards)
    target = env.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError("--format github writes to the file named by $GITHUB_OUTPUT, which is not set")
    gha.write_outputs(Path(target), outputs)
    if env.get("GITHUB_STEP_SUMMARY"):
        table = planner.to_table(result, explain=explain)
        gha.append_summary(Path(env["GITHUB_STEP_SUMMARY"]), f"### Plan\n\n```\n{table}```")
    click.echo(planner.summary_line(result))
    click.echo(f"shards: {outputs['shards']} ({outputs['legs']} legs, ≤ {planner.MATRIX_LIMIT} each)")
    if explain:
        click.echo(planner.to_table(result, explain=True), nl=False)
