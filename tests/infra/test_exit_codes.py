"""Exit codes: 1 means a bug in ixci and nothing else (docs/design/contracts.md §5).

Every expected failure is a subclass of `IxciError` with its own code; the base class is never
raised itself (its code is the internal one), and every code in use is in the contract's table.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import ixci
from ixci.errors import INTERNAL_EXIT, IxciError

ROOT = Path(__file__).resolve().parents[2]


def _subclasses() -> set[type[IxciError]]:
    for info in pkgutil.walk_packages(ixci.__path__, "ixci."):
        importlib.import_module(info.name)
    out: set[type[IxciError]] = set()
    todo = list(IxciError.__subclasses__())
    while todo:
        cls = todo.pop()
        out.add(cls)
        todo += cls.__subclasses__()
    return out


def test_no_expected_failure_exits_like_a_bug() -> None:
    same = sorted(f"{c.__module__}.{c.__name__}" for c in _subclasses()
                  if c.exit_code == INTERNAL_EXIT)  # fmt: skip
    assert same == [], f"{same} exit {INTERNAL_EXIT}, the code of an internal error"


def test_the_base_class_is_never_raised_itself() -> None:
    found = []
    for path in sorted((ROOT / "ixci").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = (
                    f.id
                    if isinstance(f, ast.Name)
                    else f.attr
                    if isinstance(f, ast.Attribute)
                    else ""
                )
                if name == "IxciError":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], f"raise a subclass with its own exit code: {found}"


def test_every_code_in_use_is_in_the_contract() -> None:
    text = (ROOT / "docs" / "design" / "contracts.md").read_text()
    section = text[text.index("## 5. Exit codes") :]
    section = section[: section.index("\n## ", 5)]
    documented = {int(n) for n in re.findall(r"\b(\d{1,2})\b", section)}
    used = {c.exit_code for c in _subclasses()}
    assert used - documented == set(), (
        f"codes used but not in contracts.md §5: {sorted(used - documented)}"
    )
