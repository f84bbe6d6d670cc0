"""Finding the catalog's files: which paths are catalog files, and which may be read at all.

File names are untrusted like every other catalog value: a recipe's file stem becomes its
name in the plan, in job names and in results, so it must pass `ids.stem` (letters, digits,
`.`, `_`, `-`). Folders, FIFOs, devices and symbolic links that leave the catalog are refused
before anything is read; sizes are capped before parsing (`CATALOG_MAX_BYTES`). Every refusal
is a pointed `Problem` naming the file (shown with its odd characters escaped) and the fix.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ixci import ids
from ixci.errors import Problem, UnsafeValue
from ixci.schemas import suggest

MAP_FILES = {"hardware": "skus", "engines": "engines", "models": "models", "runners": "runners"}
"""Catalog files that map names to entries: kind → top-level key."""

SINGLE_FILES = ("hardware", "engines", "models", "runners", "canary")
RECIPE_DIR = "matrix/recipes"
SCENARIO_DIR = "benchmarks/scenarios"
EVAL_DIR = "benchmarks/evals"  # eval task definitions (ixci.evals.tasks)
CATALOG_MAX_BYTES = 1024 * 1024
"""Largest catalog file read (the largest real one is about 11 KB)."""
_TOP_KEYS = {
    "skus": "hardware",
    "engines": "engines",
    "models": "models",
    "runners": "runners",
    "canary": "canary",
}


def is_catalog_root(path: Path) -> bool:
    """Whether `path` holds a catalog (`matrix/hardware.yaml`)."""
    return (path / "matrix" / "hardware.yaml").is_file()


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds a catalog, or None."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if is_catalog_root(candidate):
            return candidate
    return None


def kind_of(path: Path, data: Any = None) -> str | None:
    """The schema kind of a file: from its place in a catalog, else from its content."""
    name, parent = path.name, path.parent.name
    stem = name.rsplit(".", 1)[0]
    if parent == "matrix" and stem in SINGLE_FILES:
        return stem
    if parent == "recipes":
        return "recipe"
    if parent == "scenarios":
        return "scenario"
    if parent == "evals" and path.parent.parent.name == "benchmarks":
        return "eval"
    if name == "result.json" or (isinstance(data, dict) and data.get("kind") == "ixci.result"):
        return "result"
    if isinstance(data, dict):
        return _kind_from_keys(data)
    return None


def _kind_from_keys(data: Mapping[Any, Any]) -> str | None:
    for key, kind in _TOP_KEYS.items():
        if key in data:
            return kind
    if "search-space" in data or "framework" in data:
        return "recipe"
    if "isl" in data or "osl" in data:
        return "scenario"
    return None


def shown(text: str) -> str:
    """`text` fit for one line of a message: undecodable bytes and control characters escaped
    (`\\xe9`, `\\n`), so a file name can neither break a line nor fail to print."""
    raw = os.fsencode(text)  # surrogate escapes (undecodable bytes) back to bytes
    decoded = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in decoded)


def rel(path: Path, root: Path) -> str:
    """`path` relative to `root` as written (links not followed), else as given."""
    candidates = [(root.resolve(), path.parent.resolve() / path.name)]
    if ".." not in path.parts:
        candidates.insert(0, (root, path))
    for base, full in candidates:
        try:
            return full.relative_to(base).as_posix()
        except (ValueError, OSError):
            continue
    return str(path)


def file_problem(file: str, message: str) -> Problem:
    """A problem about a whole file (line 1, column 1), its name shown safely."""
    return Problem(file=shown(file), line=1, col=1, path="", message=message)


def catalog_files(root: Path) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """(kind, path) of every catalog file under `root`, and problems for missing/stray files."""
    found: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    matrix = root / "matrix"
    for kind in SINGLE_FILES:
        path = matrix / f"{kind}.yaml"
        if not path.exists() and not path.is_symlink():
            problems.append(file_problem(f"matrix/{kind}.yaml", "required catalog file is missing"))
        elif (refused := refusal(path, root)) is not None:
            problems.append(refused)
        else:
            found.append((kind, path))
    for extra in sorted(matrix.glob("*.y*ml")):
        if extra.name.rsplit(".", 1)[0] not in SINGLE_FILES or extra.suffix != ".yaml":
            hint = suggest(extra.name, [f"{k}.yaml" for k in SINGLE_FILES])
            message = (
                f"unknown catalog file{hint}; recipes go in {RECIPE_DIR}/, expected: "
                + ", ".join(f"{k}.yaml" for k in SINGLE_FILES)
            )
            problems.append(file_problem(rel(extra, root), message))
    for folder, kind in ((RECIPE_DIR, "recipe"), (SCENARIO_DIR, "scenario"), (EVAL_DIR, "eval")):
        found.extend(_folder_files(root / folder, kind, root, problems))
    return found, problems


def _folder_files(
    folder: Path, kind: str, root: Path, problems: list[Problem]
) -> list[tuple[str, Path]]:
    out = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or (kind == "eval" and path.name == "data" and path.is_dir()):
            continue  # benchmarks/evals/data/ holds the tasks' committed samples
        problem = refusal(path, root, kind=kind)
        if problem is not None:
            problems.append(problem)
        else:
            out.append((kind, path))
    return out


def refusal(
    path: Path, root: Path, *, kind: str | None = None, contained: bool = True
) -> Problem | None:
    """Why catalog file `path` may not be read, or None: (when `contained`) it resolves outside
    `root`, it is not a regular file, or (for `kind` recipe/scenario) its name is not
    `<safe stem>.yaml`. Files named on the command line may lie anywhere (`contained=False`)."""
    name = rel(path, root)
    if contained and not _inside(path, root):
        what = (
            f"symbolic link to {shown(os.readlink(path))}"
            if path.is_symlink()
            else f"resolves to {shown(str(path.resolve()))} (a folder above it is a symbolic link)"
        )
        return file_problem(
            name, f"{what}, outside the catalog; copy the file into the catalog instead"
        )
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return file_problem(name, f"cannot read file: {exc.strerror or exc}")
    if stat.S_ISDIR(mode):
        where = f"{kind} files live directly in {path.parent.name}/" if kind else "expected a file"
        return file_problem(
            name, f"is a folder; {where} (sub-folders are not read): move or remove it"
        )
    if not stat.S_ISREG(mode):
        return file_problem(name, "not a regular file (a FIFO or device?): remove it")
    if kind is None:
        return None
    if path.suffix != ".yaml":
        return file_problem(name, f"{kind} files must end in .yaml")
    return _name_problem(path, name, kind)


def _name_problem(path: Path, name: str, kind: str) -> Problem | None:
    try:
        ids.stem(path.name[: -len(".yaml")], what=f"{kind} file name")
    except UnsafeValue as exc:
        message = f"{shown(exc.message)}; {exc.hint}" if exc.hint else shown(exc.message)
        return file_problem(name, f"{message} (the name becomes the {kind}'s name in plans)")
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    return True
