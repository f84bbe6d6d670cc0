"""Scores with uncertainty and the per-recipe quality gate.

A task's score is a proportion k/n of rows answered correctly; its uncertainty is the Wilson
score interval (95 %, z = 1.96), which stays inside [0, 1] and is honest at small n and at
scores near 0 or 1 where the normal approximation is not. The gate fails a task when its
score is below an absolute `min-score`, or when a `baseline-score` lies above the upper end
of the interval (worse than the baseline beyond the measurement's own uncertainty — a
difference inside the interval is noise, not a regression, which keeps the gate from flaking).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"successes {k} outside 0..{n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, kw_only=True)
class Score:
    """One task's result: k correct of n scored rows, errors among them (counted wrong)."""

    task: str
    correct: int
    n: int
    errors: int = 0

    @property
    def value(self) -> float | None:
        """k/n, None when nothing was scored."""
        return self.correct / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson 95 % interval of the score."""
        return wilson(self.correct, self.n)

    def to_json(self) -> dict[str, Any]:
        """The artifact's form (see `schemas/result.schema.json` `evals.tasks[]`)."""
        lo, hi = self.interval
        return {"task": self.task, "score": self.value, "n": self.n, "correct": self.correct,
                "errors": self.errors, "ci95": [round(lo, 6), round(hi, 6)]}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class GateRule:
    """A task's gate: an absolute floor and/or a baseline not to fall below beyond the CI."""

    task: str
    min_score: float | None = None
    baseline_score: float | None = None


def gate_rules(raw: Mapping[str, Any] | None) -> tuple[GateRule, ...]:
    """A recipe's `evals.gate` mapping (task → {min-score, baseline-score}) as rules."""
    out = []
    for task, rule in (raw or {}).items():
        rule = rule or {}
        out.append(GateRule(task=str(task), min_score=rule.get("min-score"),
                            baseline_score=rule.get("baseline-score")))  # fmt: skip
    return tuple(out)


def check(score: Score, rule: GateRule) -> list[str]:
    """Why `score` fails `rule` (empty: it passes). No scored rows fails any rule."""
    value = score.value
    if value is None:
        return [f"{score.task}: no row could be scored"]
    lo, hi = score.interval
    reasons = []
    if rule.min_score is not None and value < rule.min_score:
        reasons.append(f"{score.task}: score {value:.3f} < min-score {rule.min_score:.3f}")
    if rule.baseline_score is not None and rule.baseline_score > hi:
        reasons.append(
            f"{score.task}: score {value:.3f} (95 % CI {lo:.3f}–{hi:.3f}) is below the "
            f"baseline {rule.baseline_score:.3f} beyond its interval"
        )
    return reasons


def gate(scores: Mapping[str, Score], rules: tuple[GateRule, ...]) -> list[str]:
    """Every failure reason of a suite's scores under `rules` (a ruled task not run fails)."""
    reasons: list[str] = []
    for rule in rules:
        score = scores.get(rule.task)
        reasons += [f"{rule.task}: gated but not run"] if score is None else check(score, rule)
    return reasons


def baseline_rules(baseline: Mapping[str, Any], tasks: list[str]) -> tuple[GateRule, ...]:
    """Gate rules from a previous result's `evals` block: each task's score is the baseline."""
    prev = {
        t.get("task"): t.get("score") for t in baseline.get("tasks") or [] if isinstance(t, dict)
    }
    rules = []
    for task in tasks:
        value = prev.get(task)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rules.append(GateRule(task=task, baseline_score=float(value)))
    return tuple(rules)
