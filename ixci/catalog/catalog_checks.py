"""Cross-file checks of the catalog: references exist, hardware fits, pools are complete.

Split from `catalog.py` (which builds the dataclasses) to keep both small. Every check
returns pointed `Problem`s; names defined in a file that failed its schema still count as
defined, so one typo does not cascade into a dangling reference in every recipe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ixci import runtimes
from ixci.errors import Problem
from ixci.metric_table import directions, not_alertable
from ixci.schemas import suggest
from ixci.yamlio import Document, PathKey

if TYPE_CHECKING:
    from ixci.catalog.catalog import (
        Engine,
        Loaded,
        Model,
        Pool,
        Recipe,
        Runner,
        Scenario,
        SearchEntry,
        Sku,
    )

FIGURES = ("gpu-names", "memory-gb", "memory-bandwidth-tbs", "peak-tflops", "gpus-per-node", "scale-up-domain", "board-w",
           "all-in-kw", "usd-per-gpu-hour")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Names:
    """Names each file defines (even where an entry failed its schema)."""

    skus: frozenset[str]
    engines: frozenset[str]
    models: frozenset[str]
    runners: frozenset[str]
    scenarios: frozenset[str]
    recipes: frozenset[str]

    @classmethod
    def of(cls, loaded: Sequence[Loaded]) -> Names:
        def keys(kind: str, top: str) -> frozenset[str]:
            for item in loaded:
                if item.kind == kind and isinstance(item.doc.data, dict):
                    value = item.doc.data.get(top)
                    return frozenset(value) if isinstance(value, dict) else frozenset()
            return frozenset()

        def stems(kind: str) -> frozenset[str]:
            return frozenset(
                i.rel.rsplit("/", 1)[-1].rsplit(".", 1)[0] for i in loaded if i.kind == kind
            )

        scenario_names = {
            i.doc.data.get("name")
            for i in loaded
            if i.kind == "scenario" and isinstance(i.doc.data, dict)
        }
        return cls(
            skus=keys("hardware", "skus"), engines=keys("engines", "engines"), models=keys("models", "models"),
            runners=keys("runners", "runners"), recipes=stems("recipe"),
            scenarios=frozenset(n for n in scenario_names if isinstance(n, str)) | stems("scenario"),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _Ctx:
    names: Names
    skus: Mapping[str, Sku]
    engines: Mapping[str, Engine]
    models: Mapping[str, Model]
    runners: Mapping[str, Runner]
    scenarios: Mapping[str, Scenario]


def check(
    *,
    loaded: Sequence[Loaded],
    names: Names,
    skus: Mapping[str, Sku],
    engines: Mapping[str, Engine],
    models: Mapping[str, Model],
    runners: Mapping[str, Runner],
    scenarios: Mapping[str, Scenario],
    recipes: Sequence[Recipe],
) -> list[Problem]:
    """Every cross-file problem of the catalog (empty when it is consistent)."""
    ctx = _Ctx(
        names=names, skus=skus, engines=engines, models=models, runners=runners, scenarios=scenarios
    )
    docs = {item.rel: item for item in loaded}
    problems: list[Problem] = []
    for item in loaded:
        if item.data is None:
            continue
        if item.kind == "hardware":
            problems += _check_hardware(item)
        elif item.kind == "runners":
            problems += _check_runners(item, ctx)
        elif item.kind == "models":
            problems += _check_models(item)
        elif item.kind == "scenario" and item.entry_ok():
            problems += _check_scenario(item)
        elif item.kind == "canary" and item.entry_ok():
            problems += _check_canary(item, names)
        elif item.kind == "recipe" and item.problems:
            problems += _raw_recipe_refs(item, ctx)
    for recipe in recipes:
        problems += _check_recipe(recipe, docs[recipe.path].doc, ctx)
    return problems


def _unknown(
    doc: Document, path: PathKey, what: str, name: str, known: Iterable[str], where: str
) -> Problem:
    hint = suggest(name, known) or f"; known: {', '.join(sorted(known)) or 'none'}"
    return doc.problem(path, f"unknown {what} {name!r}{hint} (defined in {where})")


def alert_metric_problems(doc: Document, alerts: Any) -> list[Problem]:
    """Each `alerts.regression.metrics` entry that the metric table does not mark alertable."""
    regression = alerts.get("regression") if isinstance(alerts, Mapping) else None
    metrics = regression.get("metrics") if isinstance(regression, Mapping) else None
    where = "ixci/metric_table.py, docs/metrics-table.md"
    return [
        _unknown(doc, ("alerts", "regression", "metrics", i), "alertable metric", name,
                 directions(), where)
        for i, name in not_alertable(metrics)
    ]  # fmt: skip


# --- per-file checks ----------------------------------------------------------------------


def _check_hardware(item: Loaded) -> list[Problem]:
    out = alert_metric_problems(item.doc, item.data.get("alerts"))
    for name, sku in (item.data.get("skus") or {}).items():
        if not item.entry_ok("skus", name):
            continue
        sources = sku.get("sources", {})
        for figure in FIGURES:
            if figure in sku and figure not in sources:
                out.append(
                    item.doc.problem(
                        ("skus", name, figure), f"figure has no source: add sources.{figure}"
                    )
                )
        for figure in sources:
            if figure not in sku:
                out.append(
                    item.doc.problem(
                        ("skus", name, "sources", figure), "source for a figure that is not given"
                    )
                )
    return out


def _check_runners(item: Loaded, ctx: _Ctx) -> list[Problem]:
    out = []
    seen: dict[tuple[str, ...], str] = {}
    for name, runner in (item.data.get("runners") or {}).items():
        if not item.entry_ok("runners", name):
            continue
        if runner["sku"] not in ctx.names.skus:
            out.append(_unknown(item.doc, ("runners", name, "sku"), "SKU", runner["sku"], ctx.names.skus,
                                "matrix/hardware.yaml"))  # fmt: skip
        labels = tuple(sorted(runner["labels"]))
        if labels in seen:
            message = f"same labels as runner {seen[labels]!r}: a job could land on either pool"
            out.append(item.doc.problem(("runners", name, "labels"), message))
        seen.setdefault(labels, name)
        out += _label_subsets(item, name, runner["labels"])
        kind = runner["runtime"]
        if kind not in runtimes.KINDS:
            out.append(_unknown(item.doc, ("runners", name, "runtime"), "runtime", kind,
                                runtimes.KINDS, "ixci/runtimes/__init__.py"))  # fmt: skip
        elif runner["nodes"] > 1 and kind not in (placing := runtimes.multi_node_kinds()):
            message = (f"a pool spanning {runner['nodes']} nodes needs a runtime that places "
                       f"components on nodes: {', '.join(placing)}")  # fmt: skip
            out.append(item.doc.problem(("runners", name, "nodes"), message))
    return out


def _label_subsets(item: Loaded, name: str, labels: Sequence[str]) -> list[Problem]:
    """GitHub routes a job to any runner having *all* its labels: a pool whose labels are a
    strict subset of another pool's would receive that pool's jobs too."""
    out = []
    for other, runner in (item.data.get("runners") or {}).items():
        theirs = runner.get("labels") if isinstance(runner, dict) else None
        if other != name and isinstance(theirs, list) and set(labels) < set(theirs):
            message = f"labels are a subset of runner {other!r}'s: its runners would also take this pool's jobs"
            out.append(item.doc.problem(("runners", name, "labels"), message))
    return out


def _check_models(item: Loaded) -> list[Problem]:
    out = []
    prefixes: dict[str, str] = {}
    for key, model in (item.data.get("models") or {}).items():
        if not item.entry_ok("models", key):
            continue
        heads, kv = model.get("attention-heads"), model.get("kv-heads")
        if heads and kv and heads % kv:
            out.append(
                item.doc.problem(
                    ("models", key, "kv-heads"), f"{kv} does not divide attention-heads {heads}"
                )
            )
        total, active = model.get("total-params-b"), model.get("active-params-b")
        if total and active and active > total:
            out.append(
                item.doc.problem(
                    ("models", key, "active-params-b"), f"{active} exceeds total-params-b {total}"
                )
            )
        if model["prefix"] in prefixes:
            message = (
                f"prefix {model['prefix']!r} is already used by model {prefixes[model['prefix']]!r}"
            )
            out.append(item.doc.problem(("models", key, "prefix"), message))
        prefixes.setdefault(model["prefix"], key)
    return out


def _check_scenario(item: Loaded) -> list[Problem]:
    stem = item.rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    out = []
    if item.data["name"] != stem and "/scenarios/" in f"/{item.rel}":
        out.append(
            item.doc.problem(
                ("name",), f"name {item.data['name']!r} differs from the file name {stem!r}"
            )
        )
    if item.data["min-duration-s"] > item.data["max-duration-s"]:
        out.append(item.doc.problem(("min-duration-s",), "is larger than max-duration-s"))
    return out + _check_workload(item)


def _check_workload(item: Loaded) -> list[Problem]:
    """A sessions workload's {min, max} ranges must not be reversed."""
    workload = item.data.get("workload") or {}
    out = []
    for key in ("turns", "first-turn-tokens", "new-tokens", "output-tokens"):
        value = workload.get(key)
        if isinstance(value, dict) and value["min"] > value["max"]:
            message = f"min {value['min']} is larger than max {value['max']}; swap them"
            out.append(item.doc.problem(("workload", key, "min"), message))
    return out


