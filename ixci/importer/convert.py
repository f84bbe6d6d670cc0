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

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ixci.catalog import Catalog
from ixci.catalog_files import EVAL_DIR
from ixci.errors import InvalidInput, UsageError
from ixci.importer import agentic
from ixci.importer.evals import eval_settings, import_evals, unmapped_tasks
from ixci.importer.incumbent import IncumbentCount, _count_range, incumbent_counts
from ixci.importer.shape import Unmappable, _blocks, _int
from ixci.importer.spec import spec_table, staged_table
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
SPEC_METHODS = frozenset({"mtp", "eagle", "eagle3", "ngram", "draft-model"})
VLLM_ENGINES = frozenset({"vllm", "dynamo-vllm"})
"""Engines whose DP-attention workers the incumbent may write by their EP group (`_worker_tp`)."""
KV_TRANSFERS = frozenset({"nixl", "mooncake", "mori", "ucx", "nccl", "lmcache"})
STRUCTURED_SETTINGS = frozenset(
    {"PREFILL_NODES", "DECODE_NODES", "GPUS_PER_NODE", "DECODE_MTP_SIZE", "PREFILL_WORKERS"}
)
SLURM_HINTS = ("cluster:", "multinode", "slurm", "dgxc", "nscale", "disagg")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_SAFE = re.compile(r"^[A-Za-z0-9_.,:/=+@%-]*$")
_MTP_IN_NAME = re.compile(r"_mtp(\d+)")


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
    from ixci.catalog import collect
    from ixci.catalog_build import build

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
    notes = []
    assumed = sum(
        1
        for c in converted
        for e in c.recipe["search-space"]
        if "assumed" in str(e.get("spec-decoding", {}).get("_note", ""))
    )
    for c in converted:
        for e in c.recipe["search-space"]:
            e.get("spec-decoding", {}).pop("_note", None)
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


# ----------------------------------------------------------------------------- search entries


_KNOWN = frozenset(
    {
        "tp",
        "ep",
        "pp",
        "dp-attn",
        "dcp-size",
        "spec-decoding",
        "conc-list",
        "conc-start",
        "conc-end",
        "prefill",
        "decode",
        "router",
        "kv-p2p-transfer",
        "kv-offloading",
        "_aggregated",
    }
)


def _staged_host_cache(
    offload: Mapping[str, Any], entry: Mapping[str, Any], head: dict[str, Any]
) -> Mapping[str, Any]:
    """TensorRT-LLM's host tier as the entry's staged recipe sizes it per prefill rank, where it
    does (the incumbent's figure is dram-utilization × the node's DRAM per rank there)."""
    staged = staged_table().host_cache.get(str(entry.get("env", {}).get("CONFIG_FILE", "")))
    if staged is None or "kv_cache_config" not in offload:
        return offload
    head["_facts"].add(
        f"host_cache_size {staged.bytes}: {staged_table().url(staged.path, staged.line)}"
    )
    return {
        **offload,
        "kv_cache_config": {**offload["kv_cache_config"], "host_cache_size": staged.bytes},
    }


def _add_offload(entry: dict[str, Any], offload: Mapping[str, Any]) -> None:
    """KV-offload engine arguments onto the server, or onto the prefill workers of a
    disaggregated entry: the incumbent's disaggregated agentic recipes give the host tier to the
    prefill workers only (e.g. srt-slurm-recipes/sglang/deepseek-v4/agentic/disagg-gb300-2p1d-
    dep8-tp4-c80-mtp-kvoffload.yaml lines 131-166; trtllm/glm5.2/gb300-fp4/agentic/dynamo-disagg-
    gb300-1p4d-tep4-c30-b2-mtp5.yaml line 76), where every engine adapter passes pool arguments."""
    dis = entry.get("disaggregated")
    if dis is None:
        entry["engine-args"] = {**entry.get("engine-args", {}), **offload}
        return
    prefill = dis["prefill"]
    dis["prefill"] = {**prefill, "engine-args": {**prefill.get("engine-args", {}), **offload}}


