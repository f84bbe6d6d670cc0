"""Reads a checkout of the `results` branch (contracts.md §4) into frozen objects.

Only the files the site needs are read: `index.json` (its runs and, when publish wrote them,
the run each configuration's curve is published from), the point table (through
`ixci.results.pointstore`, the one reader of `data/points/*.parquet`; a branch in the older layout is
read from `data/points.json`), `regressions.json` when present and, per run, `run.json` and
`coverage.json`. Every problem is collected and raised at once as `InvalidInput`, each naming
the file, the field and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from ixci.errors import InvalidInput, Problem
from ixci.results import pointstore

# Columns the site cannot work without (the rest of the contract's columns are optional
# here and shown as empty when absent, so an older results branch still builds).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "run_id",
    "run_date",
    "config_id",
    "model",
    "isl",
    "osl",
    "precision",
    "sku",
    "framework",
    "image",
    "tp",
    "gpus",
    "concurrency",
    "valid",
    "interactivity_median",
    "tput_per_gpu",
)

JOB_STATES = ("ok", "partial", "failed", "missing")


@dataclass(frozen=True, kw_only=True)
class CoverageJob:
    """One planned job of a run and what became of it."""

    job_id: str
    name: str
    model: str | None
    sku: str | None
    framework: str | None
    precision: str | None
    scenario: str | None
    image: str | None
    status: str  # one of JOB_STATES
    failure_class: str | None
    failure_message: str | None
    points_expected: int | None
    points_ok: int | None


@dataclass(frozen=True, kw_only=True)
class Run:
    """One run of the pipeline: its provenance and coverage manifest."""

    run_id: str
    date: str  # ISO-8601 UTC as written by publish
    event: str | None
    sha: str | None
    repository: str | None
    url: str | None
    path: str
    jobs: tuple[CoverageJob, ...] | None  # None: no coverage.json in the run folder


@dataclass(frozen=True, kw_only=True)
class Results:
    """Everything the site is built from."""

    root: Path
    runs: tuple[Run, ...]  # oldest first
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]] = field(repr=False)
    schema_versions: Mapping[str, Any]
    # (config_id, scenario) → the run publish publishes that curve from (ixci.results.curves); empty
    # for a tree whose index.json predates it (the page then applies the same rule itself)
    curves: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # regressions.json's findings (ixci.results.regress), [] when the tree has none
    regressions: Sequence[Mapping[str, Any]] = ()
    data: dict[str, list[Any]] = field(default_factory=dict, repr=False, compare=False)

    def column(self, name: str) -> list[Any]:
        """One column's values in row order (plain Python, None for missing; cached)."""
        if name not in self.data:
            i = self.columns.index(name)
            self.data[name] = [row[i] for row in self.rows]
        return self.data[name]


class ColumnRows(Sequence[Sequence[Any]]):
    """Rows over column lists, made on access (the encoders read columns; few read rows)."""

    def __init__(self, columns: Sequence[list[Any]], n: int) -> None:
        self._columns, self._n = columns, n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Sequence[Any]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Sequence[Any]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        return [c[i] for c in self._columns]

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return iter(zip(*self._columns, strict=True)) if self._columns else iter(())


def load_results(root: Path) -> Results:
    """Read and check the results tree at `root`; raise `InvalidInput` listing every problem."""
    problems: list[Problem] = []
    index = _read_json(root / "index.json", problems)
    data: dict[str, list[Any]] = {}
    rows: Sequence[Sequence[Any]]
    if pointstore.has_store(root):
        columns, rows, data = _stored_points(root, problems)
    else:
        points = _read_json(root / pointstore.LEGACY_POINTS, problems)
        if problems:
            raise InvalidInput(problems, _headline(root, problems))
        columns, rows = _check_points(root / pointstore.LEGACY_POINTS, points, problems)
    runs = _read_runs(root, index, problems)
    curves = _read_curves(root / "index.json", index, problems)
    regressions = _read_regressions(root / "regressions.json", problems)
    if problems:
        raise InvalidInput(problems, _headline(root, problems))
    versions = index.get("schema_versions", {}) if isinstance(index, dict) else {}
    return Results(
        root=root,
        runs=tuple(sorted(runs, key=lambda r: (r.date, r.run_id))),
        columns=tuple(columns),
        rows=rows,
        schema_versions=versions if isinstance(versions, dict) else {},
        curves=curves,
        regressions=regressions,
        data=data,
    )


