"""The coverage grid: SKU × framework × model → measured / failed / missing, last date.

A cell's state is what happened in the most recent run that planned that combination:
`measured` if every one of its jobs produced points (ok or partial), `partial` if some
did and others failed or never arrived, else `failed` if any job failed, else `missing`
(planned, nothing arrived). `last_measured` is the date of the
latest run with valid points for it, whatever came later. Combinations no run planned
are absent (the site draws them as "not planned").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ixci.site.load import CoverageJob, Results, Run

Key = tuple[str, str, str]  # sku, framework, model


@dataclass(kw_only=True)
class _Cell:
    state: str = "missing"
    last_run: str = ""
    last_date: str = ""
    last_measured: str | None = None
    failure_class: str | None = None
    jobs: int = 0
    jobs_measured: int = 0


def coverage_grid(results: Results) -> dict[str, Any]:
    """Build the grid as `{"skus", "frameworks", "models", "cells": [...]}`, sorted axes."""
    by_job = _job_keys(results)
    cells: dict[Key, _Cell] = {}
    for run in results.runs:  # oldest first: later runs overwrite the state
        for key, jobs in _planned(run, by_job).items():
            _update(cells.setdefault(key, _Cell()), run, jobs)
    for key, date in _measured_dates(results).items():
        cell = cells.setdefault(key, _Cell(state="measured", last_date=date))
        if cell.last_measured is None or date > cell.last_measured:
            cell.last_measured = date
    return {
        "skus": sorted({k[0] for k in cells}),
        "frameworks": sorted({k[1] for k in cells}),
        "models": sorted({k[2] for k in cells}),
        "cells": [
            {
                "sku": k[0],
                "framework": k[1],
                "model": k[2],
                "state": c.state,
                "last_run": c.last_run or None,
                "last_date": c.last_date or None,
                "last_measured": c.last_measured,
                "failure_class": c.failure_class,
                "jobs": c.jobs,
                "jobs_measured": c.jobs_measured,
            }
            for k, c in sorted(cells.items())
        ],
    }


def _job_keys(results: Results) -> dict[str, Key]:
    """job id → (sku, framework, model) from the points table, for manifests that omit them."""
    if "job_id" not in results.columns:
        return {}
    cols = (results.column(c) for c in ("job_id", "sku", "framework", "model"))
    return {str(j): (str(s), str(f), str(m)) for j, s, f, m in zip(*cols, strict=True)}


def _planned(run: Run, by_job: dict[str, Key]) -> dict[Key, list[CoverageJob]]:
    out: dict[Key, list[CoverageJob]] = {}
    for job in run.jobs or ():
        if job.sku and job.framework and job.model:
            key: Key | None = (job.sku, job.framework, job.model)
        else:
            key = by_job.get(job.job_id)
        if key is not None:
            out.setdefault(key, []).append(job)
    return out


def _update(cell: _Cell, run: Run, jobs: list[CoverageJob]) -> None:
    measured = sum(1 for j in jobs if j.status in ("ok", "partial"))
    failure = next((j.failure_class or "failed" for j in jobs if j.status == "failed"), None)
    if measured == len(jobs):
        cell.state = "measured"
    elif measured:
        cell.state = "partial"
    else:
        cell.state = "failed" if failure else "missing"
    cell.failure_class = failure
    cell.last_run, cell.last_date = run.run_id, run.date
    cell.jobs, cell.jobs_measured = len(jobs), measured


def _measured_dates(results: Results) -> dict[Key, str]:
    out: dict[Key, str] = {}
    names = ("valid", "sku", "framework", "model", "run_date")
    for valid, sku, fw, model, day in zip(*(results.column(c) for c in names), strict=True):
        if not valid:
            continue
        key = (str(sku), str(fw), str(model))
        date = str(day)
        if date > out.get(key, ""):
            out[key] = date
    return out
