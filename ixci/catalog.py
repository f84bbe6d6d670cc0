"""The typed catalog: `matrix/` and `benchmarks/` → frozen dataclasses, referentially checked.

`load_catalog(root)` reads every catalog file, validates each against its schema, applies
the schema defaults, builds frozen keyword-only dataclasses and checks references across
files. It raises `InvalidInput` carrying *all* problems (file:line:col, key path, message)
or returns a `Catalog` — the only thing later stages see. Mappings inside the dataclasses
are plain dicts typed as read-only `Mapping` (so they serialise with `json`): never mutate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ixci import catalog_checks
from ixci.catalog_files import (
    CATALOG_MAX_BYTES,
    SINGLE_FILES,
    catalog_files,
    file_problem,
    rel,
    shown,
)
from ixci.catalog_files import MAP_FILES as MAP_FILES
from ixci.catalog_files import RECIPE_DIR as RECIPE_DIR
from ixci.catalog_files import SCENARIO_DIR as SCENARIO_DIR
from ixci.catalog_files import find_root as find_root
from ixci.catalog_files import is_catalog_root as is_catalog_root
from ixci.catalog_files import kind_of as kind_of
from ixci.catalog_files import refusal as refusal
from ixci.errors import InvalidInput, Problem
from ixci.evals.suite import EvalPlan, parse_plan
from ixci.job import Pool as Pool
from ixci.job import Router as Router
from ixci.loadgen.traces import SessionsWorkload
from ixci.schemas import apply_defaults, has_schema, validate_instance
from ixci.yamlio import Document, Location, load_bytes, read_bounded

# --- enums ----------------------------------------------------------------------------


class Vendor(StrEnum):
    NVIDIA = "nvidia"
    AMD = "amd"
    INTEL = "intel"
    CPU = "cpu"


class Precision(StrEnum):
    FP4 = "fp4"
    FP8 = "fp8"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"
    INT8 = "int8"
    INT4 = "int4"
    Q8_0 = "q8_0"
    Q4_K_M = "q4_k_m"


class RuntimeKind(StrEnum):
    DOCKER = "docker"
    PODMAN = "podman"
    SLURM_ENROOT = "slurm-enroot"
    PROCESS = "process"


class SpecMethod(StrEnum):
    MTP = "mtp"
    EAGLE = "eagle"
    EAGLE3 = "eagle3"
    NGRAM = "ngram"
    DRAFT_MODEL = "draft-model"


# --- dataclasses ----------------------------------------------------------------------

Scalar = str | int | float | bool
EngineArgValue = Scalar | tuple[str | int | float, ...] | Mapping[str, Any]
"""An engine flag value: scalar; True = bare flag, False = omitted; tuple = several values;
a mapping = one JSON-encoded argument (e.g. vLLM's `--speculative-config`)."""

_NOWHERE = Location(file="<none>", line=1, col=1)
NIGHTLY_EVENT = "schedule"  # the GitHub event of nightly runs (scenario `nightly-repeats`)


@dataclass(frozen=True, kw_only=True)
class Sku:
    """One accelerator SKU (`matrix/hardware.yaml`); per-GPU figures, None when unknown."""

    name: str
    vendor: Vendor
    description: str = ""
    gpu_names: tuple[str, ...] = ()  # what nvidia-smi / amd-smi report for this SKU
    memory_gb: float | None = None
    memory_bandwidth_tbs: float | None = None
    peak_tflops: Mapping[str, float] = field(default_factory=dict)
    gpus_per_node: int = 1
    scale_up_domain: int = 1
    board_w: float | None = None
    all_in_kw: float | None = None
    usd_per_gpu_hour: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    source: Location = _NOWHERE


@dataclass(frozen=True, kw_only=True)
class Engine:
    """A serving framework: its adapter and the image repositories it may come from."""

    name: str
    adapter: str
    images: tuple[str, ...]
    router: bool = False
    description: str = ""
    source: Location = _NOWHERE


@dataclass(frozen=True, kw_only=True)
class Model:
    """A model: hub id, job-name prefix, architecture facts (None when unknown), checkpoints."""

    key: str
    id: str
    prefix: str
    checkpoints: Mapping[Precision, str]
    description: str = ""
    total_params_b: float | None = None
    active_params_b: float | None = None
    layers: int | None = None
    hidden_size: int | None = None
    attention_heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    vocab_size: int | None = None
    context_length: int | None = None
    experts: int | None = None
    active_experts: int | None = None
    source: Location = _NOWHERE


@dataclass(frozen=True, kw_only=True)
class Runner:
    """A self-hosted runner pool: `runs-on` labels, SKU, node shape, runtime, fleet facts."""

    name: str
    labels: tuple[str, ...]
    sku: str
    gpus_per_node: int
    nodes: int
    runtime: RuntimeKind
    fleet: int = 1
    cpu_dram_mib: int | None = None
    load_bandwidth_gbps: float = 2.0
    image_pull_s: float = 120.0
    model_cache: str | None = None
    description: str = ""
    source: Location = _NOWHERE


@dataclass(frozen=True, kw_only=True)
class SpecDecoding:
    method: SpecMethod
    num_tokens: int
    draft_model: str | None = None


@dataclass(frozen=True, kw_only=True)
class Disaggregation:
    prefill: Pool
    decode: Pool
    router: Router
    kv_transfer: str


@dataclass(frozen=True, kw_only=True)
class SearchEntry:
    """One server configuration of a recipe; `concurrency` is already expanded (ascending
    for ranges, as written for lists). `engine_args`/`env` are this entry's overrides only."""

    index: int
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    dp_attention: bool = False
    nodes: int = 1
    spec_decoding: SpecDecoding | None = None
    disaggregated: Disaggregation | None = None
    concurrency: tuple[int, ...] = ()
    engine_args: Mapping[str, EngineArgValue] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] | None = None
    source: Location = _NOWHERE

    @property
    def gpus(self) -> int:
        """GPUs of one launch: tp × pp × dp, or the sum of both pools when disaggregated."""
        if self.disaggregated is not None:
            return self.disaggregated.prefill.gpus + self.disaggregated.decode.gpus
        return self.tp * self.pp * self.dp

    @property
    def total_nodes(self) -> int:
        """Nodes of one launch (declared `nodes`, or the pools' nodes when disaggregated)."""
        if self.disaggregated is not None:
            return self.disaggregated.prefill.nodes + self.disaggregated.decode.nodes
        return self.nodes


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One `matrix/recipes/*.yaml`; `checkpoint` is resolved (the recipe's or the model's)."""

    path: str
    name: str
    model: str
    sku: str
    framework: str
    precision: Precision
    runner: str
    image: str
    checkpoint: str
    engine_args: Mapping[str, EngineArgValue]
    env: Mapping[str, str]
    scenarios: tuple[str, ...]
    search_space: tuple[SearchEntry, ...]
    max_model_len: int | None = None
    description: str = ""
    origin: str | None = None
    source: Location = _NOWHERE
    evals: EvalPlan | None = None  # the accuracy suite run after the points (ixci.evals)

    def entry_scenarios(self, entry: SearchEntry) -> tuple[str, ...]:
        """The scenarios measured on `entry`: its own list, else the recipe's."""
        return entry.scenarios if entry.scenarios is not None else self.scenarios