def _read_curves(path: Path, index: Any, problems: list[Problem]) -> dict[tuple[str, str], str]:
    """`configs[].curves[].latest_run` of index.json: publish's choice per (config, scenario).

    An older index lists configs as plain ids (no curves): nothing to read, not an error.
    """
    configs = index.get("configs") if isinstance(index, dict) else None
    out: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(configs if isinstance(configs, list) else []):
        if not isinstance(entry, dict) or "curves" not in entry:
            continue
        curves = entry["curves"]
        if not isinstance(curves, list):
            problems.append(_problem(path, "expected a list of curves; rebuild with `ixci publish`",
                                     where=f"configs[{i}].curves"))  # fmt: skip
            continue
        for k, curve in enumerate(curves):
            latest = curve.get("latest_run") if isinstance(curve, dict) else None
            if not isinstance(curve, dict) or not isinstance(curve.get("scenario"), str):
                problems.append(_problem(path, "a curve needs a string 'scenario'",
                                         where=f"configs[{i}].curves[{k}]"))  # fmt: skip
            elif latest is not None:
                out[(str(entry.get("config_id")), curve["scenario"])] = str(latest)
    return out


def _read_regressions(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], ...]:
    """The findings of regressions.json (absent file: none); each needs its config, metric and
    first bad date (what the History view places a marker with)."""
    if not path.is_file():
        return ()
    doc = _read_json(path, problems)
    found = doc.get("regressions") if isinstance(doc, dict) else None
    if not isinstance(found, list):
        if doc is not None:
            problems.append(_problem(path, "expected a list of findings; rebuild with `ixci publish`",
                                     where="regressions"))  # fmt: skip
        return ()
    out = []
    for i, f in enumerate(found):
        if not isinstance(f, dict) or not all(
            isinstance(f.get(k), str) for k in ("config_id", "first_bad_date", "metric")
        ):
            problems.append(_problem(path, "a finding needs string 'config_id', 'metric' and "
                                     "'first_bad_date'", where=f"regressions[{i}]"))  # fmt: skip
            continue
        out.append(f)
    return tuple(out)


def _headline(root: Path, problems: list[Problem]) -> str:
    body = "\n".join("  " + p.render() for p in problems)
    return f"{root} is not a usable results tree (contracts.md §4):\n{body}"


def _problem(path: Path, message: str, *, where: str = "", line: int = 1, col: int = 1) -> Problem:
    return Problem(file=str(path), line=line, col=col, path=where, message=message)


def _read_json(path: Path, problems: list[Problem]) -> Any:
    if not path.is_file():
        problems.append(
            _problem(path, "file not found; point --data at a checkout of the results branch")
        )
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.append(
            _problem(path, f"not valid JSON: {exc.msg}", line=exc.lineno, col=exc.colno)
        )
    except UnicodeDecodeError as exc:
        problems.append(_problem(path, f"not UTF-8 text: {exc.reason}"))
    return None


def _stored_points(
    root: Path, problems: list[Problem]
) -> tuple[list[str], ColumnRows, dict[str, list[Any]]]:
    """The partitions as plain column lists (NaN as None), columns checked like points.json's."""
    df = pointstore.read_points(root)
    data = pointstore.plain_columns(df)
    columns = [str(c) for c in data]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        where = root / pointstore.POINTS_DIR
        problems.append(_problem(where, f"missing column(s) {', '.join(missing)}; rebuild "
                                 "data/ with `ixci publish --rebuild`", where="columns"))  # fmt: skip
    return columns, ColumnRows(list(data.values()), len(df)), data


