"""Publishing one more nightly into a year-long results branch, side by side with today's main.

Builds a year of nightlies (RUNS runs, one a day from 2026-01-01, each JOBS jobs × POINTS points
of schema-valid artifacts from tests/collect/factory.py; not timed), then measures in one run:

  full rebuild (new)     `ixci.results.derived.derive` + write: every artifact read once, month
                         partitions written (what a branch of the older layout gets once)
  one more nightly       collect its artifacts, stage its run folder, `derive_run` + write: the
                         run's month partition and the small files (what `ixci publish` does
                         now, before git); the site build is timed on its own
  main full rebuild      with --main DIR (a checkout of the code before this layout): its
                         `build_derived` + `write_derived` over the same run folders, in a
                         subprocess: what publishing one more nightly costs there
  growth per nightly     bytes a nightly adds or rewrites on the branch: its run folder plus the
                         derived files it changes (new) / plus every derived file (main)
  1,000,000 rows         with --million: the same one-more-nightly update over a store of
                         ≥ 1,000,000 rows (partitions synthesized from one run's tidy rows);
                         with --million-vs CHECKOUT only that, side by side with CHECKOUT's code

Not a test; prints the figures. The machine's load average is printed with them.

    python perf/publish_time.py [--runs 365 --jobs 40 --points 20] [--main DIR] [--million]
    python perf/publish_time.py --million-vs CHECKOUT [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pandas as pd
from collect.factory import make_job, make_result

from ixci.results import pointstore as ps
from ixci.results.aggregate import Economics, tidy_table
from ixci.results.collect import collect, dump_json
from ixci.results.derived import ECONOMICS_FILE, build_derived, derive_run, write_derived
from ixci.results.runfolder import stage_attempt

ECON = Economics(
    usd_per_gpu_hour={"h100": {"hyperscaler": 1.30, "neocloud": 1.69, "rental_3y": 1.30}},
    all_in_kw={"h100": 1.73},
)
START = dt.date(2026, 1, 1)
MAIN_CODE = """
import sys, time
from pathlib import Path
from ixci.results.publish import build_derived, write_derived
tree = Path(sys.argv[1])
t0 = time.perf_counter()
files = build_derived(tree)
write_derived(tree, files)
print(time.perf_counter() - t0, sum(len(v) for v in files.values()), len(files))
"""


def templates(jobs: int, points: int) -> list[dict[str, Any]]:
    concs = tuple(2**i for i in range(points))
    # tp divides the 8 GPUs, or collect rejects the nightly's artifact (gpu_count)
    return [
        make_job(name=f"cfg{j}", tp=2 ** (j % 4), gpus=8, concurrencies=concs) for j in range(jobs)
    ]


def day(r: int) -> str:
    return (START + dt.timedelta(days=r)).isoformat()


def write_run(tree: Path, r: int, jobs: list[dict[str, Any]]) -> int:
    """Run r's folder as publish writes it (run.json, coverage.json, results/)."""
    run_id, date = f"{90000 + r}", day(r)
    folder = tree / "runs" / date[:4] / date[5:7] / date[8:10] / run_id
    (folder / "results").mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "date": f"{date}T00:00:00Z",
        "event": "schedule",
        "schema_versions": [1],
    }
    (folder / "run.json").write_text(dump_json(meta))
    (folder / "coverage.json").write_text(dump_json({"summary": {"complete": True}, "jobs": []}))
    rows = 0
    for job in jobs:
        doc = make_result(job, run_id=run_id, date=date, scale=1.0 + 0.01 * (r % 7))
        (folder / "results" / f"{job['id']}.json").write_text(json.dumps(doc))
        rows += len(doc["points"])
    return rows


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def derived_bytes(tree: Path) -> int:
    names = [tree / "index.json", tree / "regressions.json", tree / "data"]
    return sum(tree_bytes(p) if p.is_dir() else p.stat().st_size for p in names if p.exists())


