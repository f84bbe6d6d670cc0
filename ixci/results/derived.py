"""The results branch's derived files: a full rebuild from the run folders, or one run's update.

Derived files (contracts.md §4, docs/results.md "Layout"): the point partitions and job rows
of `ixci.results.pointstore`, `data/latest.json` (the published curves), `index.json` and
`regressions.json`. `derive` builds them all from `runs/` (reading every artifact); `derive_run`
updates them for one run folder that was added or merged: it reads that run's artifacts, the
month partition it belongs to, the other partitions and the small `run.json`/`coverage.json`
of every run, and returns only the files that change (the touched month, latest, index,
regressions). Both give byte-identical files for the same tree (tests/collect/test_incremental.py).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ixci.results import pointstore as ps
from ixci.results.aggregate import Economics, columns_for, dump_columnar, tidy_table
from ixci.results.collect import dump_json
from ixci.results.curves import choose_curves, latest_rows, picked
from ixci.results.regress import AlertPolicy, regressions_document

DERIVED_FILES = ("index.json", "data/latest.json", "regressions.json")
LEGACY_FILES = ("data/points.json", "data/history")  # the layout before partitions
ECONOMICS_FILE = "economics.json"  # prices used for $ columns (an input, written by publish)
ALERTS_FILE = "alerts.json"  # the alert policy used for regressions.json (an input, likewise)
Book = dict[tuple[str, str], dict[str, Any]]
# What the index, curve selection and the regression walk read of the whole point table (with
# the alert policy's metrics): a year's partitions are read with these columns only, and in
# full only for the months that hold a published curve (tests/collect/test_incremental.py).
NARROW = frozenset((
    *ps.ORDER, "config_id", "status", "valid", "image", "image_digest", "job_name", "recipe",
    "model", "sku", "framework", "precision", "runner", "tp", "ep", "pp", "dcp", "dp_attention",
    "gpus", "disaggregated", "spec_decoding",
))  # fmt: skip


class _Months:
    """Each month's point table: held in memory (built by a rebuild, or the month just
    updated) or read from its partition on demand, only the columns asked for."""

    def __init__(self, held: Mapping[str, pa.Table], files: Mapping[str, Path], tree: Path) -> None:
        self.held = dict(held)
        self.files = {m: p for m, p in files.items() if m not in self.held}
        self.tree = tree
        self._meta = {m: pq.read_metadata(p) for m, p in self.files.items()}  # one footer read

    def names(self) -> list[str]:
        return sorted({*self.held, *self.files})

    def columns(self, m: str) -> list[str]:
        return list(self.held[m].column_names if m in self.held else self._meta[m].schema.names)

    def rows(self, m: str) -> int:
        return int(self.held[m].num_rows if m in self.held else self._meta[m].num_rows)

    def table(self, m: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Month `m` (only those of `columns` it has, when given)."""
        have = None if columns is None else [c for c in columns if c in self.columns(m)]
        if m in self.held:
            return self.held[m] if have is None else self.held[m].select(have)
        return ps.read_table(self.files[m], tree=self.tree, columns=have)


def load_runs(tree: Path) -> list[dict[str, Any]]:
    """Every run folder's run.json and coverage.json (not its artifacts), oldest first."""
    runs = []
    for meta_path in sorted(tree.glob("runs/*/*/*/*/run.json")):
        folder = meta_path.parent
        cov_path = folder / "coverage.json"
        runs.append(
            {
                "meta": orjson.loads(meta_path.read_bytes()),
                "path": folder.relative_to(tree).as_posix(),
                "coverage": orjson.loads(cov_path.read_bytes()) if cov_path.is_file() else {},
            }
        )
    runs.sort(key=lambda r: (str(r["meta"].get("date")), str(r["meta"]["run_id"])))
    return runs


def run_docs(tree: Path, path: str) -> list[dict[str, Any]]:
    """The published result documents of one run folder, in file-name order."""
    files = sorted((tree / path / "results").glob("*.json"))
    return [orjson.loads(p.read_bytes()) for p in files]


def economics(tree: Path) -> Economics:
    path = tree / ECONOMICS_FILE
    return Economics.from_json(orjson.loads(path.read_bytes()) if path.is_file() else None)


def _fingerprint(econ: Economics) -> str:
    """What the stored rows depend on besides the artifacts: the prices and kW (and layout)."""
    text = orjson.dumps({"store": ps.STORE_VERSION, "economics": econ.to_json()})
    return hashlib.sha256(text).hexdigest()[:16]


def alert_policy(tree: Path) -> AlertPolicy:
    path = tree / ALERTS_FILE
    if not path.is_file():
        return AlertPolicy()
    return AlertPolicy.from_json(orjson.loads(path.read_bytes()), file=ALERTS_FILE)