def _offload_gpus(ss: Any, head: Mapping[str, Any]) -> int:
    """Ranks that share one node's host DRAM cap: the entry's GPUs on one node; a node of the
    runner for disaggregated pools (each rank of a worker takes its share of its node)."""
    if not isinstance(ss, dict):
        return 1
    if "prefill" in ss or "decode" in ss:
        return int(head["_gpn"])
    return min(agentic.entry_gpus(ss), int(head["_gpn"]))


def _aggregated(ss: Any, head: dict[str, Any]) -> Any:
    """A multi-node aggregated launch (the worker given as a `prefill` pool and
    `decode.num-worker: 0`, as the incumbent writes its srt-slurm aggregated launches: every
    search-space entry of a `disagg: false` entry, and one of a `disagg: true` entry whose decode
    pool has no workers, e.g. dsv4-fp4-gb200-dynamo-vllm-mtp2's agg-gb200-low-latency-mtp2.yaml)
    → a flat entry of one server spanning nodes; its settings ride along under `_aggregated`.
    Checked against the staged recipe's `resources.gpus_per_agg` where the incumbent stages it."""
    if isinstance(ss, dict) and "_aggregated" in ss:  # ixci's own marker, never the incumbent's
        raise Unmappable("fields with no ixci counterpart: _aggregated")
    if not isinstance(ss, dict) or not ("prefill" in ss or "decode" in ss):
        return ss
    if head["_disagg"] and not _no_decode_workers(ss):
        return ss
    prefill, decode = ss.get("prefill"), ss.get("decode") or {}
    if not isinstance(prefill, dict) or not isinstance(decode, dict):
        raise Unmappable("prefill/decode pools of an aggregated entry are not mappings")
    if _int(decode.get("num-worker", 0), "decode.num-worker") != 0:
        raise Unmappable(
            "prefill/decode pools with decode workers in an aggregated (disagg: false) "
            "entry: neither one aggregated server nor a disaggregated deployment"
        )
    workers = _int(prefill.get("num-worker", 0), "prefill.num-worker")
    tp, pp = _int(prefill.get("tp", 1), "prefill.tp"), _int(prefill.get("pp", 1), "prefill.pp")
    settings = _settings(prefill.get("additional-settings") or [], "prefill")
    if workers != 1:
        raise Unmappable(
            f"aggregated entry with prefill.num-worker {workers}: {workers} data-parallel "
            f"copies of a TP-{tp} worker in one server have no ixci counterpart (ixci's "
            "dp-attention is attention DP across the TP ranks, its dp whole-model replicas "
            "without DP attention)"
        )
    _no_context_parallel(prefill, "prefill")
    dep = _worker_tp(prefill, head, "prefill") if tp == 1 else None  # vLLM DEP: `tp: 1, ep: N`
    tp = dep or tp
    staged = staged_table().aggregated.get(settings.get("CONFIG_FILE", ""))
    if staged is not None:
        if staged.gpus != tp * pp or staged.workers != 1:
            raise Unmappable(
                f"the incumbent's recipe {staged.path} runs {staged.workers} worker(s) of "
                f"{staged.gpus} GPUs (resources.gpus_per_agg) but the entry says tp {tp} × "
                f"pp {pp}; ixci does not guess the split"
            )
        head["_facts"].add(
            f"aggregated worker of {staged.gpus} GPUs: "
            f"{staged_table().url(staged.path, staged.line)}"
        )
    flat = {k: v for k, v in ss.items() if k not in ("prefill", "decode")}
    flat.update({k: prefill[k] for k in ("tp", "ep", "pp", "dp-attn", "dcp-size") if k in prefill})
    flat["tp"] = dep or _worker_tp(prefill, head, "prefill")  # refuses TP > 1 inside DP ranks
    flat["_aggregated"] = settings
    return flat


def _no_decode_workers(ss: Mapping[str, Any]) -> bool:
    """True for a search-space entry whose decode pool is given with `num-worker: 0`."""
    decode = ss.get("decode")
    count = decode.get("num-worker") if isinstance(decode, dict) else None
    return type(count) is int and count == 0


