"""`ixci import inferencex`: the incumbent's master configs → ixci recipe files + a report.

InferenceX keeps every benchmark in two large YAML catalogs (`nvidia-master.yaml`,
`amd-master.yaml`): one entry per model × SKU × framework × precision with an image, a
runner label, scenarios and a search space whose tuning lives in `additional-settings`
`KEY=VALUE` strings. This module maps each entry onto one recipe in the catalog's recipe
format (`schemas/recipe.schema.json`) against a *target* catalog (its models, engines,
SKUs, runners and scenario profiles), and reports everything it could not map — per entry
and per search-space entry, with file:line — instead of guessing.

Mapping rules (docs/planning.md has the table):
- `model-prefix` → the target model with that `prefix`; a different `model` id becomes the
  recipe's `checkpoint`.
- `framework` → target engine (`trt` → `trtllm`, `sglang-disagg` → `sglang`, …).
- runner label (`h200`, `cluster:h200-dgxc`, `b200-multinode`, …) → SKU from its prefix and the
  target runner of that SKU (Slurm for multi-node/cluster labels, a container runtime otherwise).
- `fixed-seq-len` {isl, osl} → the target scenario with those lengths; other scenario kinds
  (e.g. `agentic-coding`) → a target scenario of the same name, else reported.
- `additional-settings` → structured fields where ixci has one (`PREFILL_NODES`/`DECODE_NODES`
  → `nodes-per-worker`, `DECODE_MTP_SIZE` → `spec-decoding.num-tokens`, `GPUS_PER_NODE` checked
  against the runner) and `env` otherwise (the incumbent exported them as environment).
- a multi-node launch whose worker is a `prefill` pool with `decode.num-worker: 0` (every one
  of a `disagg: false` entry, some of `disagg: true` ones) → one aggregated server spanning
  `nodes`; a vLLM DP-attention worker written `tp: 1, ep: N` → tp N (vLLM: EP = TP × DP);
  `pcp-size` (GPUs ixci's pools cannot count) reported; a disaggregated Dynamo entry without a
  `router` → the Dynamo build its staged srt-slurm recipe installs (`staged_recipes.yaml`).
- the incumbent's eval selection and thresholds → the recipe's `evals` suite and gate where ixci
  has the task (`ixci.importer.evals`, `eval_settings.yaml`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ixci.catalog.catalog import Catalog
from ixci.catalog.catalog_files import EVAL_DIR
from ixci.errors import InvalidInput, UsageError
from ixci.importer import agentic
from ixci.importer.entries import (
    _SAFE,
    _add_offload,
    _aggregated,
    _count,
    _entry,
    _offload_gpus,
    _provenance,
    _staged_host_cache,
)
from ixci.importer.evals import eval_settings, import_evals, unmapped_tasks
from ixci.importer.incumbent import IncumbentCount, incumbent_counts
from ixci.importer.shape import Unmappable, _blocks, _int
from ixci.importer.spec import spec_table
from ixci.yamlio import Document, load_file

FRAMEWORKS: Mapping[str, str] = MappingProxyType(
    {
        "vllm": "vllm",
        "sglang": "sglang",
        "trt": "trtllm",
        "trtllm": "trtllm",
        "dynamo-trt": "dynamo-trt",
        "dynamo-sglang": "dynamo-sglang",
        "dynamo-vllm": "dynamo-vllm",
        "sglang-disagg": "sglang",
        "atom": "atom",
    }
)
"""Incumbent framework → ixci engine name (the target catalog must declare the engine)."""
REFUSED: Mapping[str, str] = MappingProxyType(
    {
        "atom-disagg": "disaggregated ATOM (the `atomesh` router with mooncake KV transfer) has no "
        "ixci adapter: the incumbent launches it from a custom multi-node script whose "
        "router and worker flags are not documented for the pinned image",
        "llmd-vllm": "llm-d is a Kubernetes deployment stack (its router schedules vLLM pods); ixci "
        "launches engines itself and never becomes a scheduler, so it is not adapted",
        "tilert": "TileRT pairs a vLLM prefill image with TileRT decode workers behind its own PD "
        "router; neither its decode server nor router flags are documented for the pinned "
        "image (ghcr.io/tile-ai/tilert:0.1.5), so it is not adapted",
    }
)
"""Incumbent frameworks ixci declines, with the reason shown in the coverage report."""
STRUCTURED_SETTINGS = frozenset(
    {"PREFILL_NODES", "DECODE_NODES", "GPUS_PER_NODE", "DECODE_MTP_SIZE", "PREFILL_WORKERS"}
)
SLURM_HINTS = ("cluster:", "multinode", "slurm", "dgxc", "nscale", "disagg")


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A part of the source not imported: an entry (`search` None) or one search-space entry."""

    where: str
    entry: str
    reason: str
    search: int | None = None

    def render(self) -> str:
        part = f" search-space[{self.search}]" if self.search is not None else ""
        return f"{self.where}: {self.entry}{part}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class Converted:
    """One recipe produced from one incumbent entry."""

    entry: str
    where: str
    file: str
    recipe: Mapping[str, Any]
    search_entries: int
    points: int
    provenance: tuple[str, ...] = ()  # where its speculative token counts were read (URLs)
    facts: tuple[str, ...] = ()  # other values read from the incumbent's staged recipes, with URLs
    eval_provenance: tuple[str, ...] = ()  # where its eval selection and gate were read (URLs)


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What `import_inferencex` produced and what it left out, with reasons."""

    converted: tuple[Converted, ...]
    skipped: tuple[Skipped, ...]
    entries: int
    runner_map: Mapping[str, str]
    incumbent: tuple[IncumbentCount, ...]
    notes: tuple[str, ...] = ()
    kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry → scenario kinds
    wheres: Mapping[str, str] = field(default_factory=dict)  # entry → file:line

    def render(self) -> str:
        """The human report printed by the CLI."""
        whole = {s.entry for s in self.skipped if s.search is None}
        lines = [
            f"imported {len(self.converted)} of {self.entries} InferenceX entries "
            f"({sum(c.search_entries for c in self.converted)} search-space entries, "
            f"{sum(c.points for c in self.converted)} points); {len(whole)} entries and "
            f"{sum(1 for s in self.skipped if s.search is not None)} search-space entries "
            "not imported"
        ]
        lines += [f"  runner label {k} → {v}" for k, v in sorted(self.runner_map.items())]
        if self.skipped:
            lines.append("not imported:")
            lines += ["  " + s.render() for s in self.skipped]
        lines += [c.render() for c in self.incumbent]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, kw_only=True)
class _Target:
    """The names the target catalog offers, indexed for mapping."""

    models_by_prefix: Mapping[str, str]
    checkpoints: Mapping[str, Mapping[str, str]]
    engines: frozenset[str]
    engine_images: Mapping[str, frozenset[str]]
    skus: frozenset[str]
    runners: Mapping[str, tuple[str, str, int]]  # name → (sku, runtime, gpus per node)
    by_lengths: Mapping[tuple[int, int], str]
    scenarios: frozenset[str]
    spec_tokens: int | None = None
    runner_dram_mib: Mapping[str, int | None] = field(default_factory=dict)  # for KV offload caps
    runner_nodes: Mapping[str, int] = field(default_factory=dict)  # most nodes one launch may span
    eval_scenario: str | None = None  # the scenario with the incumbent's eval lengths (8k1k)
    eval_tasks: frozenset[str] = frozenset()  # task names under benchmarks/evals/


def _target(catalog: Catalog, spec_tokens: int | None) -> _Target:
    by_len: dict[tuple[int, int], str] = {}
    for name in sorted(catalog.scenarios):
        sc = catalog.scenarios[name]
        by_len.setdefault((sc.isl, sc.osl), name)
    return _Target(
        models_by_prefix={m.prefix: k for k, m in sorted(catalog.models.items())},
        checkpoints={
            k: {str(p): c for p, c in m.checkpoints.items()} for k, m in catalog.models.items()
        },
        engines=frozenset(catalog.engines),
        engine_images={k: frozenset(e.images) for k, e in catalog.engines.items()},
        skus=frozenset(catalog.skus),
        runners={k: (r.sku, str(r.runtime), r.gpus_per_node) for k, r in catalog.runners.items()},
        by_lengths=by_len,
        scenarios=frozenset(catalog.scenarios),
        spec_tokens=spec_tokens,
        runner_dram_mib={k: r.cpu_dram_mib for k, r in catalog.runners.items()},
        runner_nodes={k: r.nodes for k, r in catalog.runners.items()},
        eval_scenario=by_len.get((eval_settings().isl, eval_settings().osl)),
        eval_tasks=frozenset(p.stem for p in (catalog.root / EVAL_DIR).glob("*.yaml")),
    )


def load_target(root: Path) -> Catalog:
    """The target catalog for an import: fully validated, except that its recipes and its
    canary list may be missing or dangling (an import usually starts from an empty folder)."""
    from ixci.catalog.catalog import collect
    from ixci.catalog.catalog_build import build

    loaded, problems = collect(root)
    catalog, more = build(root, loaded)
    blocking = [
        p
        for p in (*problems, *more)
        if not (p.file.startswith("matrix/recipes/") or p.file == "matrix/canary.yaml")
    ]
    if blocking or catalog is None:
        raise InvalidInput(blocking)
    return catalog


# ----------------------------------------------------------------------------- entry point


def import_inferencex(
    files: Sequence[Path], catalog: Catalog, *, spec_tokens: int | None = None
) -> tuple[list[Converted], ImportReport]:
    """Convert every entry of the incumbent's master `files` against `catalog` (pure reads).

    `spec_tokens`: speculative tokens to assume where the incumbent's entry does not state
    them (its launch scripts do); None reports such search-space entries instead. Raises
    `InvalidInput` when a file is not readable YAML (with file:line). Returns the recipes
    (not yet written) and the report.
    """
    target = _target(catalog, spec_tokens)
    docs = [_load(p) for p in files]
    converted: list[Converted] = []
    skipped: list[Skipped] = []
    runner_map: dict[str, str] = {}
    entries = 0
    kinds: dict[str, tuple[str, ...]] = {}
    wheres: dict[str, str] = {}
    for doc in docs:
        for name, raw in doc.data.items():
            entries += 1
            kinds[str(name)] = tuple(
                str(k) for k in ((raw.get("scenarios") or {}) if isinstance(raw, dict) else {})
            )
            wheres[str(name)] = str(doc.where((name,), key=True))
            result = _convert_entry(doc, str(name), raw, target, skipped, runner_map)
            if result is not None:
                converted.append(result)
    _check_unique(converted)
    notes = _notes(converted, spec_tokens)
    report = ImportReport(
        converted=tuple(converted),
        skipped=tuple(skipped),
        entries=entries,
        runner_map=runner_map,
        incumbent=incumbent_counts(docs),
        notes=tuple(notes),
        kinds=kinds,
        wheres=wheres,
    )
    return converted, report


def _notes(converted: Sequence[Converted], spec_tokens: int | None) -> list[str]:
    """The report's notes on the recipes' evals and assumed speculative token counts; drops the
    `_note` marks the assumed counts left in their search-space entries."""
    notes = []
    assumed = 0
    for c in converted:
        for e in c.recipe["search-space"]:
            assumed += "assumed" in str(e.get("spec-decoding", {}).pop("_note", ""))
    with_evals = [c for c in converted if "evals" in c.recipe]
    if with_evals:
        notes.append(
            f"{len(with_evals)} recipes carry the incumbent's eval suite and quality gate "
            f"({', '.join(sorted({t for c in with_evals for t in c.recipe['evals']['tasks']}))}; "
            "min-score per model prefix), run once per server launch on the warm server"
        )
    if unmapped_tasks():
        notes.append(
            f"the incumbent's {', '.join(unmapped_tasks())} thresholds have no ixci eval "
            "suite (not imported)"
        )
    if assumed:
        notes.append(
            f"{assumed} search-space entries assume spec-decoding.num-tokens={spec_tokens} "
            "(the incumbent sets it in its launch scripts; check before trusting results)"
        )
    return notes


def _load(path: Path) -> Document:
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="pass the incumbent's configs/*-master.yaml")
    doc = load_file(path, display=path.name)
    if doc.problems:
        raise InvalidInput(list(doc.problems))
    if not isinstance(doc.data, dict):
        raise InvalidInput([doc.problem((), "expected a mapping of benchmark entries")])
    return doc


def _check_unique(converted: Sequence[Converted]) -> None:
    seen: dict[str, str] = {}
    for c in converted:
        if c.file in seen:
            raise InvalidInput([], f"{c.where}: entry {c.entry!r} also defined at {seen[c.file]}")
        seen[c.file] = c.where


def write_recipes(converted: Iterable[Converted], out: Path) -> list[Path]:
    """Write each recipe to `out/<entry>.yaml` (a header comment names the source line)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for c in converted:
        path = out / c.file
        head = f"# Imported by `ixci import inferencex` from InferenceX {c.where} ({c.entry}).\n"
        head += "".join(f"# spec-decoding num-tokens: {url}\n" for url in c.provenance)
        head += "".join(f"# {fact}\n" for fact in c.facts)
        head += "".join(f"# evals: {url}\n" for url in c.eval_provenance)
        text = yaml.safe_dump(dict(c.recipe), sort_keys=False, default_flow_style=None, width=100)
        path.write_text(head + text, encoding="utf-8")
        written.append(path)
    return written