# --- full rebuild and one run's update ------------------------------------------------------


def build_derived(tree: Path) -> dict[str, bytes]:
    """Every derived file (path → bytes) as a pure function of `runs/`, `economics.json` and
    `alerts.json`."""
    return derive(tree)[0]


def derive(tree: Path) -> tuple[dict[str, bytes], Book]:
    """All derived files from every run folder, and the curve bookkeeping of
    `ixci.results.curves.choose_curves`."""
    runs, econ = load_runs(tree), economics(tree)
    month = {str(r["meta"]["run_id"]): ps.month_of(r["path"]) for r in runs}
    docs_of = {r["path"]: run_docs(tree, r["path"]) for r in runs}
    df = tidy_table([d for docs in docs_of.values() for d in docs], econ)
    points: dict[str, pd.DataFrame] = {}
    if len(df):
        key = df["run_id"].astype(str).map(month).fillna(df["run_date"].astype(str).str[:7])
        points = {str(m): rows for m, rows in df.groupby(key, sort=True)}
    jobs: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        jobs.setdefault(ps.month_of(r["path"]), []).extend(docs_of[r["path"]])
    months = _Months({m: ps.to_arrow(rows) for m, rows in points.items()}, {}, tree)
    job_frames = {m: ps.to_frame(ps.to_arrow(ps.job_rows(d))) for m, d in jobs.items() if d}
    return _finish(runs, econ, alert_policy(tree), months, job_frames, touched=None)


def derive_run(tree: Path, path: str) -> tuple[dict[str, bytes], Book] | None:
    """The derived files that change when run folder `path` was added or merged, or None when
    the tree's derived files cannot be updated (no partitions yet, the older layout, other
    prices, or partitions that do not match index.json): then rebuild in full."""
    econ, index_path = economics(tree), tree / "index.json"
    if not index_path.is_file():
        return None
    store = orjson.loads(index_path.read_bytes()).get("store") or {}
    files = ps.partition_files(tree)
    if store.get("fingerprint") != _fingerprint(econ) or sorted(
        store.get("partitions") or {}
    ) != sorted(files):
        return None
    runs, m = load_runs(tree), ps.month_of(path)
    run_id = next((str(r["meta"]["run_id"]) for r in runs if r["path"] == path), None)
    if run_id is None:
        return None
    docs = run_docs(tree, path)
    old = ps.read_partition(files[m], tree=tree) if m in files else None
    kept = old[old["run_id"] != run_id] if old is not None else None
    new = ps.to_frame(ps.to_arrow(tidy_table(docs, econ)))
    month_rows = ps.combine([f for f in (kept, new) if f is not None and len(f)])
    if not len(month_rows):
        return None
    months = _Months({m: ps.to_arrow(month_rows)}, files, tree)
    job_files = ps.partition_files(tree, ps.JOBS_DIR)
    job_frames = {k: ps.read_partition(p, tree=tree) for k, p in job_files.items()}
    old_jobs = job_frames.get(m)
    parts = [f for f in (old_jobs[old_jobs["run_id"] != run_id] if old_jobs is not None else None,
                         ps.job_rows(docs)) if f is not None and len(f)]  # fmt: skip
    if parts:
        job_frames[m] = ps.to_frame(ps.to_arrow(ps.sort_jobs(pd.concat(parts, ignore_index=True))))
    return _finish(runs, econ, alert_policy(tree), months, job_frames, touched={m})


def _finish(runs: Sequence[Mapping[str, Any]], econ: Economics, policy: AlertPolicy,
            months: _Months, job_frames: Mapping[str, pd.DataFrame],
            *, touched: set[str] | None) -> tuple[dict[str, bytes], Book]:  # fmt: skip
    """The small files from the whole point table, plus the partitions in `touched` (all when
    None). Point partitions come as stored tables (`pointstore.to_arrow`) and job rows in
    their stored types (`pointstore.to_frame`), whichever path made them, so a full rebuild
    and one run's update give the same bytes. The whole table is read with the `NARROW`
    columns; the published curves' rows in full from the months that hold them."""
    names = months.names()
    every = ps.canonical_columns(c for m in names for c in months.columns(m))
    need = [c for c in every if c in NARROW or c in policy.metrics]
    narrow = [months.table(m, need) for m in names]
    df = ps.combine_tables(narrow, need)
    jobs = pd.concat([f for _, f in sorted(job_frames.items())] or [ps.job_rows([])],
                     ignore_index=True)  # fmt: skip
    order = [str(r["meta"]["run_id"]) for r in runs]
    book = choose_curves(df, order, ps.plans_of(jobs)) if len(df) else {}
    if len(df):
        runs_needed = pa.array(sorted({r for _, _, r in picked(book)}), type=pa.string())
        held = [m for m, t in zip(names, narrow, strict=True)
                if pc.any(pc.is_in(t.column("run_id"), value_set=runs_needed)).as_py()]  # fmt: skip
        full = ps.combine_tables([months.table(m) for m in held], every) if held else None
        latest = latest_rows(full, book) if full is not None else df.iloc[0:0]
        out_latest = dump_columnar(latest[every] if len(latest) else pd.DataFrame(columns=every))
    else:
        df = pd.DataFrame({c: pd.Series(dtype="object") for c in columns_for(econ.tiers)})
        out_latest = dump_columnar(df.iloc[0:0])
    out: dict[str, bytes] = {}
    for m in sorted(names if touched is None else touched):
        out[f"{ps.POINTS_DIR}/{m}.parquet"] = ps.parquet_bytes(months.table(m))
    for m in sorted(job_frames if touched is None else touched & set(job_frames)):
        out[f"{ps.JOBS_DIR}/{m}.parquet"] = ps.parquet_bytes(ps.to_arrow(job_frames[m]))
    out["data/latest.json"] = out_latest
    index = _index(runs, econ, df, book, jobs, {m: months.rows(m) for m in names})
    out["index.json"] = dump_json(index).encode()
    out["regressions.json"] = dump_json(regressions_document(df, runs, order, policy)).encode()
    return out, book


