"""Writes a results-branch tree in the layout of contracts.md §4, for the site's tests and perf.

The numbers come from a simple closed-loop serving model (per-user speed falls with
concurrency, throughput rises and saturates), so curves have the shape real ones have
and Pareto fronts are non-trivial. Deterministic for a given seed.

The tree has several SKUs, frameworks and models, two runs a day apart, an image change
between the runs, a failed job, a job that never arrived, a disaggregated config, a
speculative-decoding config (with acceptance figures) and a config whose eval suite fails its
quality gate in the second run.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.results.aggregate import INTERVAL_COLUMNS

COLUMNS_BASE = [
    "run_id", "run_date", "job_id", "point_id", "config_id", "job_name", "recipe", "model", "model_id", "scenario",
    "isl", "osl", "precision", "sku", "framework", "runner", "image", "image_digest", "tp", "ep",
    "pp", "dcp", "dp_attention", "gpus", "prefill_gpus", "decode_gpus", "disaggregated",
    "spec_decoding", "concurrency", "request_rate", "valid", "status", "ttft_mean_s",
    "ttft_p99_s", "tpot_mean_s", "tpot_median_s", "itl_p99_s", "e2el_mean_s", "e2el_median_s",
    "interactivity_median", "interactivity_mean", "request_throughput", "output_throughput",
    "input_throughput", "total_token_throughput", "tput_per_gpu", "output_tput_per_gpu",
    "input_tput_per_gpu", "input_tput_per_prefill_gpu", "output_tput_per_decode_gpu",
    "energy_j", "joules_per_output_token", "joules_per_total_token", "power_valid",
    "avg_power_w_per_gpu", "tokens_per_s_per_mw", "quality_failed", "spec_acceptance_rate",
    "spec_mean_accepted_length",
]  # fmt: skip
TAIL = ["on_front", "client_saturated", "engine_version"]

# $/GPU-hour and all-in kW per GPU (shared/reference/hardware.md)
PRICES = {
    "h100": {"hyperscaler": 1.30, "neocloud": 1.69, "rental_3y": 1.30},
    "h200": {"hyperscaler": 1.41, "neocloud": 1.74, "rental_3y": 1.60},
    "b200": {"hyperscaler": 1.95, "neocloud": 2.34, "rental_3y": 2.90},
    "mi355x": {"hyperscaler": 1.48, "neocloud": 1.90, "rental_3y": 2.10},
}
ALL_IN_KW = {"h100": 1.73, "h200": 1.73, "b200": 2.17, "mi355x": 2.65}
BOARD_W = {"h100": 700, "h200": 700, "b200": 1000, "mi355x": 1400}
TIERS = ("hyperscaler", "neocloud", "rental_3y")
SCENARIOS = {"1k1k": (1024, 1024), "8k1k": (8192, 1024)}
MODELS = {"deepseek-r1": "deepseek-ai/DeepSeek-R1-0528", "gpt-oss-120b": "openai/gpt-oss-120b"}


@dataclass(frozen=True, kw_only=True)
class Config:
    model: str
    sku: str
    framework: str
    precision: str
    image: str
    tp: int
    ep: int = 1
    dp_attention: bool = False
    spec: str | None = None
    prefill_gpus: int = 0  # > 0: disaggregated
    decode_gpus: int = 0
    speed: float = 1.0  # relative per-user speed
    variant: str = ""  # engine args that tell two configs of one deployment apart ("parallel=8")
    repeats: int = 1  # > 1: points carry 95 % intervals (not part of the configuration's id)
    quality_failed: bool = False  # its eval suite fails the quality gate in the second run

    @property
    def name(self) -> str:
        """The plan's unique job name (without the scenario), as `job_name` in the table."""
        base = f"{self.model} {self.precision} {self.sku} {self.framework} tp{self.tp}"
        return f"{base} {self.variant}" if self.variant else base

    @property
    def recipe(self) -> str:
        slug = self.name.replace(" ", "-").replace("=", "")
        return f"matrix/recipes/{slug}.yaml"

    @property
    def gpus(self) -> int:
        return self.prefill_gpus + self.decode_gpus if self.prefill_gpus else self.tp

    @property
    def config_id(self) -> str:
        key = f"{self.model}|{self.sku}|{self.framework}|{self.precision}|{self.tp}|{self.ep}|{self.dp_attention}|{self.spec}|{self.prefill_gpus}|{self.decode_gpus}"
        key += f"|{self.variant}" if self.variant else ""
        return "c-" + hashlib.sha256(key.encode()).hexdigest()[:12]