# ----------------------------------------------------------------------------- one entry


def _convert_entry(
    doc: Document,
    name: str,
    raw: Any,
    target: _Target,
    skipped: list[Skipped],
    runner_map: dict[str, str],
) -> Converted | None:
    where = str(doc.where((name,), key=True))
    try:
        head = _head(name, raw, target, runner_map)
        blocks = _blocks(raw)
    except Unmappable as exc:
        skipped.append(Skipped(where=where, entry=name, reason=str(exc)))
        return None
    entries: list[dict[str, Any]] = []
    scenarios: list[str] = []
    for kind, b, block in blocks:
        _convert_block(doc, name, kind, b, block, head, target, entries, scenarios, skipped)
    if not entries:
        skipped.append(
            Skipped(where=where, entry=name, reason="no search-space entry could be mapped")
        )
        return None
    entries = _merge_launches(entries)
    recipe = {k: v for k, v in head.items() if not k.startswith("_")}
    urls = _provenance(head["_provenance"])
    if urls:  # the full list goes in the file's header; `source` holds what fits its 400 chars
        full = f"{recipe['source']}; spec-decoding num-tokens: {'; '.join(urls)}"
        table = spec_table()
        recipe["source"] = (
            full
            if len(full) <= 400
            else (
                f"{recipe['source']}; spec-decoding num-tokens read from {len(urls)} files of "
                f"github.com/{table.repository} at {table.commit[:12]} (listed in this file's header)"
            )
        )
    recipe["scenarios"] = sorted(set(scenarios))
    found = import_evals(str(raw.get("model-prefix", "")), entries, target.eval_scenario,
                         target.eval_tasks)  # fmt: skip
    if found.evals is not None:
        recipe["evals"] = dict(found.evals)
    for e in entries:  # entries default to the recipe's scenarios: drop redundant lists
        if e.get("scenarios") == recipe["scenarios"]:
            del e["scenarios"]
    recipe["search-space"] = entries
    points = sum(_count(e) * len(e.get("scenarios", recipe["scenarios"])) for e in entries)
    return Converted(
        entry=name,
        where=where,
        file=f"{name}.yaml",
        recipe=recipe,
        search_entries=len(entries),
        points=points,
        provenance=tuple(urls),
        facts=tuple(sorted(head["_facts"])),
        eval_provenance=found.provenance,
    )


