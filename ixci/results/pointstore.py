"""The results branch's point table on disk: Parquet partitions by month, one reader, one writer.

`data/points/YYYY-MM.parquet` holds the tidy rows (`ixci.results.aggregate.tidy_table`) of every run
whose folder is `runs/YYYY/MM/…`, sorted like the tidy table; each row is stored once (the
history of a configuration is a filter over the partitions, never a copy). Beside it,
`data/jobs/YYYY-MM.parquet` holds one row per (run, job, planned scenario) with the fingerprint
of the points the job planned: what curve selection and the planner's rotation need from the
artifacts, so a publish never re-reads old artifacts.

Column types are fixed by column name (`arrow_type`), not inferred from the rows, so the same
rows give the same bytes whichever way they arrive (a full rebuild or one more run). A branch
written before this layout (one `data/points.json`) is still read, until the next publish
rewrites it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ixci.errors import InvalidInput, Problem
from ixci.loadgen.sessions_metrics import SESSION_COLUMNS
from ixci.results.aggregate import columns_for, config_id, from_columnar

POINTS_DIR = "data/points"
JOBS_DIR = "data/jobs"
LEGACY_POINTS = "data/points.json"
STORE_VERSION = 1
ORDER: tuple[str, ...] = (
    "run_date", "run_id", "job_id", "scenario", "concurrency", "request_rate", "point_id",
)  # fmt: skip  # tidy_table's row order
JOB_COLUMNS: tuple[str, ...] = ("run_id", "job_id", "config_id", "scenario", "plan")

STRING_COLUMNS = frozenset((
    "run_id", "run_date", "job_id", "point_id", "config_id", "job_name", "recipe", "model",
    "model_id", "scenario", "precision", "sku", "framework", "runner", "image", "image_digest",
    "spec_decoding", "status", "roofline_binding", "roofline_window", "engine_version", "plan",
))  # fmt: skip
INT_COLUMNS = frozenset((
    "isl", "osl", "tp", "ep", "pp", "dcp", "gpus", "prefill_gpus", "decode_gpus", "concurrency",
    "repeats",
))  # fmt: skip
NULLABLE_INT = ("prefill_gpus", "decode_gpus", "concurrency")  # tidy_table's Int64 columns
BOOL_COLUMNS = frozenset(
    ("dp_attention", "disaggregated", "valid", "power_valid", "on_front", "client_saturated")
)
_MONTH = re.compile(r"\d{4}-\d{2}")
_WRITE = {"compression": "zstd", "compression_level": 9, "use_dictionary": True}


def arrow_type(column: str) -> pa.DataType:
    """The stored type of a column: strings, 64-bit ints, booleans; every other one float64."""
    if column in STRING_COLUMNS:
        return pa.string()
    if column in INT_COLUMNS:
        return pa.int64()
    if column in BOOL_COLUMNS:
        return pa.bool_()
    return pa.float64()


def month_of(run_path: str) -> str:
    """`runs/YYYY/MM/DD/<id>` → "YYYY-MM" (the partition a run's rows live in)."""
    parts = run_path.split("/")
    return f"{parts[1]}-{parts[2]}"


def _array(col: pd.Series, kind: pa.DataType) -> pa.Array:
    if kind == pa.float64():
        return pa.array(pd.to_numeric(col, errors="coerce").astype("float64"), from_pandas=True)
    if kind == pa.int64():
        return pa.array(pd.to_numeric(col, errors="coerce").astype("Int64"), type=kind)
    values = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v
              for v in col.tolist()]  # fmt: skip
    if kind == pa.bool_():
        return pa.array([None if v is None else bool(v) for v in values], type=kind)
    return pa.array([None if v is None else str(v) for v in values], type=kind)


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """A frame as a table of the stored types, in the frame's column order.

    Optional session columns without a value in these rows are left out (they are added back,
    empty, when partitions are read together), so a month's bytes depend on its rows only.
    """
    cols = [c for c in df.columns if c not in SESSION_COLUMNS or df[c].notna().any()]
    arrays = [_array(df[c], arrow_type(c)) for c in cols]
    schema = pa.schema([pa.field(c, arrow_type(c)) for c in cols])
    return pa.Table.from_arrays(arrays, schema=schema)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A stored table as the tidy table's pandas types (nullable Int64 where tidy_table has them)."""
    strings = [c for c in table.column_names if c in STRING_COLUMNS]
    df: pd.DataFrame = table.drop_columns(strings).to_pandas()
    if not len(df.columns):  # only strings: the frame still has the table's rows
        df = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for col in strings:  # plain objects: row-wise readers iterate them ~10× faster
        df[col] = pd.Series(_objects(table.column(col)), index=df.index, dtype=object)
    df = df[table.column_names]
    for col in NULLABLE_INT:
        if col in df.columns:
            df[col] = df[col].astype("Int64")
    return df


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A string column as an object array of str and None, through its dictionary (a few
    hundred distinct values in a million rows): ~2.5× faster than pandas' str → object."""
    encoded = column.dictionary_encode().combine_chunks()
    values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    out: np.ndarray = values[encoded.indices.fill_null(len(values) - 1).to_numpy()]
    return out


