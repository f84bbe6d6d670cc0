"""The incumbent's eval settings mapped onto ixci's eval suites (`eval_settings.yaml`).

The incumbent evaluates a launch when it measures 8k1k (fixed-seq-len, ISL 8192 / OSL 1024) at a
concurrency of at least 16, with lm-evaluation-harness GSM8K, and fails it below a minimum score
per task with per-model-prefix overrides. An imported recipe gets the same suite and gate as an
`evals:` block where ixci has the task (`benchmarks/evals/<task>.yaml` in the target catalog);
ixci runs it once per server launch, after the points, on the same warm server. Tasks ixci has
no suite for are reported, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """The incumbent's thresholds and eval selection, and where they were read."""

    repository: str
    commit: str
    thresholds_file: str
    defaults: Mapping[str, float]
    models: Mapping[str, Mapping[str, float]]
    tasks: Mapping[str, str | None]  # incumbent task → ixci task (None: no ixci suite)
    selection_file: str
    selection_line: int
    isl: int
    osl: int
    min_conc: int
    selected: tuple[str, ...]  # the incumbent tasks its selection runs

    def threshold(self, prefix: str, task: str) -> tuple[float, str] | None:
        """(minimum score, the thresholds key it came from) for a model prefix; None without."""
        if task in self.models.get(prefix, {}):
            return self.models[prefix][task], f"models.{prefix}.{task}"
        if task in self.defaults:
            return self.defaults[task], f"default.{task}"
        return None

    def url(self, path: str, line: int | None = None) -> str:
        """A permanent link to a file (and line) of the incumbent at the recorded commit."""
        return f"https://github.com/{self.repository}/blob/{self.commit}/{path}" + (
            f"#L{line}" if line else ""
        )


@cache
def eval_settings() -> EvalSettings:
    """The packaged table (read once; data shipped with ixci, not user input)."""
    text = resources.files("ixci.importer").joinpath("eval_settings.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    th, sel = raw["thresholds"], raw["selection"]
    return EvalSettings(
        repository=str(raw["repository"]), commit=str(raw["commit"]), thresholds_file=str(th["file"]),
        defaults={str(k): float(v) for k, v in th["default"].items()},
        models={str(p): {str(k): float(v) for k, v in t.items()} for p, t in th["models"].items()},
        tasks={str(k): (None if v is None else str(v)) for k, v in raw["tasks"].items()},
        selection_file=str(sel["file"]), selection_line=int(sel["line"]), isl=int(sel["isl"]),
        osl=int(sel["osl"]), min_conc=int(sel["min-conc"]), selected=tuple(sel["tasks"]),
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EvalImport:
    """An imported recipe's `evals` block (None when the incumbent evaluates none of its
    launches, or ixci has none of the tasks), why, and where its gate came from."""

    evals: Mapping[str, Any] | None
    reason: str
    provenance: tuple[str, ...] = ()


def import_evals(prefix: str, entries: Iterable[Mapping[str, Any]], eval_scenario: str | None,
                 available: frozenset[str]) -> EvalImport:  # fmt: skip
    """The `evals` block for a recipe of model `prefix` whose converted search-space is
    `entries`; `eval_scenario` is the target's scenario with the incumbent's eval lengths
    (None when the catalog has none), `available` the task names under benchmarks/evals/."""
    table = eval_settings()
    if eval_scenario is None or not any(
        eval_scenario in e.get("scenarios", ()) and _max_conc(e) >= table.min_conc for e in entries
    ):
        return EvalImport(evals=None, reason=f"no {table.isl}/{table.osl} launch at concurrency "
                                             f">= {table.min_conc}: the incumbent evaluates none")  # fmt: skip
    tasks: list[str] = []
    gate: dict[str, dict[str, float]] = {}
    provenance = [table.url(table.selection_file, table.selection_line)]
    missing = []
    for task in table.selected:
        mine = table.tasks.get(task)
        if mine is None or mine not in available:
            missing.append(task)
            continue
        tasks.append(mine)
        found = table.threshold(prefix, task)
        if found is not None:
            gate[mine] = {"min-score": found[0]}
            provenance.append(f"{table.url(table.thresholds_file)} ({found[1]})")
    if not tasks:
        return EvalImport(evals=None, reason=f"no ixci eval suite for {', '.join(missing)}")
    evals: dict[str, Any] = {"tasks": tasks}
    if gate:
        evals["gate"] = gate
    return EvalImport(evals=evals, reason="the incumbent evaluates its 8k1k launches",
                      provenance=tuple(provenance))  # fmt: skip


def _max_conc(entry: Mapping[str, Any]) -> int:
    conc = entry.get("concurrency")
    if isinstance(conc, Mapping):
        return int(conc.get("end") or 0)
    if isinstance(conc, list):
        return max((int(c) for c in conc), default=0)
    return 0


def unmapped_tasks() -> list[str]:
    """The incumbent's thresholded tasks ixci has no suite for (for the import report)."""
    table = eval_settings()
    return sorted(t for t in table.defaults if table.tasks.get(t) is None)
