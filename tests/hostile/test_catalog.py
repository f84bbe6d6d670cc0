"""Hostile catalog files: each case plants one crafted file (or file name) in a copy of the real
catalog and runs `ixci validate` or `ixci plan` on it through click's CliRunner.

Every case asserts its expected exit code and message fragment, and that there was no
traceback or internal error, no hang (a generous ceiling), nothing written anywhere (the whole
temporary tree is unchanged) and, for `plan`, no plan printed for a refused catalog.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.catalog.conftest import REPO, run_ixci

HANG_GUARD_S = 5.0  # each case takes well under a second; the alias bomb took 102 s before
RECIPES = Path("matrix") / "recipes"
BASE = (REPO / RECIPES / "dsr1-fp8-h200-sglang.yaml").read_text(encoding="utf-8")
VALIDATE = ("validate", "--root", "{root}")
DISPATCH = ("plan", "--catalog", "{root}", "--event", "workflow_dispatch", "--format", "json")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One hostile input: `plant` writes it into the catalog copy at `root`; the command
    `args` (`{root}` replaced) must exit with `exit` and print `says`."""

    id: str
    plant: Callable[[Path], None]
    exit: int
    says: str
    args: Sequence[str] = VALIDATE


def recipe(name: str | bytes, content: bytes | str) -> Callable[[Path], None]:
    """A planter writing `content` to `matrix/recipes/<name>` (bytes names may be non-UTF-8)."""

    def plant(root: Path) -> None:
        folder = os.fsencode(root / RECIPES)
        raw = content.encode("utf-8") if isinstance(content, str) else content
        with open(os.path.join(folder, os.fsencode(name)), "wb") as fh:
            fh.write(raw)

    return plant