def _worker_tp(raw: Mapping[str, Any], head: Mapping[str, Any], role: str) -> int:
    """A worker's `tp` in ixci's terms. The incumbent writes a vLLM worker with DP attention by
    its expert-parallel group, which vLLM makes TP × DP: DEP-8 appears as `tp: 8, ep: 8` and as
    `tp: 1, ep: 8` (`dp-attn: true`), and its staged recipes run both as tensor-parallel-size 1 ×
    data-parallel-size 8 on 8 GPUs (srt-slurm-recipes/vllm/deepseek-v4/8k1k/
    disagg-b200-1p1d-dep8-dep8-mtp.yaml and disagg-gb200-mid-curve-megamoe-mtp2.yaml:
    `gpus_per_prefill: 8`). ixci's dp-attention is attention DP across the tp ranks (vLLM `-tp 1
    --data-parallel-size tp`), so both are tp 8 here; TP > 1 inside each DP rank is refused."""
    tp = _int(raw.get("tp", 1), f"{role}.tp")
    ep = _int(raw.get("ep", 1), f"{role}.ep")
    if head["framework"] not in VLLM_ENGINES or not raw.get("dp-attn") or ep <= tp:
        return tp
    if tp != 1:
        raise Unmappable(
            f"{role}: vLLM worker of TP {tp} × DP {ep // tp} (EP {ep} = TP × DP) with DP "
            "attention: ixci's dp-attention runs attention TP 1 across the worker's ranks, so "
            "attention TP inside each DP rank has no ixci counterpart"
        )
    return ep


def _no_context_parallel(raw: Mapping[str, Any], role: str) -> None:
    """The incumbent's worker holds tp × pp × pcp-size GPUs (configs/CONFIGS.md; e.g.
    glm5.2's disagg-h200-2p2d-pcp8-tp8-dp8-mtp.yaml: `tp: 1, pcp-size: 8`, gpus_per_prefill 8);
    an ixci pool holds tp × pp and has no context-parallel field, so the GPUs would be wrong."""
    pcp = _int(raw.get("pcp-size", 1) or 1, f"{role}.pcp-size")
    if pcp != 1:
        raise Unmappable(
            f"{role}: pcp-size {pcp}: the incumbent's worker spans tp × pp × pcp-size GPUs "
            "(prefill context parallelism) but an ixci pool holds tp × pp GPUs and has no "
            "context-parallel field"
        )


def _entry(ss: Any, head: dict[str, Any], kind: str, isl: int) -> list[dict[str, Any]]:
    """One incumbent search-space entry → ixci search-space entries (kebab-case keys): one, or
    one per speculative-token count where the incumbent's script picks it by concurrency."""
    if not isinstance(ss, dict):
        raise Unmappable("search-space entry is not a mapping")
    unknown = sorted(set(ss) - _KNOWN)
    if unknown:
        raise Unmappable(f"fields with no ixci counterpart: {', '.join(unknown)}")
    if ss.get("kv-offloading", "none") != "none":
        raise Unmappable(f"kv-offloading={ss['kv-offloading']!r} has no ixci field yet")
    entry: dict[str, Any] = {}
    if "prefill" in ss or "decode" in ss:
        env = _disaggregated(ss, head, entry)
    else:
        env = {}
        settings = ss.get("_aggregated")
        if settings is None and (head["_disagg"] or head["_multinode"]):
            raise Unmappable("multi-node entry without prefill/decode pools")
        if ss.get("router"):
            raise Unmappable("a router in front of a single-node server has no ixci field yet")
        _parallel(entry, ss)
        if settings is not None:
            env = _aggregated_env(dict(settings), entry, head)
    if env:
        entry["env"] = dict(sorted(env.items()))
    _check_nodes(entry, head)
    out = []
    for spec, concurrency in _spec_groups(ss, env, head, kind, isl):
        one = dict(entry)
        if spec:
            one = {
                **{k: v for k, v in entry.items() if k != "env"},
                "spec-decoding": spec,
                **({"env": entry["env"]} if "env" in entry else {}),
            }
        one["concurrency"] = concurrency
        out.append(one)
    return out


