"""`ixci export --format inferencex`: the tidy table's points as the incumbent's result rows.

The flat rows of the tidy table (`ixci.results.aggregate`) are read by column; the job of each result
document through the plan's types (`ixci.job`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

from ixci.job import FieldError, Pool, Topology
from ixci.loadgen.sessions_metrics import SESSION_COLUMNS
from ixci.results.aggregate import plain_cell

# --- the incumbent's row format ---------------------------------------------------------
# Its producer is InferenceX `utils/process_result.py` (+ `utils/aggregate_power.py`), commit
# 843c6254; its ingest is InferenceX-app `packages/db/src/etl/benchmark-mapper.ts` with
# `topology.ts` and `normalizers.ts` (docs/importing.md, "Round trip").


INCUMBENT_FRAMEWORKS: Mapping[str, str] = MappingProxyType({"trtllm": "trt"})
"""ixci engine → the incumbent's `framework` value where the names differ (others are equal)."""
INCUMBENT_POWER_SCHEMA = 2
"""The incumbent's `power_metric_schema_version` in which the unprefixed `joules_per_*` are the
energy of the whole deployment; ixci's are that when its telemetry covered every GPU."""
_PCP_ARGS = ("prefill-context-parallel-size", "prefill_context_parallel_size")
_DCP_ARGS = ("decode-context-parallel-size", "decode_context_parallel_size")
_STATS: tuple[tuple[str, str], ...] = (
    ("mean", "mean"),
    ("median", "median"),
    ("std", "std"),
    ("p90", "p90"),
    ("p99", "p99"),
    ("p99.9", "p99_9"),
)
"""(the incumbent's statistic prefix, ixci's key in a point's metric block)"""


@dataclass(frozen=True, kw_only=True)
class _Launch:
    """What the incumbent's row says of a launch beyond the tidy table (None: not known)."""

    nodes: int | None
    pcp: int = 1
    replicas: int = 1
    pools: tuple[Pool, Pool] | None = None


def _flag(value: Any) -> str:
    return "true" if value else "false"


def _arg(args: Any, names: Sequence[str]) -> int:
    """An integer engine argument (the first of `names` set), 1 when none is."""
    if isinstance(args, Mapping):
        for name in names:
            if args.get(name) is not None:
                return int(args[name])
    return 1