CONFIGS = (
    Config(model="deepseek-r1", sku="h200", framework="sglang", precision="fp8",
           image="lmsysorg/sglang:v0.5.5-cu129", tp=8, speed=0.9, quality_failed=True),
    Config(model="deepseek-r1", sku="h200", framework="trtllm", precision="fp8",
           image="nvcr.io/nvidia/tensorrt-llm/release:1.1.0rc5", tp=8, ep=8, dp_attention=True, speed=1.0),
    Config(model="deepseek-r1", sku="b200", framework="trtllm", precision="fp4",
           image="nvcr.io/nvidia/tensorrt-llm/release:1.1.0rc5", tp=8, ep=8, spec="mtp", speed=1.9),
    Config(model="deepseek-r1", sku="b200", framework="dynamo-trt", precision="fp4",
           image="nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:0.6.1", tp=8, ep=8,
           dp_attention=True, prefill_gpus=8, decode_gpus=16, speed=2.2),
    Config(model="deepseek-r1", sku="mi355x", framework="sglang", precision="fp8",
           image="rocm/sgl-dev:v0.5.5-rocm700-mi35x", tp=8, speed=1.3),
    Config(model="gpt-oss-120b", sku="h100", framework="vllm", precision="fp4",
           image="vllm/vllm-openai:v0.11.2", tp=2, speed=1.0),
    Config(model="gpt-oss-120b", sku="b200", framework="vllm", precision="fp4",
           image="vllm/vllm-openai:v0.11.2", tp=1, speed=2.0, repeats=3),
    Config(model="gpt-oss-120b", sku="mi355x", framework="vllm", precision="fp4",
           image="rocm/vllm:rocm7.0.0_vllm_0.11.1", tp=1, speed=1.6),
)  # fmt: skip

RUNS = (
    {"run_id": "19781001001", "date": "2026-11-26T03:12:00Z", "event": "schedule",
     "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"},
    {"run_id": "19802002002", "date": "2026-11-27T03:09:00Z", "event": "schedule",
     "sha": "b2c3d4e5f60718293a4b5c6d7e8f901234567890"},
)  # fmt: skip
REPO = "example-org/ixci-results"
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NEW_IMAGE = {"h200|sglang": "lmsysorg/sglang:v0.5.6-cu129"}  # image bumped in the second run
FAILED = {("gpt-oss-120b", "mi355x", "vllm", sc) for sc in SCENARIOS}  # fail in the second run
MISSING = {("gpt-oss-120b", "h100", "vllm", "8k1k")}  # never arrives in the second run


def _job_id(run_index: int, cfg: Config, scenario: str, image: str) -> str:
    del run_index  # a job id is a hash of the launch spec: stable across runs
    return "j-" + hashlib.sha256(f"{cfg.config_id}|{scenario}|{image}".encode()).hexdigest()[:12]