def _check_nodes(entry: Mapping[str, Any], head: Mapping[str, Any]) -> None:
    """A launch must fit the runner pool's nodes; ixci gives every worker nodes of its own (the
    incumbent may pack several small workers onto one node)."""
    dis = entry.get("disaggregated")
    nodes = (
        sum(p["workers"] * p.get("nodes-per-worker", 1) for p in (dis["prefill"], dis["decode"]))
        if dis
        else entry.get("nodes", 1)
    )
    most = head.get("_max_nodes")
    if most is not None and nodes > most:
        raise Unmappable(
            f"needs {nodes} nodes (ixci gives each worker nodes of its own) but runner "
            f"{head['runner']} spans at most {most}"
        )


def _parallel(entry: dict[str, Any], ss: Mapping[str, Any]) -> None:
    tp, ep, pp = (
        _int(ss.get("tp", 1), "tp"),
        _int(ss.get("ep", 1), "ep"),
        _int(ss.get("pp", 1), "pp"),
    )
    entry["tp"] = tp
    if ep != 1:
        entry["ep"] = ep
    if pp != 1:
        entry["pp"] = pp
    if ss.get("dcp-size") and _int(ss["dcp-size"], "dcp-size") != 1:
        entry["dcp"] = _int(ss["dcp-size"], "dcp-size")
    if ss.get("dp-attn"):
        entry["dp-attention"] = True


def _aggregated_env(
    settings: dict[str, str], entry: dict[str, Any], head: Mapping[str, Any]
) -> dict[str, str]:
    """A multi-node aggregated server: its nodes from tp × pp and the runner's GPUs per node; its
    other settings → env (as the incumbent exported them)."""
    gpn = _int(settings.pop("GPUS_PER_NODE", head["_gpn"]), "GPUS_PER_NODE")
    if gpn != head["_gpn"]:
        raise Unmappable(f"GPUS_PER_NODE={gpn} but runner {head['runner']} has {head['_gpn']}")
    nodes = max(1, math.ceil(entry["tp"] * entry.get("pp", 1) / gpn))
    if nodes != 1:
        entry["nodes"] = nodes
    for key in ("PREFILL_NODES", "DECODE_NODES", "PREFILL_WORKERS"):
        settings.pop(key, None)  # derived from the parallelism
    return settings


def _concurrency(ss: Mapping[str, Any]) -> Any:
    if ss.get("conc-list"):
        if not isinstance(ss["conc-list"], list):
            raise Unmappable("conc-list is not a list")
        return [_int(c, "conc-list") for c in dict.fromkeys(ss["conc-list"])]
    if "conc-start" in ss and "conc-end" in ss:
        return {
            "start": _int(ss["conc-start"], "conc-start"),
            "end": _int(ss["conc-end"], "conc-end"),
        }
    raise Unmappable("no conc-list or conc-start/conc-end")


def _count(entry: Mapping[str, Any]) -> int:
    conc = entry["concurrency"]
    if isinstance(conc, list):
        return len(conc)
    n, c = 1, int(conc["start"])
    while c < int(conc["end"]):
        c, n = min(c * 2, int(conc["end"])), n + 1
    return n