@dataclass(frozen=True, kw_only=True)
class Slo:
    """Goodput objectives, seconds; None when not set."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2el_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One `benchmarks/scenarios/*.yaml` profile (lengths in tokens, times in seconds)."""

    name: str
    path: str
    isl: int
    osl: int
    dataset: str = "random"
    range_ratio: float = 0.8
    warmup_requests: int = 8
    min_requests_per_concurrency: int = 10
    min_requests: int = 16
    min_duration_s: float = 0.0
    max_duration_s: float = 1800.0
    error_threshold: float = 0.01
    slo: Slo = field(default_factory=Slo)
    endpoint: str = "completions"
    requires_power: bool = False
    cache_before_point: str = "keep"  # flush | prime | keep (ixci.cachestate)
    repeats: int = 1
    nightly_repeats: int = 3  # the schema's default: docs/repeats.md's cost/precision table
    description: str = ""
    source: Location = _NOWHERE
    workload: SessionsWorkload | None = None  # a multi-turn workload (docs/agentic.md)

    def repeats_for(self, event: str | None) -> int:
        """R for a run of `event`: on a nightly (`schedule`) run `nightly-repeats`, never fewer
        than `repeats`; on every other event (pull request, dispatch, local) `repeats`."""
        if event == NIGHTLY_EVENT:
            return max(self.repeats, self.nightly_repeats)
        return self.repeats


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The whole validated catalog. `files` are the repo-relative inputs; `digest` is the
    sha256 over their paths and bytes (the plan's `catalog_sha`)."""

    root: Path
    skus: Mapping[str, Sku]
    engines: Mapping[str, Engine]
    models: Mapping[str, Model]
    runners: Mapping[str, Runner]
    recipes: tuple[Recipe, ...]
    scenarios: Mapping[str, Scenario]
    canary: tuple[str, ...]
    files: tuple[str, ...] = ()
    digest: str = ""

    def recipe(self, name: str) -> Recipe:
        """The recipe named `name` (file stem); KeyError if none."""
        for recipe in self.recipes:
            if recipe.name == name:
                return recipe
        raise KeyError(name)


# --- loading --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """One file after loading and schema validation; `data` has defaults applied."""

    kind: str
    rel: str
    doc: Document
    data: Any
    problems: tuple[Problem, ...]
    raw: bytes = b""

    def entry_ok(self, *path: str | int) -> bool:
        """Whether no problem lies at or below `path` (and the file parsed)."""
        if self.data is None:
            return False
        if not path:
            return not self.problems
        prefix = ".".join(str(p) for p in path)
        return not any(
            p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))
            for p in self.problems
        )


