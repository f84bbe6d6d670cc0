"""The incumbent's own job counts, computed from its master configs (one job per concurrency)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ixci.yamlio import Document


@dataclass(frozen=True, kw_only=True)
class IncumbentCount:
    """The incumbent's own single-node job count: one job (server start) per concurrency."""

    scope: str
    jobs: int
    launches: int

    def render(self) -> str:
        return (
            f"incumbent ({self.scope}): {self.jobs} single-node jobs from {self.launches} "
            f"distinct launches ({self.jobs / max(self.launches, 1):.2f} server starts per launch)"
        )


@dataclass(frozen=True, kw_only=True)
class _Row:
    scenario: str
    launch: str
    concurrencies: tuple[int, ...] = field(default_factory=tuple)


def _single_node_rows(docs: Sequence[Document]) -> list[_Row]:
    rows = []
    for doc in docs:
        for raw in doc.data.values():
            if not isinstance(raw, dict) or raw.get("multinode"):
                continue
            top = {k: raw.get(k) for k in ("image", "model", "runner", "precision", "framework")}
            for kind, blocks in _mapping(raw.get("scenarios")).items():
                for block in _dicts(blocks):
                    for ss in _dicts(block.get("search-space")):
                        server = {
                            str(k): v for k, v in ss.items() if not str(k).startswith("conc-")
                        }
                        launch = json.dumps([top, server], sort_keys=True, default=str)
                        conc = ss.get("conc-list") or _range(
                            ss.get("conc-start"), ss.get("conc-end")
                        )
                        conc = conc if isinstance(conc, list) else []
                        rows.append(
                            _Row(scenario=str(kind), launch=launch, concurrencies=tuple(conc))
                        )
    return rows


def _range(start: Any, end: Any) -> list[int]:
    if not start or not end:
        return []
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        return []  # malformed: the importer reports that entry; it counts no jobs here
    return list(_count_range(int(start), int(end)))


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[Any, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _count_range(start: int, end: int) -> Iterable[int]:
    c = start
    yield c
    while c < end:
        c = min(c * 2, end)
        yield c


def incumbent_counts(docs: Sequence[Document]) -> tuple[IncumbentCount, ...]:
    """The incumbent's single-node jobs (one per concurrency) and distinct launches, computed
    from its own files: for `fixed-seq-len` (what its sweep dispatches) and all scenarios."""
    rows = _single_node_rows(docs)
    out = []
    for scope, chosen in (
        ("fixed-seq-len", [r for r in rows if r.scenario == "fixed-seq-len"]),
        ("all scenarios", rows),
    ):
        out.append(
            IncumbentCount(
                scope=scope,
                jobs=sum(len(r.concurrencies) for r in chosen),
                launches=len({r.launch for r in chosen}),
            )
        )
    return tuple(out)
