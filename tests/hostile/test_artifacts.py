"""Hostile-input corpus: artifacts, as a pull request's code on a GPU host could upload them.

Each case puts one crafted file next to a good artifact of a planned job, then runs the real
`ixci publish` process (with the plan, into a bare git repository in tmp_path) and
`ixci collect --strict`. For every case: the crafted file is rejected with the expected
category, the good job is still published (no lost run), no job outside the plan is
published, no file appears outside the test's root, nothing prints a traceback, nothing hangs
(a timeout per process), and the exit codes are publish 0 (the good part published) and
strict collect 6 ("some rejected"; an internal error would be 1).
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from collect.factory import make_job, make_result, plan_json, planned
from collect.make_damaged import _set, _zip

RUN = "9001"
GOOD = planned(make_job(name="hostile-good", tp=1))
VICTIM = planned(
    make_job(name="hostile-victim", tp=2, image="vllm/vllm-openai@sha256:" + "ab" * 32)
)
STRANGER = make_job(name="hostile-stranger", tp=1, concurrencies=(1,))
PLAN = json.loads(plan_json(GOOD, VICTIM))
TIMEOUT_S = 120


def victim(**changes: Any) -> dict[str, Any]:
    doc = make_result(copy.deepcopy(VICTIM), run_id=RUN)
    for path, value in changes.items():
        _set(path.replace("__", "."), value)(doc)
    return doc


def put(root: Path, folder: str, data: bytes, name: str = "result.json") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / name).write_bytes(data)


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _cut(data: bytes) -> bytes:
    """`data` cut off after some 500 bytes, between two values (a cut inside a string reads
    as invalid JSON, not as truncated)."""
    return data[: data.index(b", ", 500) + 1]


def _bomb() -> bytes:
    buf = io.BytesIO()
    block = b" " * (1 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("result.json", "w", force_zip64=True) as fh,
    ):
        for _ in range(40):  # 40 MiB inflated (over the 32 MiB cap), ~40 KiB on disk
            fh.write(block)
    return buf.getvalue()


def _symlink(root: Path) -> None:
    (root / "result-link").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "result-link" / "result.json")


def _oversized(root: Path) -> None:
    put(root, "result-huge", b"{" + b" " * (33 * 1024 * 1024) + b"}")


def _traversal_member(root: Path) -> None:
    member = as_bytes(make_result(STRANGER, run_id=RUN))
    put(root, "result-zipslip", _zip({"../../../escaped/result.json": member}), "a.zip")


@dataclass(frozen=True)
class Case:
    """One crafted artifact and the category `collect` must reject it with."""

    name: str
    build: Callable[[Path], None]
    category: str


CASES = [
    Case("deep-nesting", lambda r: put(r, "x", b"[" * 100_000 + b"]" * 100_000), "too_deep"),
    Case("float-1e400", lambda r: put(r, "x", as_bytes(victim()).replace(b"60.0", b"1e400", 1)), "number"),
    Case("int-400-digits", lambda r: put(r, "x", as_bytes(victim()).replace(b'"completed": 20', b'"completed": ' + b"9" * 400, 1)), "number"),
    Case("nan-literal", lambda r: put(r, "x", as_bytes(victim()).replace(b"60.0", b"NaN", 1)), "nan"),
    Case("zip-bomb", lambda r: put(r, "x", _bomb(), "result-j-0123456789ab.zip"), "too_large"),
    Case("oversized-file", _oversized, "too_large"),
    Case("unplanned-job", lambda r: put(r, f"result-{STRANGER['id']}", as_bytes(make_result(STRANGER, run_id=RUN))), "unplanned"),
    Case("unplanned-j-file", lambda r: put(r, "extra", as_bytes(make_result(STRANGER, run_id=RUN)), f"{STRANGER['id']}.json"), "unplanned"),
    Case("altered-sku", lambda r: put(r, "x", as_bytes(victim(job__sku="b200"))), "plan_mismatch"),
    Case("altered-image", lambda r: put(r, "x", as_bytes(victim(job__image="evil/vllm:latest"))), "plan_mismatch"),
    Case("digest-not-pinned-one", lambda r: put(r, "x", as_bytes(victim(provenance__image_digest="sha256:" + "cd" * 32))), "plan_mismatch"),
    Case("altered-points", lambda r: put(r, "x", as_bytes(victim(job__points__0__concurrency=512))), "plan_mismatch"),
    Case("crafted-started-at", lambda r: put(r, "x", as_bytes(victim(run__started_at="..-..-..T00:00:00Z"))), "schema"),
    Case("crafted-run-id", lambda r: put(r, "x", as_bytes(victim(run__run_id="../../../../tmp/x"))), "unsafe_value"),
    Case("crafted-job-id", lambda r: put(r, "x", as_bytes(victim(job__id="../../j-0123456789ab"))), "schema"),
    Case("failure-class-int", lambda r: put(r, "x", as_bytes(victim(failure_class=5))), "schema"),
    Case("symlink-to-etc", _symlink, "unsafe_path"),
    Case("zip-member-traversal", _traversal_member, "unplanned"),
    Case("truncated", lambda r: put(r, "x", _cut(as_bytes(victim()))), "truncated"),
    Case("not-utf8", lambda r: put(r, "x", as_bytes(victim()).decode().encode("utf-16")), "not_utf8"),
    Case("gpu-claims", lambda r: put(r, "x", as_bytes(victim(provenance__gpu_names=["H100"] * 8))), "gpu_count"),
    Case("schema-version-99", lambda r: put(r, "x", as_bytes(victim(schema_version=99))), "schema_version"),
    Case("corrupt-zip", lambda r: put(r, "x", b"PK\x03\x04" + b"\0" * 64, "result-j-0123456789ab.zip"), "corrupt_zip"),
]  # fmt: skip


def ixci(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_RUN_ATTEMPT": "1"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(["ixci", *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=TIMEOUT_S)  # fmt: skip


def git(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def tree_snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_artifact(tmp_path: Path, case: Case) -> None:
    box = tmp_path / "box"  # everything the commands may touch lives under box/a/b/
    work = box / "a" / "b"
    arts = work / "artifacts"
    put(arts, f"result-{GOOD['id']}", as_bytes(make_result(GOOD, run_id=RUN)))
    case.build(arts)
    (work / "plan.json").write_text(json.dumps(PLAN))
    remote = work / "remote.git"
    git("init", "-q", "--bare", str(remote))
    outside = tree_snapshot(tmp_path) - {
        p for p in tree_snapshot(tmp_path) if p.startswith("box/a/b")
    }

    strict = ixci("collect", "artifacts", "--plan", "plan.json", "--run-id", RUN,
                  "--out", "collected", "--strict", cwd=work)  # fmt: skip
    publish = ixci("publish", "artifacts", "--plan", "plan.json", "--run-id", RUN,
                   "--repo", str(remote), "--workdir", "clone", "--no-site",
                   "--catalog", str(work), cwd=work)  # fmt: skip

    for proc in (strict, publish):
        assert "Traceback" not in proc.stderr and "a bug in ixci" not in proc.stderr, proc.stderr
    assert strict.returncode == 6, strict.stderr
    assert "artifact(s) rejected" in strict.stderr
    assert publish.returncode == 0, publish.stderr
    assert "pushed" in publish.stdout
    skipped = json.loads((work / "collected" / "skipped.json").read_text())["skipped"]
    assert [s["category"] for s in skipped] == [case.category], skipped
    assert all(s["reasons"] and all(r.strip() for r in s["reasons"]) for s in skipped)

    clone = work / "checkout"
    git("clone", "-q", "--branch", "results", str(remote), str(clone))
    index = json.loads((clone / "index.json").read_text())
    assert [r["run_id"] for r in index["runs"]] == [RUN]  # no lost run
    run = clone / index["runs"][0]["path"]
    published = {p.stem for p in (run / "results").glob("*.json")}
    assert published == {GOOD["id"]}  # the good part; nothing unplanned, nothing altered
    assert json.loads((run / "skipped.json").read_text())["skipped"][0]["category"] == case.category
    assert set(index["jobs"]) == {GOOD["id"]}
    now = tree_snapshot(tmp_path) - {p for p in tree_snapshot(tmp_path) if p.startswith("box/a/b")}
    assert now == outside  # no file outside the commands' root
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/x").exists()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 18 and len({c.name for c in CASES}) == len(CASES)
