"""The planner: catalog → jobs (one warm server each) → selection → shards, with GPU-time costs.

Pure functions over a loaded `Catalog` (contracts.md §1).

- **Expansion**: recipe × search entry × scenario × concurrency → points. Points whose
  resolved server launch (image, model, engine arguments, environment, topology, runner) is
  identical share one job, so the server starts once and every point runs warm.
- **Ids**: `j-` + 12 hex of sha256 over the canonical JSON of the launch spec; `p-` + 12 hex
  over the job id and the point's workload. Canonical JSON sorts keys, so ids do not depend
  on dict ordering, file order or the run.
- **Estimate**: server start (image pull + weights at the runner's load bandwidth + engine
  init + warm-up) + points × point duration, in GPU-hours, next to the incumbent's cost of
  restarting the server for every point.
- **Sharding** for GitHub Actions (`github_outputs`); selection by event is `ixci.plan.selection`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ixci.catalog.catalog import Catalog, Model, Pool, Recipe, Runner, Scenario, SearchEntry
from ixci.errors import PlanError
from ixci.job import Estimate as Estimate
from ixci.job import Job as Job
from ixci.job import Plan as Plan
from ixci.job import Point as Point
from ixci.job import Router, SpecDecoding, Topology
from ixci.job import plain as _plain
from ixci.precision import bytes_per_param

MATRIX_LIMIT = 256
"""GitHub Actions: at most 256 jobs per matrix (one workflow job)."""
OUTPUT_LIMIT_BYTES = 1_000_000
"""GitHub Actions: job outputs are limited to about 1 MB per job in total (we stay below 10^6)."""
DEFAULT_MAX_SHARDS = 4
"""Shard jobs in `.github/workflows/sweep.yml` (`bench-0` … `bench-3`)."""

# --- estimate constants (documented in docs/planning.md; rough, deliberately simple) ---
ENGINE_INIT_S = 90.0
"""Engine start after weights are in memory: CUDA graphs, compilation, allocator (s)."""
NOMINAL_TPOT_S = 0.03
"""Decode time per output token per request at the benchmarked concurrencies (s)."""
NOMINAL_PREFILL_TOKENS_PER_S = 20_000.0
"""Prefill rate per request (input tokens/s)."""


# ----------------------------------------------------------------------------- ids


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 text; tuples as lists."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stable_id(prefix: str, value: Any) -> str:
    """`prefix` + 12 hex digits of sha256 over `canonical_json(value)`."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    return f"{prefix}{digest[:12]}"


# ----------------------------------------------------------------------------- expansion


def _pool(pool: Pool, role: str, default_sku: str) -> Pool:
    """A recipe's pool as the plan states it: its role, and the recipe's SKU unless it names
    one."""
    return replace(pool, role=role, sku=pool.sku or default_sku,
                   engine_args=_plain(pool.engine_args))  # fmt: skip


def topology(recipe: Recipe, entry: SearchEntry, runner: Runner) -> Topology:
    """The job's topology (contracts.md §2): parallelism, GPUs and nodes.

    `gpus` = tp × pp × dp, or the sum of both pools when disaggregated (`SearchEntry.gpus`).
    """
    dis = entry.disaggregated
    base = Topology(tp=entry.tp, ep=entry.ep, pp=entry.pp, dp=entry.dp, dcp=entry.dcp,
                    dp_attention=bool(entry.dp_attention), nodes=entry.total_nodes,
                    gpus=entry.gpus)  # fmt: skip
    if dis is None:
        return base
    return replace(
        base,
        disaggregated=True,
        prefill=_pool(dis.prefill, "prefill", recipe.sku),
        decode=_pool(dis.decode, "decode", recipe.sku),
        router=Router(name=dis.router.name, version=dis.router.version),
        kv_transfer=dis.kv_transfer,
    )


def _spec(entry: SearchEntry) -> SpecDecoding | None:
    spec = entry.spec_decoding
    if spec is None:
        return None
    return SpecDecoding(method=str(spec.method), num_speculative_tokens=spec.num_tokens,
                        draft_model=spec.draft_model)  # fmt: skip


