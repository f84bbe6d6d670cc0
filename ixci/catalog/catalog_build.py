"""Building the typed catalog from the loaded files: each kind's entries into frozen
dataclasses, then the checks across files (`ixci.catalog.catalog_checks`). `ixci.catalog.catalog.load_catalog`
runs it after loading; the importer runs it on converted files."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ixci.catalog import catalog_checks
from ixci.catalog.catalog import (
    Catalog,
    Disaggregation,
    Engine,
    EngineArgValue,
    Loaded,
    Model,
    Pool,
    Precision,
    Recipe,
    Runner,
    Scenario,
    SearchEntry,
    Sku,
    Slo,
    SpecDecoding,
    SpecMethod,
    Vendor,
    expand_concurrency,
)
from ixci.errors import Problem
from ixci.evals.suite import parse_plan
from ixci.job import Router
from ixci.loadgen.traces import SessionsWorkload
from ixci.yamlio import Location


def _single(loaded: Sequence[Loaded], kind: str) -> Loaded | None:
    return next((item for item in loaded if item.kind == kind), None)


def build(root: Path, loaded: Sequence[Loaded]) -> tuple[Catalog | None, list[Problem]]:
    """Build the dataclasses from loaded files and run every cross-file check."""
    skus = _build_map(_single(loaded, "hardware"), "skus", _sku)
    engines = _build_map(_single(loaded, "engines"), "engines", _engine)
    models = _build_map(_single(loaded, "models"), "models", _model)
    runners = _build_map(
        _single(loaded, "runners"), "runners", lambda n, d, loc: _runner(n, d, loc, skus)
    )
    scenarios = {
        s.name: s
        for s in (_scenario(i) for i in loaded if i.kind == "scenario" and i.entry_ok())
        if s
    }
    recipe_files = [i for i in loaded if i.kind == "recipe" and i.entry_ok()]
    recipes = tuple(r for r in (_recipe(i, models) for i in recipe_files) if r is not None)
    canary_file = _single(loaded, "canary")
    canary = tuple(canary_file.data["canary"]) if canary_file and canary_file.entry_ok() else ()
    names = catalog_checks.Names.of(loaded)
    problems = catalog_checks.check(
        loaded=loaded, names=names, skus=skus, engines=engines, models=models, runners=runners,
        scenarios=scenarios, recipes=recipes,
    )  # fmt: skip
    files = tuple(sorted(i.rel for i in loaded))
    digest = hashlib.sha256()
    for item in sorted(loaded, key=lambda i: i.rel):
        digest.update(item.rel.encode() + b"\0" + item.raw + b"\0")
    catalog = Catalog(
        root=root, skus=skus, engines=engines, models=models, runners=runners, recipes=recipes,
        scenarios=scenarios, canary=canary, files=files, digest=digest.hexdigest(),
    )  # fmt: skip
    return catalog, problems


def _build_map(item: Loaded | None, top: str, make: Any) -> dict[str, Any]:
    if item is None or item.data is None or not isinstance(item.data.get(top), dict):
        return {}
    out = {}
    for name, entry in item.data[top].items():
        if item.entry_ok(top, name):
            out[name] = make(name, entry, item.doc.where((top, name)))
    return out


def _sku(name: str, d: Mapping[str, Any], loc: Location) -> Sku:
    return Sku(
        name=name, vendor=Vendor(d["vendor"]), description=d.get("description", ""),
        gpu_names=tuple(d.get("gpu-names", ())), memory_gb=d.get("memory-gb"), memory_bandwidth_tbs=d.get("memory-bandwidth-tbs"),
        peak_tflops=dict(d.get("peak-tflops", {})), gpus_per_node=d["gpus-per-node"],
        scale_up_domain=d.get("scale-up-domain", d["gpus-per-node"]), board_w=d.get("board-w"),
        all_in_kw=d.get("all-in-kw"), usd_per_gpu_hour=dict(d.get("usd-per-gpu-hour", {})),
        sources=dict(d["sources"]), source=loc,
    )  # fmt: skip


def _engine(name: str, d: Mapping[str, Any], loc: Location) -> Engine:
    return Engine(
        name=name, adapter=d["adapter"], images=tuple(d["images"]), router=d["router"],
        description=d.get("description", ""), source=loc,
    )  # fmt: skip


def _model(key: str, d: Mapping[str, Any], loc: Location) -> Model:
    return Model(
        key=key, id=d["id"], prefix=d["prefix"], description=d.get("description", ""),
        checkpoints={Precision(k): v for k, v in d["checkpoints"].items()},
        total_params_b=d.get("total-params-b"), active_params_b=d.get("active-params-b"),
        layers=d.get("layers"), hidden_size=d.get("hidden-size"), attention_heads=d.get("attention-heads"),
        kv_heads=d.get("kv-heads"), head_dim=d.get("head-dim"), vocab_size=d.get("vocab-size"),
        context_length=d.get("context-length"), experts=d.get("experts"),
        active_experts=d.get("active-experts"), source=loc,
    )  # fmt: skip


def _runner(name: str, d: Mapping[str, Any], loc: Location, skus: Mapping[str, Sku]) -> Runner:
    sku = skus.get(d["sku"])
    per_node = d.get("gpus-per-node", sku.gpus_per_node if sku else 1)
    return Runner(
        name=name, labels=tuple(d["labels"]), sku=d["sku"], gpus_per_node=per_node, nodes=d["nodes"],
        runtime=d["runtime"], fleet=d["fleet"], cpu_dram_mib=d.get("cpu-dram-mib"),
        load_bandwidth_gbps=float(d["load-bandwidth-gbps"]), image_pull_s=float(d["image-pull-s"]),
        model_cache=d["model-cache"], description=d.get("description", ""), source=loc,
    )  # fmt: skip


def _scenario(item: Loaded) -> Scenario | None:
    d = item.data
    slo = d["slo"]
    return Scenario(
        name=d["name"], path=item.rel, isl=d["isl"], osl=d["osl"], dataset=d["dataset"],
        range_ratio=float(d["range-ratio"]), warmup_requests=d["warmup-requests"],
        min_requests_per_concurrency=d["min-requests-per-concurrency"], min_requests=d["min-requests"],
        min_duration_s=float(d["min-duration-s"]), max_duration_s=float(d["max-duration-s"]),
        error_threshold=float(d["error-threshold"]),
        slo=Slo(ttft_s=slo.get("ttft-s"), tpot_s=slo.get("tpot-s"), e2el_s=slo.get("e2el-s")),
        endpoint=d["endpoint"], requires_power=d["requires-power"], description=d.get("description", ""),
        cache_before_point=d["cache"]["before-point"], repeats=int(d.get("repeats", 1)),
        nightly_repeats=int(d["nightly-repeats"]),
        source=item.doc.where(()),
        workload=SessionsWorkload.from_profile(d["workload"]) if "workload" in d else None,
    )  # fmt: skip


def _frozen_args(args: Mapping[str, Any]) -> dict[str, EngineArgValue]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}


def _env(env: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in env.items()}


def _pool(d: Mapping[str, Any], role: str) -> Pool:
    return Pool(
        role=role, workers=d["workers"], tp=d["tp"], ep=d["ep"], pp=d["pp"], dp_attention=d["dp-attention"],
        nodes_per_worker=d["nodes-per-worker"], sku=d.get("sku"), engine_args=_frozen_args(d["engine-args"]),
    )  # fmt: skip


def _entry(index: int, d: Mapping[str, Any], loc: Location) -> SearchEntry:
    spec = d.get("spec-decoding")
    dis = d.get("disaggregated")
    return SearchEntry(
        index=index, tp=d["tp"], ep=d["ep"], pp=d["pp"], dp=d["dp"], dcp=d["dcp"],
        dp_attention=d["dp-attention"], nodes=d["nodes"],
        spec_decoding=SpecDecoding(method=SpecMethod(spec["method"]), num_tokens=spec["num-tokens"],
                                   draft_model=spec.get("draft-model")) if spec else None,
        disaggregated=Disaggregation(
            prefill=_pool(dis["prefill"], "prefill"), decode=_pool(dis["decode"], "decode"),
            router=Router(name=dis["router"]["name"], version=dis["router"]["version"]),
            kv_transfer=dis["kv-transfer"],
        ) if dis else None,
        concurrency=expand_concurrency(d["concurrency"]), engine_args=_frozen_args(d["engine-args"]),
        env=_env(d["env"]), scenarios=tuple(d["scenarios"]) if "scenarios" in d else None, source=loc,
    )  # fmt: skip


def _recipe(item: Loaded, models: Mapping[str, Model]) -> Recipe | None:
    d = item.data
    name = Path(item.rel).name.rsplit(".", 1)[0]
    precision = Precision(d["precision"])
    model = models.get(d["model"])
    checkpoint = d.get("checkpoint") or (model.checkpoints.get(precision, "") if model else "")
    entries = tuple(
        _entry(i, e, item.doc.where(("search-space", i))) for i, e in enumerate(d["search-space"])
    )
    return Recipe(
        path=item.rel, name=name, model=d["model"], sku=d["sku"], framework=d["framework"],
        precision=precision, runner=d["runner"], image=d["image"], checkpoint=checkpoint,
        engine_args=_frozen_args(d["engine-args"]), env=_env(d["env"]), scenarios=tuple(d["scenarios"]),
        search_space=entries, max_model_len=d["max-model-len"], description=d.get("description", ""),
        origin=d.get("source"), source=item.doc.where(()), evals=parse_plan(d.get("evals")),
    )  # fmt: skip