def load_one(
    path: Path,
    *,
    root: Path | None = None,
    kind: str | None = None,
    max_bytes: int = CATALOG_MAX_BYTES,
) -> Loaded:
    """Load and schema-validate one file; the kind is inferred when not given.

    At most `max_bytes` are read (checked before reading); a recipe or scenario whose file
    name is not a safe catalog name is refused (`catalog_files.refusal`).
    """
    name = shown(rel(path, root) if root is not None else str(path))  # a line of a message
    raw, problem = read_bounded(path, name, max_bytes)
    if problem is not None or raw is None:
        empty = Document(file=name, data=None)
        return Loaded(kind=kind or "unknown", rel=name, doc=empty, data=None,
                      problems=(problem,) if problem else (), raw=b"")  # fmt: skip
    doc = load_bytes(raw, name, max_bytes=max_bytes)
    if doc.problems:
        return Loaded(
            kind=kind or "unknown", rel=name, doc=doc, data=None, problems=doc.problems, raw=raw
        )
    kind = kind or kind_of(path, doc.data)
    if kind is None or not has_schema(kind):
        message = "cannot tell what kind of file this is (expected a catalog file, a recipe, a scenario or result.json)"
        return Loaded(
            kind="unknown",
            rel=name,
            doc=doc,
            data=None,
            problems=(file_problem(name, message),),
            raw=raw,
        )
    if not isinstance(doc.data, dict):
        found = type(doc.data).__name__ if doc.data is not None else "null"
        problem = doc.problem((), f"expected a mapping at the top of the file, got {found}")
        return Loaded(kind=kind, rel=name, doc=doc, data=None, problems=(problem,), raw=raw)
    problems = tuple(validate_instance(kind, doc.data, locations=doc))
    data = apply_defaults(kind, doc.data)  # also on invalid data: checks of valid parts need them
    return Loaded(kind=kind, rel=name, doc=doc, data=data, problems=problems, raw=raw)


def load_catalog(root: Path, *, extra: Sequence[Path] = ()) -> Catalog:
    """Validate and load the catalog under `root` (the repository root).

    `extra` files (recipes, scenarios or catalog files outside the tree) are checked in
    the context of this catalog, replacing a catalog file of the same kind and name.
    Raises `InvalidInput` with every problem found; returns the frozen `Catalog`.
    """
    loaded, problems = collect(root, extra=extra)
    catalog, more = build(root, loaded)
    problems.extend(more)
    if problems:
        raise InvalidInput(sort_problems(problems))
    assert catalog is not None
    return catalog


def collect(root: Path, *, extra: Sequence[Path] = ()) -> tuple[list[Loaded], list[Problem]]:
    """Load every catalog file under `root` plus `extra`; schema problems included."""
    files, problems = catalog_files(root) if is_catalog_root(root) else ([], [])
    if not is_catalog_root(root):
        problems.append(
            file_problem(str(root), "no catalog here (matrix/hardware.yaml is missing)")
        )
    by_key: dict[tuple[str, str], Loaded] = {}
    for kind, path in files:
        item = load_one(path, root=root, kind=kind)
        by_key[_identity(item, path)] = item
    for path in extra:
        item = load_one(path, root=root)
        named = item.kind in _NAMED
        refused = refusal(path, root, kind=item.kind, contained=False) if named else None
        if refused is not None:
            item = Loaded(kind=item.kind, rel=item.rel, doc=item.doc, data=None,
                          problems=(*item.problems, refused), raw=item.raw)  # fmt: skip
        by_key[_identity(item, path)] = item
    loaded = list(by_key.values())
    for item in loaded:
        problems.extend(item.problems)
    return loaded, problems


_NAMED = frozenset({"recipe", "scenario"})
"""Kinds whose file stem is their name (checked like every other catalog name)."""


def _identity(item: Loaded, path: Path) -> tuple[str, str]:
    if item.kind in SINGLE_FILES:
        return (item.kind, "")
    if item.kind in {"recipe", "scenario"}:
        return (item.kind, path.name)
    return (item.kind, str(path.resolve()))


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems in file/line/col order without duplicates."""
    unique = {(p.file, p.line, p.col, p.path, p.message): p for p in problems}
    return [unique[k] for k in sorted(unique)]


# --- building ---------------------------------------------------------------------------


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
        runtime=RuntimeKind(d["runtime"]), fleet=d["fleet"], cpu_dram_mib=d.get("cpu-dram-mib"),
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


def expand_concurrency(spec: Sequence[int] | Mapping[str, int]) -> tuple[int, ...]:
    """A list as given; a range {start, end} geometrically: start, ×2, …, clamped at end.

    `{start: 4, end: 64}` → (4, 8, 16, 32, 64); `{start: 1, end: 6}` → (1, 2, 4, 6);
    an empty tuple when start > end (the checks report that).
    """
    if not isinstance(spec, Mapping):
        return tuple(int(c) for c in spec)
    start, end = int(spec["start"]), int(spec["end"])
    out: list[int] = []
    value = start
    while value < end:
        out.append(value)
        value *= 2
    if start <= end:
        out.append(end)
    return tuple(out)


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
