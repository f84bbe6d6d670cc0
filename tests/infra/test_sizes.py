"""Size limits of the package: no module over 600 lines, no function over 60.

The modules and functions still over them are listed here with their size today; they may
shrink (and leave the list once under the limit) but never grow, and nothing new joins them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ixci"
MODULE_LINES, FUNCTION_LINES = 600, 60

# path relative to the package → lines today (none left: keep it so)
LONG_MODULES: dict[str, int] = {}
# "path:qualified name" → lines today (none left: keep it so)
LONG_FUNCTIONS: dict[str, int] = {}


def _modules() -> dict[str, int]:
    return {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _functions() -> dict[str, int]:
    out: dict[str, int] = {}

    def visit(node: ast.AST, rel: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                out[f"{rel}:{name}"] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, rel, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, rel, f"{prefix}{child.name}.")

    for p in sorted(PACKAGE.rglob("*.py")):
        visit(ast.parse(p.read_text()), str(p.relative_to(PACKAGE)), "")
    return out


def _over(sizes: dict[str, int], limit: int, allowed: dict[str, int]) -> list[str]:
    problems = []
    for key, n in sorted(sizes.items()):
        if n <= limit:
            if key in allowed:
                problems.append(f"{key}: {n} lines, under {limit} now: take it off the list")
        elif key not in allowed:
            problems.append(f"{key}: {n} lines > {limit}: split it")
        elif n > allowed[key]:
            problems.append(f"{key}: grew to {n} lines (listed at {allowed[key]}): split it")
    problems += [f"{key}: listed but gone" for key in sorted(set(allowed) - set(sizes))]
    return problems


def test_no_module_grows_past_600_lines() -> None:
    assert not (problems := _over(_modules(), MODULE_LINES, LONG_MODULES)), problems


def test_no_function_grows_past_60_lines() -> None:
    assert not (problems := _over(_functions(), FUNCTION_LINES, LONG_FUNCTIONS)), problems


def test_the_check_finds_a_new_long_function_and_a_stale_entry() -> None:
    sizes = {"a.py:f": 61, "b.py:g": 10, "c.py:h": 80}
    found = _over(sizes, 60, {"b.py:g": 70, "c.py:h": 75, "d.py:k": 90})
    assert found == [
        "a.py:f: 61 lines > 60: split it",
        "b.py:g: 10 lines, under 60 now: take it off the list",
        "c.py:h: grew to 80 lines (listed at 75): split it",
        "d.py:k: listed but gone",
    ]
