"""Time aggregating 100,000 point rows and writing the results-branch files (target < 10 s).

Builds a results tree of RUNS runs × JOBS jobs × POINTS points of schema-valid artifacts
(tests/collect/factory.py), then times `ixci.results.publish.build_derived` — the full rebuild: read
every result, tidy table, derived metrics, Pareto fronts, month partitions, latest-curve
selection, index, regressions — and `write_derived`. Not a test; prints the numbers. What a
publish does (one more run into a long history) is timed by perf/publish_time.py.

    python perf/aggregate_time.py [--runs 100 --jobs 50 --points 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from collect.factory import make_job, make_result

from ixci.results.aggregate import Economics
from ixci.results.collect import dump_json
from ixci.results.publish import ECONOMICS_FILE, build_derived, write_derived

ECON = Economics(
    usd_per_gpu_hour={"h100": {"hyperscaler": 1.30, "neocloud": 1.69, "rental_3y": 1.30}},
    all_in_kw={"h100": 1.73},
)


def make_tree(root: Path, runs: int, jobs: int, points: int) -> int:
    concs = tuple(2**i for i in range(points))
    templates = [
        make_job(name=f"cfg{j}", tp=1 + j % 8, gpus=8, concurrencies=concs) for j in range(jobs)
    ]
    rows = 0
    for r in range(runs):
        run_id = f"{9000 + r}"
        date = f"2026-{1 + r // 28 % 12:02d}-{1 + r % 28:02d}"
        folder = root / "runs" / date[:4] / date[5:7] / date[8:10] / run_id
        (folder / "results").mkdir(parents=True)
        (folder / "run.json").write_text(
            dump_json({"run_id": run_id, "date": f"{date}T00:00:00Z", "schema_versions": [1]})
        )
        (folder / "coverage.json").write_text(dump_json({"summary": {"complete": True}}))
        for job in templates:
            for p in job["points"]:
                p["concurrency"] = p["concurrency"]  # same points every run: a full curve
            doc = make_result(job, run_id=run_id, date=date, scale=1.0 + 0.01 * (r % 7))
            (folder / "results" / f"{job['id']}.json").write_text(json.dumps(doc))
            rows += len(doc["points"])
    (root / ECONOMICS_FILE).write_text(dump_json(ECON.to_json()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--points", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ixci-perf-") as tmp:
        tree = Path(tmp)
        t0 = time.perf_counter()
        rows = make_tree(tree, args.runs, args.jobs, args.points)
        t1, c1 = time.perf_counter(), time.process_time()
        files = build_derived(tree)
        t2 = time.perf_counter()
        write_derived(tree, files)
        t3, c3 = time.perf_counter(), time.process_time()
        size = sum(len(v) for v in files.values())
        print(f"rows: {rows:,} ({args.runs} runs × {args.jobs} jobs × {args.points} points)")
        print(f"generate artifacts (not timed): {t1 - t0:.2f} s")
        print(f"aggregate + derive (read, tidy, Pareto, latest, history, index): {t2 - t1:.2f} s")
        print(f"write {len(files)} branch files ({size / 1e6:.1f} MB): {t3 - t2:.2f} s")
        total = t3 - t1
        print(
            f"TOTAL {total:.2f} s wall, {c3 - c1:.2f} s CPU of this process "
            f"(target < 10 s: {'OK' if total < 10 else 'TOO SLOW'})"
        )


if __name__ == "__main__":
    main()
