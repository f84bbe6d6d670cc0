"""Turns loaded results into the site's data payload (plain JSON-able dicts).

The payload is compact on purpose, because a viewer parses it before the first chart:

* points are column-major; strings are dictionary-encoded (`{"dict": [...], "codes": [...]}`),
  booleans are 0/1, floats keep 6 significant digits;
* the columns that describe the deployment (model, SKU, image, TP, …) are stored once per
  distinct combination ("jobs") and each point carries the index of its combination;
* the point columns the first chart needs are "core"; the others ("extra": cost, energy,
  latency tails, point ids) go to a second file the page loads after its first chart.

Only columns the site shows or filters on are kept. Units come from `ixci.metric_table`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ixci.metric_table import CORE, EXTRA, on_site, units
from ixci.site.load import Results, Run

SIG_DIGITS = 6
_SIG_FORMAT = f"%.{SIG_DIGITS}g"
USD_PER_MTOK = "usd_per_mtok_"
USD_PER_OUTPUT_MTOK = "usd_per_output_mtok_"

# columns that describe a deployment: stored once per distinct combination
JOB_STRING_COLUMNS = (
    "run_id", "run_date", "job_id", "config_id", "job_name", "recipe", "model", "model_id",
    "scenario", "precision", "sku", "framework", "runner", "image", "image_digest", "spec_decoding", "engine_version",
)  # fmt: skip
JOB_INT_COLUMNS = ("isl", "osl", "tp", "ep", "pp", "dcp", "gpus", "prefill_gpus", "decode_gpus")
JOB_BOOL_COLUMNS = ("dp_attention", "disaggregated")
# per point, needed for the first chart and the filters: the metric table's CORE metrics
CORE_COLUMNS = (
    "status", "concurrency", "valid",
    # e2e_norm_interactivity_p90 (multi-turn points only, docs/agentic.md) turns the agentic
    # charts on; roofline_* is the physical limit drawn on the first chart (docs/roofline.md)
    *on_site(CORE),
    # flagged on the chart, and hideable: the job failed its eval suite's quality gate
    "quality_failed",
)  # fmt: skip
# per point, loaded after the first chart (plus every usd_per_* column): the metric table's
# EXTRA metrics, the point's flags, and the text columns of its details
EXTRA_COLUMNS = (
    "point_id", "power_valid", "client_saturated", "roofline_binding", "roofline_window",
    "ttft_by_context", "server_prefix_cache_hit_basis", *on_site(EXTRA),
)  # fmt: skip
# ttft_by_context: JSON text in the table, a list of [bucket, cold median, cold n, warm median,
# warm n] per point in the payload
PROFILE_COLUMNS = ("ttft_by_context",)
# 95 % interval ends of repeated points (docs/repeats.md): the chart's error bars are core, the
# rest extra; a column left out of the payload when no point has an interval
CORE_INTERVALS = tuple(
    f"{c}_{e}" for c in ("interactivity_median", "tput_per_gpu", "output_tput_per_gpu")
    for e in ("lo", "hi")
)  # fmt: skip
EXTRA_INTERVALS = (
    "repeats",
    *(f"{c}_{e}" for c in ("ttft_p99_s", "e2el_median_s", "joules_per_output_token",
                           "joules_per_total_token") for e in ("lo", "hi")),
)  # fmt: skip
INTERVAL_COLUMNS = frozenset((*CORE_INTERVALS, *EXTRA_INTERVALS))
STRING_COLUMNS = (*JOB_STRING_COLUMNS, "status", "point_id", "roofline_binding", "roofline_window",
                  "server_prefix_cache_hit_basis")  # fmt: skip
INT_COLUMNS = (*JOB_INT_COLUMNS, "concurrency", "repeats", "server_metrics_samples",
               "server_metrics_failed")  # fmt: skip
# columns most results leave empty: kept in the payload only when some point has a value (true)
SPARSE_COLUMNS = frozenset({"quality_failed", "spec_acceptance_rate", "spec_mean_accepted_length"})
BOOL_COLUMNS = (*JOB_BOOL_COLUMNS, "valid", "power_valid", "client_saturated", "quality_failed")
JOB_COLUMNS = (*JOB_STRING_COLUMNS, *JOB_INT_COLUMNS, *JOB_BOOL_COLUMNS)

UNITS: dict[str, str] = units()  # every metric column's unit (ixci/metric_table.py)


def tiers(columns: Sequence[str]) -> list[str]:
    """Price tiers present in the table, in column order (from `usd_per_mtok_<tier>`)."""
    return [c[len(USD_PER_MTOK) :] for c in columns if c.startswith(USD_PER_MTOK)]


def extra_columns(columns: Sequence[str]) -> list[str]:
    """The point columns that go to the lazily loaded file (absent ones skipped)."""
    usd = [c for c in columns if c.startswith((USD_PER_MTOK, USD_PER_OUTPUT_MTOK))]
    return [c for c in (*EXTRA_COLUMNS, *EXTRA_INTERVALS, *usd) if c in columns]


def encode_points(results: Results) -> dict[str, Any]:
    """The core payload: `{"n", "job": [job index per point], "jobs": {"n", "columns"},
    "columns": {core point column: encoded values}}`."""
    present = set(results.columns)
    job_cols = [c for c in JOB_COLUMNS if c in present]
    cols = [results.column(c) for c in job_cols]
    keys: dict[tuple[Any, ...], int] = {}
    try:
        job_of = [keys.setdefault(k, len(keys)) for k in zip(*cols, strict=True)]
    except TypeError:  # an object or list cell (the planner's spec_decoding): made plain
        keys = {}
        plain = [[_plain(v) for v in c] for c in cols]
        job_of = [keys.setdefault(k, len(keys)) for k in zip(*plain, strict=True)]
    if not job_cols:
        job_of = [0] * len(results.rows)
    jobs = list(keys) or ([()] if job_of else [])
    job_columns = {c: _encode_column(c, [k[j] for k in jobs]) for j, c in enumerate(job_cols)}
    core = {
        c: _encode_column(c, results.column(c))
        for c in (*CORE_COLUMNS, *CORE_INTERVALS)
        if c in present and _worth(results, c)
    }
    return {
        "n": len(results.rows),
        "job": job_of,
        "jobs": {"n": len(jobs), "columns": job_columns},
        "columns": core,
    }


def encode_extra(results: Results) -> dict[str, Any]:
    """The extra point columns, in the same row order as `encode_points`."""
    return {
        "n": len(results.rows),
        "columns": {
            c: _encode_column(c, results.column(c))
            for c in extra_columns(results.columns)
            if _worth(results, c)
        },
    }


def _worth(results: Results, name: str) -> bool:
    """Every column but an interval or sparse one; those only when some point has a value
    (results without repeats, evals or drafting pay no bytes for them)."""
    if name in SPARSE_COLUMNS:
        return any(v is True or _round(v) is not None for v in results.column(name))
    if name not in INTERVAL_COLUMNS:
        return True
    values = results.column(name)
    if values.count(None) == len(values):  # the common case, at C speed
        return False
    if name == "repeats":
        return any(_round(v) is not None and v > 1 for v in values)
    return any(_round(v) is not None for v in values)


def _plain(v: Any) -> Any:
    """A hashable, display-ready value (the planner's spec_decoding object → its method)."""
    if isinstance(v, dict):
        return v.get("method") or ",".join(f"{k}={v[k]}" for k in sorted(v))
    if isinstance(v, list):
        return ",".join(map(str, v))
    return v


def _encode_column(name: str, values: list[Any]) -> Any:
    if name in PROFILE_COLUMNS:
        return [_profile(v) for v in values]
    if name in STRING_COLUMNS:
        return _dict_encode(values)
    if name in BOOL_COLUMNS:
        return [None if v is None else int(bool(v)) for v in values]
    if name in INT_COLUMNS:
        return [v if isinstance(v, int) or v is None else _round(v) for v in values]
    return _round_all(values)


def _round_all(values: list[Any]) -> list[float | None]:
    """`_round` of every value of a numeric column; numbers and None only (the contract's
    numeric columns) take a vectorised path with the same digits, else value by value."""
    if not set(map(type, values)) <= {float, int, type(None)}:
        return [_round(v) for v in values]
    arr = np.asarray(values, dtype=np.float64)  # None → nan
    finite = np.isfinite(arr)
    rounded: list[float | None] = list(map(float, map(_SIG_FORMAT.__mod__, arr[finite].tolist())))
    if finite.all():
        return rounded
    out: list[float | None] = [None] * len(values)
    for i, v in zip(np.flatnonzero(finite).tolist(), rounded, strict=True):
        out[i] = v
    return out


def _profile(text: Any) -> list[list[Any]] | None:
    """A `ttft_by_context` cell (JSON text, ixci/loadgen/sessions_metrics.context_profile) →
    `[[bucket, cold median s, cold n, warm median s, warm n], ...]`; None when absent or not of
    that shape (the table is read back from a branch anyone may have written to)."""
    if not isinstance(text, str):
        return None
    try:
        rows = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rows, list):
        return None
    out = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str)):
            return None
        out.append([row[0][:40], _round(row[1]), _count(row[2]), _round(row[3]), _count(row[4])])
    return out


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _dict_encode(values: list[Any]) -> dict[str, list[Any]]:
    codes: dict[str, int] = {}
    out = []
    for v in values:
        if v is None:
            out.append(-1)
            continue
        out.append(codes.setdefault(str(v), len(codes)))
    return {"dict": list(codes), "codes": out}


