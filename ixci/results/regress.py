"""Regression and missing-data alerts over the results branch's history → `regressions.json`.

A *series* is one metric of one point (scenario, concurrency or request rate) of one
configuration (`config_id`: recipe, model, SKU, framework, precision, runner, topology; the
engine image is left out, so an image tag moving over time stays one lineage), one value per
run (the median of a run's repeats), oldest first. `ixci.results.stepdetect` finds the confirmed steps
of each series (its docstring states the noise model); a step in the bad direction is a
regression, named with its size, 95 % interval, first bad run and the image change that
coincided. A regression whose latest level is back within the thresholds is `recovered`.

A configuration is *missing* when it went `missing-nights` nightly runs that planned it
without one valid point; a SKU when none of its configurations had a valid point on that many
nights. Both are pure functions of the run folders and the policy (`alerts.json`), so
`regressions.json` is rebuilt on every publish like the other derived files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ixci.errors import InvalidInput, Problem
from ixci.metric_table import directions, not_alertable
from ixci.results.stepdetect import Step, StepRule, detect, significant, window_test
from ixci.schemas import validate_instance

REGRESSIONS_VERSION = 1
#: metric → +1 when higher is better, -1 when lower is better: the alertable metrics of
#: ixci/metric_table.py (schemas/alerts.schema.json enumerates the same set)
DIRECTIONS: dict[str, int] = directions()
NOISE_MODEL = (
    "log(value) = piecewise-constant level + independent, symmetric, heavy-tailed (Laplace-like) "
    "noise of one scale per series, estimated as 1.4826 * MAD(successive differences) / sqrt(2); "
    "steps from an L1 piecewise-constant fit with a penalty (asv), each judged on baseline and "
    "target windows (HUD) by the difference of their medians"
)
_SERIES_KEYS = ["config_id", "scenario", "concurrency", "request_rate"]


@dataclass(frozen=True, kw_only=True)
class AlertPolicy:
    """The catalog's `alerts` block (schemas/alerts.schema.json), parsed; defaults there."""

    missing_nights: int = 3
    nightly_events: tuple[str, ...] = ("schedule",)
    metrics: tuple[str, ...] = ("tput_per_gpu", "interactivity_median")
    history_runs: int = 120
    rule: StepRule = field(default_factory=StepRule)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None, *, file: str = "alerts") -> AlertPolicy:
        """Parse a validated `alerts` mapping (kebab-case keys); `InvalidInput` when invalid."""
        obj = dict(obj or {})
        problems = validate_instance("alerts", obj, file=file)
        reg = dict(obj.get("regression") or {})
        if not problems:  # a schema-valid policy: are its metrics ones the alerts may watch?
            known = ", ".join(sorted(DIRECTIONS))
            problems = [
                Problem(file=file, line=1, col=1, path=f"regression.metrics[{i}]",
                        message=f"{name!r} is not an alertable metric (ixci/metric_table.py); "
                        f"use one of: {known}")
                for i, name in not_alertable(reg.get("metrics"))
            ]  # fmt: skip
        if problems:
            raise InvalidInput(problems)
        rule = StepRule(
            beta=float(reg.get("penalty", 2.0)),
            z=float(reg.get("z", 4.0)),
            min_step=float(reg.get("min-step", 0.05)),
            window=int(reg.get("window", 7)),
            min_before=int(reg.get("min-runs-before", 4)),
            min_after=int(reg.get("min-runs-after", 3)),
            noise_floor=float(reg.get("noise-floor", 0.005)),
        )
        return cls(
            missing_nights=int(obj.get("missing-nights", 3)),
            nightly_events=tuple(obj.get("nightly-events", ["schedule"])),
            metrics=tuple(reg.get("metrics", ["tput_per_gpu", "interactivity_median"])),
            history_runs=int(reg.get("history-runs", 120)),
            rule=rule,
        )

    def to_json(self) -> dict[str, Any]:
        """The same mapping `from_json` reads (every key spelled out)."""
        r = self.rule
        return {
            "missing-nights": self.missing_nights,
            "nightly-events": list(self.nightly_events),
            "regression": {
                "metrics": list(self.metrics),
                "z": r.z,
                "min-step": r.min_step,
                "penalty": r.beta,
                "window": r.window,
                "min-runs-before": r.min_before,
                "min-runs-after": r.min_after,
                "noise-floor": r.noise_floor,
                "history-runs": self.history_runs,
            },
        }