def _merge_launches(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per distinct launch: the incumbent sometimes lists the same server twice with
    different concurrency lists (one srt-slurm job each); ixci runs them on one warm server."""
    out: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for e in entries:
        key = yaml.safe_dump({k: v for k, v in e.items() if k != "concurrency"}, sort_keys=True)
        first = seen.get(key)
        if (
            first is not None
            and isinstance(first["concurrency"], list)
            and isinstance(e["concurrency"], list)
        ):
            first["concurrency"] = list(dict.fromkeys([*first["concurrency"], *e["concurrency"]]))
            continue
        seen.setdefault(key, e)
        out.append(e)
    return out


def _head(name: str, raw: Any, target: _Target, runner_map: dict[str, str]) -> dict[str, Any]:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        raise Unmappable(f"entry name {name!r} is not a valid ixci recipe name")
    if not isinstance(raw, dict):
        raise Unmappable("entry is not a mapping")
    model, framework = _model_and_engine(raw, target)
    label = str(raw.get("runner", ""))
    sku, runner = _runner(label, bool(raw.get("multinode")), target)
    runner_map[label + (" (multi-node)" if raw.get("multinode") else "")] = runner
    precision = str(raw.get("precision", ""))
    image = _image(str(raw.get("image", "")))
    repo = _repository(image)
    if repo not in target.engine_images[framework]:
        raise Unmappable(
            f"image repository {repo!r} is not one of engine {framework!r}'s images "
            "in matrix/engines.yaml"
        )
    head: dict[str, Any] = {
        "description": f"InferenceX {name}: {raw.get('model')} on {label} with {raw.get('framework')}.",
        "source": f"InferenceX {name} (runner label {label})",
        "model": model,
        "sku": sku,
        "framework": framework,
        "precision": precision,
        "runner": runner,
        "image": image,
    }
    checkpoint = str(raw.get("model", ""))
    if checkpoint and target.checkpoints.get(model, {}).get(precision) != checkpoint:
        head["checkpoint"] = checkpoint
    head["_router"] = raw.get("router")
    head["_kv"] = raw.get("kv-p2p-transfer")
    head["_disagg"] = bool(raw.get("disagg"))
    head["_multinode"] = bool(raw.get("multinode"))
    head["_gpn"] = target.runners[runner][2]
    head["_max_nodes"] = target.runner_nodes.get(runner)
    head["_spec_tokens"] = target.spec_tokens
    head["_raw"] = raw
    head["_provenance"] = {}  # script path → lines its token counts were read from
    head["_facts"] = set()  # router versions / worker sizes read from staged recipes, with URLs
    router = raw.get("router")
    if (
        not head["_disagg"]
        and head["_multinode"]
        and isinstance(router, dict)
        and all(_SAFE.match(str(router.get(k, ""))) for k in ("name", "version"))
        and router.get("name")
    ):
        head["description"] = (
            head["description"][:-1]
            + (  # the aggregated Dynamo front end
                f" (front end: {str(router['name'])[:64]} {str(router.get('version', ''))[:64]})."
            )
        )
    return head


def _model_and_engine(raw: dict[str, Any], target: _Target) -> tuple[str, str]:
    """An entry's target model (by `model-prefix`) and engine (by `framework`); `Unmappable`
    when either is missing or the framework is one ixci declines."""
    prefix = str(raw.get("model-prefix", ""))
    model = target.models_by_prefix.get(prefix)
    if model is None:
        raise Unmappable(
            f"model {raw.get('model')!r} (prefix {prefix!r}) is not in matrix/models.yaml"
        )
    if str(raw.get("framework")) in REFUSED:
        raise Unmappable(
            f"framework {raw.get('framework')!r}: {REFUSED[str(raw.get('framework'))]}"
        )
    framework = FRAMEWORKS.get(str(raw.get("framework")), "")
    if framework not in target.engines:
        raise Unmappable(
            f"framework {raw.get('framework')!r} has no engine in matrix/engines.yaml"
            + (f" (would be {framework!r})" if framework else "")
        )
    return model, framework


def _image(image: str) -> str:
    """Enroot's `registry#repo:tag` → the docker form `registry/repo:tag`."""
    return image.replace("#", "/", 1)


def _repository(image: str) -> str:
    """`registry:5000/org/repo:tag@sha256:…` → `registry:5000/org/repo`."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _runner(label: str, multinode: bool, target: _Target) -> tuple[str, str]:
    """Incumbent runner label → (SKU, target runner). Slurm pools for cluster/multi-node labels."""
    sku = label.removeprefix("cluster:").split("-")[0].split("_")[0]
    if sku not in target.skus:
        raise Unmappable(f"runner label {label!r}: SKU {sku!r} is not in matrix/hardware.yaml")
    pools = sorted(n for n, (s, _, _) in target.runners.items() if s == sku)
    if not pools:
        raise Unmappable(
            f"runner label {label!r}: no runner pool for SKU {sku!r} in matrix/runners.yaml"
        )
    want_slurm = multinode or any(h in label for h in SLURM_HINTS)
    fitting = [n for n in pools if (target.runners[n][1] == "slurm-enroot") == want_slurm]
    if multinode and not fitting:
        raise Unmappable(
            f"runner label {label!r}: multi-node entry but no slurm-enroot runner "
            f"for SKU {sku!r} in matrix/runners.yaml"
        )
    return sku, (fitting or pools)[0]


def _convert_block(
    doc: Document,
    name: str,
    kind: str,
    b: int,
    block: Any,
    head: dict[str, Any],
    target: _Target,
    entries: list[dict[str, Any]],
    scenarios: list[str],
    skipped: list[Skipped],
) -> None:
    path: tuple[str | int, ...] = (name, "scenarios", kind, b)
    try:
        scenario = _scenario(kind, block, target)
        isl = _int(block.get("isl", 0) or 0, "isl")
    except Unmappable as exc:
        for i, _ in enumerate(block.get("search-space") or []):
            skipped.append(
                Skipped(
                    where=str(doc.where((*path, "search-space", i))),
                    entry=name,
                    search=i,
                    reason=str(exc),
                )
            )
        return
    scenarios.append(scenario)
    for i, ss in enumerate(block.get("search-space") or []):
        try:
            ss = _aggregated(ss, head)
            ss, offload, offload_env = agentic.offload(
                kind,
                block,
                ss,
                framework=head["framework"],
                gpus=_offload_gpus(ss, head),
                cpu_dram_mib=target.runner_dram_mib.get(head["runner"]),
            )
            produced = _entry(ss, head, kind, isl)
            for entry in produced:
                if offload:
                    _add_offload(entry, _staged_host_cache(offload, entry, head))
                if offload_env:
                    entry["env"] = dict(sorted({**offload_env, **entry.get("env", {})}.items()))
        except Unmappable as exc:
            skipped.append(
                Skipped(
                    where=str(doc.where((*path, "search-space", i))),
                    entry=name,
                    search=i,
                    reason=str(exc),
                )
            )
            continue
        for entry in produced:
            entry["scenarios"] = [scenario]
            entries.append(entry)


def _scenario(kind: str, block: Any, target: _Target) -> str:
    if kind == "fixed-seq-len":
        key = (_int(block.get("isl", 0), "isl"), _int(block.get("osl", 0), "osl"))
        found = target.by_lengths.get(key)
        if found is None:
            raise Unmappable(
                f"no scenario profile in benchmarks/scenarios with isl={key[0]} osl={key[1]}"
            )
        return found
    if kind in target.scenarios:
        return kind
    raise Unmappable(
        f"scenario kind {kind!r} has no profile in benchmarks/scenarios "
        "(multi-turn trace workloads with KV offload are not modelled by ixci yet)"
    )
