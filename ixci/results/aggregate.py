"""Validated result documents → one tidy pandas table, derived metrics and Pareto fronts.

One row per (run, job, point), base units (s, tokens, tokens/s, J, W). Derived metrics follow
`reference/metrics.md`: per-GPU throughput divides by the deployment's GPU count G (for
disaggregated deployments also role-local: input per prefill GPU, output per decode GPU);
$/M tokens = ($/GPU-hour) / (tok/s/GPU × 3600 / 1e6) per price tier; tokens/s/MW uses the
catalog's all-in kW per GPU. The Pareto front is taken per (run, model, scenario, precision,
SKU, framework) over `FRONT_AXES`, valid points only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from ixci.job import Topology
from ixci.loadgen.sessions_metrics import SESSION_COLUMNS, session_columns
from ixci.metric_table import SOURCED
from ixci.run.servermetrics import SERVER_COLUMNS, server_columns

# (column, direction): both axes of the throughput/interactivity front are "higher is better"
FRONT_AXES: tuple[tuple[str, str], ...] = (("interactivity_median", "max"), ("tput_per_gpu", "max"))
FRONT_GROUP: tuple[str, ...] = ("model", "scenario", "precision", "sku", "framework")

BASE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "run_date",
    "job_id",
    "point_id",
    "config_id",
    "job_name",
    "recipe",
    "model",
    "model_id",
    "scenario",
    "isl",
    "osl",
    "precision",
    "sku",
    "framework",
    "runner",
    "image",
    "image_digest",
    "tp",
    "ep",
    "pp",
    "dcp",
    "dp_attention",
    "gpus",
    "prefill_gpus",
    "decode_gpus",
    "disaggregated",
    "spec_decoding",
    "concurrency",
    "request_rate",
    "valid",
    "status",
    "ttft_mean_s",
    "ttft_p99_s",
    "tpot_mean_s",
    "tpot_median_s",
    "itl_p99_s",
    "e2el_mean_s",
    "e2el_median_s",
    "interactivity_median",
    "interactivity_mean",
    "request_throughput",
    "goodput",
    "output_throughput",
    "input_throughput",
    "total_token_throughput",
    "tput_per_gpu",
    "output_tput_per_gpu",
    "input_tput_per_gpu",
    "input_tput_per_prefill_gpu",
    "output_tput_per_decode_gpu",
    "energy_j",
    "joules_per_output_token",
    "joules_per_total_token",
    "power_valid",
    "avg_power_w_per_gpu",
    "tokens_per_s_per_mw",
    "steady_output_tput_per_gpu",
    "roofline_output_tput_per_gpu",
    "roofline_interactivity",
    "roofline_fraction",
    "roofline_binding",
    "roofline_window",
    "quality_failed",
    "spec_acceptance_rate",
    "spec_mean_accepted_length",
)  # then usd_per_mtok_<tier>, usd_per_output_mtok_<tier>, on_front, client_saturated, engine_version
TAIL_COLUMNS: tuple[str, ...] = ("on_front", "client_saturated", "engine_version")
INTERVALS: Mapping[str, str] = {
    "output_throughput": "output_throughput",
    "total_token_throughput": "total_token_throughput",
    "ttft_mean_s": "ttft_mean",
    "ttft_p99_s": "ttft_p99",
    "tpot_mean_s": "tpot_mean",
    "tpot_median_s": "tpot_median",
    "itl_p99_s": "itl_p99",
    "e2el_median_s": "e2el_median",
    "interactivity_median": "interactivity_median",
    "joules_per_output_token": "joules_per_output_token",
}
"""Tidy column → the artifact's headline interval it takes `_lo`/`_hi` from (ixci/results/intervals.py)."""
PER_GPU_INTERVALS: Mapping[str, str] = {
    "output_tput_per_gpu": "output_throughput",
    "tput_per_gpu": "total_token_throughput",
}
"""Per-GPU column → the throughput column whose interval it divides by the GPU count."""
INTERVAL_COLUMNS: tuple[str, ...] = (
    "repeats",
    *(f"{c}_{end}" for c in (*PER_GPU_INTERVALS, *INTERVALS) for end in ("lo", "hi")),
)
"""`repeats` (valid repeats behind the row's values; 1 without repeats), then each headline's
95 % interval ends, null where the point had fewer than two valid repeats (docs/repeats.md)."""
CONFIG_KEYS: tuple[str, ...] = (
    "recipe",
    "model",
    "sku",
    "framework",
    "precision",
    "runner",
    "topology",
    "spec_decoding",
)


