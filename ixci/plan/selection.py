"""Which planned jobs run on an event: `workflow_dispatch` filters (`--only key=value,...`),
the nightly `schedule` (with rotation and a GPU-hour budget), and a pull request's diff (jobs
whose inputs it touches, and the canary set when it touches ixci's measuring code).

The one side effect is `git_changes`, which reads a pull request's diff through `ixci.cmd`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ixci.errors import PlanError, UsageError
from ixci.job import Job


@dataclass(frozen=True, kw_only=True)
class Filter:
    """One `--only`/`--exclude` expression: every `key=value` must match (values may be `a|b`)."""

    terms: tuple[tuple[str, frozenset[str]], ...]
    text: str


FILTER_KEYS = (
    "id",
    "name",
    "sku",
    "framework",
    "model",
    "precision",
    "runner",
    "recipe",
    "scenario",
    "image",
    "tp",
    "ep",
    "pp",
    "dcp",
    "dp_attention",
    "gpus",
    "nodes",
    "disaggregated",
    "spec_decoding",
    "label",
)


def parse_filter(text: str) -> Filter:
    """Parse `sku=h100|h200,framework=vllm`; unknown keys raise `UsageError` with a suggestion."""
    terms: list[tuple[str, frozenset[str]]] = []
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value.strip():
            raise UsageError(
                f"bad filter {text!r}: expected key=value[,key=value]",
                hint="e.g. --only 'sku=h100,framework=vllm'",
            )
        if key not in FILTER_KEYS:
            raise UsageError(
                f"bad filter {text!r}: unknown key {key!r}{_did_you_mean(key)}",
                hint="keys: " + ", ".join(FILTER_KEYS),
            )
        terms.append((key, frozenset(v.strip().lower() for v in value.split("|"))))
    return Filter(terms=tuple(terms), text=text)


def _did_you_mean(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, FILTER_KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def job_values(job: Job, key: str) -> set[str]:
    """The values of catalog field `key` for `job`, lower-cased strings (for filters)."""
    topo = job.topology
    spec = job.spec_decoding
    simple: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "sku": job.sku,
        "framework": job.framework,
        "model": job.model,
        "precision": job.precision,
        "runner": job.runner,
        "image": job.image,
        **topo.parallelism(),
        "nodes": topo.nodes,
        "disaggregated": topo.disaggregated,
        "spec_decoding": spec.method if spec else "none",
    }
    if key in simple:
        return {_text(simple[key])}
    if key == "recipe":
        return {r.lower() for r in job.recipes} | {Path(r).stem.lower() for r in job.recipes}
    if key == "scenario":
        return {p.scenario.lower() for p in job.points}
    if key == "label":
        return {label.lower() for label in job.runs_on}
    raise UsageError(f"unknown filter key {key!r}")


def _text(value: Any) -> str:
    return str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")


def matches(job: Job, flt: Filter) -> bool:
    """True when every term of `flt` has a value in common with the job's values."""
    return all(job_values(job, key) & allowed for key, allowed in flt.terms)


def select_dispatch(
    jobs: Sequence[Job], only: Sequence[Filter], exclude: Sequence[Filter]
) -> list[Job]:
    """`workflow_dispatch`: jobs matching any `--only` (all if none) and no `--exclude`."""
    out = []
    for job in jobs:
        hit = [f.text for f in only if matches(job, f)]
        if only and not hit:
            continue
        if any(matches(job, f) for f in exclude):
            continue
        why = [f"workflow_dispatch: --only {t}" for t in hit] or ["workflow_dispatch: all"]
        out.append(replace(job, selected_because=tuple(why)))
    return out


def select_schedule(
    jobs: Sequence[Job],
    *,
    budget_gpu_hours: float | None = None,
    last_measured: Mapping[str, str] | None = None,
) -> list[Job]:
    """`schedule`: every job, or a rotation within `budget_gpu_hours` (see `rotate`)."""
    if budget_gpu_hours is None:
        return [replace(j, selected_because=("schedule: all",)) for j in jobs]
    return rotate(jobs, budget_gpu_hours, last_measured, event="schedule")