def _check_canary(item: Loaded, names: Names) -> list[Problem]:
    return [
        _unknown(item.doc, ("canary", i), "recipe", name, names.recipes, "matrix/recipes/")
        for i, name in enumerate(item.data["canary"])
        if name not in names.recipes
    ]


# --- recipes --------------------------------------------------------------------------


def _check_recipe(recipe: Recipe, doc: Document, ctx: _Ctx) -> list[Problem]:
    out = _recipe_refs(recipe, doc, ctx)
    engine, runner = ctx.engines.get(recipe.framework), ctx.runners.get(recipe.runner)
    if engine is not None:
        out += _image_belongs(recipe, engine, doc)
    if runner is not None and runner.sku != recipe.sku and recipe.sku in ctx.names.skus:
        message = f"runner {recipe.runner!r} serves SKU {runner.sku!r}, not {recipe.sku!r}"
        out.append(doc.problem(("runner",), message))
    model = ctx.models.get(recipe.model)
    if model is not None and not recipe.checkpoint:
        have = ", ".join(sorted(model.checkpoints))
        message = f"model {recipe.model!r} has no {recipe.precision} checkpoint (has: {have}); add one or set `checkpoint`"
        out.append(doc.problem(("precision",), message))
    raw_entries = doc.data.get("search-space", []) if isinstance(doc.data, dict) else []
    for entry in recipe.search_space:
        raw = raw_entries[entry.index] if entry.index < len(raw_entries) else {}
        out += _check_entry(recipe, entry, raw, doc, ctx)
    return out