def bomb(levels: int) -> str:
    lines = [
        BASE.rstrip("\n"),
        "engine-args:",
        '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    lines += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _huge(root: Path) -> None:
    with (root / RECIPES / "huge.yaml").open("wb") as fh:
        fh.write(BASE.encode())
        fh.truncate(2 * 1024**3)  # sparse: 2 GiB that must not be read


def _folder(root: Path) -> None:
    (root / RECIPES / "folder.yaml").mkdir()
    (root / RECIPES / "folder.yaml" / "x.yaml").write_text(BASE)


def _fifo(root: Path) -> None:
    os.mkfifo(root / RECIPES / "pipe.yaml")  # reading it would wait for a writer forever


def _link_out(root: Path) -> None:
    outside = root.parent / "outside.yaml"
    outside.write_text(BASE)
    (root / RECIPES / "linked.yaml").symlink_to(outside)


def _hardware_out(root: Path) -> None:
    outside = root.parent / "hardware.yaml"
    shutil.move(root / "matrix" / "hardware.yaml", outside)
    (root / "matrix" / "hardware.yaml").symlink_to(outside)


def _outside_non_utf8(root: Path) -> None:
    with open(os.path.join(os.fsencode(root.parent), b"caf\xe9.yaml"), "wb") as fh:
        fh.write(BASE.encode())


def _recipes_folder_out(root: Path) -> None:
    outside = root.parent / "elsewhere"
    shutil.copytree(root / RECIPES, outside)
    shutil.rmtree(root / RECIPES)
    (root / RECIPES).symlink_to(outside)


def history(content: bytes | None) -> Callable[[Path], None]:
    """A planter for the nightly's history index next to the catalog (None: a FIFO)."""

    def plant(root: Path) -> None:
        target = root.parent / "index.json"
        if content is None:
            os.mkfifo(target)
        else:
            target.write_bytes(content)

    return plant


NIGHTLY = (
    "plan",
    "--catalog",
    "{root}",
    "--event",
    "schedule",
    "--budget-gpu-hours",
    "50",
    "--history",
    "{root}/../index.json",
    "--format",
    "json",
)


def _replace(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


CASES = [
    Case(id="alias-bomb-9-levels", plant=recipe("bomb.yaml", bomb(9)), exit=3,
         says="alias *a2 expands to 1,111 values"),
    Case(id="alias-bomb-through-plan", plant=recipe("bomb.yaml", bomb(12)), exit=3,
         says="over the 10,000 a file may add", args=DISPATCH),
    Case(id="alias-cycle", plant=recipe("cycle.yaml", BASE + "engine-args:\n  a: &a [*a]\n"), exit=3,
         says="alias *a is inside its own anchor &a (a cycle)"),
    Case(id="deep-nesting-100k", plant=recipe("deep.yaml", BASE + "engine-args:\n  a: " + "[" * 100_000 + "]" * 100_000 + "\n"),
         exit=3, says="nesting deeper than 32 levels"),
    Case(id="huge-file-sparse-2gib", plant=_huge, exit=3, says="file is 2,147,483,648 bytes; at most 1,048,576 are read"),
    Case(id="non-utf8-content", plant=recipe("latin1.yaml", (BASE + "description: caf\xe9\n").encode("latin-1")), exit=3,
         says="not UTF-8 text (byte 0xe9"),
    Case(id="non-utf8-file-name", plant=recipe(b"caf\xe9.yaml", BASE), exit=3,
         says="matrix/recipes/caf\\xe9.yaml:1:1: recipe file name"),
    Case(id="command-substitution-file-name", plant=recipe("$(touch PWNED).yaml", BASE), exit=3,
         says="has characters a catalog name may not use; rename it"),
    Case(id="newline-file-name", plant=recipe("a\nb.yaml", BASE), exit=3,
         says="matrix/recipes/a\\nb.yaml:1:1: recipe file name 'a\\nb'"),
    Case(id="option-like-file-name", plant=recipe("-rf.yaml", BASE), exit=3, says="recipe file name '-rf' has characters"),
    Case(id="folder-named-like-a-recipe", plant=_folder, exit=3, says="matrix/recipes/folder.yaml:1:1: is a folder"),
    Case(id="fifo-named-like-a-recipe", plant=_fifo, exit=3, says="not a regular file"),
    Case(id="symlink-out-of-the-catalog", plant=_link_out, exit=3, says="outside the catalog; copy the file into the catalog"),
    Case(id="hardware-symlink-out-of-the-catalog", plant=_hardware_out, exit=3,
         says="matrix/hardware.yaml:1:1: symbolic link to"),
    Case(id="recipes-folder-symlinked-out", plant=_recipes_folder_out, exit=3,
         says="(a folder above it is a symbolic link), outside the catalog"),
    Case(id="empty-file", plant=recipe("empty.yaml", b""), exit=3, says="file is empty"),
    Case(id="duplicate-key", plant=recipe("dup.yaml", BASE + "sku: h100\n"), exit=3, says="duplicate key 'sku'"),
    Case(id="python-object-tag", plant=recipe("tag.yaml", BASE + "engine-args:\n  x: !!python/object/apply:os.system [id]\n"),
         exit=3, says="unsupported YAML tag !!python/object/apply:os.system"),
    Case(id="integer-5000-digits", plant=recipe("big.yaml", _replace("concurrency: {start: 4, end: 64}", "concurrency: [" + "9" * 5000 + "]")),
         exit=3, says="integer literal of 5000 characters is too large"),
    Case(id="integer-over-64-bits", plant=recipe("big.yaml", BASE + "max-model-len: 18446744073709551616\n"), exit=3,
         says="does not fit in 64 bits"),
    Case(id="nan-engine-arg", plant=recipe("nan.yaml", BASE + "engine-args:\n  mem-fraction-static: .nan\n"), exit=3,
         says=".nan is not a finite number"),
    Case(id="inf-through-plan", plant=recipe("inf.yaml", BASE + "engine-args:\n  mem-fraction-static: .inf\n"), exit=3,
         says=".inf is not a finite number", args=DISPATCH),
    Case(id="tab-indentation", plant=recipe("tabs.yaml", _replace("\n  concurrency", "\n\tconcurrency")), exit=3,
         says="found character '\\t' that cannot start any token"),
    Case(id="control-character", plant=recipe("bell.yaml", _replace("sku: h200", "sku: h200\x07")), exit=3,
         says="unsupported character U+0007"),
    Case(id="byte-order-mark-is-fine", plant=recipe("bom.yaml", b"\xef\xbb\xbf" + BASE.encode()), exit=0, says="ok: "),
    Case(id="ten-thousand-concurrencies", plant=recipe("list.yaml", _replace("concurrency: {start: 4, end: 64}", "concurrency: [" + ",".join(str(i) for i in range(1, 10_001)) + "]")),
         exit=3, says="search-space[0].concurrency: [1, 2, 3"),
    Case(id="scenario-named-like-a-path", plant=recipe("path.yaml", _replace("scenarios: [8k1k]", "scenarios: [../../etc/passwd]")),
         exit=3, says='scenarios[0]: "../../etc/passwd" must be a lower-case name'),
    Case(id="shell-in-a-value", plant=recipe("shell.yaml", _replace("model: deepseek-r1", "model: $(touch PWNED)")), exit=3,
         says='model: "$(touch PWNED)" must be a lower-case name'),
    Case(id="two-documents", plant=recipe("two.yaml", BASE + "---\n" + BASE), exit=3, says="several YAML documents in one file"),
    Case(id="non-utf8-path-argument", plant=_outside_non_utf8, exit=3, says="caf\\xe9.yaml:1:1: recipe file name",
         args=(*VALIDATE, "{root}/../" + os.fsdecode(b"caf\xe9.yaml"), "{root}/../" + os.fsdecode(b"gone\xe9.yaml"))),
    Case(id="nan-budget", plant=lambda root: None, exit=2, says="nan is not a number of GPU-hours",
         args=("plan", "--catalog", "{root}", "--event", "schedule", "--budget-gpu-hours", "nan")),
    Case(id="history-fifo", plant=history(None), exit=2, says="not a regular file", args=NIGHTLY),
    Case(id="history-100k-deep", plant=history(b"[" * 100_000 + b"]" * 100_000), exit=2, says="not readable JSON", args=NIGHTLY),
    Case(id="history-date-like-a-path", plant=history(b'{"jobs": {"j-0123456789ab": {"last_measured": "../../etc"}}}'), exit=4,
         says="last_measured '../../etc' is not a date", args=NIGHTLY),
    Case(id="dispatch-over-budget", plant=lambda root: None, exit=4,
         says="over the budget of 1 GPU-h; nothing was planned", args=(*DISPATCH, "--budget-gpu-hours", "1")),
]  # fmt: skip


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every entry under `path` (links not followed): size and mtime, to prove nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(path)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            out[os.fsdecode(full)] = (info.st_size, info.st_mtime_ns)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_catalog_file(case: Case, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for folder in ("matrix", "benchmarks"):
        shutil.copytree(REPO / folder, root / folder)
    case.plant(root)
    before = tree(tmp_path)
    start = time.perf_counter()
    result = run_ixci([a.replace("{root}", str(root)) for a in case.args])
    elapsed = time.perf_counter() - start
    output = result.output
    assert result.exit_code == case.exit, output
    assert case.says in output, output
    assert "Traceback" not in output and "internal error" not in output
    assert elapsed < HANG_GUARD_S, f"{elapsed:.1f} s"
    assert tree(tmp_path) == before, "the command wrote or changed files"
    assert not list(tmp_path.rglob("PWNED"))
    if case.exit != 0 and case.args[0] == "plan":
        assert '"jobs"' not in output, "a refused catalog or selection printed a plan"


def test_every_case_is_distinct() -> None:
    assert len(CASES) >= 14 and len({c.id for c in CASES}) == len(CASES)