def _point_metrics(
    cfg: Config, isl: int, osl: int, conc: int, rng: random.Random
) -> dict[str, Any]:
    """A closed-loop serving model: per-user speed falls as concurrency rises."""
    noise = 1.0 + rng.uniform(-0.04, 0.04)
    s0 = 160.0 * cfg.speed * (0.8 if isl > 2048 else 1.0) * noise
    speed = s0 / (1.0 + conc / (24.0 * cfg.speed)) ** 0.75  # tokens/s/user
    ttft = 0.04 * isl / 1024 * (1 + conc / 48.0) / cfg.speed
    tpot = 1.0 / speed
    e2el = ttft + (osl - 1) * tpot
    req_tput = conc / e2el
    out_tput = req_tput * osl
    in_tput = req_tput * isl
    total = out_tput + in_tput
    gpus = cfg.gpus
    power = BOARD_W[cfg.sku] * (0.45 + 0.45 * min(1.0, conc / 64.0))
    energy_per_s = power * gpus
    duration = max(60.0, 10 * conc * e2el / conc)
    tput_gpu = total / gpus
    row: dict[str, Any] = {
        "ttft_mean_s": ttft, "ttft_p99_s": ttft * 2.1, "tpot_mean_s": tpot * 1.03,
        "tpot_median_s": tpot, "itl_p99_s": tpot * 2.5, "e2el_mean_s": e2el * 1.02,
        "e2el_median_s": e2el, "interactivity_median": speed, "interactivity_mean": speed * 0.98,
        "request_throughput": req_tput, "output_throughput": out_tput, "input_throughput": in_tput,
        "total_token_throughput": total, "tput_per_gpu": tput_gpu,
        "output_tput_per_gpu": out_tput / gpus, "input_tput_per_gpu": in_tput / gpus,
        "input_tput_per_prefill_gpu": in_tput / cfg.prefill_gpus if cfg.prefill_gpus else None,
        "output_tput_per_decode_gpu": out_tput / cfg.decode_gpus if cfg.decode_gpus else None,
        "energy_j": energy_per_s * duration,
        "joules_per_output_token": energy_per_s / out_tput,
        "joules_per_total_token": energy_per_s / total, "power_valid": True,
        "avg_power_w_per_gpu": power, "tokens_per_s_per_mw": tput_gpu * 1000 / ALL_IN_KW[cfg.sku],
    }  # fmt: skip
    for tier in TIERS:
        price = PRICES[cfg.sku][tier]
        row[f"usd_per_mtok_{tier}"] = price / (tput_gpu * 3600 / 1e6)
        row[f"usd_per_output_mtok_{tier}"] = price / (out_tput / gpus * 3600 / 1e6)
    return row


def columns() -> list[str]:
    """The tidy-table columns in contract order (tiers of this fixture)."""
    usd = [f"usd_per_mtok_{t}" for t in TIERS] + [f"usd_per_output_mtok_{t}" for t in TIERS]
    return COLUMNS_BASE + list(INTERVAL_COLUMNS) + usd + TAIL


# relative half-widths of the fixture's intervals (repeated configurations only)
HALF_WIDTH = {"tput_per_gpu": 0.04, "output_tput_per_gpu": 0.04, "output_throughput": 0.04,
              "total_token_throughput": 0.04, "interactivity_median": 0.02, "e2el_median_s": 0.03,
              "ttft_mean_s": 0.06, "ttft_p99_s": 0.08, "tpot_mean_s": 0.02, "tpot_median_s": 0.02,
              "itl_p99_s": 0.05, "joules_per_output_token": 0.04}  # fmt: skip


def _intervals(cfg: Config, metrics: dict[str, Any], ok: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"repeats": cfg.repeats if ok else None}
    for name in INTERVAL_COLUMNS[1:]:
        base, end = name.rsplit("_", 1)
        v, f = metrics.get(base), HALF_WIDTH.get(base, 0.04)
        have = ok and cfg.repeats > 1 and v is not None
        out[name] = (v * (1 - f) if end == "lo" else v * (1 + f)) if have else None
    return out