def launch_spec(recipe: Recipe, entry: SearchEntry, runner: Runner) -> dict[str, Any]:
    """What makes a server launch distinct: everything that reaches argv, env or placement
    (plan-JSON values: the job id hashes it).

    Scenarios and concurrencies are *not* in it: they are client-side, so they share the server.
    """
    spec = _spec(entry)
    return {
        "image": recipe.image,
        "model": recipe.model,
        "checkpoint": recipe.checkpoint,
        "framework": recipe.framework,
        "precision": _plain(recipe.precision),
        "sku": recipe.sku,
        "runner": recipe.runner,
        "topology": topology(recipe, entry, runner).to_dict(),
        "spec_decoding": spec.to_dict() if spec else None,
        "engine_args": {**_plain(recipe.engine_args), **_plain(entry.engine_args)},
        "env": {**dict(recipe.env), **dict(entry.env)},
        "max_model_len": recipe.max_model_len,
    }


def job_name(recipe: Recipe, model: Model, precision: str, topo: Topology,
             spec: SpecDecoding | None) -> str:  # fmt: skip
    """A short human name: `dsr1 fp8 h200 sglang tp8 ep8 dpa mtp` (not unique; the id is)."""
    parts = [model.prefix, precision, recipe.sku, recipe.framework]
    if topo.disaggregated:
        for pool in topo.pools:
            parts.append(f"{pool.role[0]}{pool.workers}x" +
                         _par_name(pool.tp, pool.ep, pool.pp, 1, pool.dp_attention))  # fmt: skip
    else:
        parts.append(_par_name(topo.tp, topo.ep, topo.pp, topo.dcp, topo.dp_attention))
    if spec:
        parts.append(spec.method)
    return " ".join(parts)


def _par_name(tp: int, ep: int, pp: int, dcp: int, dp_attention: bool) -> str:
    text = f"tp{tp}"
    if ep > 1:
        text += f"-ep{ep}"
    if pp > 1:
        text += f"-pp{pp}"
    if dcp > 1:
        text += f"-dcp{dcp}"
    if dp_attention:
        text += "-dpa"
    return text


@dataclass(frozen=True, kw_only=True)
class _Draft:
    """A job being assembled: its launch (typed, and as the id hashes it) and the points
    gathered so far."""

    launch: Mapping[str, Any]
    topology: Topology
    spec: SpecDecoding | None
    recipe: Recipe
    points: dict[str, Point] = field(default_factory=dict)
    recipes: set[str] = field(default_factory=set)


def expand(catalog: Catalog, event: str | None = None) -> tuple[Job, ...]:
    """Every job of the catalog with all of its points, sorted by (recipe, name, id).

    Pure and deterministic. Points from different search entries (or recipes) that resolve
    to the same launch join one job; an identical point generated twice is kept once. `event`
    sets each point's repeats (`Scenario.repeats_for`: nightlies take `nightly-repeats`) and so
    the estimate; ids never depend on it.
    """
    drafts: dict[str, _Draft] = {}
    for recipe in catalog.recipes:
        runner = catalog.runners[recipe.runner]
        for entry in recipe.search_space:
            launch = launch_spec(recipe, entry, runner)
            job_id = stable_id("j-", launch)
            topo, spec = topology(recipe, entry, runner), _spec(entry)
            new = _Draft(launch=launch, topology=topo, spec=spec, recipe=recipe)
            draft = drafts.setdefault(job_id, new)
            draft.recipes.add(recipe.path)
            for point in _points(catalog, recipe, entry, job_id, event):
                draft.points.setdefault(point.id, point)
    jobs = _unique_names([_finish(catalog, job_id, d) for job_id, d in drafts.items()])
    return tuple(sorted(jobs, key=lambda j: (j.recipe, j.name, j.id)))


