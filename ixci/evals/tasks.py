"""Eval task definitions: `benchmarks/evals/<name>.yaml` → frozen `EvalTask`.

A task file is validated against `schemas/eval.schema.json` (every problem with file:line and
the fix, like every catalog file) and then parsed once into the dataclasses below; nothing
downstream sees the raw mapping.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.errors import InvalidInput
from ixci.evals.errors import EvalDataError
from ixci.schemas import suggest

EVAL_DIR = "benchmarks/evals"
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Kind(enum.StrEnum):
    """The metric family of a task."""

    EXACT_MATCH = "exact-match"
    MULTIPLE_CHOICE = "multiple-choice"
    TOOL_CALL = "tool-call"


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Where a task's rows come from and what is recorded about them."""

    name: str
    version: str
    sample: Path  # absolute: the committed sample
    licence: str
    source: str | None = None
    split: str = "test"
    fewshot_split: str = "fewshot"


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """How one row becomes one request."""

    endpoint: str  # chat | completions
    template: str
    target: str = "{answer}"
    system: str | None = None
    fewshot: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EvalTask:
    """One task: its name (file stem), kind, data, prompt, extraction and default size."""

    name: str
    kind: Kind
    dataset: Dataset
    prompt: Prompt
    answer_field: str = "answer"
    extraction: tuple[str, ...] = ("hash-marks", "answer-is", "last-number")
    limit: int = 50
    description: str = ""


def render(template: str, row: Mapping[str, Any]) -> str:
    """`template` with each `{field}` replaced by the row's value (missing: empty).

    Only bare field names are expanded (no attribute or index access, no format specs), so a
    template or a row value can never reach anything but the row's own fields.
    """
    return _FIELD.sub(lambda m: _text(row.get(m.group(1), "")), template)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def task_path(root: Path, name: str) -> Path:
    """The file of task `name` under catalog root `root`."""
    return root / EVAL_DIR / f"{name}.yaml"


def available(root: Path) -> list[str]:
    """Names of the tasks under `root`."""
    folder = root / EVAL_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_task(root: Path, name: str) -> EvalTask:
    """Load and validate task `name`; `EvalDataError` naming the known tasks when it is absent,
    `InvalidInput` with every schema problem of its file."""
    from ixci.catalog.catalog import load_one

    path = task_path(root, name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or not path.is_file():
        known = available(root)
        raise EvalDataError(
            f"no eval task {name!r} in {EVAL_DIR}/{suggest(name, known)}",
            hint="known tasks: " + (", ".join(known) or "none"),
        )
    loaded = load_one(path, root=root, kind="eval")
    if loaded.problems or loaded.data is None:
        raise InvalidInput(list(loaded.problems))
    return _parse(name, loaded.data, path, loaded.rel)


def load_suite(root: Path, names: Sequence[str]) -> tuple[EvalTask, ...]:
    """Every named task, in order (each loaded and validated)."""
    return tuple(load_task(root, n) for n in names)


def _parse(name: str, d: Mapping[str, Any], path: Path, rel: str) -> EvalTask:
    ds, pr = d["dataset"], d["prompt"]
    kind = Kind(d["kind"])
    extraction = tuple(d["extraction"])
    _check_extraction(kind, extraction, rel)
    return EvalTask(
        name=name,
        kind=kind,
        description=str(d.get("description", "")),
        dataset=Dataset(
            name=ds["name"],
            version=ds["version"],
            sample=(path.parent / ds["sample"]).resolve(),
            licence=ds["licence"],
            source=ds.get("source"),
            split=ds["split"],
            fewshot_split=ds["fewshot-split"],
        ),
        prompt=Prompt(
            endpoint=pr["endpoint"],
            template=pr["template"],
            target=pr["target"],
            system=pr.get("system"),
            fewshot=pr["fewshot"],
            max_tokens=pr["max-tokens"],
            stop=tuple(pr["stop"]),
        ),
        answer_field=d["answer-field"],
        extraction=extraction,
        limit=d["limit"],
    )


def _check_extraction(kind: Kind, extraction: tuple[str, ...], rel: str) -> None:
    letters = "letter" in extraction
    if kind is Kind.MULTIPLE_CHOICE and extraction != ("letter",):
        raise EvalDataError(f"{rel}: extraction: a multiple-choice task extracts [letter]",
                            hint="set `extraction: [letter]`")  # fmt: skip
    if kind is Kind.EXACT_MATCH and letters:
        raise EvalDataError(f"{rel}: extraction: `letter` is for multiple-choice tasks",
                            hint="use hash-marks, answer-is and/or last-number")  # fmt: skip