def one_more_nightly(tree: Path, tmp: Path, r: int, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Publish run r into `tree` the way `ixci publish` does, before git: timed parts."""
    run_id, date = f"{90000 + r}", day(r)
    arts = tmp / f"artifacts-{run_id}"
    for job in jobs:
        (arts / job["id"]).mkdir(parents=True)
        doc = make_result(job, run_id=run_id, date=date, scale=0.97)
        (arts / job["id"] / "result.json").write_text(json.dumps(doc))
    before = {p: p.read_bytes() for p in (tree / "data").rglob("*") if p.is_file()}
    small = (tree / "index.json", tree / "regressions.json")
    before.update({p: p.read_bytes() for p in small if p.is_file()})
    t0 = time.perf_counter()
    col = collect([arts], run_id=run_id)
    t1 = time.perf_counter()
    assert not col.skipped, col.skipped[:1]
    staged = stage_attempt(tree, col, run_id, date=date, run_attempt=1)
    t2 = time.perf_counter()
    update = derive_run(tree, staged.folder)
    assert update is not None, "the update fell back to a full rebuild"
    write_derived(tree, update[0], full=False)
    t3 = time.perf_counter()
    changed = sum(len(data) for rel, data in update[0].items() if before.get(tree / rel) != data)
    return {
        "collect": t1 - t0, "stage": t2 - t1, "derive": t3 - t2, "total": t3 - t0,
        "run_folder_bytes": tree_bytes(tree / staged.folder), "derived_rewritten": changed,
        "files": sorted(update[0]),
    }  # fmt: skip


def run_main(main: Path, tree: Path, tmp: Path) -> tuple[float, int, int]:
    """Main's full rebuild over a hard-linked copy of `tree`'s run folders."""
    copy = tmp / "main-tree"
    shutil.copytree(tree / "runs", copy / "runs", copy_function=os.link)
    shutil.copy(tree / ECONOMICS_FILE, copy / ECONOMICS_FILE)
    env = {**os.environ, "PYTHONPATH": str(main)}
    # cwd=main: `python -c` puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", MAIN_CODE, str(copy)], env=env, check=True,
                         capture_output=True, text=True, cwd=main).stdout.split()  # fmt: skip
    shutil.rmtree(copy)
    return float(out[0]), int(out[1]), int(out[2])


def million(
    tmp: Path, jobs: list[dict[str, Any]], target: int, tree: Path | None = None
) -> dict[str, Any]:
    """A store of ≥ `target` rows (`million_store`), then time one more nightly's update over
    it (in `tree`, default a folder under `tmp`)."""
    tree = tree or tmp / "million"
    rows, nights = million_store(tree, jobs, target)
    res = one_more_nightly(tree, tmp, nights, jobs)
    return {"rows": rows, "nights": nights, **res, "store_bytes": tree_bytes(tree / "data")}


def million_store(tree: Path, jobs: list[dict[str, Any]], target: int) -> tuple[int, int]:
    """A store of ≥ `target` rows in `tree` (one run's tidy rows repeated a night at a time;
    run folders without artifacts): (rows, nights)."""
    docs = [make_result(j, run_id="proto", date=day(0)) for j in jobs]
    proto = ps.to_frame(ps.to_arrow(tidy_table(docs, ECON)))
    proto_jobs = ps.job_rows(docs)
    nights = -(-target // len(proto))
    months: dict[str, list[pd.DataFrame]] = {}
    job_months: dict[str, list[pd.DataFrame]] = {}
    for r in range(nights):
        run_id, date = f"{90000 + r}", day(r)
        folder = tree / "runs" / date[:4] / date[5:7] / date[8:10] / run_id
        folder.mkdir(parents=True)
        meta = {"run_id": run_id, "date": f"{date}T00:00:00Z", "event": "schedule",
                "schema_versions": [1]}  # fmt: skip
        (folder / "run.json").write_text(dump_json(meta))
        (folder / "coverage.json").write_text(
            dump_json({"summary": {"complete": True}, "jobs": []})
        )
        rows = proto.assign(run_id=run_id, run_date=date,
                            tput_per_gpu=proto["tput_per_gpu"] * (1 + 0.01 * (r % 7)))  # fmt: skip
        months.setdefault(date[:7], []).append(rows)
        job_months.setdefault(date[:7], []).append(proto_jobs.assign(run_id=run_id))
    (tree / ECONOMICS_FILE).write_text(dump_json(ECON.to_json()))
    counts = {}
    for m, frames in months.items():
        df = ps.sort_rows(pd.concat(frames, ignore_index=True))
        counts[m] = len(df)
        (tree / ps.POINTS_DIR).mkdir(parents=True, exist_ok=True)
        (tree / ps.POINTS_DIR / f"{m}.parquet").write_bytes(ps.parquet_bytes(ps.to_arrow(df)))
        jobs_df = ps.sort_jobs(pd.concat(job_months[m], ignore_index=True))
        (tree / ps.JOBS_DIR).mkdir(parents=True, exist_ok=True)
        (tree / ps.JOBS_DIR / f"{m}.parquet").write_bytes(ps.parquet_bytes(ps.to_arrow(jobs_df)))
    from ixci.results.derived import _fingerprint

    index = {"store": {"fingerprint": _fingerprint(ECON), "partitions": counts}}
    (tree / "index.json").write_text(dump_json(index))
    return sum(counts.values()), nights


CHILD = """
import json, sys
from pathlib import Path
code, tree, tmp, r, jobs, points = sys.argv[1:7]
sys.path[:0] = [code, code + "/perf", code + "/tests"]
import publish_time as pt
out = pt.one_more_nightly(Path(tree), Path(tmp), int(r), pt.templates(int(jobs), int(points)))
print(json.dumps({k: v for k, v in out.items() if isinstance(v, float)}))
"""


def million_side_by_side(
    tmp: Path, main: Path, jobs: int, points: int, target: int, repeats: int
) -> dict[str, list[dict[str, float]]]:
    """One more nightly into the same ≥ `target`-row store, with `main`'s code and this
    checkout's, interleaved `repeats` times, each on a fresh copy and in its own process."""
    store = tmp / "store"
    _, nights = million_store(store, templates(jobs, points), target)
    here = Path(__file__).resolve().parents[1]
    out: dict[str, list[dict[str, float]]] = {"main": [], "new": []}
    for rep in range(repeats):
        for name, code in (("main", main.resolve()), ("new", here)):
            tree, work = tmp / f"{name}-{rep}", tmp / f"work-{name}-{rep}"
            shutil.copytree(store, tree)
            work.mkdir()
            argv = [sys.executable, "-c", CHILD, str(code), str(tree), str(work), str(nights),
                    str(jobs), str(points)]  # fmt: skip
            # cwd=code: `python -c` puts the working directory first on sys.path
            done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=code)
            res = json.loads(done.stdout.strip().splitlines()[-1])
            out[name].append(res)
            print(f"  {name} #{rep + 1}: one more nightly {res['total']:.2f} s (collect "
                  f"{res['collect']:.2f} + stage {res['stage']:.2f} + derive and write "
                  f"{res['derive']:.2f}) · load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
            shutil.rmtree(tree)
            shutil.rmtree(work)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs", type=int, default=365, help="nightlies in the year (the last one is published)"
    )
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--main", type=Path, help="a checkout of main, to time its full rebuild")
    ap.add_argument("--million", action="store_true", help="also time the update over 1M rows")
    ap.add_argument("--site", action="store_true", help="also time the site build over the year")
    ap.add_argument(
        "--million-vs",
        type=Path,
        metavar="CHECKOUT",
        help="only time one more nightly into 1,000,000 rows, side by side with CHECKOUT's code "
        "(e.g. a worktree of main), interleaved --repeats times",
    )
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats for --million-vs")
    ap.add_argument(
        "--store-only",
        type=Path,
        metavar="DIR",
        help="only synthesize a year's store (RUNS nights, no old artifacts) into DIR, "
        "publish one more nightly into it and keep it (for perf/site_interactive.py --data)",
    )
    args = ap.parse_args()
    if args.store_only is not None:
        with tempfile.TemporaryDirectory(prefix="ixci-perf-store-") as tmp_name:
            rows = (args.runs - 1) * args.jobs * args.points
            res = million(Path(tmp_name), templates(args.jobs, args.points), rows, args.store_only)
        print(
            f"{args.store_only}: {res['rows']:,} rows over {res['nights']} nights + one more "
            f"nightly in {res['total']:.2f} s (derive and write {res['derive']:.2f} s)"
        )
        return
    if args.million_vs is not None:
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; 1,000,000 rows, "
              f"nightly of {args.jobs} jobs x {args.points} points")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="ixci-perf-million-") as tmp_name:
            both = million_side_by_side(Path(tmp_name), args.million_vs, args.jobs, args.points,
                                        1_000_000, args.repeats)  # fmt: skip
        med = {k: sorted(r["total"] for r in v)[len(v) // 2] for k, v in both.items()}
        print(f"median one more nightly: {args.million_vs} {med['main']:.2f} s, this checkout "
              f"{med['new']:.2f} s: {med['main'] / med['new']:.2f}x (target < 10 s: "
              f"{'OK' if med['new'] < 10 else 'TOO SLOW'})")  # fmt: skip
        return
    jobs = templates(args.jobs, args.points)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="ixci-perf-publish-") as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "tree"
        t0 = time.perf_counter()
        rows = sum(write_run(tree, r, jobs) for r in range(args.runs - 1))
        (tree / ECONOMICS_FILE).write_text(dump_json(ECON.to_json()))
        t1 = time.perf_counter()
        print(f"year: {args.runs - 1} runs × {args.jobs} jobs × {args.points} points = {rows:,} "
              f"rows in the branch ({rows // (args.runs - 1)} rows/run); artifacts "
              f"{tree_bytes(tree / 'runs') / 1e6:.0f} MB written in {t1 - t0:.0f} s (not timed)")  # fmt: skip
        files = build_derived(tree)
        write_derived(tree, files)
        t2 = time.perf_counter()
        full_bytes = derived_bytes(tree)
        print(f"full rebuild (new): {t2 - t1:.1f} s · derived files {full_bytes / 1e6:.1f} MB "
              f"({len(list((tree / ps.POINTS_DIR).glob('*.parquet')))} month partitions)")  # fmt: skip
        nightly = one_more_nightly(tree, tmp, args.runs - 1, jobs)
        print(f"one more nightly (new): {nightly['total']:.2f} s = collect {nightly['collect']:.2f}"
              f" + stage {nightly['stage']:.2f} + derive and write {nightly['derive']:.2f} · "
              f"files written: {', '.join(nightly['files'])}")  # fmt: skip
        print(f"growth per nightly (new): run folder {nightly['run_folder_bytes'] / 1e6:.2f} MB + "
              f"derived rewritten {nightly['derived_rewritten'] / 1e6:.2f} MB")  # fmt: skip
        if args.site:
            from ixci.site import build_site

            t3 = time.perf_counter()
            build_site(tree, tmp / "site")
            t4 = time.perf_counter()
            js = (tmp / "site" / "data" / "site.js").stat().st_size / 1e6
            print(f"site build over the year: {t4 - t3:.1f} s · data/site.js {js:.1f} MB")
        if args.main is not None:
            secs, size, count = run_main(args.main, tree, tmp)
            print(f"main: one more nightly = full rebuild of {args.runs} runs: {secs:.1f} s · "
                  f"{count} derived files, {size / 1e6:.1f} MB, all rewritten")  # fmt: skip
            print(f"ratio main / new, one more nightly: {secs / nightly['total']:.1f}× · derived "
                  f"bytes rewritten per nightly: {size / max(nightly['derived_rewritten'], 1):.0f}×"
                  f" · derived size: {size / full_bytes:.1f}×")  # fmt: skip
    if args.million:
        with tempfile.TemporaryDirectory(prefix="ixci-perf-million-") as tmp_name:
            res = million(Path(tmp_name), jobs, 1_000_000)
            print(f"1M rows: store of {res['rows']:,} rows ({res['nights']} nights, "
                  f"{res['store_bytes'] / 1e6:.1f} MB): one more nightly {res['total']:.2f} s "
                  f"(derive and write {res['derive']:.2f} s; target < 10 s: "
                  f"{'OK' if res['total'] < 10 else 'TOO SLOW'})")  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