@dataclass(frozen=True, kw_only=True)
class Economics:
    """Prices ($/GPU-hour per tier) and all-in kW per GPU, by SKU, from the catalog."""

    usd_per_gpu_hour: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    all_in_kw: Mapping[str, float] = field(default_factory=dict)

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(sorted({t for prices in self.usd_per_gpu_hour.values() for t in prices}))

    def to_json(self) -> dict[str, Any]:
        return {
            "usd_per_gpu_hour": {
                s: dict(sorted(p.items())) for s, p in sorted(self.usd_per_gpu_hour.items())
            },
            "all_in_kw": dict(sorted(self.all_in_kw.items())),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> Economics:
        obj = obj or {}
        prices = {
            str(s): {str(t): float(v) for t, v in p.items()}
            for s, p in (obj.get("usd_per_gpu_hour") or {}).items()
        }
        kw = {str(s): float(v) for s, v in (obj.get("all_in_kw") or {}).items()}
        return cls(usd_per_gpu_hour=prices, all_in_kw=kw)


def economics_from_catalog(catalog: Any) -> Economics:
    """Take `Sku.usd_per_gpu_hour` and `Sku.all_in_kw` from an `ixci.catalog.catalog.Catalog`."""
    prices: dict[str, dict[str, float]] = {}
    kw: dict[str, float] = {}
    for name, sku in catalog.skus.items():
        tiers = dict(getattr(sku, "usd_per_gpu_hour", {}) or {})
        if tiers:
            prices[name] = {str(t): float(v) for t, v in tiers.items()}
        if getattr(sku, "all_in_kw", None):
            kw[name] = float(sku.all_in_kw)
    return Economics(usd_per_gpu_hour=prices, all_in_kw=kw)


ADDED_COLUMNS: tuple[str, ...] = tuple(m.name for m in SOURCED if m.name not in BASE_COLUMNS)
"""Metrics the table reads from the artifact that `BASE_COLUMNS` does not name: declared only in
ixci/metric_table.py, they follow the established columns (so no existing column moves)."""


def columns_for(tiers: Sequence[str]) -> list[str]:
    """The tidy table's column order for the given price tiers (contracts.md §4)."""
    usd = [f"usd_per_mtok_{t}" for t in tiers] + [f"usd_per_output_mtok_{t}" for t in tiers]
    return [*BASE_COLUMNS, *ADDED_COLUMNS, *INTERVAL_COLUMNS, *usd, *TAIL_COLUMNS]


def config_id(job: Mapping[str, Any]) -> str:
    """Stable id of a job's identity without image, engine args or env → history across runs."""
    ident = {k: job.get(k) for k in CONFIG_KEYS}
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return "c-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def run_date(doc: Mapping[str, Any]) -> str:
    """The run's date (YYYY-MM-DD, UTC) from `run.started_at`."""
    return str(doc["run"]["started_at"])[:10]


def _num(mapping: Mapping[str, Any] | None, key: str) -> float | None:
    value = (mapping or {}).get(key)
    return float(value) if value is not None else None


def _job_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    job, prov = doc["job"], doc["provenance"]
    # the result schema requires only tp and gpus: absent degrees read as their defaults
    topo = Topology.from_dict(job["topology"], "job.topology")
    prefill, decode = (topo.prefill, topo.decode) if topo.disaggregated else (None, None)
    spec = job.get("spec_decoding")
    return {
        "run_id": doc["run"]["run_id"],
        "run_date": run_date(doc),
        "job_id": job["id"],
        "config_id": config_id(job),
        "job_name": job.get("name") or job["id"],
        "recipe": job.get("recipe"),
        "model": job["model"],
        "model_id": job.get("model_id") or job["model"],
        "precision": job["precision"],
        "sku": job["sku"],
        "framework": job["framework"],
        "runner": job.get("runner"),
        # a process-runtime run used no image: show none rather than the catalog's
        "image": prov.get("image")
        or (None if prov.get("runtime") == "process" else job.get("image")),
        "image_digest": prov.get("image_digest"),
        **topo.parallelism(),
        "prefill_gpus": prefill.gpus if prefill else None,
        "decode_gpus": decode.gpus if decode else None,
        "disaggregated": topo.disaggregated,
        "spec_decoding": (spec.get("method") or json.dumps(spec, sort_keys=True))
        if isinstance(spec, Mapping)
        else spec,
        "engine_version": prov.get("engine_version"),
    }


def _sourced(point: Mapping[str, Any], source: str, power_valid: bool) -> float | None:
    """The number at `source` (a dotted path) in one result point; None when absent, and for a
    `telemetry.` figure when the point's power telemetry is not valid."""
    if source.startswith("telemetry.") and not power_valid:
        return None
    node: Any = point
    for key in source.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def _point_fields(point: Mapping[str, Any]) -> dict[str, Any]:
    m, tele, client = point.get("metrics"), point.get("telemetry"), point.get("client")
    power_valid = bool((tele or {}).get("power_valid"))
    return {
        "point_id": point["id"],
        "scenario": point["scenario"],
        "isl": point["isl"],
        "osl": point["osl"],
        "concurrency": point.get("concurrency"),
        "request_rate": point.get("request_rate"),
        "valid": bool(point["valid"]),
        "status": point["status"],
        # every metric the table reads from the artifact (ixci/metric_table.py `source`)
        **{mt.name: _sourced(point, mt.source, power_valid) for mt in SOURCED if mt.source},
        "power_valid": power_valid,
        "client_saturated": bool((client or {}).get("saturated")),
        # the point against its physical limit (ixci/run/roofline.py); None when not recorded
        "roofline_interactivity": _inverse(_num(point.get("roofline"), "decode_step_s")),
        "roofline_binding": (point.get("roofline") or {}).get("binding"),
        # which throughput the fraction measures: steady_state (all slots busy) or measured
        "roofline_window": (point.get("roofline") or {}).get("window"),
        "steady_output_throughput": _num((m or {}).get("steady_state"), "output_throughput"),
        # the job's eval suite failed its quality gate (ixci/evals/step.py)
        "quality_failed": bool(point.get("quality_failed")),
        **session_columns(point.get("sessions")),  # multi-turn points only (docs/agentic.md)
        **server_columns(point.get("server_metrics")),  # docs/servermetrics.md
        **_interval_fields(point, power_valid),
    }


def _inverse(value: float | None) -> float | None:
    """1 / value: a decode step's lower bound → the per-user decode speed's upper bound."""
    return 1.0 / value if value else None


def _interval_fields(point: Mapping[str, Any], power_valid: bool) -> dict[str, Any]:
    """`repeats` and `<column>_lo`/`_hi` from the point's `intervals` block (None without)."""
    block = point.get("intervals")
    ivs = block.get("metrics") if isinstance(block, Mapping) else None
    ivs = ivs if isinstance(ivs, Mapping) else {}
    out: dict[str, Any] = {}
    for column, name in INTERVALS.items():
        iv = ivs.get(name) if name != "joules_per_output_token" or power_valid else None
        out[f"{column}_lo"] = _num(iv, "lo") if isinstance(iv, Mapping) else None
        out[f"{column}_hi"] = _num(iv, "hi") if isinstance(iv, Mapping) else None
    head = ivs.get("output_throughput")
    n = head.get("n") if isinstance(head, Mapping) else None
    out["repeats"] = int(n) if isinstance(n, int) and n >= 1 else 1
    return out


def rows_from_documents(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flatten result documents into raw rows (identity + measured fields, no derived ones)."""
    rows: list[dict[str, Any]] = []
    for doc in docs:
        head = _job_fields(doc)
        rows.extend({**head, **_point_fields(p)} for p in doc["points"])
    return rows


def _safe_div(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64").where(den.astype("float64") > 0)
    return num.astype("float64") / den


def add_derived(df: pd.DataFrame, economics: Economics) -> pd.DataFrame:
    """Add per-GPU throughput, role-local throughput, $/M tokens per tier and tokens/s/MW.

    Units: tokens/s/GPU; $ per 1e6 tokens; tokens/s per MW of all-in facility power.
    Rows whose GPU count is 0 (cpu) or unknown get NaN for per-GPU and facility figures.
    """
    df["tput_per_gpu"] = _safe_div(df["total_token_throughput"], df["gpus"])
    df["output_tput_per_gpu"] = _safe_div(df["output_throughput"], df["gpus"])
    # the same over the steady window only (every slot busy; metrics.md "steady state")
    df["steady_output_tput_per_gpu"] = _safe_div(df["steady_output_throughput"], df["gpus"])
    df["input_tput_per_gpu"] = _safe_div(df["input_throughput"], df["gpus"])
    df["input_tput_per_prefill_gpu"] = _safe_div(df["input_throughput"], df["prefill_gpus"])
    df["output_tput_per_decode_gpu"] = _safe_div(df["output_throughput"], df["decode_gpus"])
    for column, source in PER_GPU_INTERVALS.items():
        for end in ("lo", "hi"):
            df[f"{column}_{end}"] = _safe_div(df[f"{source}_{end}"], df["gpus"])
    kw = df["sku"].map(economics.all_in_kw).astype("float64")
    df["tokens_per_s_per_mw"] = df["tput_per_gpu"] * 1000.0 / kw
    for tier in economics.tiers:
        price = (
            df["sku"]
            .map({s: p.get(tier) for s, p in economics.usd_per_gpu_hour.items()})
            .astype("float64")
        )
        df[f"usd_per_mtok_{tier}"] = price / (df["tput_per_gpu"] * 3600.0 / 1e6)
        df[f"usd_per_output_mtok_{tier}"] = price / (df["output_tput_per_gpu"] * 3600.0 / 1e6)
    return df


def mark_front(df: pd.DataFrame, group: Sequence[str]) -> pd.Series:
    """True where a valid row is on the Pareto front of its group over `FRONT_AXES`.

    A row is on the front when no other valid row of its group is at least as good on every
    axis and better on one. Sort by the first axis (best first, ties by the second), then a
    row is on the front iff its second axis beats the running best of the rows before it.
    """
    (x, xdir), (y, ydir) = FRONT_AXES
    ok = df["valid"].astype(bool) & (df["status"] == "ok") & df[x].notna() & df[y].notna()
    sub = df.loc[ok, [*group, x, y]].copy()
    sub["_x"] = sub[x] if xdir == "max" else -sub[x]
    sub["_y"] = sub[y] if ydir == "max" else -sub[y]
    sub = sub.sort_values(
        [*group, "_x", "_y"], ascending=[True] * len(group) + [False, False], kind="mergesort"
    )
    keys = [sub[g].astype(str) for g in group]
    running = sub.groupby(keys, sort=False)["_y"].cummax()
    prev_best = running.groupby(keys, sort=False).shift(1)
    on = prev_best.isna() | (sub["_y"] > prev_best)
    out = pd.Series(False, index=df.index)
    out.loc[on.index] = on.to_numpy(dtype=bool)
    return out


def tidy_table(
    docs: Iterable[Mapping[str, Any]], economics: Economics | None = None
) -> pd.DataFrame:
    """The tidy table: one row per (run, job, point), contract columns, sorted and derived.

    Sorted by (run_date, run_id, job_id, scenario, concurrency, request_rate, point_id) so the
    same documents always give the same frame. `on_front` is per run and `FRONT_GROUP`.
    """
    econ = economics or Economics()
    cols = columns_for(econ.tiers)
    df = pd.DataFrame(rows_from_documents(docs))
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    for col in ("prefill_gpus", "decode_gpus", "concurrency"):
        df[col] = df[col].astype("Int64")
    df = add_derived(df, econ)
    df["on_front"] = mark_front(df, ["run_id", *FRONT_GROUP])
    order = ["run_date", "run_id", "job_id", "scenario", "concurrency", "request_rate", "point_id"]
    df = df.sort_values(order, kind="mergesort", na_position="first").reset_index(drop=True)
    optional = [c for c in (*SESSION_COLUMNS, *SERVER_COLUMNS) if c in df.columns]
    return df[cols + optional]


def plain_cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _column_values(col: pd.Series) -> list[Any]:
    """One column as plain Python values, NaN/NA/inf as None (vectorised per dtype)."""
    kind = col.dtype.kind
    if kind == "f":
        arr = col.to_numpy()
        values: list[Any] = arr.tolist()
        for i in np.flatnonzero(~np.isfinite(arr)):
            values[i] = None
        return values
    if kind in "iub" and not col.hasnans:
        return list(col.to_numpy().tolist())
    values = col.tolist()
    for i in np.flatnonzero(col.isna().to_numpy()):
        values[i] = None
    if col.dtype == object and any(isinstance(v, np.generic | float) for v in values):
        return [plain_cell(v) for v in values]  # mixed objects: normalise numpy scalars and inf
    return values


def to_columnar(df: pd.DataFrame) -> dict[str, Any]:
    """`{"columns": [...], "rows": [[...], ...]}` with NaN as null (contracts.md §4)."""
    columns = [_column_values(df[c]) for c in df.columns]
    return {"columns": list(df.columns), "rows": [list(r) for r in zip(*columns, strict=True)]}


def from_columnar(obj: Mapping[str, Any]) -> pd.DataFrame:
    """Inverse of `to_columnar` (nulls become NaN/None)."""
    return pd.DataFrame(obj["rows"], columns=list(obj["columns"]))


def dump_columnar(df: pd.DataFrame) -> bytes:
    """Deterministic bytes of the columnar JSON (sorted keys, one row per line)."""
    table = to_columnar(df)
    head = orjson.dumps(table["columns"])
    body = b",\n".join(orjson.dumps(r) for r in table["rows"])
    return b'{"columns": ' + head + b',\n"rows": [\n' + body + b"\n]}\n"


def read_documents(root: Path) -> list[dict[str, Any]]:
    """Every result document under `root` (`results/*.json` of a collect output or a branch)."""
    files = sorted(p for p in root.rglob("*.json") if p.parent.name == "results")
    return [orjson.loads(p.read_bytes()) for p in files]


def write_tables(df: pd.DataFrame, out: Path) -> None:
    """Write `points.json` (columnar) and `points.csv` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "points.json").write_bytes(dump_columnar(df))
    df.to_csv(out / "points.csv", index=False, lineterminator="\n")