def rotate(
    jobs: Sequence[Job],
    budget_gpu_hours: float,
    last_measured: Mapping[str, str] | None = None,
    *,
    event: str,
) -> list[Job]:
    """The jobs that fit `budget_gpu_hours` (GPU-hours), oldest-measured first, in `jobs` order.

    `last_measured` maps job id → ISO date of its last result; jobs never measured go first.
    Greedy: walk jobs oldest-first and take each one that still fits the budget. Each chosen
    job's `selected_because` names `event`, the budget and its last measurement.
    """
    history = last_measured or {}
    order = sorted(jobs, key=lambda j: (history.get(j.id, ""), j.id))
    chosen: dict[str, Job] = {}
    spent = 0.0
    for job in order:
        cost = job.estimate.total_gpu_hours
        if spent + cost <= budget_gpu_hours:
            spent += cost
            seen = history.get(job.id)
            why = f"last measured {seen}" if seen else "never measured"
            chosen[job.id] = replace(
                job,
                selected_because=(f"{event}: rotation within {budget_gpu_hours:g} GPU-h ({why})",),
            )
    return [chosen[j.id] for j in jobs if j.id in chosen]


def check_budget(event: str, jobs: Sequence[Job], budget_gpu_hours: float) -> None:
    """Refuse a selection whose estimate exceeds `budget_gpu_hours` (a ceiling, not a rotation).

    Raises `PlanError` (nothing is planned) with the figure — jobs, estimated GPU-hours,
    budget — the largest shares by SKU, and how to narrow the selection.
    """
    total = sum(j.estimate.total_gpu_hours for j in jobs)
    if total <= budget_gpu_hours:
        return
    raise PlanError(
        f"{event}: the selection is {len(jobs)} jobs, {total:,.1f} GPU-h estimated, over the "
        f"budget of {budget_gpu_hours:g} GPU-h; nothing was planned",
        hint="narrow it with only/exclude (--only/--exclude 'key=value[,key=value]'; largest "
        f"shares: {_shares(jobs)}), raise the budget, or pass --rotate for the "
        "oldest-measured jobs that fit (docs/planning.md)",
    )


def _shares(jobs: Sequence[Job], top: int = 3) -> str:
    by_sku: dict[str, list[float]] = {}
    for job in jobs:
        by_sku.setdefault(job.sku, []).append(job.estimate.total_gpu_hours)
    ranked = sorted(by_sku.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:top]
    return ", ".join(f"sku={sku} {sum(h):,.1f} GPU-h in {len(h)} jobs" for sku, h in ranked)


def history_dates(index: Mapping[str, Any]) -> dict[str, str]:
    """Job id → last measured date (ISO) from a results-branch `index.json`.

    Reads `index["jobs"][job_id]["last_measured"]` (contracts.md §4); a missing section
    means no history (every job counts as never measured).
    """
    jobs = index.get("jobs") or {}
    if not isinstance(jobs, Mapping):
        raise PlanError("history index.json: `jobs` must map job id → {last_measured: date}")
    out: dict[str, str] = {}
    for job_id, entry in jobs.items():
        when = entry.get("last_measured") if isinstance(entry, Mapping) else None
        if isinstance(when, str):
            try:
                date.fromisoformat(when[:10])  # reject garbage early
            except ValueError:
                raise PlanError(
                    f"history index.json: job {str(job_id)[:40]!r}: last_measured "
                    f"{when[:40]!r} is not a date (YYYY-MM-DD)"
                ) from None
            out[str(job_id)] = when
    return out


