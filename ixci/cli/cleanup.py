"""`ixci cleanup`: before a job, remove what a killed earlier job of this runner left behind.

Run it as the step before `exec ixci run-job …` on every self-hosted runner. See
`ixci.run.cleanup` for exactly what is matched (ixci's labels and this runner's owner scope only).
"""

from __future__ import annotations

from pathlib import Path

import click

from ixci.cli import environ

WHAT = ("docker", "podman", "process", "slurm")


@click.command("cleanup")
@click.option("--owner", help="Runner name whose leftovers to clean (default: RUNNER_NAME, "
              "else `local`).")  # fmt: skip
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where run-job records its process groups "
                   "(default: $XDG_STATE_HOME/ixci, else ~/.local/state/ixci).")  # fmt: skip
@click.option("--only", "only", multiple=True, type=click.Choice(WHAT),
              help="Look only at these kinds (repeatable; default: all).")  # fmt: skip
@click.option("--grace", type=click.FloatRange(min=0, max=60), default=5.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL for a leftover process group.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.pass_context
def cleanup(ctx: click.Context, owner: str | None, state_dir: Path | None,
            only: tuple[str, ...], grace: float, dry_run: bool) -> None:  # fmt: skip
    """Remove leftovers of a killed job of this runner: containers labelled by ixci, process
    groups run-job recorded, Slurm jobs ixci named — only this runner's, nothing else."""
    from ixci.run import cleanup as reaper
    from ixci.runtimes import state

    env = environ(ctx)
    # the same mapping run-job applies to RUNNER_NAME, so `--owner "$RUNNER_NAME"` matches it
    scope = state.owner_scope(owner if owner else env.get("RUNNER_NAME"))
    kinds = set(only or WHAT)
    opts = reaper.CleanupOptions(
        owner=scope,
        state_dir=state_dir or state.state_dir(env),
        env=env,
        engines=[e for e in reaper.CONTAINER_ENGINES if e in kinds],
        slurm="slurm" in kinds,
        grace_s=grace,
    )
    found, notes = reaper.find(opts)
    if "process" not in kinds:
        found = [f for f in found if f.kind not in ("group", "record")]
    for note in notes:
        click.echo(f"ixci cleanup: {note}", err=True)
    verb = "would remove" if dry_run else "removing"
    for item in found:
        click.echo(f"{verb} {item.line()}")
    failures = [] if dry_run else reaper.remove(found, opts)
    for failure in failures:
        click.echo(f"ixci cleanup: could not remove {failure}", err=True)
    click.echo(
        f"ixci cleanup (owner {scope}): {len(found)} leftover(s)"
        + (" found" if dry_run else f", {len(found) - len(failures)} removed")
    )