def _spec_groups(
    ss: Mapping[str, Any], env: dict[str, str], head: dict[str, Any], kind: str, isl: int
) -> list[tuple[dict[str, Any] | None, Any]]:
    """(spec-decoding or None, concurrency) per launch. The token count comes from the entry
    (`DECODE_MTP_SIZE`, an `_mtpN` recipe name), else `--spec-tokens`, else the incumbent's
    launch script (`spec_tokens.yaml`, provenance recorded in the recipe's `source`)."""
    concurrency = _concurrency(ss)
    method = str(ss.get("spec-decoding") or "none")
    if method == "none":
        return [(None, concurrency)]
    if method not in SPEC_METHODS:
        raise Unmappable(f"spec-decoding {method!r} is not one of {sorted(SPEC_METHODS)}")
    tokens = env.pop("DECODE_MTP_SIZE", None)
    if tokens is None:  # srt-slurm recipe names carry it: ..._mtp3.yaml
        found = _MTP_IN_NAME.search(str(env.get("CONFIG_FILE", "")))
        tokens = found.group(1) if found else None
    if tokens is not None:
        return [(_spec_of(method, _int(tokens, "spec-decoding token count")), concurrency)]
    if head["_spec_tokens"] is not None:
        return [
            (
                {"method": method, "num-tokens": head["_spec_tokens"], "_note": "assumed"},
                concurrency,
            )
        ]
    staged = spec_table().recipes.get(env.get("CONFIG_FILE", ""))
    if staged is not None:  # the srt-slurm recipe the incumbent stages in its repository
        head["_provenance"].setdefault(staged.path, set()).add(staged.line)
        return [
            (_spec_of(staged.method or method, staged.num_tokens, staged.draft_model), concurrency)
        ]
    return _script_groups(
        method, ss, head, kind, isl, concurrency, config_file=env.get("CONFIG_FILE", "")
    )


def _spec_of(method: str, tokens: int, draft_model: str | None = None) -> dict[str, Any] | None:
    if tokens < 1:
        return None  # 0: speculation off
    return {
        "method": method,
        "num-tokens": tokens,
        **({"draft-model": draft_model} if draft_model else {}),
    }


def _script_groups(
    method: str,
    ss: Mapping[str, Any],
    head: dict[str, Any],
    kind: str,
    isl: int,
    concurrency: Any,
    *,
    config_file: str = "",
) -> list[tuple[dict[str, Any] | None, Any]]:
    script = None if head["_multinode"] else spec_table().script_for(head["_raw"], kind)
    split = staged_table().speculative_split.get(config_file)
    if split is not None:
        raise Unmappable(
            f"spec-decoding {method!r}: the incumbent's staged recipe {split.path} sets "
            f"{split.prefill} speculative step(s) on its prefill workers and {split.decode} on "
            f"its decode workers (lines {', '.join(map(str, split.lines))}); ixci's "
            "spec-decoding is one count per launch"
        )
    if script is None and head["_multinode"]:
        raise Unmappable(
            f"spec-decoding {method!r} without a token count: its srt-slurm recipe "
            "is not staged in the incumbent's repository (it lives in NVIDIA/srt-slurm; "
            "pass --spec-tokens N)"
        )
    if script is None:
        raise Unmappable(
            f"spec-decoding {method!r} without a token count, and the incumbent's "
            "launch script for it sets none (pass --spec-tokens N)"
        )
    concs = (
        concurrency
        if isinstance(concurrency, list)
        else list(_count_range(int(concurrency["start"]), int(concurrency["end"])))
    )
    groups: dict[int, list[int]] = {}
    for conc in concs:
        found = script.tokens(dp_attn=bool(ss.get("dp-attn")), isl=isl, conc=conc)
        if found is None:
            raise Unmappable(f"{script.path}: no token count recorded for conc {conc}")
        groups.setdefault(found[0], []).append(conc)
        head["_provenance"].setdefault(script.path, set()).add(found[1])
    method, draft = script.method or method, script.draft_model
    if len(groups) == 1:
        return [(_spec_of(method, next(iter(groups)), draft), concurrency)]
    return [(_spec_of(method, n, draft), c) for n, c in groups.items()]


def _provenance(found: Mapping[str, set[int]]) -> list[str]:
    """Permanent links to the lines that set the speculative token counts, one per file."""
    table = spec_table()
    return [
        f"https://github.com/{table.repository}/blob/{table.commit[:12]}/{path} line "
        + ", ".join(map(str, sorted(lines)))
        for path, lines in sorted(found.items())
    ]


