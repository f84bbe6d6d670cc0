"""`ixci import inferencex FILE… --out DIR`: the incumbent's configs → ixci recipes + a report."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("import")
def import_() -> None:
    """Import benchmark definitions from other tools."""


@import_.command("inferencex")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the recipe files into (e.g. matrix/recipes).")
@click.option("--catalog", "root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Target catalog (models, engines, SKUs, runners, scenarios).")
@click.option("--spec-tokens", type=click.IntRange(min=1),
              help="Speculative tokens to assume where an entry does not state them.")
def inferencex(files: tuple[Path, ...], out: Path, root: Path, spec_tokens: int | None) -> None:
    """Convert InferenceX master configs (nvidia-master.yaml, amd-master.yaml) into recipes."""
    from ixci.importer import import_inferencex, load_target, write_recipes

    catalog = load_target(root)
    converted, report = import_inferencex(list(files), catalog, spec_tokens=spec_tokens)
    written = write_recipes(converted, out)
    click.echo(report.render(), nl=False)
    click.echo(f"wrote {len(written)} recipe files to {out}")