def _unique_names(jobs: list[Job]) -> list[Job]:
    """Jobs that share a name (same model, SKU, framework, topology) get what tells them
    apart appended: the engine arguments or env values that differ within the group (e.g.
    `parallel=2` vs `parallel=8`), else the id. Names label curves, so they must differ."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.name, []).append(job)
    out: list[Job] = []
    for name, group in groups.items():
        if len(group) == 1:
            out.extend(group)
            continue
        suffixes = [_difference(job, group) for job in group]
        if len(set(suffixes)) < len(group) or not all(suffixes):
            suffixes = [job.id for job in group]
        out.extend(
            replace(job, name=f"{name} {sfx}") for job, sfx in zip(group, suffixes, strict=True)
        )
    return out


def _difference(job: Job, group: Sequence[Job]) -> str:
    parts: list[str] = []
    for field_name in ("engine_args", "env"):
        keys = sorted({k for other in group for k in getattr(other, field_name)})
        for key in keys:
            values = {canonical_json(getattr(other, field_name).get(key)) for other in group}
            if len(values) > 1 and key in getattr(job, field_name):
                value = getattr(job, field_name)[key]
                shown = value if isinstance(value, str | int | float) else canonical_json(value)
                parts.append(f"{key}={shown}"[:48])
    return " ".join(parts)[:96]


def _points(catalog: Catalog, recipe: Recipe, entry: SearchEntry, job_id: str,
            event: str | None) -> Iterable[Point]:  # fmt: skip
    for name in entry.scenarios or recipe.scenarios:
        scenario = catalog.scenarios[name]
        for conc in entry.concurrency:
            workload = {
                "job": job_id,
                "scenario": name,
                "isl": scenario.isl,
                "osl": scenario.osl,
                "concurrency": conc,
                "request_rate": None,
            }
            yield Point(id=stable_id("p-", workload), scenario=name, isl=scenario.isl,
                        osl=scenario.osl, concurrency=conc,
                        repeats=scenario.repeats_for(event))  # fmt: skip


def _point_order(p: Point) -> tuple[str, int, float]:
    return (p.scenario, p.concurrency or 0, p.request_rate or 0.0)


def _finish(catalog: Catalog, job_id: str, draft: _Draft) -> Job:
    recipe, launch = draft.recipe, draft.launch
    runner = catalog.runners[recipe.runner]
    model = catalog.models[recipe.model]
    points = tuple(sorted(draft.points.values(), key=_point_order))
    return Job(
        id=job_id,
        name=job_name(recipe, model, str(launch["precision"]), draft.topology, draft.spec),
        runs_on=tuple(runner.labels),
        recipes=tuple(sorted(draft.recipes)),
        model=recipe.model,
        sku=recipe.sku,
        framework=recipe.framework,
        precision=str(launch["precision"]),
        runner=recipe.runner,
        image=recipe.image,
        topology=draft.topology,
        spec_decoding=draft.spec,
        engine_args=dict(sorted(launch["engine_args"].items())),
        env=dict(sorted(launch["env"].items())),
        max_model_len=recipe.max_model_len,
        checkpoint=recipe.checkpoint,
        points=points,
        estimate=estimate(
            catalog,
            model,
            runner,
            draft.topology.gpus,
            str(launch["precision"]),
            points,
        ),
    )


# ----------------------------------------------------------------------------- estimate


def weights_gb(model: Model, precision: str) -> float:
    """Checkpoint size in GB (10^9 bytes) from total parameters and bytes per parameter
    (0 when the catalog does not know the parameter count)."""
    return (model.total_params_b or 0.0) * bytes_per_param(precision)


def request_s(scenario: Scenario) -> float:
    """Nominal end-to-end seconds of one request: prefill of `isl` + decode of `osl` tokens."""
    return scenario.isl / NOMINAL_PREFILL_TOKENS_PER_S + scenario.osl * NOMINAL_TPOT_S


def num_requests(scenario: Scenario, concurrency: int | None) -> int:
    """Requests measured at one point: max(min_requests_per_concurrency × concurrency,
    min_requests), concurrency 1 for an open loop. The plan's estimate (`point_s`) assumes it
    and run-job sends it."""
    conc = max(concurrency or 1, 1)
    return max(scenario.min_requests_per_concurrency * conc, scenario.min_requests)


def point_s(
    scenario: Scenario, concurrency: int | None, request_rate: float | None = None
) -> float:
    """Seconds to measure one point: the scenario's minimum sample, clamped to its duration bounds.

    requests = max(min_requests_per_concurrency × concurrency, min_requests); closed loop at
    concurrency c completes c requests per `request_s`; open loop at rate r takes requests / r.
    """
    conc = max(concurrency or 1, 1)
    requests = num_requests(scenario, concurrency)
    if request_rate:
        raw = requests / request_rate + request_s(scenario)
    else:
        raw = math.ceil(requests / conc) * request_s(scenario)
    low = float(scenario.min_duration_s or 0.0)
    high = float(scenario.max_duration_s) if scenario.max_duration_s else math.inf
    return min(max(raw, low), high)


def server_start_s(model: Model, runner: Runner, precision: str) -> float:
    """Image pull + weight load at the runner's load bandwidth (GB/s) + engine init, in seconds."""
    load = weights_gb(model, precision) / max(runner.load_bandwidth_gbps, 1e-3)
    return float(runner.image_pull_s) + load + ENGINE_INIT_S


