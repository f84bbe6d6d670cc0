"""A recipe's eval suite (`evals:` in `matrix/recipes/*.yaml`) as a frozen value.

Pure parsing of the schema-validated mapping; the catalog keeps the result on `Recipe.evals`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ixci.evals.scoring import GateRule, gate_rules


@dataclass(frozen=True, kw_only=True)
class EvalPlan:
    """Which tasks run after a job's points, how many rows, and the quality gate."""

    tasks: tuple[str, ...]
    limit: int | None = None
    concurrency: int = 4
    timeout_s: float = 300.0
    gate: tuple[GateRule, ...] = ()


def parse_plan(raw: Mapping[str, Any] | None) -> EvalPlan | None:
    """The recipe's `evals` mapping as an `EvalPlan`; None when the recipe has none."""
    if not raw:
        return None
    return EvalPlan(
        tasks=tuple(str(t) for t in raw.get("tasks") or ()),
        limit=raw.get("limit"),
        concurrency=int(raw.get("concurrency", 4)),
        timeout_s=float(raw.get("timeout-s", 300.0)),
        gate=gate_rules(raw.get("gate")),
    )