def _launch(
    r: Mapping[str, Any], job: Mapping[str, Any] | None, gpus_per_node: Mapping[str, int]
) -> _Launch:
    """Node count, context parallelism and pools: from the job of the result document (read
    through the plan's types), else what the table and the runner's GPUs per node tell (nodes
    None when they cannot)."""
    topo = None
    if job is not None and isinstance(job.get("topology"), Mapping):
        try:
            topo = Topology.from_dict(job["topology"])
        except FieldError:
            topo = None  # a malformed job (collect rejects those): fall back on the table
    if job is not None and topo is not None:
        pre, dec = topo.prefill, topo.decode
        if r["disaggregated"] and pre is not None and dec is not None:
            # ixci gives every disaggregated worker nodes of its own (contracts.md §2)
            nodes = sum(p.workers * p.nodes_per_worker for p in (pre, dec))
            return _Launch(nodes=nodes, pools=(pre, dec))
        return _Launch(
            nodes=topo.nodes, pcp=_arg(job.get("engine_args"), _PCP_ARGS), replicas=topo.dp
        )
    gpus, per_node = int(r["gpus"] or 0), gpus_per_node.get(str(r["runner"]))
    replicas = max(1, gpus // max(1, int(r["tp"]) * int(r["pp"])))
    if r["disaggregated"]:
        return _Launch(nodes=None, replicas=replicas)
    if gpus <= 1 or per_node:
        return _Launch(nodes=max(1, math.ceil(gpus / (per_node or 1))), replicas=replicas)
    return _Launch(nodes=None, replicas=replicas)


def _pool_fields(role: str, pool: Pool) -> dict[str, Any]:
    return {
        f"{role}_tp": pool.tp,
        f"{role}_pp": pool.pp,
        f"{role}_dcp_size": _arg(pool.engine_args, _DCP_ARGS),
        f"{role}_pcp_size": _arg(pool.engine_args, _PCP_ARGS),
        f"{role}_ep": pool.ep,
        f"{role}_dp_attention": _flag(pool.dp_attention),
        f"{role}_num_workers": pool.workers,
    }


def _topology_fields(r: Mapping[str, Any], launch: _Launch) -> dict[str, Any]:
    """The incumbent's single-node fields, or its multi-node ones (prefill/decode roles)."""
    throughput = {
        "tput_per_gpu": r["tput_per_gpu"],
        "output_tput_per_gpu": r["output_tput_per_gpu"],
        "input_tput_per_gpu": r["input_tput_per_gpu"],
    }
    if not r["disaggregated"] and (launch.nodes or 1) == 1:
        return {
            "is_multinode": False,
            "tp": r["tp"],
            "pp": r["pp"],
            "dcp_size": r["dcp"],
            "pcp_size": launch.pcp,
            "ep": r["ep"],
            "dp_attention": _flag(r["dp_attention"]),
            **throughput,
        }
    if r["disaggregated"]:
        pools = {}
        if launch.pools is not None:
            pools = {
                **_pool_fields("prefill", launch.pools[0]),
                **_pool_fields("decode", launch.pools[1]),
            }
        # output per decode GPU, input per prefill GPU, as the incumbent divides them
        return {
            "is_multinode": True,
            **pools,
            "num_prefill_gpu": r["prefill_gpus"],
            "num_decode_gpu": r["decode_gpus"],
            "tput_per_gpu": r["tput_per_gpu"],
            "output_tput_per_gpu": r["output_tput_per_decode_gpu"],
            "input_tput_per_gpu": r["input_tput_per_prefill_gpu"],
        }
    # a multi-node aggregated server: the incumbent's one prefill pool and no decode GPUs
    return {
        "is_multinode": True,
        "prefill_tp": r["tp"],
        "prefill_pp": r["pp"],
        "prefill_dcp_size": r["dcp"],
        "prefill_pcp_size": launch.pcp,
        "prefill_ep": r["ep"],
        "prefill_dp_attention": _flag(r["dp_attention"]),
        "prefill_num_workers": launch.replicas,
        "decode_tp": 0,
        "decode_pp": 1,
        "decode_dcp_size": 1,
        "decode_pcp_size": 1,
        "decode_ep": 0,
        "decode_dp_attention": "false",
        "decode_num_workers": 0,
        "num_prefill_gpu": r["gpus"],
        "num_decode_gpu": 0,
        **throughput,
    }


def _latency_fields(r: Mapping[str, Any], metrics: Any) -> dict[str, Any]:
    """Latencies (s) and interactivity (1/s, the reciprocal of a TPOT statistic, as the incumbent
    derives it) under the incumbent's names: the table's, and with the point's metrics every
    statistic its rows carry (1/std TPOT, which it also writes, is no interactivity: left out)."""
    out: dict[str, Any] = {
        "mean_ttft": r["ttft_mean_s"],
        "p99_ttft": r["ttft_p99_s"],
        "mean_tpot": r["tpot_mean_s"],
        "median_tpot": r["tpot_median_s"],
        "p99_itl": r["itl_p99_s"],
        "mean_e2el": r["e2el_mean_s"],
        "median_e2el": r["e2el_median_s"],
    }
    for name in ("ttft", "tpot", "itl", "e2el") if isinstance(metrics, Mapping) else ():
        block = metrics.get(name)
        for theirs, ours in _STATS if isinstance(block, Mapping) else ():
            if block.get(ours) is not None:
                out[f"{theirs}_{name}"] = float(block[ours])
    for theirs, _ in _STATS:
        tpot = plain_cell(out.get(f"{theirs}_tpot"))
        if theirs != "std" and tpot:
            out[f"{theirs}_intvty"] = 1.0 / tpot
    return out


def _ix_row(
    r: Mapping[str, Any],
    prefixes: Mapping[str, str],
    launch: _Launch,
    power: bool,
    metrics: Any = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "hw": r["sku"],
        "conc": r["concurrency"],
        "image": r["image"],
        "model": r["model_id"],
        # the incumbent keys models by their short prefix (`dsr1`), not by a catalog key
        "infmax_model_prefix": prefixes.get(str(r["model"]), r["model"]),
        "framework": INCUMBENT_FRAMEWORKS.get(str(r["framework"]), r["framework"]),
        "precision": r["precision"],
        "spec_decoding": r["spec_decoding"] or "none",
        "disagg": bool(r["disaggregated"]),
        "recipe_fingerprint": r["job_id"],  # ixci's stable hash of the launch
        "isl": r["isl"],
        "osl": r["osl"],
        **_topology_fields(r, launch),
        **_latency_fields(r, metrics),
        # the incumbent writes its power verdict on every row, 0 withholding the figures
        "power_metric_schema_version": INCUMBENT_POWER_SCHEMA,
        "power_valid": int(power),
    }
    if power:
        row.update(
            {
                "avg_power_w": r["avg_power_w_per_gpu"],
                "total_gpu_energy_j": r["energy_j"],
                "joules_per_output_token": r["joules_per_output_token"],
                "joules_per_total_token": r["joules_per_total_token"],
            }
        )
    return {k: plain_cell(v) for k, v in row.items()}


def _is_multi_turn(r: Mapping[str, Any], point: Mapping[str, Any] | None) -> bool:
    if point is not None and isinstance(point.get("sessions"), Mapping):
        return True
    return any(plain_cell(r.get(c)) is not None for c in SESSION_COLUMNS)


def to_inferencex(
    df: pd.DataFrame,
    prefixes: Mapping[str, str] | None = None,
    *,
    documents: Iterable[Mapping[str, Any]] | None = None,
    gpus_per_node: Mapping[str, int] | None = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows in the incumbent's format (times in s, throughput per GPU) for measured ok points.

    `prefixes`: catalog model key → its `prefix` (the incumbent's `infmax_model_prefix`); a
    model missing there keeps its key. `median_intvty` is ixci's per-request median of 1/TPOT;
    `mean_intvty` is 1/mean TPOT as the incumbent defines it. Invalid and failed points are left
    out, as the incumbent has none; so are multi-turn (sessions) points, whose workload and
    metrics are not the incumbent's agentic ones, and points without a concurrency.

    `documents`: the result documents of `df`; their jobs give the node count (`is_multinode`
    is nodes > 1), the pools of a disaggregated launch, `pcp_size` from the engine arguments, and
    whether the telemetry covered every GPU. Without them (a points.json), `gpus_per_node`
    (runner → GPUs per node) gives an aggregated launch's nodes; what stays unknown is said in
    `notes` (one line per job and reason): an aggregated launch is then taken as one node and a
    disaggregated row carries its GPU counts but no per-pool parallelism.
    """
    jobs, points = _documents_index(documents or ())
    per_node = gpus_per_node or {}
    said: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    ok = df[(df["status"] == "ok") & df["valid"].astype(bool)]
    for rec in ok.to_dict(orient="records"):
        r = {str(k): v for k, v in rec.items()}
        job_id = str(r["job_id"])
        point = points.get((str(r["run_id"]), job_id, str(r["point_id"])))
        label = str(r.get("job_name") or job_id)
        reasons: list[str] = []
        if _is_multi_turn(r, point):
            reasons.append(
                "multi-turn (sessions) point left out: ixci's agentic workload and metrics are "
                "not the incumbent's trace replay (docs/importing.md)"
            )
        elif plain_cell(r["concurrency"]) is None:
            reasons.append("point without a concurrency left out: the incumbent keys rows by it")
        else:
            launch = _launch(r, jobs.get(job_id), per_node)
            rows.append(_row(r, point, launch, prefixes or {}, reasons))
        for reason in reasons:
            said[(label, reason)] = said.get((label, reason), 0) + 1
    if notes is not None:
        notes.extend(f"{label}: {reason} ({n} points)" for (label, reason), n in said.items())
    return rows


def _documents_index(
    documents: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Mapping[str, Any]], dict[tuple[str, str, str], Mapping[str, Any]]]:
    """Jobs by id, and points by (run id, job id, point id), of the result documents."""
    jobs: dict[str, Mapping[str, Any]] = {}
    points: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for doc in documents:
        jobs[str(doc["job"]["id"])] = doc["job"]
        for p in doc.get("points") or ():
            points[(str(doc["run"]["run_id"]), str(doc["job"]["id"]), str(p["id"]))] = p
    return jobs, points


def _row(
    r: Mapping[str, Any],
    point: Mapping[str, Any] | None,
    launch: _Launch,
    prefixes: Mapping[str, str],
    reasons: list[str],
) -> dict[str, Any]:
    """One exported row; what it withholds or assumes is appended to `reasons`."""
    tele = point.get("telemetry") if point is not None else None
    measured = tele.get("gpus") if isinstance(tele, Mapping) else None
    power = bool(r["power_valid"])
    if power and measured is not None and int(measured) < int(r["gpus"]):
        power = False
        reasons.append(
            f"power withheld: telemetry of {measured} of {r['gpus']} GPUs is not the "
            "whole deployment's"
        )
    if launch.nodes is None and not r["disaggregated"]:
        reasons.append("node count unknown (no result document or runner): one node assumed")
    if r["disaggregated"] and launch.pools is None:
        reasons.append("pools unknown (no result document): no per-pool parallelism")
    metrics = point.get("metrics") if point is not None else None
    return _ix_row(r, prefixes, launch, power, metrics)