# --- regressions --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    run_id: str
    date: str
    image: str | None
    digest: str | None = None  # the image's content digest: a moved tag changes only this


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _series(df: pd.DataFrame, metric: str, order: Mapping[str, int]) -> pd.DataFrame:
    """Valid positive values of `metric`, one per (series, run): the median of repeats."""
    ok = df[(df["status"] == "ok") & df["valid"].astype(bool)]
    vals = pd.to_numeric(ok[metric], errors="coerce")
    ok = ok.assign(_v=vals)[vals > 0]
    grouped = ok.groupby([*_SERIES_KEYS, "run_id"], dropna=False, sort=False)["_v"].median()
    out = grouped.reset_index()
    out["_rank"] = out["run_id"].map(order)
    return out.dropna(subset=["_rank"]).sort_values([*_SERIES_KEYS, "_rank"])


def find_regressions(
    df: pd.DataFrame, run_order: Sequence[str], policy: AlertPolicy
) -> list[dict[str, Any]]:
    """Every confirmed regression of every series (oldest run first in `run_order`)."""
    if not len(df):
        return []
    order = {r: i for i, r in enumerate(run_order)}
    runs = _run_info(df)
    ident = df.drop_duplicates("config_id").set_index("config_id")
    out: list[dict[str, Any]] = []
    for metric in policy.metrics:
        if metric not in df.columns:
            continue
        for key, ids, values in _each_series(_series(df, metric, order), policy.history_runs):
            for step, recovered in _regressions(values, metric, policy.rule):
                cfg = str(key[0])
                out.append(
                    _finding(key, metric, step, recovered, ids, runs, ident.loc[cfg], policy)
                )
    out.sort(
        key=lambda f: (
            f["config_id"],
            f["scenario"],
            str(f["concurrency"]),
            f["metric"],
            f["first_bad_date"],
        )
    )
    return out