def plain_columns(df: pd.DataFrame) -> dict[str, list[Any]]:
    """Each column as a list of plain Python values, None for missing and non-finite."""
    out: dict[str, list[Any]] = {}
    for name in df.columns:
        col = df[name]
        if col.dtype.kind == "f":
            arr = col.to_numpy()
            values: list[Any] = arr.tolist()
            for i in np.flatnonzero(~np.isfinite(arr)):
                values[i] = None
        elif (
            col.dtype.kind in "iub"
            and not col.hasnans
            and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
        ):
            values = col.to_numpy().tolist()
        else:
            values = col.astype(object).where(col.notna(), None).tolist()
        out[str(name)] = values
    return out


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes (zstd, dictionary-encoded strings, no pandas metadata)."""
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(None), sink, **_WRITE)
    return sink.getvalue()


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The tidy table's row order (a stable sort)."""
    return df.sort_values(list(ORDER), kind="mergesort", na_position="first").reset_index(drop=True)


def canonical_columns(present: Iterable[str]) -> list[str]:
    """The tidy table's column order for the columns present (tiers read from the names)."""
    have = list(dict.fromkeys(present))
    tiers = sorted(c[len("usd_per_mtok_") :] for c in have if c.startswith("usd_per_mtok_"))
    order = [*columns_for(tiers), *SESSION_COLUMNS]
    known = [c for c in order if c in have]
    return known + [c for c in have if c not in order]


def combine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Partitions (each in tidy order) → one tidy table: union of columns, tidy order."""
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    cols = canonical_columns(c for f in frames for c in f.columns)
    df = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    for col in NULLABLE_INT:
        if col in df.columns:
            df[col] = df[col].astype("Int64")
    return sort_rows(df)


def combine_tables(
    tables: Sequence[pa.Table], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Stored partitions → one tidy table, as `combine` of their frames gives it, but joined and
    sorted in Arrow and converted to pandas once: over a year of partitions the per-partition
    conversions and pandas' concat cost more than everything else in reading the table.
    `columns`: the table's columns (default: the union of the partitions'), in tidy order; one
    a partition lacks is empty there."""
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return pd.DataFrame()
    cols = canonical_columns(columns or [c for t in tables for c in t.column_names])
    kinds = {c: arrow_type(c) for c in cols}
    aligned = [
        pa.Table.from_arrays(
            [t.column(c).cast(kinds[c]) if c in t.column_names else pa.nulls(t.num_rows, kinds[c])
             for c in cols],
            schema=pa.schema([pa.field(c, kinds[c]) for c in cols]),
        )
        for t in tables
    ]  # fmt: skip
    table = pa.concat_tables(aligned)
    df = to_frame(table)
    keys = [(c, "ascending", "at_start") for c in ORDER if c in cols]
    if keys and table.num_rows > 1:  # a stable sort; partitions in month order usually are one
        order = pc.sort_indices(table, sort_keys=keys).to_numpy()
        if (order != np.arange(len(order))).any():  # Arrow's take over many chunks is slow
            df = df.take(order).reset_index(drop=True)
    return df


# --- plans and jobs ---------------------------------------------------------------------


def plan_fingerprint(points: Iterable[tuple[Any, Any]]) -> str:
    """A short digest of a set of planned (concurrency, request rate) points."""
    norm = sorted({(c, r) for c, r in points}, key=lambda p: (p[0] is None, p[0] or 0,
                                                               p[1] is None, p[1] or 0))  # fmt: skip
    return hashlib.sha256(json.dumps(norm).encode()).hexdigest()[:16]