def _check_points(
    path: Path, doc: Any, problems: list[Problem]
) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list):
        problems.append(_problem(path, 'expected {"columns": [...], "rows": [[...], ...]}'))
        return [], []
    columns = [str(c) for c in doc["columns"]]
    rows = doc.get("rows")
    if not isinstance(rows, list):
        problems.append(_problem(path, "expected a list of rows", where="rows"))
        return columns, []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(
            _problem(
                path,
                f"missing column(s) {', '.join(missing)}; rebuild data/ with `ixci publish`",
                where="columns",
            )
        )
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            got = len(row) if isinstance(row, list) else type(row).__name__
            problems.append(
                _problem(path, f"row has {got} cells, expected {len(columns)}", where=f"rows[{i}]")
            )
            if len(problems) > 20:
                break
    return columns, rows


def _read_runs(root: Path, index: Any, problems: list[Problem]) -> list[Run]:
    ipath = root / "index.json"
    entries = index.get("runs") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        problems.append(_problem(ipath, "expected a list of runs", where="runs"))
        return []
    runs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            problems.append(_problem(ipath, "a run needs a string 'path'", where=f"runs[{i}]"))
            continue
        runs.append(_read_run(root, entry, f"runs[{i}]", problems))
    return runs


def _read_run(root: Path, entry: Mapping[str, Any], where: str, problems: list[Problem]) -> Run:
    folder = root / str(entry["path"])
    meta_path = folder / "run.json"
    meta = _read_json(meta_path, problems) if meta_path.is_file() else {}
    meta = {**entry, **(meta if isinstance(meta, dict) else {})}
    run_id = str(meta.get("run_id") or meta.get("id") or "")
    date = str(meta.get("date") or meta.get("started_at") or "")
    if not run_id or not date:
        problems.append(
            _problem(root / "index.json", "a run needs 'run_id' and 'date'", where=where)
        )
    cov_path = folder / "coverage.json"
    jobs = _read_coverage(cov_path, problems) if cov_path.is_file() else None
    repo = _opt_str(meta.get("repository"))
    url = _opt_str(meta.get("url") or meta.get("html_url"))
    if url is None and repo and run_id.isdigit():
        url = f"https://github.com/{repo}/actions/runs/{run_id}"
    return Run(
        run_id=run_id,
        date=date,
        event=_opt_str(meta.get("event")),
        sha=_opt_str(meta.get("sha") or meta.get("git_sha")),
        repository=repo,
        url=url,
        path=str(entry["path"]),
        jobs=jobs,
    )


def _read_coverage(path: Path, problems: list[Problem]) -> tuple[CoverageJob, ...] | None:
    doc = _read_json(path, problems)
    if doc is None:
        return None
    entries = doc.get("jobs") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        problems.append(_problem(path, "expected a list of jobs", where="jobs"))
        return None
    jobs = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            problems.append(_problem(path, "a job entry must be an object", where=f"jobs[{i}]"))
            continue
        status = str(e.get("status") or e.get("state") or "missing")
        if status not in JOB_STATES:
            problems.append(
                _problem(
                    path,
                    f"unknown status {status!r}; expected one of {', '.join(JOB_STATES)}",
                    where=f"jobs[{i}].status",
                )
            )
        jobs.append(_coverage_job(e, status))
    return tuple(jobs)


def _coverage_job(e: Mapping[str, Any], status: str) -> CoverageJob:
    job = e.get("job") if isinstance(e.get("job"), dict) else {}
    assert isinstance(job, dict)

    def pick(key: str) -> str | None:
        return _opt_str(e.get(key, job.get(key)))

    return CoverageJob(
        job_id=str(e.get("job_id") or e.get("id") or job.get("id") or ""),
        name=str(e.get("name") or job.get("name") or e.get("job_id") or ""),
        model=pick("model"),
        sku=pick("sku"),
        framework=pick("framework"),
        precision=pick("precision"),
        scenario=pick("scenario"),
        image=pick("image"),
        status=status,
        failure_class=_opt_str(e.get("failure_class")),
        failure_message=_opt_str(e.get("failure_message") or e.get("reason")),
        points_expected=_opt_int(e.get("points_expected")),
        points_ok=_opt_int(e.get("points_ok")),
    )


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _opt_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None