def _each_series(
    table: pd.DataFrame, last: int
) -> Iterator[tuple[tuple[Any, ...], list[str], np.ndarray]]:
    """(series key, run ids, values) of each series in `_series`' sorted table, its `last` runs
    only. Plain arrays sliced at the key changes: a year of history has thousands of series,
    and a pandas group per series cost more than the step test itself."""
    if not len(table):
        return
    codes = table.groupby(_SERIES_KEYS, dropna=False, sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # the table is sorted by key
    heads = table.iloc[starts]
    cols = [heads[k].astype(object).where(heads[k].notna(), None).tolist() for k in _SERIES_KEYS]
    ids = [str(r) for r in table["run_id"].tolist()]
    values = table["_v"].to_numpy(float)
    ends = [*starts[1:].tolist(), len(table)]
    for key, start, end in zip(zip(*cols, strict=True), starts.tolist(), ends, strict=True):
        lo = max(start, end - last)
        yield key, ids[lo:end], values[lo:end]


def _run_info(df: pd.DataFrame) -> dict[tuple[str, str], _Run]:
    """(config, run) → the run's date and the image (and digest) that config ran."""
    first = df.drop_duplicates(["config_id", "run_id"])
    digests = first["image_digest"] if "image_digest" in first.columns else [None] * len(first)
    return {
        (str(c), str(r)): _Run(str(r), str(d), _opt(i), _opt(g))
        for c, r, d, i, g in zip(
            first["config_id"],
            first["run_id"],
            first["run_date"],
            first["image"],
            digests,
            strict=True,
        )
    }


def _opt(v: Any) -> str | None:
    return None if v is None or pd.isna(v) or v == "" else str(v)


def _image_change(good: _Run, bad: _Run) -> dict[str, str | None] | None:
    """The image before → at the first bad run; None when neither the tag nor the digest moved
    (a digest known on one side only is not a change)."""
    digest_moved = good.digest is not None and bad.digest is not None and good.digest != bad.digest
    if good.image == bad.image and not digest_moved:
        return None
    return {"from": good.image, "to": bad.image, "from_digest": good.digest,
            "to_digest": bad.digest}  # fmt: skip


def _regressions(values: np.ndarray, metric: str, rule: StepRule) -> list[tuple[Step, int | None]]:
    """Steps in the bad direction, each with the index where the series recovered (or None)."""
    steps, starts, s = detect(values, rule)
    x = np.log(values)
    bad = [st for st in steps if st.shift * DIRECTIONS[metric] < 0]
    out = []
    for st in bad:
        last = starts[-1]
        recovered = None
        if last > st.at:
            probe = window_test(
                np.concatenate([x[st.base_from : st.at], x[last:]]),
                0,
                st.at - st.base_from,
                st.at - st.base_from + len(x) - last,
                s,
                rule,
            )
            # back when the latest segment (long enough to judge) no longer differs for the worse
            if probe is not None and (
                not significant(probe, rule) or probe.shift * DIRECTIONS[metric] > 0
            ):
                recovered = last
        out.append((st, recovered))
    return out


def _finding(
    key: tuple[Any, ...],
    metric: str,
    step: Step,
    recovered: int | None,
    ids: Sequence[str],
    runs: Mapping[tuple[str, str], _Run],
    ident: Any,
    policy: AlertPolicy,
) -> dict[str, Any]:
    cfg = str(key[0])
    good, bad = runs[(cfg, ids[step.at - 1])], runs[(cfg, ids[step.at])]
    lo, hi = step.relative_ci95()
    change = _image_change(good, bad)
    back = runs[(cfg, ids[recovered])] if recovered is not None else None
    return {
        "kind": "regression",
        "config_id": cfg,
        "config": str(ident["job_name"]),
        **{k: _plain(ident[k]) for k in ("recipe", "model", "sku", "framework", "precision")},
        "scenario": str(key[1]),
        "concurrency": _plain(key[2]),
        "request_rate": _plain(key[3]),
        "metric": metric,
        "higher_is_better": DIRECTIONS[metric] > 0,
        "step": {
            "relative": round(step.relative, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "z": round(step.z, 2),
        },
        "baseline": {"value": _level(step.base_level), "runs": step.n_base},
        "target": {"value": _level(step.target_level), "runs": step.n_target},
        "last_good_run": good.run_id,
        "last_good_date": good.date,
        "first_bad_run": bad.run_id,
        "first_bad_date": bad.date,
        "image_change": change,
        "state": "recovered" if back else "open",
        "recovered_run": back.run_id if back else None,
        "recovered_date": back.date if back else None,
    }


def _level(log_value: float) -> float:
    return float(f"{math.exp(log_value):.6g}")


# --- missing data -------------------------------------------------------------------------


def _nights(
    runs: Sequence[Mapping[str, Any]], events: Sequence[str]
) -> dict[str, list[Mapping[str, Any]]]:
    """Night (YYYY-MM-DD) → its counted runs, oldest night first."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        if str(run["meta"].get("event")) in events:
            out.setdefault(str(run["meta"].get("date", ""))[:10], []).append(run)
    return dict(sorted(out.items()))


def _job_configs(df: pd.DataFrame) -> dict[str, str]:
    pairs = df.drop_duplicates("job_id")
    return {str(j): str(c) for j, c in zip(pairs["job_id"], pairs["config_id"], strict=True)}


def _planned(run: Mapping[str, Any], jobs: Mapping[str, str]) -> set[str] | None:
    """Configs the run's plan expected (None: the run has no plan manifest)."""
    cov = run.get("coverage") or {}
    if not cov.get("plan"):
        return None
    out = set()
    for entry in cov.get("jobs") or []:
        cfg = entry.get("config_id") or jobs.get(str(entry.get("job_id")))
        if cfg:
            out.add(str(cfg))
    return out


def find_missing(
    df: pd.DataFrame, runs: Sequence[Mapping[str, Any]], policy: AlertPolicy
) -> list[dict[str, Any]]:
    """Missing-data alerts: configurations, then SKUs, with `missing_nights` dark nights."""
    if not len(df):
        return []
    nights = _nights(runs, policy.nightly_events)
    jobs = _job_configs(df)
    ok = df[(df["status"] == "ok") & df["valid"].astype(bool)]
    pairs = ok[["run_id", "config_id"]].drop_duplicates()  # one per (run, config), not per point
    valid = {(str(r), str(c)) for r, c in zip(pairs["run_id"], pairs["config_id"], strict=True)}
    configs = df[["config_id", "sku"]].drop_duplicates("config_id", keep="last")
    sku_of = {str(c): str(s) for c, s in zip(configs["config_id"], configs["sku"], strict=True)}
    streak: dict[str, list[str]] = {}  # config → the dark nights since its last valid one
    last_ok: dict[str, str] = {}
    seen: set[str] = set()
    for night, its_runs in nights.items():
        expected: set[str] = set()
        for run in its_runs:
            planned = _planned(run, jobs)
            expected |= set(seen) if planned is None else planned
        lit = {c for run in its_runs for c in sku_of if (str(run["meta"]["run_id"]), c) in valid}
        seen |= lit
        for cfg in expected | lit:
            if cfg in lit:
                streak[cfg], last_ok[cfg] = [], night
            elif cfg in sku_of:
                streak.setdefault(cfg, []).append(night)
    alerts = [
        _missing("config", sku_of[c], c, dark, last_ok.get(c), policy)
        for c, dark in sorted(streak.items())
        if len(dark) >= policy.missing_nights
    ]
    return alerts + _sku_alerts(streak, last_ok, sku_of, policy)


def _sku_alerts(
    streak: Mapping[str, list[str]],
    last_ok: Mapping[str, str],
    sku_of: Mapping[str, str],
    policy: AlertPolicy,
) -> list[dict[str, Any]]:
    """A SKU is dark when every configuration of it that was expected is dark."""
    out = []
    for sku in sorted(set(sku_of.values())):
        cfgs = [c for c in streak if sku_of.get(c) == sku]
        if not cfgs or any(len(streak[c]) < policy.missing_nights for c in cfgs):
            continue
        dark = sorted(set.intersection(*(set(streak[c]) for c in cfgs)))
        if len(dark) >= policy.missing_nights:
            last = max((last_ok[c] for c in cfgs if c in last_ok), default=None)
            out.append(_missing("sku", sku, None, dark, last, policy))
    return out


def _missing(
    scope: str,
    sku: str,
    cfg: str | None,
    dark: Sequence[str],
    last: str | None,
    policy: AlertPolicy,
) -> dict[str, Any]:
    return {
        "kind": "missing",
        "scope": scope,
        "sku": sku,
        "config_id": cfg,
        "nights": len(dark),
        "threshold": policy.missing_nights,
        "first_dark_night": dark[0],
        "last_dark_night": dark[-1],
        "last_valid_night": last,
    }


# --- the document -------------------------------------------------------------------------


def regressions_document(
    df: pd.DataFrame,
    runs: Sequence[Mapping[str, Any]],
    run_order: Sequence[str],
    policy: AlertPolicy,
) -> dict[str, Any]:
    """The content of `regressions.json` (schemas/regressions.schema.json)."""
    found = find_regressions(df, run_order, policy)
    missing = find_missing(df, runs, policy)
    return {
        "regressions_version": REGRESSIONS_VERSION,
        "noise_model": NOISE_MODEL,
        "policy": policy.to_json(),
        "counts": {
            "open": sum(f["state"] == "open" for f in found),
            "recovered": sum(f["state"] == "recovered" for f in found),
            "missing": len(missing),
        },
        "regressions": found,
        "missing": missing,
    }