def _rows_for(
    run_index: int, cfg: Config, scenario: str, status: str, rng: random.Random
) -> list[list[Any]]:
    run = RUNS[run_index]
    isl, osl = SCENARIOS[scenario]
    image = NEW_IMAGE.get(f"{cfg.sku}|{cfg.framework}", cfg.image) if run_index else cfg.image
    job_id = _job_id(run_index, cfg, scenario, image)
    cols = columns()
    rows = []
    for conc in CONCURRENCY:
        ok = status == "ok"
        rec: dict[str, Any] = {
            "run_id": run["run_id"], "run_date": run["date"], "job_id": job_id,
            "job_name": cfg.name, "recipe": cfg.recipe,
            "point_id": "p-" + hashlib.sha256(f"{job_id}|{scenario}|{conc}".encode()).hexdigest()[:12],
            "config_id": cfg.config_id, "model": cfg.model, "model_id": MODELS[cfg.model],
            "scenario": scenario, "isl": isl, "osl": osl, "precision": cfg.precision,
            "sku": cfg.sku, "framework": cfg.framework, "runner": f"{cfg.sku}-docker",
            "image": image, "image_digest": "sha256:" + hashlib.sha256(image.encode()).hexdigest(),
            "tp": cfg.tp, "ep": cfg.ep, "pp": 1, "dcp": 1, "dp_attention": cfg.dp_attention,
            "gpus": cfg.gpus, "prefill_gpus": cfg.prefill_gpus or None,
            "decode_gpus": cfg.decode_gpus or None, "disaggregated": bool(cfg.prefill_gpus),
            "spec_decoding": cfg.spec, "concurrency": conc, "request_rate": None,
            "valid": ok, "status": "ok" if ok else "failed",
            "on_front": False, "client_saturated": False, "engine_version": image.split(":")[-1],
            "quality_failed": ok and run_index == 1 and cfg.quality_failed,
            # acceptance falls as concurrency rises (the draft gets less time per request)
            "spec_acceptance_rate": round(0.8 - 0.1 * math.log2(conc) / 8, 4) if ok and cfg.spec else None,
            "spec_mean_accepted_length": round(1 + 3 * (0.8 - 0.1 * math.log2(conc) / 8), 4)
            if ok and cfg.spec else None,
        }  # fmt: skip
        metrics = _point_metrics(cfg, isl, osl, conc, rng)
        rec.update(_intervals(cfg, metrics, ok))
        for name in cols:
            if name not in rec:
                rec[name] = metrics.get(name) if ok else None
        rows.append([rec[c] for c in cols])
    return rows