def job_rows(docs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (run, job, planned scenario): config and the plan's fingerprint per
    (config, scenario, run), over all of that run's documents (`ixci.results.curves.planned_points`);
    a job that planned no points has one row with no scenario. Sorted (`sort_jobs`)."""
    planned: dict[tuple[str, str, str], set[tuple[Any, Any]]] = {}
    for doc in docs:
        cfg, run = config_id(doc["job"]), str(doc["run"]["run_id"])
        for p in doc["job"].get("points") or []:
            planned.setdefault((cfg, str(p.get("scenario")), run), set()).add(
                (p.get("concurrency"), p.get("request_rate"))
            )
    prints = {k: plan_fingerprint(v) for k, v in planned.items()}
    rows: list[tuple[Any, ...]] = []
    for doc in docs:
        cfg, run, job = config_id(doc["job"]), str(doc["run"]["run_id"]), str(doc["job"]["id"])
        scens = sorted({s for (c, s, r) in prints if c == cfg and r == run})
        rows += [(run, job, cfg, s, prints[(cfg, s, run)]) for s in scens] or [
            (run, job, cfg, None, None)
        ]
    return sort_jobs(pd.DataFrame(rows, columns=list(JOB_COLUMNS)))


def sort_jobs(df: pd.DataFrame) -> pd.DataFrame:
    """Job rows without duplicates, sorted by every column (missing values first)."""
    out = df.drop_duplicates()
    return out.sort_values(list(JOB_COLUMNS), kind="mergesort", na_position="first").reset_index(
        drop=True
    )


def plans_of(jobs: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """(config, scenario, run) → plan fingerprint, from `job_rows` frames."""
    sub = jobs.dropna(subset=["scenario", "plan"])
    keys = zip(sub["config_id"], sub["scenario"], sub["run_id"], sub["plan"], strict=True)
    return {(str(c), str(s), str(r)): str(p) for c, s, r, p in keys}


# --- reading ----------------------------------------------------------------------------


def partition_files(tree: Path, folder: str = POINTS_DIR) -> dict[str, Path]:
    """Month → partition file under `tree/folder` (only well-named files)."""
    base = tree / folder
    if not base.is_dir():
        return {}
    return {
        p.stem: p for p in sorted(base.glob("*.parquet")) if _MONTH.fullmatch(p.stem) is not None
    }


def read_partition(path: Path, *, tree: Path | None = None) -> pd.DataFrame:
    """One partition as a frame; an unreadable file is a pointed `InvalidInput`."""
    return to_frame(read_table(path, tree=tree))


def read_table(
    path: Path, *, tree: Path | None = None, columns: Sequence[str] | None = None
) -> pa.Table:
    """One partition as stored (only `columns`, when given: each must be in it); an unreadable
    file is a pointed `InvalidInput`."""
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except (OSError, pa.ArrowException) as exc:
        shown = path.relative_to(tree) if tree is not None else path
        problem = Problem(
            file=str(path), line=1, col=1, path="",
            message=f"not a readable Parquet partition ({exc}); rebuild the derived files "
            "with `ixci publish --rebuild`",
        )  # fmt: skip
        raise InvalidInput([problem], f"{shown}: {problem.message}") from exc


def has_store(tree: Path) -> bool:
    """Whether `tree` holds the partitioned layout (else, maybe, a legacy points.json)."""
    return bool(partition_files(tree))


def read_points(tree: Path, months: Iterable[str] | None = None) -> pd.DataFrame:
    """The tidy table of a results tree (all months, or only `months`), in tidy order.

    Reads `data/points/*.parquet`; a tree of the older layout is read from `data/points.json`.
    A tree with neither gives an empty frame.
    """
    files = partition_files(tree)
    if not files:
        legacy = tree / LEGACY_POINTS
        if legacy.is_file():
            return from_columnar(orjson.loads(legacy.read_bytes()))
        return pd.DataFrame()
    wanted = set(months) if months is not None else set(files)
    return combine_tables([read_table(p, tree=tree) for m, p in files.items() if m in wanted])


def read_jobs(tree: Path) -> pd.DataFrame:
    """Every `job_rows` row of the tree (empty frame when none)."""
    frames = [to_frame(pq.read_table(p)) for p in partition_files(tree, JOBS_DIR).values()]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in JOB_COLUMNS})
    return pd.concat(frames, ignore_index=True)
