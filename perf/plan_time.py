"""Plan the imported InferenceX catalog and print the planning time and the server-start counts.

Imports both of the incumbent's master configs (a copy under tests/data/plan/inferencex) into a
copy of tests/data/plan/inferencex-target, then times `load_catalog` + `expand` + selection +
JSON rendering (the work of `ixci plan --event schedule --format json`), best of N runs.
Prints the incumbent's own counts (one server start per concurrency) next to ixci's jobs (one
warm server per distinct launch). Not a test: a side-by-side measurement (target < 1 s).

    python perf/plan_time.py [--source DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ixci.catalog.catalog import load_catalog
from ixci.importer import import_inferencex, load_target, write_recipes
from ixci.plan import plan, selection

HERE = Path(__file__).resolve().parent.parent
TARGET = HERE / "tests" / "data" / "plan" / "inferencex-target"
SOURCE = HERE / "tests" / "data" / "plan" / "inferencex"  # a copy of ../shared/data/inferencex


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = [args.source / "nvidia-master.yaml", args.source / "amd-master.yaml"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        shutil.copytree(TARGET, root)
        t0 = time.perf_counter()
        converted, report = import_inferencex(files, load_target(root), spec_tokens=3)
        write_recipes(converted, root / "matrix" / "recipes")
        t_import = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            catalog = load_catalog(root)
            jobs = plan.expand(catalog)
            result = plan.make_plan(catalog, "schedule", selection.select_schedule(jobs))
            text = result.to_json()
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jobs = plan.expand(catalog)
        t_expand = time.perf_counter() - t0
    print(f"import: {len(converted)} recipes from {report.entries} entries in {t_import:.2f} s")
    _counts(report, result)
    print(f"plan JSON: {len(text)} bytes, {len(result.jobs)} jobs, {result.points} points")
    print(
        f"planning time (load + validate + expand + select + JSON), best of {args.repeat}: "
        f"{min(times):.3f} s (median {sorted(times)[len(times) // 2]:.3f} s; target < 1 s)"
    )
    print(f"  of which expansion alone: {t_expand * 1000:.1f} ms")


def _counts(report: object, result: plan.Plan) -> None:
    single = [
        j for j in result.jobs if not j.topology["disaggregated"] and j.topology["nodes"] == 1
    ]
    points = sum(len(j.points) for j in single)
    for count in report.incumbent:  # type: ignore[attr-defined]
        print(count.render())
    print(
        f"ixci (imported, single-node): {len(single)} single-node jobs from {points} points "
        f"= {len(single)} distinct launches; {points / max(len(single), 1):.2f} points per server start"
    )
    print(
        "  the incumbent's published figure: 690 single-node jobs from 235 distinct launches "
        f"(ratio {690 / 235:.2f}); ixci starts one server per distinct launch"
    )
    print(
        f"GPU-hours (whole plan): {result.gpu_hours:.1f} warm vs {result.restart_gpu_hours:.1f} "
        f"restarting per point (saving {result.restart_gpu_hours - result.gpu_hours:.1f} GPU-h)"
    )
    s_warm = sum(j.estimate.total_gpu_hours for j in single)
    s_restart = sum(j.estimate.restart_per_point_gpu_hours for j in single)
    print(
        f"GPU-hours (single-node): {s_warm:.1f} warm vs {s_restart:.1f} restarting per point "
        f"({100 * (s_restart - s_warm) / max(s_restart, 1e-9):.0f} % saved)"
    )


if __name__ == "__main__":
    main()