def _disaggregated(
    ss: Mapping[str, Any], head: dict[str, Any], entry: dict[str, Any]
) -> dict[str, str]:
    if not head["_disagg"]:
        raise Unmappable("prefill/decode pools in an aggregated (disagg: false) entry")
    env: dict[str, str] = {}
    pools = {role: _pool(role, ss.get(role), head, env) for role in ("prefill", "decode")}
    router = ss.get("router") or head["_router"] or _staged_router(env, head)
    if not isinstance(router, dict) or not router.get("name"):
        raise Unmappable(
            "disaggregated entry names no router (ixci records the router's name "
            "and version; add router: {name, version} to the entry)"
        )
    kv = str(ss.get("kv-p2p-transfer") or head["_kv"] or "")
    if kv not in KV_TRANSFERS:
        raise Unmappable(f"kv-p2p-transfer {kv!r} is not one of {sorted(KV_TRANSFERS)}")
    entry["disaggregated"] = {
        **pools,
        "router": {"name": str(router["name"]), "version": str(router.get("version", ""))},
        "kv-transfer": kv,
    }
    return env


def _staged_router(env: Mapping[str, str], head: dict[str, Any]) -> dict[str, str] | None:
    """The Dynamo front end the entry's staged srt-slurm recipe installs (`frontend: {type:
    dynamo}`, `dynamo: {version | wheel | hash}`), when the entry names no router itself."""
    if not str(head["framework"]).startswith("dynamo-"):
        return None
    staged = staged_table().routers.get(env.get("CONFIG_FILE", ""))
    if staged is None:
        return None
    head["_facts"].add(
        f"router dynamo-router {staged.version}: {staged_table().url(staged.path, staged.line)}"
    )
    return {"name": "dynamo-router", "version": staged.version}


def _pool(role: str, raw: Any, head: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    if not isinstance(raw, dict) or _int(raw.get("num-worker", 0), f"{role}.num-worker") < 1:
        raise Unmappable(f"{role} pool missing or with no workers")
    settings = _settings(raw.get("additional-settings") or [], role)
    _no_context_parallel(raw, role)
    tp, pp = _worker_tp(raw, head, role), _int(raw.get("pp", 1), f"{role}.pp")
    pool: dict[str, Any] = {"workers": _int(raw["num-worker"], f"{role}.num-worker"), "tp": tp}
    for src, dst in (("ep", "ep"), ("pp", "pp")):
        if _int(raw.get(src, 1), f"{role}.{src}") != 1:
            pool[dst] = _int(raw[src], f"{role}.{src}")
    if raw.get("dp-attn"):
        pool["dp-attention"] = True
    gpn = _int(settings.pop("GPUS_PER_NODE", head["_gpn"]), f"{role}: GPUS_PER_NODE")
    if gpn != head["_gpn"]:
        raise Unmappable(
            f"{role}: GPUS_PER_NODE={gpn} but runner {head['runner']} has {head['_gpn']}"
        )
    nodes_per_worker = max(1, math.ceil(tp * pp / gpn))
    if nodes_per_worker != 1:
        pool["nodes-per-worker"] = nodes_per_worker
    args = _context_parallel(raw)
    if args:
        pool["engine-args"] = args
    for key in ("PREFILL_NODES", "DECODE_NODES", "PREFILL_WORKERS"):
        settings.pop(key, None)  # derived from workers × nodes-per-worker
    for key, value in settings.items():
        if env.get(key, value) != value:
            raise Unmappable(f"{role}: setting {key} conflicts with the other pool's value")
        env[key] = value
    return pool


def _context_parallel(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Decode context parallelism (it reuses the TP ranks); prefill context parallelism is
    refused (`_no_context_parallel`)."""
    dcp = _int(raw.get("dcp-size") or 1, "dcp-size")
    return {"decode-context-parallel-size": dcp} if dcp != 1 else {}


def _settings(items: Iterable[Any], role: str) -> dict[str, str]:
    """`["KEY=VALUE", …]` → {KEY: VALUE}, each checked against the catalog's env rules."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise Unmappable(f"{role}: additional-setting {item!r} is not KEY=VALUE")
        if not _SAFE.match(value):
            raise Unmappable(
                f"{role}: additional-setting {key} has characters unsafe on a command line"
            )
        out[key] = value
    return out