def estimate(
    catalog: Catalog,
    model: Model,
    runner: Runner,
    gpus: int,
    precision: str,
    points: Sequence[Point],
) -> Estimate:
    """One warm server for all `points` vs one server start (and warm-up) per point.

    A point with `repeats` R costs R × `point_s` in both figures (the restart figure still
    pays one start per point: repeats would share it)."""
    start = server_start_s(model, runner, precision)
    scenarios = [catalog.scenarios[p.scenario] for p in points]
    warm = [s.warmup_requests * request_s(s) / max(min(s.warmup_requests, 8), 1) for s in scenarios]
    durations = [
        point_s(s, p.concurrency, p.request_rate) * max(p.repeats, 1)
        for s, p in zip(scenarios, points, strict=True)
    ]
    warmup = max(warm, default=0.0)
    total = start + warmup + sum(durations)
    restart = sum(start + w + d for w, d in zip(warm, durations, strict=True))
    return Estimate(
        server_start_s=start,
        warmup_s=warmup,
        points_s=sum(durations),
        total_gpu_hours=total * gpus / 3600.0,
        restart_per_point_gpu_hours=restart * gpus / 3600.0,
    )


# ----------------------------------------------------------------------------- plan


def make_plan(catalog: Catalog, event: str, jobs: Sequence[Job], notes: Sequence[str] = ()) -> Plan:
    """Wrap selected `jobs` into a `Plan` (with the catalog's content hash)."""
    names = {j.sku: tuple(catalog.skus[j.sku].gpu_names) for j in jobs if j.sku in catalog.skus}
    return Plan(
        event=event,
        catalog_sha=catalog.digest,
        jobs=tuple(jobs),
        notes=tuple(notes),
        sku_gpu_names=names,
    )


def find_job(catalog: Catalog, job_id: str, event: str | None = None) -> Job:
    """The job `job_id` of the catalog, re-expanded for `event` (used by `ixci run-job`)."""
    for job in expand(catalog, event):
        if job.id == job_id:
            return job
    raise PlanError(
        f"job {job_id} is not in the catalog at {catalog.root}",
        hint="the catalog changed between `ixci plan` and `ixci run-job`? "
        "run both at the same commit",
    )


# ----------------------------------------------------------------------------- GitHub output


def timeout_minutes(estimate: Estimate) -> int:
    """The bench job's `timeout-minutes`: 1.5 × the estimated wall time + 30 min for checkout,
    install and upload, within [30, 4320] (self-hosted jobs may run up to 5 days)."""
    wall_s = estimate.server_start_s + estimate.warmup_s + estimate.points_s
    return min(4320, max(30, math.ceil(wall_s * 1.5 / 60) + 30))