def _index(runs: Sequence[Mapping[str, Any]], econ: Economics, df: pd.DataFrame, book: Book,
           jobs: pd.DataFrame, counts: Mapping[str, int]) -> dict[str, Any]:  # fmt: skip
    partial_runs = {r for v in book.values() for r in v["partial_runs"]}
    return {
        "index_version": 1,
        "columns": columns_for(econ.tiers),
        "schema_versions": {
            "result": sorted({v for r in runs for v in r["meta"].get("schema_versions", [])})
        },
        "counts": {
            "runs": len(runs),
            "rows": len(df),
            "configs": int(df["config_id"].nunique()) if len(df) else 0,
        },
        "store": {
            "format": "parquet",
            "points": ps.POINTS_DIR,
            "jobs": ps.JOBS_DIR,
            "fingerprint": _fingerprint(econ),
            "partitions": dict(sorted(counts.items())),
        },
        "runs": [_run_entry(r, partial_runs) for r in runs],
        "configs": _config_entries(df, book) if len(df) else [],
        "jobs": _job_history(runs, jobs),
    }


def _config_entries(df: pd.DataFrame, book: Book) -> list[dict[str, Any]]:
    ident = [
        "config_id", "model", "sku", "framework", "precision", "runner", "tp", "ep", "pp", "dcp",
        "dp_attention", "gpus", "disaggregated", "spec_decoding",
    ]  # fmt: skip
    firsts = df.drop_duplicates("config_id")[ident].sort_values("config_id")
    entries = []
    for rec in firsts.to_dict(orient="records"):
        cfg = str(rec["config_id"])
        curves = [
            {"scenario": s, **{k: x for k, x in v.items() if k != "shrinks"}}
            for (c, s), v in sorted(book.items())
            if c == cfg
        ]
        entries.append({**{str(k): _plain(v) for k, v in rec.items()}, "curves": curves})
    return entries


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _job_history(
    runs: Sequence[Mapping[str, Any]], jobs: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Job id → {last_measured, last_run}: the planner's rotation reads this (contracts.md §4)."""
    of_run: dict[str, set[str]] = {}
    for run, job in zip(jobs["run_id"], jobs["job_id"], strict=True):
        of_run.setdefault(str(run), set()).add(str(job))
    out: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first, so the last write wins
        rid = str(run["meta"]["run_id"])
        for job in of_run.get(rid, ()):
            out[job] = {"last_measured": run["meta"].get("date"), "last_run": run["meta"]["run_id"]}
    return dict(sorted(out.items()))


def _run_entry(run: Mapping[str, Any], partial_runs: set[str]) -> dict[str, Any]:
    meta, summary = run["meta"], run["coverage"].get("summary", {})
    complete = bool(summary.get("complete"))
    return {
        "run_id": meta["run_id"],
        "date": meta.get("date"),
        "path": run["path"],
        "event": meta.get("event"),
        "repository": meta.get("repository"),
        "git_sha": meta.get("git_sha"),
        "status": "complete" if complete else "partial",
        "narrower_than_latest": meta["run_id"] in partial_runs,
        "coverage": summary,
    }


def write_derived(tree: Path, files: Mapping[str, bytes], *, full: bool = True) -> None:
    """Write `files` into `tree`. With `full` (a `build_derived` result) the partition folders
    and the older layout's files are cleared first, so nothing stale stays."""
    if full:
        for rel in (ps.POINTS_DIR, ps.JOBS_DIR, *LEGACY_FILES):
            path = tree / rel
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    for rel, data in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
