"""Build schema-valid result artifacts (contracts.md §3) for collect/aggregate/publish tests.

Numbers follow the metric definitions: throughputs are token totals over the window, per-GPU
energy is power × time × GPUs, interactivity is 1/TPOT. `scale` shifts a whole curve so tests
can make a candidate faster or slower than a baseline.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def hex12(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _stats(value: float, *, p10: bool = False) -> dict[str, float]:
    out = {
        "mean": value,
        "std": value * 0.1,
        "median": value,
        "p90": value * 1.2,
        "p95": value * 1.3,
        "p99": value * 1.5,
        "p99_9": value * 1.7,
    }
    if p10:
        out["p10"] = value * 0.8
    return out


def make_job(
    *,
    name: str = "tiny",
    model: str = "tiny-llama",
    sku: str = "h100",
    framework: str = "vllm",
    precision: str = "fp8",
    tp: int = 1,
    gpus: int | None = None,
    concurrencies: tuple[int, ...] = (1, 4, 16),
    scenario: str = "1k1k",
    isl: int = 1024,
    osl: int = 1024,
    image: str = "vllm/vllm-openai:v0.11.0",
    disagg: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """A plan job (contracts.md §2); `disagg=(prefill_gpus, decode_gpus)` makes it disaggregated."""
    gpus = gpus if gpus is not None else (sum(disagg) if disagg else tp)
    ident = (name, model, sku, framework, precision, tp, gpus, disagg, image)
    job_id = "j-" + hex12("job", *ident)
    pools = None
    if disagg:
        pools = [
            {
                "workers": 1,
                "tp": g,
                "ep": 1,
                "pp": 1,
                "dp_attention": False,
                "nodes_per_worker": 1,
                "gpus": g,
                "sku": None,
            }
            for g in disagg
        ]
    topology = {
        "tp": tp,
        "ep": 1,
        "pp": 1,
        "dcp": 1,
        "dp_attention": False,
        "nodes": 1,
        "gpus": gpus,
        "disaggregated": bool(disagg),
        "prefill": pools[0] if pools else None,
        "decode": pools[1] if pools else None,
    }
    points = [
        {
            "id": "p-" + hex12(job_id, scenario, c),
            "scenario": scenario,
            "isl": isl,
            "osl": osl,
            "concurrency": c,
            "request_rate": None,
        }
        for c in concurrencies
    ]
    return {
        "id": job_id,
        "name": f"{model} {precision} {sku} {framework} tp{tp}",
        "runs_on": ["self-hosted", sku],
        "recipe": f"matrix/recipes/{name}.yaml",
        "model": model,
        "sku": sku,
        "framework": framework,
        "precision": precision,
        "runner": f"{sku}-docker",
        "image": image,
        "topology": topology,
        "spec_decoding": None,
        "engine_args": {},
        "env": {},
        "max_model_len": None,
        "points": points,
        "estimate": {},
        "selected_because": ["test"],
    }


def make_point(
    spec: dict[str, Any], *, gpus: int, scale: float = 1.0, status: str = "ok"
) -> dict[str, Any]:
    """A measured point whose numbers are consistent with each other (see module doc)."""
    c = spec["concurrency"]
    duration = 60.0
    tpot = 0.01 * (1 + c / 8) / scale  # more users → slower per user
    out_tok = int(c * duration / tpot * 0.9)
    in_tok = out_tok  # 1k1k
    energy = 500.0 * max(gpus, 1) * duration
    metrics = {
        "completed": max(10 * c, 20),
        "failed": 0,
        "error_rate": 0.0,
        "errors": {},
        "duration_s": duration,
        "total_input_tokens": in_tok,
        "total_output_tokens": out_tok,
        "token_count_source": "usage",
        "request_throughput": max(10 * c, 20) / duration,
        "input_throughput": in_tok / duration,
        "output_throughput": out_tok / duration,
        "total_token_throughput": (in_tok + out_tok) / duration,
        "goodput": None,
        "ttft": _stats(0.05 * c),
        "tpot": _stats(tpot),
        "itl": _stats(tpot),
        "itl_per_token": _stats(tpot),
        "e2el": _stats(tpot * 1024),
        "interactivity": _stats(1 / tpot, p10=True),
        "steady_state": {
            "start_s": 1.0,
            "end_s": 59.0,
            "duration_s": 58.0,
            "output_throughput": out_tok / duration,
            "total_token_throughput": (in_tok + out_tok) / duration,
        },
    }
    telemetry = {
        "power_valid": gpus > 0,
        "invalid_reasons": [] if gpus > 0 else ["no GPU power (cpu)"],
        "source": "nvidia-smi" if gpus else None,
        "energy_j": energy if gpus else None,
        "avg_power_w_per_gpu": 500.0 if gpus else None,
        "joules_per_output_token": energy / out_tok if gpus else None,
        "joules_per_total_token": energy / (in_tok + out_tok) if gpus else None,
        "samples": 60 * gpus,
        "gpus": gpus,
    }
    ran = status in ("ok", "invalid")
    return {
        **{k: spec[k] for k in ("id", "scenario", "isl", "osl", "concurrency", "request_rate")},
        "status": status,
        "failure_class": "crash" if status == "failed" else None,
        "valid": status == "ok",
        "invalid_reasons": [] if status != "invalid" else ["too few requests"],
        "started_at": "2026-11-28T10:00:00Z" if ran else None,
        "finished_at": "2026-11-28T10:01:00Z" if ran else None,
        "metrics": metrics if ran else None,
        "client": {"cpu_percent": 12.0, "loop_lag_p99_s": 0.001, "saturated": False, "workers": 1}
        if ran
        else None,
        "telemetry": telemetry if ran else None,
    }


# What nvidia-smi reports for a job's SKU (collect checks it against the plan's sku_gpu_names).
_GPU_NAME = {
    "h100": "NVIDIA H100 80GB HBM3",
    "h200": "NVIDIA H200",
    "mi355x": "AMD Instinct MI355X",
}


def make_result(
    job: dict[str, Any],
    *,
    run_id: str = "1001",
    date: str = "2026-11-28",
    attempt: int = 1,
    scale: float = 1.0,
    statuses: dict[int, str] | None = None,
) -> dict[str, Any]:
    """A whole result.json for `job`; `statuses` maps point index → status (default ok)."""
    statuses = statuses or {}
    gpus = job["topology"]["gpus"]
    points = [
        make_point(p, gpus=gpus, scale=scale, status=statuses.get(i, "ok"))
        for i, p in enumerate(job["points"])
    ]
    oks = [p["status"] == "ok" for p in points]
    status = "ok" if all(oks) else ("partial" if any(oks) else "failed")
    return {
        "schema_version": 1,
        "kind": "ixci.result",
        "ixci_version": "0.1.0",
        "metrics_version": 1,
        "git_sha": "0" * 40,
        "run": {
            "run_id": run_id,
            "attempt": attempt,
            "event": "schedule",
            "repository": "acme/bench",
            "started_at": f"{date}T10:00:00Z",
            "finished_at": f"{date}T11:00:00Z",
        },
        "job": job,
        "provenance": {
            "image": job["image"],
            "image_digest": "sha256:" + "ab" * 32,
            "engine_version": "0.11.0",
            "server_argv": ["vllm", "serve"],
            "runtime": "docker",
            "runner_name": "r1",
            "hostname": "h1",
            "driver_version": "570.1",
            "gpu_names": [_GPU_NAME.get(job["sku"], f"NVIDIA {job['sku'].upper()}")] * gpus,
            "client": {"name": "ixci-loadgen", "version": "0.1.0"},
            "notes": [],
        },
        "status": status,
        "failure_class": None if status != "failed" else "crash",
        "failure_message": None if status != "failed" else "server exited",
        "points": points,
    }


def planned(job: dict[str, Any]) -> dict[str, Any]:
    """`job` as the planner writes it: completed with what `make_job` leaves out (`recipes`,
    `checkpoint`, an estimate, `dp`, the pools' SKU and engine arguments, a disaggregated
    job's router) and in `ixci.job.Job.to_dict`'s canonical form, so a plan of it is read
    by `ixci.job.load_plan` and the job's result matches the plan field for field."""
    from ixci.job import Job

    full = json.loads(json.dumps(job))
    full.setdefault("recipes", [full["recipe"]])
    full.setdefault("checkpoint", full["model"])
    if set(full.get("estimate") or {}) != set(_ESTIMATE):
        full["estimate"] = dict(_ESTIMATE)
    topo = full["topology"]
    for role in ("prefill", "decode"):
        if isinstance(pool := topo.get(role), dict):
            pool["sku"] = pool.get("sku") or full["sku"]
            pool.setdefault("engine_args", {})
    if topo.get("disaggregated"):
        topo.setdefault("router", {"name": "vllm-router", "version": "0.1.0"})
        topo.setdefault("kv_transfer", "nixl")
    return Job.from_dict(full).to_dict()


_ESTIMATE = {
    "server_start_s": 60.0,
    "warmup_s": 10.0,
    "points_s": 300.0,
    "total_gpu_hours": 0.1,
    "restart_per_point_gpu_hours": 0.2,
}


def make_plan(
    *jobs: dict[str, Any],
    event: str = "schedule",
    sku_gpu_names: dict[str, list[str]] | None = None,
) -> Any:
    """An `ixci.job.Plan` of `jobs` (each completed by `planned`)."""
    from ixci.job import Plan

    return Plan.from_dict(
        {"event": event, "jobs": [planned(j) for j in jobs], "sku_gpu_names": sku_gpu_names or {}}
    )


def plan_json(*jobs: dict[str, Any], **kw: Any) -> str:
    """The plan file (`ixci plan --format json`) of `jobs`, as `make_plan` builds it."""
    text: str = make_plan(*jobs, **kw).to_json()
    return text