def _recipe_refs(recipe: Recipe, doc: Document, ctx: _Ctx) -> list[Problem]:
    out = []
    refs = (
        ("model", recipe.model, ctx.names.models, "model", "matrix/models.yaml"),
        ("sku", recipe.sku, ctx.names.skus, "SKU", "matrix/hardware.yaml"),
        ("framework", recipe.framework, ctx.names.engines, "framework", "matrix/engines.yaml"),
        ("runner", recipe.runner, ctx.names.runners, "runner", "matrix/runners.yaml"),
    )
    for key, name, known, what, where in refs:
        if name not in known:
            out.append(_unknown(doc, (key,), what, name, known, where))
    for i, name in enumerate(recipe.scenarios):
        if name not in ctx.names.scenarios:
            out.append(
                _unknown(
                    doc,
                    ("scenarios", i),
                    "scenario",
                    name,
                    ctx.names.scenarios,
                    "benchmarks/scenarios/",
                )
            )
    return out


def _raw_recipe_refs(item: Loaded, ctx: _Ctx) -> list[Problem]:
    """References of a recipe that failed its schema elsewhere (so all problems show at once)."""
    out = []
    d = item.data if isinstance(item.data, dict) else {}
    refs = (
        ("model", ctx.names.models, "model", "matrix/models.yaml"),
        ("sku", ctx.names.skus, "SKU", "matrix/hardware.yaml"),
        ("framework", ctx.names.engines, "framework", "matrix/engines.yaml"),
        ("runner", ctx.names.runners, "runner", "matrix/runners.yaml"),
    )
    for key, known, what, where in refs:
        name = d.get(key)
        if isinstance(name, str) and item.entry_ok(key) and name not in known:
            out.append(_unknown(item.doc, (key,), what, name, known, where))
    return out


