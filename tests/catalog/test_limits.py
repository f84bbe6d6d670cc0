"""YAML size limits: alias bombs, cycles, deep nesting and out-of-range numbers are pointed
problems found in time linear in the text, on the libyaml path and the pure-Python path alike;
legitimate anchors, aliases and merge keys keep working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ixci import yamlio
from ixci.catalog.catalog import load_catalog
from ixci.errors import Problem
from ixci.yamlio import Document, load_file, load_text
from tests.catalog.conftest import REPO, run_ixci

HANG_GUARD_S = 5.0  # generous: the checks take milliseconds; the old code took 102 s at 8 levels


def bomb(levels: int, width: int = 10) -> str:
    """The classic "billion laughs": each level aliases the previous one `width` times."""
    lines = ["engine-args:", "  a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def slow(text: str, file: str) -> Document:
    """The pure-Python loader (used when libyaml is missing or rejects a file)."""
    return yamlio._load_slow(text, file)


LOADERS: dict[str, Callable[[str, str], Document]] = {"libyaml": load_text, "python": slow}


def outcome(loader: str, text: str) -> tuple[bool, tuple[Problem, ...], float]:
    """(accepted, problems, seconds); the document itself is dropped, so a failing assertion
    never tries to print an expanded bomb."""
    start = time.perf_counter()
    doc = LOADERS[loader](text, "bomb.yaml")
    seconds = time.perf_counter() - start
    accepted, problems = doc.data is not None, doc.problems
    del doc
    return accepted, problems, seconds


def in_child(code: str) -> object:
    """Run `code` in a fresh interpreter (a crash or a hang fails the test, not the session);
    its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S * 4,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_alias_bomb_is_rejected_at_the_same_alias_whatever_its_depth(loader: str) -> None:
    found = {}
    for levels in (9, 12, 30):
        accepted, problems, seconds = outcome(loader, bomb(levels))
        assert not accepted and len(problems) == 1 and seconds < HANG_GUARD_S
        found[levels] = problems[0]
    # the check stops at the first alias over the limit: more levels add no work at all
    assert found[9] == found[12] == found[30]
    problem = found[9]
    assert (problem.file, problem.line, problem.path) == ("bomb.yaml", 5, "engine-args.a3[7]")
    assert "alias *a2 expands to 1,111 values" in problem.message
    assert "over the 10,000 a file may add" in problem.message
    assert "write the values out" in problem.message  # the hint


def test_cli_rejects_a_bomb_in_a_recipe_fast(tmp_path: Path) -> None:
    recipe = tmp_path / "bomb.yaml"
    base = (REPO / "matrix" / "recipes" / "dsr1-fp8-h200-sglang.yaml").read_text()
    recipe.write_text(base + bomb(7))  # seven levels took 8 s before the limits
    start = time.perf_counter()
    result = run_ixci(["validate", "--root", str(REPO), str(recipe)])
    assert time.perf_counter() - start < HANG_GUARD_S
    assert result.exit_code == 3, result.output
    assert f"{recipe}:18:47: engine-args.a3[7]: alias *a2 expands" in result.output


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_alias_counts_and_nesting_at_the_limits(loader: str) -> None:
    load = LOADERS[loader]
    uses = "x: &x 1\nl: [" + ", ".join(["*x"] * yamlio.MAX_ALIASES) + "]\n"
    assert load(uses, "f.yaml").data["l"] == [1] * yamlio.MAX_ALIASES
    over = load(uses.replace("]", ", *x]"), "f.yaml")
    assert f"more than {yamlio.MAX_ALIASES} aliases" in over.problems[0].message
    assert over.problems[0].path == f"l[{yamlio.MAX_ALIASES}]"
    deep = "a: " + "[" * (yamlio.MAX_DEPTH - 1) + "1" + "]" * (yamlio.MAX_DEPTH - 1) + "\n"
    assert load(deep, "f.yaml").problems == ()
    deeper = load(deep.replace("[", "[[", 1).replace("]", "]]", 1), "f.yaml")
    assert f"nesting deeper than {yamlio.MAX_DEPTH} levels" in deeper.problems[0].message
    # an alias that would nest its anchor too deep counts its anchor's height
    nested = "x: &x " + "[" * 20 + "1" + "]" * 20 + "\ny: " + "[" * 12 + "*x" + "]" * 12 + "\n"
    assert "alias *x nests deeper" in load(nested, "f.yaml").problems[0].message


