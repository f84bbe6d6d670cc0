"""The hostile-input corpus keeps its size and shape (convention: tests/hostile/README.md).

Every `tests/hostile/test_*.py` module (this one excepted) exposes a module-level `CASES` list;
each case names itself and states its expected outcome. Once the four classes — catalog,
artifacts, run ids and Slurm, server responses — are all present, together they hold at least
`MINIMUM` cases.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CLASSES = (
    "test_catalog", "test_artifacts", "test_runids_slurm", "test_server_responses",
    "test_server_metrics", "test_importer",
)  # fmt: skip
MINIMUM = 40
ID_FIELDS = ("id", "name")
OUTCOME_FIELDS = ("exit", "says", "category", "kind", "expected", "outcome")


def modules() -> dict[str, ModuleType]:
    """Every corpus module present, imported under this package (the same objects pytest uses)."""
    names = sorted(p.stem for p in HERE.glob("test_*.py") if p.stem != Path(__file__).stem)
    return {name: importlib.import_module(f"{__package__}.{name}") for name in names}


def case_id(case: Any) -> str:
    """A case's id: its `id`/`name` field, or the first element of a tuple case."""
    if dataclasses.is_dataclass(case):
        return next(str(getattr(case, f)) for f in ID_FIELDS if getattr(case, f, None))
    if isinstance(case, (tuple, list)) and case:
        return str(case[0])
    raise AssertionError(
        f"a case must be a dataclass with an id or a tuple (id, expected, …): {case!r}"
    )


def has_outcome(case: Any) -> bool:
    """Whether a case states what must happen: a non-empty outcome field, or a tuple
    `(id, expected, …)` whose expectation is non-empty."""
    if dataclasses.is_dataclass(case):
        values = [getattr(case, f, None) for f in OUTCOME_FIELDS]
        return any(v is not None and v != "" for v in values)
    return (
        isinstance(case, (tuple, list))
        and len(case) >= 2
        and all(v not in (None, "") for v in case[1:])
    )


def cases(module: ModuleType) -> list[Any]:
    found = getattr(module, "CASES", None)
    assert isinstance(found, list), f"{module.__name__} has no module-level CASES list"
    return found


def test_every_class_is_present_and_named() -> None:
    """The modules here are exactly the classes the README's table lists."""
    assert set(modules()) == set(CLASSES), sorted(set(modules()) ^ set(CLASSES))


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_has_named_cases_with_expected_outcomes(name: str) -> None:
    found = cases(modules()[name])
    assert found, f"{name}.CASES is empty"
    ids = [case_id(c) for c in found]
    assert len(set(ids)) == len(ids), f"{name}: duplicate case ids"
    missing = [i for c, i in zip(found, ids, strict=True) if not has_outcome(c)]
    assert not missing, f"{name}: cases without an expected outcome: {missing}"


def test_the_whole_corpus_has_at_least_forty_cases() -> None:
    present = modules()
    total = sum(len(cases(m)) for m in present.values())
    assert total >= MINIMUM, f"the hostile corpus has {total} cases; it needs at least {MINIMUM}"


def test_the_outcome_check_can_fail() -> None:
    @dataclasses.dataclass
    class Bare:
        id: str

    assert not has_outcome(Bare(id="x")) and not has_outcome(("x",)) and not has_outcome(("x", ""))
    assert has_outcome(("x", "protocol")) and case_id(("x", "protocol")) == "x"
