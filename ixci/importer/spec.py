"""Speculative-token defaults read from the incumbent's launch scripts (`spec_tokens.yaml`).

The incumbent's master configs say only `spec-decoding: mtp`; the token count lives in the bash
script its runner picks for the entry. `spec_tokens.yaml` records, per script, the count (or the
rules by which the script chooses one) with the repository, commit and line it was read from.
This module resolves an entry to its script the way the incumbent's launchers do and answers
the count for one search-space entry at one concurrency, with its provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

SCENARIO_DIRS: Mapping[str, str] = {"fixed-seq-len": "fixed_seq_len/", "agentic-coding": "agentic/"}
"""The incumbent's scenario kind → its single-node script folder (`SCENARIO_SUBDIR`)."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One arm of a script's choice: applies when every stated condition holds."""

    num_tokens: int
    line: int
    dp_attn: bool | None = None
    min_isl: int | None = None
    min_conc: int | None = None
    max_conc: int | None = None

    def holds(self, *, dp_attn: bool, isl: int, conc: int) -> bool:
        """Whether this arm applies to a launch with these settings."""
        return (
            (self.dp_attn is None or self.dp_attn == dp_attn)
            and (self.min_isl is None or isl >= self.min_isl)
            and (self.min_conc is None or conc >= self.min_conc)
            and (self.max_conc is None or conc <= self.max_conc)
        )


@dataclass(frozen=True, kw_only=True)
class ScriptTokens:
    """The token count(s) one incumbent launch script sets."""

    path: str
    rules: tuple[Rule, ...]
    method: str | None = None  # the method the script runs, where it is not the entry's
    draft_model: str | None = None

    def tokens(self, *, dp_attn: bool, isl: int, conc: int) -> tuple[int, int] | None:
        """(num-tokens, line) of the first arm that holds; None when none does."""
        for rule in self.rules:
            if rule.holds(dp_attn=dp_attn, isl=isl, conc=conc):
                return rule.num_tokens, rule.line
        return None

    @property
    def varies_with_concurrency(self) -> bool:
        """True when the script picks the count by concurrency (one launch per arm)."""
        return any(r.min_conc is not None or r.max_conc is not None for r in self.rules)


@dataclass(frozen=True, kw_only=True)
class RecipeTokens:
    """The count an srt-slurm recipe (a multi-node entry's `CONFIG_FILE`) sets."""

    path: str  # where the incumbent stages it
    num_tokens: int
    line: int
    method: str | None = None  # the method the recipe runs, where it is not the entry's
    draft_model: str | None = None


@dataclass(frozen=True, kw_only=True)
class SpecTable:
    """Every script's and staged recipe's counts, and where they were read."""

    repository: str
    commit: str
    scripts: Mapping[str, ScriptTokens]
    recipes: Mapping[str, RecipeTokens]

    def url(self, path: str, line: int) -> str:
        """A permanent link to the line that sets the count."""
        return f"https://github.com/{self.repository}/blob/{self.commit}/{path}#L{line}"

    def script_for(self, entry: Mapping[str, Any], scenario_kind: str) -> ScriptTokens | None:
        """The `_mtp` script the incumbent's launcher runs for a single-node `entry`, if recorded.

        Its launchers try `<prefix>_<precision>_<sku>_<framework>_mtp.sh` first, then the
        historical name without the framework (`_trt` kept for TensorRT-LLM).
        """
        sub = SCENARIO_DIRS.get(scenario_kind)
        if sub is None:
            return None
        sku = str(entry.get("runner", "")).removeprefix("cluster:").split("-")[0]
        framework = str(entry.get("framework", ""))
        base = (
            f"benchmarks/single_node/{sub}{entry.get('model-prefix')}_"
            f"{entry.get('precision')}_{sku}"
        )
        legacy = "_trt" if framework == "trt" else ""
        for path in (f"{base}_{framework}_mtp.sh", f"{base}{legacy}_mtp.sh"):
            if path in self.scripts:
                return self.scripts[path]
        return None


def _rule(raw: Mapping[str, Any]) -> Rule:
    when = raw.get("when") or {}
    return Rule(
        num_tokens=int(raw["num-tokens"]),
        line=int(raw["line"]),
        dp_attn=when.get("dp-attn"),
        min_isl=when.get("min-isl"),
        min_conc=when.get("min-conc"),
        max_conc=when.get("max-conc"),
    )


def _script(path: str, raw: Mapping[str, Any]) -> ScriptTokens:
    rules: Sequence[Mapping[str, Any]] = raw.get("rules") or [raw]
    return ScriptTokens(
        path=path,
        rules=tuple(_rule(r) for r in rules),
        method=_opt(raw, "method"),
        draft_model=_opt(raw, "draft-model"),
    )


def _opt(raw: Mapping[str, Any], key: str) -> str | None:
    return str(raw[key]) if raw.get(key) else None


@cache
def spec_table() -> SpecTable:
    """The packaged table (read once; it is data shipped with ixci, not user input)."""
    text = resources.files("ixci.importer").joinpath("spec_tokens.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    recipes = {
        cfg: RecipeTokens(
            path=str(r["path"]),
            num_tokens=int(r["num-tokens"]),
            line=int(r["line"]),
            method=_opt(r, "method"),
            draft_model=_opt(r, "draft-model"),
        )
        for cfg, r in (raw.get("recipes") or {}).items()
    }
    return SpecTable(
        repository=str(raw["repository"]),
        commit=str(raw["commit"]),
        scripts={p: _script(p, s) for p, s in raw["scripts"].items()},
        recipes=recipes,
    )


@dataclass(frozen=True, kw_only=True)
class StagedRouter:
    """The Dynamo build a staged srt-slurm recipe installs for its front end (KV router)."""

    path: str
    version: str
    line: int


@dataclass(frozen=True, kw_only=True)
class StagedAggregate:
    """GPUs of the one aggregated worker a staged srt-slurm recipe launches."""

    path: str
    gpus: int
    workers: int
    line: int


@dataclass(frozen=True, kw_only=True)
class StagedSplit:
    """A staged recipe whose prefill and decode workers set different speculative counts."""

    path: str
    prefill: int
    decode: int
    lines: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class StagedHostCache:
    """The TensorRT-LLM host KV tier a staged recipe gives each prefill rank."""

    path: str
    bytes: int
    line: int


@dataclass(frozen=True, kw_only=True)
class StagedTable:
    """Facts read from the srt-slurm recipes the incumbent stages (`staged_recipes.yaml`)."""

    repository: str
    commit: str
    routers: Mapping[str, StagedRouter]
    aggregated: Mapping[str, StagedAggregate]
    speculative_split: Mapping[str, StagedSplit]
    host_cache: Mapping[str, StagedHostCache]

    def url(self, path: str, line: int) -> str:
        """A permanent link to the line the fact was read from."""
        return f"https://github.com/{self.repository}/blob/{self.commit[:12]}/{path}#L{line}"


@cache
def staged_table() -> StagedTable:
    """The packaged table of staged-recipe facts (data shipped with ixci, not user input)."""
    text = (
        resources.files("ixci.importer").joinpath("staged_recipes.yaml").read_text(encoding="utf-8")
    )
    raw = yaml.safe_load(text)
    return StagedTable(
        repository=str(raw["repository"]),
        commit=str(raw["commit"]),
        routers={
            cfg: StagedRouter(path=str(r["path"]), version=str(r["version"]), line=int(r["line"]))
            for cfg, r in (raw.get("routers") or {}).items()
        },
        aggregated={
            cfg: StagedAggregate(
                path=str(a["path"]),
                gpus=int(a["gpus"]),
                workers=int(a["workers"]),
                line=int(a["line"]),
            )
            for cfg, a in (raw.get("aggregated") or {}).items()
        },
        speculative_split={
            cfg: StagedSplit(
                path=str(x["path"]),
                prefill=int(x["prefill"]),
                decode=int(x["decode"]),
                lines=tuple(map(int, x["lines"])),
            )
            for cfg, x in (raw.get("speculative-split") or {}).items()
        },
        host_cache={
            cfg: StagedHostCache(path=str(h["path"]), bytes=int(h["bytes"]), line=int(h["line"]))
            for cfg, h in (raw.get("host-cache") or {}).items()
        },
    )