def _coverage(run_index: int, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {
        s: sum(1 for j in jobs if j["status"] == s) for s in ("ok", "partial", "failed", "missing")
    }
    return {
        "run_id": RUNS[run_index]["run_id"],
        "expected": len(jobs),
        "arrived": len(jobs) - counts["missing"],
        "summary": counts,
        "jobs": jobs,
    }


def write_tree(root: Path, *, seed: int = 7, configs: tuple[Config, ...] = CONFIGS,
               layout: str = "parquet") -> Path:  # fmt: skip
    """Write the fixture results tree under `root` and return `root` (`layout`: `write_points`)."""
    rng = random.Random(seed)
    cols = columns()
    all_rows: list[list[Any]] = []
    index_runs = []
    for i, run in enumerate(RUNS):
        day = run["date"][:10].replace("-", "/")
        rel = f"runs/{day}/{run['run_id']}"
        jobs = []
        for cfg in configs:
            for scenario in SCENARIOS:
                key = (cfg.model, cfg.sku, cfg.framework, scenario)
                status = "ok"
                if i == 1 and key in FAILED:
                    status = "failed"
                if i == 1 and key in MISSING:
                    status = "missing"
                rows = [] if status == "missing" else _rows_for(i, cfg, scenario, status, rng)
                all_rows.extend(rows)
                image = NEW_IMAGE.get(f"{cfg.sku}|{cfg.framework}", cfg.image) if i else cfg.image
                jobs.append({
                    "job_id": _job_id(i, cfg, scenario, image),
                    "name": f"{cfg.name} {scenario}",
                    "model": cfg.model, "sku": cfg.sku, "framework": cfg.framework,
                    "precision": cfg.precision, "scenario": scenario, "image": image,
                    "status": status,
                    "failure_class": "server_start" if status == "failed" else None,
                    "failure_message": "engine exited with code 1 before ready" if status == "failed" else None,
                    "points_expected": len(CONCURRENCY),
                    "points_ok": len(CONCURRENCY) if status == "ok" else 0,
                })  # fmt: skip
        cov = _coverage(i, jobs)
        _dump(root / rel / "run.json", {**run, "repository": REPO, "path": rel})
        _dump(root / rel / "coverage.json", cov)
        index_runs.append({"run_id": run["run_id"], "date": run["date"], "event": run["event"],
                           "path": rel, "coverage": cov["summary"]})  # fmt: skip
    _finish(root, cols, all_rows, index_runs, layout)
    return root


def write_points(root: Path, table: dict[str, Any], paths: dict[str, str], layout: str) -> None:
    """The point table as the results branch stores it: month partitions (`ixci.results.pointstore`),
    or, with layout "json", one data/points.json as branches did before partitions."""
    if layout == "json":
        _dump(root / "data" / "points.json", table)
        return
    import pandas as pd

    from ixci.results import pointstore as ps

    df = pd.DataFrame(table["rows"], columns=table["columns"])
    month = df["run_id"].map(lambda r: ps.month_of(paths[str(r)]))
    for m, rows in df.groupby(month, sort=True):
        path = root / ps.POINTS_DIR / f"{m}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ps.parquet_bytes(ps.to_arrow(ps.sort_rows(rows))))


def _finish(
    root: Path, cols: list[str], rows: list[list[Any]], index_runs: list[dict[str, Any]],
    layout: str = "parquet",
) -> None:  # fmt: skip
    _mark_fronts(cols, rows)
    paths = {str(r["run_id"]): str(r["path"]) for r in index_runs}
    write_points(root, {"columns": cols, "rows": rows}, paths, layout)
    _dump(root / "index.json", {
        "schema_versions": {"result": 1, "points": 1},
        "runs": index_runs,
        "configs": sorted({r[cols.index("config_id")] for r in rows}),
    })  # fmt: skip


def _mark_fronts(cols: list[str], rows: list[list[Any]]) -> None:
    """on_front per run × model × scenario × sku × framework (interactivity vs tput/GPU)."""
    ix = {c: i for i, c in enumerate(cols)}
    groups: dict[tuple[Any, ...], list[list[Any]]] = {}
    for r in rows:
        if r[ix["valid"]]:
            key = tuple(r[ix[k]] for k in ("run_id", "model", "scenario", "sku", "framework"))
            groups.setdefault(key, []).append(r)
    for grp in groups.values():
        best = -math.inf
        for r in sorted(grp, key=lambda r: -r[ix["interactivity_median"]]):
            if r[ix["tput_per_gpu"]] > best:
                best = r[ix["tput_per_gpu"]]
                r[ix["on_front"]] = True


def write_large_tree(root: Path, n_points: int, *, seed: int = 11) -> Path:
    """A one-run tree with `n_points` valid points, all of one model and scenario (worst case:
    every point is in the default view)."""
    rng = random.Random(seed)
    cols = columns()
    run = RUNS[-1]
    rows: list[list[Any]] = []
    base = list(CONFIGS[:5])
    per_config = 256
    variant = 0
    while len(rows) < n_points:
        proto = base[variant % len(base)]
        cfg = Config(
            **{**proto.__dict__, "ep": 1 + variant, "speed": proto.speed * rng.uniform(0.7, 1.3)}
        )
        template = _rows_for(1, cfg, "1k1k", "ok", rng)[0]
        for k in range(min(per_config, n_points - len(rows))):
            conc = 1 + k
            rec = list(template)
            m = _point_metrics(cfg, 1024, 1024, conc, rng)
            rec[cols.index("concurrency")] = conc
            rec[cols.index("point_id")] = f"p-{variant:06d}{k:06d}"
            for name, value in m.items():
                rec[cols.index(name)] = value
            rows.append(rec)
        variant += 1
    rel = "runs/" + run["date"][:10].replace("-", "/") + "/" + run["run_id"]
    _dump(root / rel / "run.json", {**run, "repository": REPO, "path": rel})
    _dump(root / rel / "coverage.json", {"run_id": run["run_id"], "jobs": []})
    _finish(
        root,
        cols,
        rows,
        [{"run_id": run["run_id"], "date": run["date"], "path": rel, "coverage": {}}],
    )
    return root


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=None, separators=(",", ":")) + "\n")