CANARY_CODE = (
    "ixci/run/runner.py",
    "ixci/run/readiness.py",
    "ixci/run/loaddriver.py",
    "ixci/loadgen/",
    "ixci/engines/",
    "ixci/runtimes/",
    "ixci/run/telemetry.py",
    "ixci/cmd.py",
    "ixci/results/result.py",
)
"""ixci's own measuring code: a change there re-runs the catalog's canary set."""
SHARED_FILES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "matrix/hardware.yaml": ("skus", "sku"),
        "matrix/engines.yaml": ("engines", "framework"),
        "matrix/models.yaml": ("models", "model"),
        "matrix/runners.yaml": ("runners", "runner"),
    }
)
"""Shared catalog file → (its top-level key, the job field its entries feed)."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """One file changed by a pull request; texts are None where the file does not exist."""

    path: str
    base_text: str | None = None
    head_text: str | None = None


def git_changes(repo: Path, base: str, head: str) -> tuple[Change, ...]:
    """Files changed between `base` and `head` (paths relative to `repo`), with both versions
    of every catalog file (`git diff --name-only`, `git show`; through `ixci.cmd`)."""
    from ixci import cmd

    out = cmd.run(
        ["git", "diff", "--name-only", "--no-renames", "--relative", base, head], cwd=repo
    ).stdout
    changes = []
    for path in sorted(line for line in out.splitlines() if line.strip()):
        wanted = path.startswith(("matrix/", "benchmarks/")) and path.endswith((".yaml", ".yml"))
        changes.append(
            Change(
                path=path,
                base_text=_show(repo, base, path) if wanted else None,
                head_text=_show(repo, head, path) if wanted else None,
            )
        )
    return tuple(changes)


def _show(repo: Path, rev: str, path: str) -> str | None:
    from ixci import cmd

    proc = cmd.run(["git", "show", f"{rev}:./{path}"], cwd=repo, check=False)
    return proc.stdout if proc.returncode == 0 else None


def changed_keys(base_text: str | None, head_text: str | None, top: str) -> set[str]:
    """Entries under `top` that differ between two versions of a YAML file (added, removed
    or edited). An unreadable version counts as every entry changed."""
    base, head = _entries(base_text, top), _entries(head_text, top)
    if base is None or head is None:
        return set((base or {}) | (head or {})) | {"*"}
    return {k for k in set(base) | set(head) if base.get(k) != head.get(k)}


def _parse(text: str, path: str) -> Any:
    """A pull request's version of a catalog file, through the same bounded loader as the
    catalog (size, nesting, aliases); None when it is unreadable or over a limit."""
    from ixci.catalog.catalog_files import CATALOG_MAX_BYTES
    from ixci.yamlio import load_text

    if len(text) > CATALOG_MAX_BYTES:
        return None
    doc = load_text(text, path)
    return None if doc.problems else doc.data


def _entries(text: str | None, top: str) -> dict[str, Any] | None:
    if text is None:
        return {}
    data = _parse(text, top)
    section = data.get(top) if isinstance(data, dict) else None
    return {str(k): v for k, v in section.items()} if isinstance(section, dict) else None


def _scenario_names(change: Change) -> set[str]:
    names = {Path(change.path).stem}
    for text in (change.base_text, change.head_text):
        data = _parse(text, change.path) if text else None
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.add(data["name"])
    return names


def is_canary(job: Job, canary: Iterable[str]) -> bool:
    """A canary entry names a job id, a recipe (file stem or path) or a job name."""
    keys = {job.id, job.name, *job.recipes, *(Path(r).stem for r in job.recipes)}
    return any(c in keys for c in canary)


def select_pull_request(
    jobs: Sequence[Job], changes: Sequence[Change], canary: Sequence[str]
) -> tuple[list[Job], list[str]]:
    """`pull_request`: the jobs whose inputs the diff touches, each with its reasons.

    recipe file → its jobs; an entry of hardware/engines/models/runners.yaml → every job
    using it; a scenario profile → jobs with points in it; ixci's measuring code or
    `matrix/canary.yaml` → the canary set. Returns (jobs, notes on ignored paths).
    """
    reasons: dict[str, list[str]] = {}
    notes: list[str] = []
    for change in changes:
        hits = _touched(jobs, change, canary)
        if hits is None:
            notes.append(f"{change.path}: not a benchmark input (no job selected)")
            continue
        for job, why in hits:
            reasons.setdefault(job.id, []).append(why)
    chosen = [
        replace(j, selected_because=tuple(dict.fromkeys(reasons[j.id])))
        for j in jobs
        if j.id in reasons
    ]
    return chosen, notes


def _touched(
    jobs: Sequence[Job], change: Change, canary: Sequence[str]
) -> list[tuple[Job, str]] | None:
    path = change.path
    if path.startswith("matrix/recipes/"):
        return [(j, f"pull_request: {path} changed") for j in jobs if path in j.recipes]
    if path in SHARED_FILES:
        top, fld = SHARED_FILES[path]
        keys = changed_keys(change.base_text, change.head_text, top)
        return [
            (j, f"pull_request: {path}: {fld} {k!r} changed")
            for j in jobs
            for k in sorted(keys & _job_keys(j, fld) | ({"*"} & keys))
        ]
    if path.startswith("benchmarks/"):
        names = _scenario_names(change)
        return [
            (j, f"pull_request: {path}: scenario {s!r} changed")
            for j in jobs
            for s in sorted(names & {p.scenario for p in j.points})
        ]
    if path == "matrix/canary.yaml" or path.startswith(CANARY_CODE):
        return [
            (j, f"pull_request: {path} changed (canary set)") for j in jobs if is_canary(j, canary)
        ]
    return None


def _job_keys(job: Job, fld: str) -> set[str]:
    if fld != "sku":
        return {str(getattr(job, fld))}
    return {job.sku} | {str(p.sku) for p in job.topology.pools}
