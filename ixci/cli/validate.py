"""`ixci validate [PATHS]`: check the catalog (or given files) and report every problem.

Exit 0 when clean, 3 (`InvalidInput`) with one `file:line:col: key.path: message` line per
problem, 1 for an internal error. Under GitHub Actions each problem is also printed as an
`::error file=…,line=…,col=…::` annotation.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ixci.catalog import catalog as cat
from ixci.catalog.catalog_build import build
from ixci.catalog.catalog_files import shown
from ixci.cli import environ
from ixci.errors import InvalidInput, Problem
from ixci.github import gha
from ixci.yamlio import MAX_BYTES

_SUFFIXES = {".yaml", ".yml", ".json"}


@click.command(name="validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Catalog root (the repository holding matrix/); default: found from the current directory.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when the catalog is valid.")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], root: Path | None, quiet: bool) -> None:
    """Validate the catalog, or PATHS (files or folders) in the context of the catalog.

    A folder holding `matrix/` is validated as a whole catalog; other files (recipes,
    scenarios, catalog files, result.json) are checked against their schema and, for
    catalog files, against the references of the catalog at --root.
    """
    env = environ(ctx)
    base = _root(root, paths)
    problems, count = run_validation(base, paths)
    if problems:
        if env.get("GITHUB_ACTIONS") == "true":
            _annotate(problems)
        for problem in problems:
            click.echo(problem.render(), err=True)
        noun = "problem" if len(problems) == 1 else "problems"
        raise InvalidInput(
            problems, f"{len(problems)} {noun} found by ixci validate (fix them in the files above)"
        )
    if not quiet:
        click.echo(f"ok: {count} files valid ({base})")


def _root(root: Path | None, paths: Sequence[Path]) -> Path:
    if root is not None:
        return root
    for path in paths:
        if path.is_dir() and cat.is_catalog_root(path):
            return path
    found = cat.find_root(Path.cwd())
    return found if found is not None else Path.cwd()


def run_validation(root: Path, paths: Sequence[Path]) -> tuple[list[Problem], int]:
    """(problems, number of files checked) for `paths` (or the whole catalog) under `root`."""
    extra: list[Path] = []
    problems: list[Problem] = []
    standalone: list[Path] = []
    for path in paths:
        if path.is_dir() and cat.is_catalog_root(path) and path.resolve() == root.resolve():
            continue
        if path.is_dir():
            extra.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
            )
        elif path.exists():
            extra.append(path)
        else:
            problems.append(
                Problem(
                    file=shown(str(path)), line=1, col=1, path="", message="no such file or folder"
                )
            )
    for path in extra:
        (standalone if _is_standalone(path) else []).append(path)
    in_catalog = [p for p in extra if p not in standalone]
    loaded, found = cat.collect(root, extra=in_catalog)
    problems.extend(found)
    _, more = build(root, loaded)
    problems.extend(more)
    for path in standalone:
        problems.extend(cat.load_one(path, root=root, max_bytes=MAX_BYTES).problems)
    return cat.sort_problems(problems), len(loaded) + len(standalone)


def _is_standalone(path: Path) -> bool:
    """Files that are not part of a catalog (result artifacts) are checked on their own."""
    return path.suffix == ".json"


def _annotate(problems: Sequence[Problem]) -> None:
    for p in problems:
        message = f"{p.path}: {p.message}" if p.path else p.message
        gha.emit_annotation(sys.stdout, "error", message, file=p.file, line=p.line, col=p.col)
