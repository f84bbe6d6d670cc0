"""Publishing one more run updates the derived files to exactly what a full rebuild gives.

A tree of several runs over three months, a re-run attempt that replaces a failed job's points,
a narrower run, a recipe change and a run published out of date order: after every step the
files written by `rebuild(tree, run=folder)` (the run's month partition and the small files)
are byte-equal to `build_derived(tree)` from every run folder, and the other months'
partitions were not rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collect.factory import make_job, make_result
from ixci.results.aggregate import Economics
from ixci.results.collect import collect
from ixci.results.derived import build_derived, derive, derive_run, write_derived
from ixci.results.pointstore import JOBS_DIR, POINTS_DIR, partition_files, read_points
from ixci.results.publish import rebuild, write_economics
from ixci.results.runfolder import stage_attempt

ECON = Economics(usd_per_gpu_hour={"h100": {"neocloud": 1.69}}, all_in_kw={"h100": 1.73})
A = make_job(name="a", tp=1, concurrencies=(1, 4, 16))
B = make_job(name="b", tp=2, concurrencies=(1, 8))


def on_disk(tree: Path) -> dict[str, bytes]:
    names = ["index.json", "data/latest.json", "regressions.json"]
    names += [p.relative_to(tree).as_posix() for d in (POINTS_DIR, JOBS_DIR)
              for p in sorted((tree / d).glob("*.parquet"))]  # fmt: skip
    return {n: (tree / n).read_bytes() for n in names}


def add(tree: Path, work: Path, run_id: str, date: str, docs: list[dict[str, Any]],
        attempt: int = 1) -> str:  # fmt: skip
    folder = work / f"{run_id}-{attempt}"
    for doc in docs:
        doc["run"]["run_attempt"] = attempt
        sub = folder / f"result-{doc['job']['id']}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "result.json").write_text(json.dumps(doc))
    col = collect([folder], run_id=run_id)
    return stage_attempt(tree, col, run_id, date=date, run_attempt=attempt).folder


def assert_same_as_full(tree: Path) -> None:
    fresh = build_derived(tree)
    disk = on_disk(tree)
    assert sorted(fresh) == sorted(disk)
    for rel, data in fresh.items():
        assert disk[rel] == data, f"{rel} differs from a full rebuild"


def publish_one(tree: Path, folder: str) -> set[str]:
    """Update for `folder`; return the partitions whose bytes changed."""
    before = {p: p.read_bytes() for p in (tree / POINTS_DIR).glob("*.parquet")}
    assert derive_run(tree, folder) is not None, "the update fell back to a full rebuild"
    rebuild(tree, site=False, run=folder)
    assert_same_as_full(tree)
    return {p.stem for p, data in before.items() if p.read_bytes() != data}


def test_incremental_publish_equals_a_full_rebuild(tmp_path: Path) -> None:
    tree, work = tmp_path / "tree", tmp_path / "art"
    tree.mkdir()
    write_economics(tree, ECON)
    first = add(tree, work, "r1", "2026-09-10", [make_result(j, run_id="r1", date="2026-09-10")
                                                 for j in (A, B)])  # fmt: skip
    write_derived(tree, build_derived(tree))
    assert sorted(partition_files(tree)) == ["2026-09"]
    assert first.startswith("runs/2026/09/")

    r2 = add(tree, work, "r2", "2026-09-20",
             [make_result(A, run_id="r2", date="2026-09-20", scale=1.1),
              make_result(B, run_id="r2", date="2026-09-20", statuses={1: "failed"})])  # fmt: skip
    assert publish_one(tree, r2) == {"2026-09"}

    # a new month; A narrower than r1/r2 (c=16 failed): the curve keeps r2
    r3 = add(tree, work, "r3", "2026-10-02",
             [make_result(A, run_id="r3", date="2026-10-02", statuses={2: "failed"}),
              make_result(B, run_id="r3", date="2026-10-02", statuses={0: "failed", 1: "not_run"})])  # fmt: skip
    assert publish_one(tree, r3) == set()  # a new partition; September untouched
    assert sorted(partition_files(tree)) == ["2026-09", "2026-10"]
    index = json.loads((tree / "index.json").read_text())
    assert index["store"]["partitions"] == {"2026-09": 10, "2026-10": 5}

    # re-run attempt 2 of r3: B's failed points are replaced by a complete document
    again = add(tree, work, "r3", "2026-10-02",
                [make_result(B, run_id="r3", date="2026-10-02", scale=0.9)], attempt=2)  # fmt: skip
    assert again == r3
    assert publish_one(tree, r3) == {"2026-10"}
    rows = read_points(tree)
    b_r3 = rows[(rows["run_id"] == "r3") & (rows["job_id"] == B["id"])]
    assert len(b_r3) == 2 and set(b_r3["status"]) == {"ok"}  # replaced, not duplicated

    # the recipe changed (B now sweeps 1, 8, 32) in November
    b2 = make_job(name="b", tp=2, concurrencies=(1, 8, 32))
    r4 = add(tree, work, "r4", "2026-11-05", [make_result(b2, run_id="r4", date="2026-11-05")])
    assert publish_one(tree, r4) == set()

    # a late run of September (published after November's): only September is rewritten
    r0 = add(tree, work, "r0", "2026-09-01", [make_result(A, run_id="r0", date="2026-09-01")])
    assert publish_one(tree, r0) == {"2026-09"}
    index = json.loads((tree / "index.json").read_text())
    assert [r["run_id"] for r in index["runs"]] == ["r0", "r1", "r2", "r3", "r4"]
    assert index["counts"]["rows"] == len(read_points(tree)) == 3 + 5 + 5 + 5 + 3


def test_history_is_not_copied(tmp_path: Path) -> None:
    tree, work = tmp_path / "tree", tmp_path / "art"
    for i in range(3):
        add(tree, work, f"h{i}", f"2026-11-0{i + 1}",
            [make_result(A, run_id=f"h{i}", date=f"2026-11-0{i + 1}")])  # fmt: skip
    files, _ = derive(tree)
    assert not any(name.startswith("data/history") for name in files)
    assert "data/points.json" not in files
    assert sum(1 for name in files if name.startswith(POINTS_DIR)) == 1


@pytest.mark.parametrize("change", ["prices", "legacy"])
def test_an_update_falls_back_to_a_full_rebuild_when_it_cannot_be_trusted(
    tmp_path: Path, change: str
) -> None:
    tree, work = tmp_path / "tree", tmp_path / "art"
    add(tree, work, "p1", "2026-11-01", [make_result(A, run_id="p1", date="2026-11-01")])
    write_derived(tree, build_derived(tree))
    if change == "prices":  # other prices change every stored $ column
        write_economics(tree, ECON)
    else:  # a branch of the older layout: one points.json, per-config history copies
        for p in (tree / POINTS_DIR).glob("*"):
            p.unlink()
        (tree / "data" / "points.json").write_text('{"columns": [], "rows": []}')
        (tree / "data" / "history").mkdir()
    p2 = add(tree, work, "p2", "2026-11-02", [make_result(A, run_id="p2", date="2026-11-02")])
    assert derive_run(tree, p2) is None
    rebuild(tree, site=False, run=p2)
    assert_same_as_full(tree)
    assert not (tree / "data" / "points.json").exists() and not (tree / "data" / "history").exists()