def image_repository(image: str) -> str:
    """`nvcr.io/nvidia/x:1.0@sha256:…` → `nvcr.io/nvidia/x` (tag and digest removed)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return ref[: len(ref) - len(last)] + last.split(":", 1)[0]


def _image_belongs(recipe: Recipe, engine: Engine, doc: Document) -> list[Problem]:
    repo = image_repository(recipe.image)
    if repo in engine.images:
        return []
    hint = suggest(repo, engine.images) or f"; allowed: {', '.join(engine.images)}"
    message = f"image repository {repo!r} is not one of engine {engine.name!r}'s images{hint} (matrix/engines.yaml)"
    return [doc.problem(("image",), message)]


_AGG_KEYS = ("tp", "ep", "pp", "dp", "dp-attention", "nodes")


def _check_entry(
    recipe: Recipe, entry: SearchEntry, raw: Mapping[str, Any], doc: Document, ctx: _Ctx
) -> list[Problem]:
    at: PathKey = ("search-space", entry.index)
    out = []
    if isinstance(raw.get("concurrency"), dict) and not entry.concurrency:
        out.append(doc.problem((*at, "concurrency", "start"), "start is larger than end"))
    for i, name in enumerate(entry.scenarios or ()):
        if name not in ctx.names.scenarios:
            out.append(_unknown(doc, (*at, "scenarios", i), "scenario", name, ctx.names.scenarios,
                                "benchmarks/scenarios/"))  # fmt: skip
    if entry.disaggregated is not None:
        return out + _check_disaggregated(recipe, entry, raw, doc, ctx)
    out += _check_parallelism(entry.tp, entry.dp_attention, entry.dcp, (*at,), recipe, doc, ctx)
    runner = ctx.runners.get(recipe.runner)
    if runner is not None:
        out += _check_fit(entry, runner, (*at,), doc)
    return out


def _check_parallelism(
    tp: int, dp_attention: bool, dcp: int, at: PathKey, recipe: Recipe, doc: Document, ctx: _Ctx
) -> list[Problem]:
    out = []
    model = ctx.models.get(recipe.model)
    heads = model.attention_heads if model else None
    if heads and not dp_attention and heads % tp:
        message = f"tp {tp} does not divide the {heads} attention heads of {recipe.model!r} (or set dp-attention)"
        out.append(doc.problem((*at, "tp"), message))
    if tp % dcp:
        out.append(doc.problem((*at, "dcp"), f"dcp {dcp} does not divide tp {tp}"))
    return out


def _check_fit(entry: SearchEntry, runner: Runner, at: PathKey, doc: Document) -> list[Problem]:
    out = []
    capacity = entry.nodes * runner.gpus_per_node
    if entry.gpus > capacity:
        need = -(-entry.gpus // runner.gpus_per_node)
        message = (
            f"needs {entry.gpus} GPUs (tp·pp·dp) but {entry.nodes} node(s) of runner {runner.name!r} have "
            f"{capacity}; declare `nodes: {need}` for a multi-node launch or lower the parallelism"
        )
        out.append(doc.problem((*at, "tp"), message))
    if entry.nodes > runner.nodes:
        message = (
            f"{entry.nodes} nodes declared but runner {runner.name!r} spans at most {runner.nodes}"
        )
        out.append(doc.problem((*at, "nodes"), message))
    return out


def _check_disaggregated(
    recipe: Recipe, entry: SearchEntry, raw: Mapping[str, Any], doc: Document, ctx: _Ctx
) -> list[Problem]:
    at: PathKey = ("search-space", entry.index)
    dis = entry.disaggregated
    assert dis is not None
    out = [
        doc.problem(
            (*at, key),
            "set per pool under `disaggregated` (prefill/decode), not on the entry",
            key=True,
        )
        for key in _AGG_KEYS
        if key in raw
    ]
    engine = ctx.engines.get(recipe.framework)
    if engine is not None and not engine.router:
        message = f"framework {engine.name!r} has no router for disaggregated serving (router: false in matrix/engines.yaml)"
        out.append(doc.problem((*at, "disaggregated"), message))
    for role, pool in (("prefill", dis.prefill), ("decode", dis.decode)):
        out += _check_pool(recipe, pool, (*at, "disaggregated", role), doc, ctx)
    runner = ctx.runners.get(recipe.runner)
    nodes = entry.total_nodes
    if runner is not None and nodes > runner.nodes:
        message = (
            f"the pools need {nodes} nodes but runner {runner.name!r} spans at most {runner.nodes}"
        )
        out.append(doc.problem((*at, "disaggregated"), message))
    return out


def _check_pool(recipe: Recipe, pool: Pool, at: PathKey, doc: Document, ctx: _Ctx) -> list[Problem]:
    out = _check_parallelism(pool.tp, pool.dp_attention, 1, at, recipe, doc, ctx)
    sku_name = pool.sku or recipe.sku
    if pool.sku is not None and pool.sku not in ctx.names.skus:
        out.append(
            _unknown(doc, (*at, "sku"), "SKU", pool.sku, ctx.names.skus, "matrix/hardware.yaml")
        )
    runner = ctx.runners.get(recipe.runner)
    sku = ctx.skus.get(sku_name)
    per_node = (
        runner.gpus_per_node
        if runner is not None and pool.sku is None
        else (sku.gpus_per_node if sku else 0)
    )
    if per_node and pool.tp * pool.pp > pool.nodes_per_worker * per_node:
        need = -(-(pool.tp * pool.pp) // per_node)
        message = (
            f"a worker needs {pool.tp * pool.pp} GPUs (tp·pp) but {pool.nodes_per_worker} node(s) of {sku_name} "
            f"have {pool.nodes_per_worker * per_node}; set `nodes-per-worker: {need}`"
        )
        out.append(doc.problem((*at, "tp"), message))
    return out