def _round(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    if not math.isfinite(f):
        return None
    return float(f"{f:.{SIG_DIGITS}g}")


def derive_prices(results: Results) -> dict[str, dict[str, float]]:
    """$/GPU-hour per tier and SKU, recovered from the table: usd/Mtok × tok/s/GPU × 3600/1e6.

    The site pre-fills its price inputs with these, so a user override starts from the
    catalog's figure. Median over valid rows; a SKU without cost data is left out.
    """
    prices: dict[str, dict[str, float]] = {}
    skus = np.asarray([str(s) for s in results.column("sku")], dtype=object)
    tput = _floats(results.column("tput_per_gpu"))
    for tier in tiers(results.columns):
        usd = _floats(results.column(USD_PER_MTOK + tier))
        ok = np.isfinite(usd) & np.isfinite(tput) & (tput > 0)
        hourly = usd * tput * 3600 / 1e6
        prices[tier] = {
            str(sku): round(float(np.median(hourly[ok & (skus == sku)])), 4)
            for sku in sorted(set(skus[ok].tolist()))
        }
    return prices


def _floats(values: list[Any]) -> np.ndarray:
    """A column as float64, nan where a value is missing or not a number."""
    return np.asarray([v if _num(v) else np.nan for v in values], dtype=np.float64)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def run_summary(run: Run) -> dict[str, Any]:
    """What the site keeps about every run in the main payload (the manifest goes per run)."""
    counts = {s: 0 for s in ("ok", "partial", "failed", "missing")}
    for job in run.jobs or ():
        counts[job.status] = counts.get(job.status, 0) + 1
    return {
        "run_id": run.run_id,
        "date": run.date,
        "event": run.event,
        "sha": run.sha,
        "repository": run.repository,
        "url": run.url,
        "path": run.path,
        "has_coverage": run.jobs is not None,
        "coverage": counts,
    }


def run_detail(run: Run) -> dict[str, Any]:
    """One run with its full coverage manifest (written to its own file, loaded on demand)."""
    jobs = [
        {
            "job_id": j.job_id,
            "name": j.name,
            "model": j.model,
            "sku": j.sku,
            "framework": j.framework,
            "precision": j.precision,
            "scenario": j.scenario,
            "image": j.image,
            "status": j.status,
            "failure_class": j.failure_class,
            "failure_message": j.failure_message,
            "points_expected": j.points_expected,
            "points_ok": j.points_ok,
        }
        for j in run.jobs or ()
    ]
    return {**run_summary(run), "jobs": jobs}
