"""The typed catalog: `matrix/` and `benchmarks/` → frozen dataclasses, referentially checked.

`load_catalog(root)` reads every catalog file, validates each against its schema, applies
the schema defaults, builds frozen keyword-only dataclasses and checks references across
files. It raises `InvalidInput` carrying *all* problems (file:line:col, key path, message)
or returns a `Catalog` — the only thing later stages see. Mappings inside the dataclasses
are plain dicts typed as read-only `Mapping` (so they serialise with `json`): never mutate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ixci.catalog.catalog_files import (
    CATALOG_MAX_BYTES,
    SINGLE_FILES,
    catalog_files,
    file_problem,
    rel,
    shown,
)
from ixci.catalog.catalog_files import MAP_FILES as MAP_FILES
from ixci.catalog.catalog_files import RECIPE_DIR as RECIPE_DIR
from ixci.catalog.catalog_files import SCENARIO_DIR as SCENARIO_DIR
from ixci.catalog.catalog_files import find_root as find_root
from ixci.catalog.catalog_files import is_catalog_root as is_catalog_root
from ixci.catalog.catalog_files import kind_of as kind_of
from ixci.catalog.catalog_files import refusal as refusal
from ixci.errors import InvalidInput, Problem
from ixci.evals.suite import EvalPlan
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
    runtime: str  # a kind of the runtime registry (ixci.runtimes.RUNTIMES), checked on load
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
    cache_before_point: str = "keep"  # flush | prime | keep (ixci.run.cachestate)
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
    from ixci.catalog.catalog_build import build

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