if __name__ == "__main__":  # python tests/site/site_results_tree.py OUT
    import sys

    print(write_tree(Path(sys.argv[1])))


GPU_RESULT = Path(__file__).resolve().parents[1] / "data" / "gpu" / "llamacpp-h200-result.json"
EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "catalog"


def real_gpu_document() -> dict[str, Any]:
    """The real llama.cpp H200 artifact with each point's `roofline` object recomputed from the
    example catalog (the artifact's own, written by run-job on the GPU host, is the same:
    tests/runner/test_roofline.py)."""
    from ixci.catalog.catalog import load_catalog
    from ixci.run import roofline

    doc: dict[str, Any] = json.loads(GPU_RESULT.read_text())
    cat = load_catalog(EXAMPLE_CATALOG)
    job = doc["job"]
    inputs = roofline.inputs_for(
        cat.models[job["model"]], cat.skus[job["sku"]], precision=job["precision"],
        gpus=job["topology"]["gpus"],
    )  # fmt: skip
    assert inputs is not None, "the example catalog has every fact the bound needs"
    for p in doc["points"]:
        p["roofline"] = inputs.point(isl=p["isl"], osl=p["osl"], concurrency=p["concurrency"],
                                     metrics=p.get("metrics"))  # fmt: skip
    return doc


def write_real_gpu_tree(root: Path) -> Path:
    """A results tree of one run: the real H200 artifact through ixci's own tidy table."""
    from ixci.results.aggregate import tidy_table, to_columnar

    doc = real_gpu_document()
    df = tidy_table([doc])
    table = to_columnar(df)
    run_id = str(doc["run"]["run_id"])
    date = str(doc["run"]["started_at"])
    rel = f"runs/{date[:10].replace('-', '/')}/{run_id}"
    job = doc["job"]
    ok = sum(1 for p in doc["points"] if p["status"] == "ok")
    cov = {
        "run_id": run_id, "expected": 1, "arrived": 1,
        "summary": {"ok": 0, "partial": 1, "failed": 0, "missing": 0},
        "jobs": [{
            "job_id": job["id"], "name": job["name"], "model": job["model"], "sku": job["sku"],
            "framework": job["framework"], "precision": job["precision"],
            "scenario": doc["points"][0]["scenario"], "image": job.get("image"),
            "status": "partial", "failure_class": None, "failure_message": None,
            "points_expected": len(doc["points"]), "points_ok": ok,
        }],
    }  # fmt: skip
    run = {"run_id": run_id, "date": date, "event": "workflow_dispatch", "sha": "0" * 40}
    _dump(root / rel / "run.json", {**run, "repository": REPO, "path": rel})
    _dump(root / rel / "coverage.json", cov)
    write_points(root, table, {run_id: rel}, "parquet")
    _dump(root / "index.json", {
        "schema_versions": {"result": 1, "points": 1},
        "runs": [{"run_id": run_id, "date": date, "event": "workflow_dispatch", "path": rel,
                  "coverage": cov["summary"]}],
        "configs": sorted(set(df["config_id"])),
    })  # fmt: skip
    return root
