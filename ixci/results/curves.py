"""Which run each published curve comes from: the coverage guardrail of "latest per configuration".

A curve is one (config_id, scenario). Walking its runs oldest → newest, a run becomes the
published curve when its valid points cover at least the current curve's (concurrency, request
rate) set — so the densest recent sweep stays up when a narrower run (lost points, a failed
job) follows it — or when the recipe changed: the run *planned* a different set of points for
the curve (the job's `points` differ), so the older, denser curve measured something the recipe
no longer asks for. Every run that did not become the curve although it is newer, and every
recipe change that narrowed it, is a *shrink*; publish lists the shrinks of the run it
publishes, so a sparser view never happens silently.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from ixci.results.aggregate import config_id, mark_front

Point = tuple[Any, Any]
Key = tuple[str, str, str]  # (config_id, scenario, run_id)


def planned_points(docs: Sequence[Mapping[str, Any]]) -> dict[Key, frozenset[Point]]:
    """(config, scenario, run) → the points its job planned (the recipe's sweep)."""
    out: dict[Key, set[Point]] = {}
    for doc in docs:
        cfg, run = config_id(doc["job"]), str(doc["run"]["run_id"])
        for p in doc["job"].get("points") or []:
            key = (cfg, str(p.get("scenario")), run)
            out.setdefault(key, set()).add((p.get("concurrency"), p.get("request_rate")))
    return {k: frozenset(v) for k, v in out.items()}


def _covered(df: pd.DataFrame) -> dict[Key, set[Point]]:
    ok = df[(df["status"] == "ok") & df["valid"].astype(bool)]
    names = ("config_id", "scenario", "run_id", "concurrency", "request_rate")
    # plain Python values column by column (None for missing), not a cell-by-cell conversion
    cols = [ok[c].astype(object).where(ok[c].notna(), None).tolist() for c in names]
    covered: dict[Key, set[Point]] = {}
    for cfg, scen, run, conc, rate in zip(*cols, strict=True):
        covered.setdefault((str(cfg), str(scen), str(run)), set()).add((conc, rate))
    return covered


def select_latest(
    df: pd.DataFrame,
    run_order: Sequence[str],
    planned: Mapping[Key, Hashable] | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, Any]]]:
    """The published curve per (config, scenario) and its bookkeeping.

    Returns the latest rows (with `on_front` recomputed across configs) and
    {(config_id, scenario): {"latest_run", "runs", "partial_runs", "shrinks"}}; `planned`
    (from `planned_points`, or their digests from `ixci.results.pointstore.plans_of`: only equality is
    used) lets a recipe change replace a denser curve.
    """
    book = choose_curves(df, run_order, planned)
    return latest_rows(df, book), book


def choose_curves(
    df: pd.DataFrame,
    run_order: Sequence[str],
    planned: Mapping[Key, Hashable] | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """`select_latest`'s bookkeeping alone. It reads only config_id, scenario, run_id, status,
    valid, concurrency and request_rate, so a year's table can be read with those columns."""
    rank = {r: i for i, r in enumerate(run_order)}
    covered = _covered(df)
    planned = planned or {}
    book: dict[tuple[str, str], dict[str, Any]] = {}
    for (cfg, scen), runs_here in df.groupby(["config_id", "scenario"], sort=True)["run_id"]:
        c, s = str(cfg), str(scen)
        runs = sorted({str(r) for r in runs_here}, key=lambda r: (rank.get(r, -1), r))
        book[(c, s)] = choose(
            runs,
            [covered.get((c, s, r), set()) for r in runs],
            [planned.get((c, s, r)) for r in runs],
        )
    return book


def picked(book: Mapping[tuple[str, str], Mapping[str, Any]]) -> set[Key]:
    """(config, scenario, run) of every published curve."""
    return {(c, s, v["latest_run"]) for (c, s), v in book.items() if v["latest_run"] is not None}


def latest_rows(
    df: pd.DataFrame, book: Mapping[tuple[str, str], Mapping[str, Any]]
) -> pd.DataFrame:
    """The rows of `df` that belong to a published curve of `book`, with `on_front` recomputed
    across configs (`df` may hold only some runs' rows: those of the picked runs are enough)."""
    keys = pd.Series(
        list(zip(df["config_id"], df["scenario"], df["run_id"], strict=True)), index=df.index
    )
    latest = df[keys.isin(picked(book))].copy()
    latest["on_front"] = mark_front(latest, ["model", "scenario", "precision", "sku", "framework"])
    return latest


def choose(
    runs: Sequence[str],
    covers: Sequence[set[Point]],
    plans: Sequence[Hashable | None],
) -> dict[str, Any]:
    """Oldest → newest: a run becomes the curve when it covers ⊇ the current curve's points,
    or when its plan differs from the current curve's (the recipe changed)."""
    current: str | None = None
    cur_cov: set[Point] = set()
    cur_plan: Hashable | None = None
    partial: list[str] = []
    shrinks: list[dict[str, Any]] = []
    for run, cov, plan in zip(runs, covers, plans, strict=True):
        recipe_changed = cov and plan is not None and cur_plan is not None and plan != cur_plan
        if cov and (current is None or cov >= cur_cov or recipe_changed):
            lost = cur_cov - cov
            if lost and current is not None:
                shrinks.append(_shrink(run, current, lost, cov, "recipe changed"))
            current, cur_cov, cur_plan, partial = run, set(cov), plan, []
        else:
            partial.append(run)
            if current is not None:
                shrinks.append(_shrink(run, current, cur_cov - cov, cov, "kept the denser run"))
    return {"latest_run": current, "runs": list(runs), "partial_runs": partial, "shrinks": shrinks}


def _shrink(run: str, kept: str, lost: set[Point], cov: set[Point], what: str) -> dict[str, Any]:
    return {
        "run": run,
        "published_run": run if what == "recipe changed" else kept,
        "previous_run": kept,
        "points": len(cov),
        "missing": sorted(([c, r] for c, r in lost), key=lambda p: (p[0] or 0, p[1] or 0)),
        "action": what,
    }


def shrinks_of(
    book: Mapping[tuple[str, str], Mapping[str, Any]], run_id: str
) -> list[dict[str, Any]]:
    """Every curve whose coverage `run_id` would have narrowed: [{config_id, scenario, …}]."""
    out = []
    for (cfg, scen), entry in sorted(book.items()):
        for s in entry.get("shrinks", []):
            if s["run"] == run_id and s["missing"]:
                out.append({"config_id": cfg, "scenario": scen, **s})
    return out


def shrink_lines(shrinks: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> list[str]:
    """One markdown bullet per shrunk curve (publish prints them and writes the step summary)."""
    lines = []
    for s in shrinks:
        missing = ", ".join(_point_label(c, r) for c, r in s["missing"])
        where = f"{names.get(s['config_id'], s['config_id'])} · {s['scenario']}"
        if s["action"] == "recipe changed":
            lines.append(f"- {where}: recipe changed, curve now {s['points']} points "
                         f"(no longer measured: {missing}); published from run {s['run']}")  # fmt: skip
        else:
            lines.append(f"- {where}: run {s['run']} measured {s['points']} points, missing "
                         f"{missing}; kept run {s['published_run']}")  # fmt: skip
    return lines


def _point_label(conc: Any, rate: Any) -> str:
    return f"c={conc}" if conc is not None else f"rate={rate}"