def shard_legs(plan: Plan, *, max_shards: int = DEFAULT_MAX_SHARDS) -> list[list[dict[str, Any]]]:
    """Split the plan's jobs into ≤ `max_shards` matrices of ≤ 256 legs
    `{id, name, runs-on, timeout-minutes}`.

    Raises `PlanError` naming the limit rather than dropping any job.
    """
    legs = [
        {
            "id": j.id,
            "name": j.name,
            "runs-on": list(j.runs_on),
            "timeout-minutes": timeout_minutes(j.estimate),
        }
        for j in plan.jobs
    ]
    capacity = max_shards * MATRIX_LIMIT
    if len(legs) > capacity:
        raise PlanError(
            f"plan has {len(legs)} jobs but the workflow can dispatch at most {capacity} "
            f"({max_shards} shard jobs × {MATRIX_LIMIT} legs, GitHub's matrix limit); nothing "
            "was dispatched",
            hint="narrow the selection (--only/--exclude, --budget-gpu-hours) or add shard jobs "
            "to the workflow and raise --max-shards",
        )
    return [legs[i : i + MATRIX_LIMIT] for i in range(0, len(legs), MATRIX_LIMIT)]


def github_outputs(plan: Plan, *, max_shards: int = DEFAULT_MAX_SHARDS) -> dict[str, str]:
    """Step outputs: `shards` (names of non-empty shards), `shard-N` for N < max_shards, `legs`.

    Every `shard-N` is written (empty ones as `{"include": []}`) so the workflow's fixed shard
    jobs can test `contains(fromJSON(needs.plan.outputs.shards), 'shard-N')`. Raises
    `PlanError` when the outputs would exceed GitHub's ~1 MB job-output limit.
    """
    shards = shard_legs(plan, max_shards=max_shards)
    out: dict[str, str] = {
        "shards": json.dumps([f"shard-{i}" for i in range(len(shards))]),
        "legs": str(len(plan.jobs)),
    }
    for i in range(max_shards):
        legs = shards[i] if i < len(shards) else []
        out[f"shard-{i}"] = json.dumps({"include": legs}, separators=(",", ":"), sort_keys=True)
    size = sum(len(k) + len(v.encode("utf-8")) for k, v in out.items())
    if size > OUTPUT_LIMIT_BYTES:
        raise PlanError(
            f"GitHub outputs would be {size} bytes, over the {OUTPUT_LIMIT_BYTES}-byte job-output "
            "limit (GitHub allows about 1 MB of outputs per job); nothing was dispatched",
            hint="narrow the selection or shorten job names",
        )
    return out


# ----------------------------------------------------------------------------- table


def to_table(plan: Plan, *, explain: bool = False) -> str:
    """A fixed-width text table for people: jobs, points, GPU-hours, saving vs restarts."""
    head = f"{'job':<14} {'name':<60} {'gpus':>4} {'pts':>4} {'start s':>8} {'GPU-h':>8} {'restart GPU-h':>13}"
    lines = [head, "-" * len(head)]
    for job in plan.jobs:
        est = job.estimate
        lines.append(
            f"{job.id:<14} {job.name[:60]:<60} {job.gpus:>4} {len(job.points):>4} "
            f"{est.server_start_s:>8.0f} {est.total_gpu_hours:>8.2f} "
            f"{est.restart_per_point_gpu_hours:>13.2f}"
        )
        if explain:
            lines.extend(f"{'':<15}because {why}" for why in job.selected_because)
    lines.append("-" * len(head))
    lines.append(summary_line(plan))
    lines.extend(f"note: {n}" for n in plan.notes)
    return "\n".join(lines) + "\n"


def summary_line(plan: Plan) -> str:
    """`N jobs, M points, X GPU-h (restarting per point: Y GPU-h, saving Z GPU-h = P %)`."""
    saving = plan.restart_gpu_hours - plan.gpu_hours
    pct = 100.0 * saving / plan.restart_gpu_hours if plan.restart_gpu_hours else 0.0
    return (
        f"{plan.event}: {len(plan.jobs)} jobs, {plan.points} points, {plan.gpu_hours:.1f} GPU-h "
        f"(restarting the server per point: {plan.restart_gpu_hours:.1f} GPU-h; "
        f"saving {saving:.1f} GPU-h = {pct:.0f} %)"
    )