@pytest.mark.parametrize("loader", ["load_text", "_load_slow"])
def test_hundred_thousand_levels_deep_is_a_problem_not_a_crash(loader: str) -> None:
    # libyaml's composer recursed in C and crashed the interpreter (SIGSEGV) on this file
    found = in_child(
        "import json, time\nfrom ixci import yamlio\n"
        "text = 'a: ' + '[' * 100_000 + ']' * 100_000 + '\\n'\n"
        f"start = time.perf_counter(); doc = yamlio.{loader}(text, 'deep.yaml')\n"
        "print(json.dumps([time.perf_counter() - start, "
        "[[p.line, p.col, p.message] for p in doc.problems]]))\n"
    )
    assert isinstance(found, list)
    seconds, problems = found
    assert seconds < HANG_GUARD_S and len(problems) == 1
    line, col, message = problems[0]
    assert "nesting deeper than 32 levels" in message
    assert (line, col) == (1, 3 + yamlio.MAX_DEPTH)  # the mapping is level 1


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("a: &a [*a]\n", "a[0]", "alias *a is inside its own anchor &a (a cycle)"),
        ("m: &m\n  k: *m\n", "m.k", "alias *m is inside its own anchor &m (a cycle)"),
        ("n: .nan\n", "", ".nan is not a finite number"),
        ("n: -.inf\n", "", "-.inf is not a finite number"),
        ("n: 9223372036854775808\n", "", "does not fit in 64 bits"),
        ("n: " + "9" * 5000 + "\n", "", "integer literal of 5000 characters is too large"),
        ("n: !!python/object/apply:os.system [id]\n", "", "unsupported YAML tag !!python/object"),
    ],
    ids=[
        "cycle-seq",
        "cycle-map",
        "nan",
        "minus-inf",
        "int-2**63",
        "int-5000-digits",
        "python-tag",
    ],
)
def test_values_json_cannot_hold(loader: str, text: str, where: str, fragment: str) -> None:
    doc = LOADERS[loader](text, "v.yaml")
    assert doc.data is None and len(doc.problems) == 1, doc.problems
    assert doc.problems[0].path == where and fragment in doc.problems[0].message
    assert doc.problems[0].line >= 1


def test_numbers_in_range_still_load() -> None:
    doc = load_text(
        "a: 9223372036854775807\nb: -9223372036854775808\nc: 1.5e+300\nd: 0x1f\n", "n.yaml"
    )
    assert doc.data == {"a": 2**63 - 1, "b": -(2**63), "c": 1.5e300, "d": 31}


def test_legitimate_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    recipe = (REPO / "matrix" / "recipes" / "dsr1-fp8-h200-sglang.yaml").read_text()
    head = recipe.split("search-space:")[0]
    shared = head + (
        "engine-args: &args {mem-fraction-static: 0.85, chunked-prefill-size: 8192}\n"
        "search-space:\n"
        "- tp: 8\n  concurrency: &conc {start: 4, end: 64}\n  engine-args: *args\n"
        "- tp: 8\n  ep: 8\n  concurrency: *conc\n"
        "  engine-args:\n    <<: *args\n    cuda-graph-max-bs: 256\n"
    )
    written = head + (
        "engine-args: {mem-fraction-static: 0.85, chunked-prefill-size: 8192}\n"
        "search-space:\n"
        "- tp: 8\n  concurrency: {start: 4, end: 64}\n"
        "  engine-args: {mem-fraction-static: 0.85, chunked-prefill-size: 8192}\n"
        "- tp: 8\n  ep: 8\n  concurrency: {start: 4, end: 64}\n"
        "  engine-args: {mem-fraction-static: 0.85, chunked-prefill-size: 8192, cuda-graph-max-bs: 256}\n"
    )
    assert load_text(shared, "s.yaml").data == load_text(written, "w.yaml").data
    for name, text in (("shared", shared), ("written", written)):
        (tmp_path / name).mkdir()
        target = tmp_path / name / "dsr1-fp8-h200-sglang.yaml"
        target.write_text(text)
        result = run_ixci(["validate", "--root", str(REPO), str(target)])
        assert result.exit_code == 0, result.output
    catalog = load_catalog(REPO, extra=[tmp_path / "shared" / "dsr1-fp8-h200-sglang.yaml"])
    entries = catalog.recipe("dsr1-fp8-h200-sglang").search_space
    assert entries[1].engine_args == {
        "mem-fraction-static": 0.85,
        "chunked-prefill-size": 8192,
        "cuda-graph-max-bs": 256,
    }


def test_the_real_catalog_and_import_sources_are_within_the_limits() -> None:
    load_catalog(REPO)
    for path in (REPO / "tests" / "data" / "plan" / "inferencex").glob("*.yaml"):
        assert load_file(path).problems == ()


def test_fifo_and_oversized_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading waited for a writer forever
    found = in_child(
        "import json\nfrom pathlib import Path\nfrom ixci.yamlio import load_file\n"
        f"print(json.dumps(load_file(Path({str(fifo)!r})).problems[0].message))"
    )
    assert isinstance(found, str) and "not a regular file" in found
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:  # sparse: the size is checked before anything is read
        fh.truncate(64 * 1024 * 1024 * 1024)
    problem = load_file(big, max_bytes=1024).problems[0]
    assert "file is 68,719,476,736 bytes; at most 1,024 are read" in problem.message
