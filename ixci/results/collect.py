"""Collect result artifacts: validate each one, reject bad ones with reasons, report coverage.

Input is any mix of directories, `result.json` files and GitHub artifact zips. Every candidate
is judged on its own, as untrusted input: an oversized, truncated, too deeply nested, non-JSON,
NaN- or overflow-carrying, wrong-kind, wrong-version, schema-invalid or self-contradictory
artifact (e.g. a GPU count its job does not have) goes to the skip report with its reasons;
collection itself never fails on one bad file and never drops a good one. Against a plan
(`ixci plan --format json`) only the plan's jobs are accepted, each exactly as scheduled
(`ixci.results.result_checks.plan_problems`), and the coverage manifest says, per job and point, what
is present, what failed (with its failure class) and what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ixci import ids, schemas
from ixci.errors import CollectError, UnsafeValue, storage_error
from ixci.job import Job, Plan
from ixci.results.aggregate import config_id
from ixci.results.artifacts import (
    DEFAULT_LIMITS,
    Limits,
    Rejected,
    parse_json,
    read_file,
    read_zip_member,
    zip_members,
)
from ixci.results.result_checks import (
    gpu_claims,
    plan_problems,
    point_problems,
    result_topology,
    status_problems,
)
from ixci.run.telemetry import sku_name_problem

SUPPORTED_SCHEMA_VERSIONS = (1,)
RESULT_KIND = "ixci.result"
ARTIFACT_PREFIX = "result-"  # workflow upload name: result-<job id> (contracts.md §3)
# rejections that are not a problem of the job: another copy of it was kept
NOT_REJECTIONS = frozenset({"duplicate", "superseded"})


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """One rejected artifact: where it came from, a category and every reason found."""

    source: str
    category: str
    reasons: tuple[str, ...]
    job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "category": self.category,
            "job_id": self.job_id,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """One validated artifact. `document` is the parsed, schema-valid result.json.

    `run_attempt` is the workflow run attempt that produced it (GitHub's re-runs keep the run
    id); `attempt` counts run-job's own infrastructure retries within that attempt.
    """

    source: str
    job_id: str
    run_id: str
    attempt: int
    document: Mapping[str, Any] = field(repr=False)
    run_attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class Collection:
    """Outcome of a collection: accepted artifacts (one per job), the skip report, coverage.

    `plan` is the plan the artifacts were bound to (None: no plan, every valid job accepted).
    """

    accepted: tuple[Accepted, ...]
    skipped: tuple[Skipped, ...]
    coverage: Mapping[str, Any]
    plan: Plan | None = field(default=None, repr=False)

    @property
    def rejected(self) -> tuple[Skipped, ...]:
        """The skip entries that are real rejections (not duplicates or earlier copies)."""
        return tuple(s for s in self.skipped if s.category not in NOT_REJECTIONS)


_Reject = Rejected  # the name this module's checks raise


def run_attempt_of(doc: Mapping[str, Any]) -> int:
    """The workflow run attempt of a result (1 for artifacts written before it was recorded)."""
    return int(doc["run"].get("run_attempt") or 1)


# --- finding candidates -----------------------------------------------------------------

_Candidate = tuple[str, Path, str | None, Rejected | None]


def _candidates(
    paths: Sequence[Path], limits: Limits, *, allow_missing: bool = False
) -> Iterator[_Candidate]:
    """Yield (source label, file, zip member or None, early rejection) for every candidate."""
    for root in paths:
        if not root.exists():
            if allow_missing:  # with a plan, nothing arrived is what coverage reports
                continue
            raise CollectError(f"{root}: no such file or directory")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            # labels are relative to the collected folder's parent: stable across machines and
            # runs (they end up in coverage.json on the results branch), never a temp path
            label = path.name if root.is_file() else path.relative_to(root.parent).as_posix()
            if path.suffix == ".zip":
                yield from _zip_candidates(path, label, limits)
            elif path.name == "result.json" or (
                path.name.startswith("j-") and path.suffix == ".json"
            ):
                yield label, path, None, _link_rejection(path)


def _link_rejection(path: Path) -> Rejected | None:
    if path.is_symlink():
        return Rejected("unsafe_path", [f"{path.name} is a symbolic link, not an artifact file"])
    return None


def _zip_candidates(path: Path, label: str, limits: Limits) -> Iterator[_Candidate]:
    try:
        members = zip_members(path, limits)
    except Rejected as rej:
        yield label, path, None, rej
        return
    if not members:
        yield label, path, None, Rejected("no_result", [f"{path.name} contains no result.json"])
    for name in members:
        yield f"{label}!{name}", path, name, None


def _read(path: Path, member: str | None, limits: Limits) -> bytes:
    return read_file(path, limits) if member is None else read_zip_member(path, member, limits)


# --- parsing and validation -------------------------------------------------------------


def parse_artifact(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parse result.json bytes strictly (see `ixci.results.artifacts.parse_json`); an object or `Rejected`."""
    doc = parse_json(data, limits)
    if not isinstance(doc, dict):
        raise Rejected("wrong_kind", [f"top level is a JSON {type(doc).__name__}, not an object"])
    return doc


def _check_identity(doc: Mapping[str, Any]) -> None:
    kind = doc.get("kind")
    if kind != RESULT_KIND:
        raise _Reject(
            "wrong_kind",
            [f"kind is {str(kind)[:80]!r}, expected {RESULT_KIND!r} (not an ixci result)"],
        )
    version = doc.get("schema_version")
    if "schema_version" not in doc:
        raise _Reject(
            "schema_version", ["schema_version is missing; every ixci result declares one"]
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise _Reject(
            "schema_version",
            [
                f"schema_version {str(version)[:40]!r} is not supported (this ixci reads "
                f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade ixci to collect it"
            ],
        )


def _result_schema_dir() -> Path:
    """The folder of ixci's schemas (`ixci.schemas.schema_dir`: the wheel's copy or the checkout's)."""
    try:
        return schemas.schema_dir()
    except FileNotFoundError as err:
        raise CollectError(str(err)) from err


@cache
def result_schema() -> dict[str, Any]:
    """The result JSON Schema, bundled: its `job` refers to plan.schema.json's definitions, so
    that schema is embedded (under its `$id`) and a validator needs no registry."""
    folder = _result_schema_dir()
    loaded: dict[str, Any] = json.loads((folder / "result.schema.json").read_text("utf-8"))
    plan = json.loads((folder / "plan.schema.json").read_text(encoding="utf-8"))
    return {**loaded, "$defs": {**loaded["$defs"], "plan.schema.json": plan}}


@cache
def _validator() -> jsonschema.Draft202012Validator:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:  # the checker silently passes what it cannot check
        raise CollectError(
            "jsonschema cannot check `date-time` formats in this installation",
            hint="install ixci's dependencies again (`pip install ixci` pulls rfc3339-validator)",
        )
    return jsonschema.Draft202012Validator(result_schema(), format_checker=checker)


def _schema_errors(doc: Mapping[str, Any]) -> list[str]:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for err in errors[:20]:
        if err.context:  # oneOf/anyOf: name the branch that came closest, not the whole value
            err = max(err.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        out.append(f"{where}: {message}")
    if len(errors) > 20:
        out.append(f"… and {len(errors) - 20} more schema errors")
    return out


def _unsafe_values(doc: Mapping[str, Any]) -> list[str]:
    """Values that become paths or refs on the results branch, checked by `ixci.ids`."""
    out = []
    for check, value, what in (
        (ids.run_id, doc["run"]["run_id"], "run.run_id"),
        (ids.job_id, doc["job"]["id"], "job.id"),
        (ids.calendar_date, str(doc["run"]["started_at"])[:10], "run.started_at (date part)"),
    ):
        try:
            check(value, what=what)
        except UnsafeValue as exc:
            out.append(exc.message)
    return out


def validate_artifact(
    data: bytes,
    *,
    run_id: str | None = None,
    plan_jobs: Mapping[str, Job] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    sku_gpu_names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Parse and validate one artifact; return the document or raise `Rejected` with reasons.

    Checks, in order: strict, bounded JSON (UTF-8, depth, numbers; truncation and NaN named
    as such); kind and schema_version; the JSON Schema with formats (all errors); the values
    that become paths; then meaning: topology and GPU claims, the expected run id, and — with a
    plan — that the job is one the plan scheduled, field for field; points against the job's
    planned points, throughput identities, status consistency.
    """
    doc = parse_artifact(data, limits)
    _check_identity(doc)
    errors = _schema_errors(doc)
    if errors:
        raise _Reject("schema", errors, _job_id(doc))
    unsafe = _unsafe_values(doc)
    if unsafe:
        raise _Reject("unsafe_value", unsafe, _job_id(doc))
    job_id = doc["job"]["id"]
    gpu = gpu_claims(doc)
    if gpu:
        raise _Reject("gpu_count", gpu, job_id)
    if run_id is not None and doc["run"]["run_id"] != run_id:
        raise _Reject(
            "wrong_run", [f"run.run_id is {doc['run']['run_id']!r}, expected {run_id!r}"], job_id
        )
    if plan_jobs is not None:
        _check_against_plan(doc, plan_jobs)
    wrong_sku = _sku_problems(doc, sku_gpu_names or {})
    if wrong_sku:
        raise _Reject("sku_mismatch", wrong_sku, job_id)
    problems = point_problems(doc) + status_problems(doc)
    if problems:
        raise _Reject("inconsistent", problems, job_id)
    return doc


def _job_id(doc: Mapping[str, Any]) -> str | None:
    job = doc.get("job")
    jid = job.get("id") if isinstance(job, Mapping) else None
    return jid if isinstance(jid, str) and ids.JOB_ID_RE.fullmatch(jid) else None


def _sku_problems(doc: Mapping[str, Any], names: Mapping[str, Sequence[str]]) -> list[str]:
    """The GPUs an artifact says it ran on must be its job's SKU (the plan's `sku_gpu_names`,
    the same rule as run-job's preflight): an H200 run is never published as h100."""
    sku = str(doc["job"]["sku"])
    if sku not in names:
        return []
    reported = doc["provenance"].get("gpu_names") or []
    found = [sku_name_problem(str(n), sku=sku, names=names[sku]) for n in reported]
    return [f"provenance.gpu_names: GPU {i} {why}" for i, why in enumerate(found) if why]


def _check_against_plan(doc: Mapping[str, Any], plan_jobs: Mapping[str, Job]) -> None:
    job_id = doc["job"]["id"]
    planned = plan_jobs.get(job_id)
    if planned is None:
        raise _Reject(
            "unplanned",
            [f"job {job_id} is not in the plan: only scheduled jobs are collected"],
            job_id,
        )
    got = result_topology(doc).gpus  # readable: gpu_claims has accepted it
    if got != planned.gpus:
        raise _Reject(
            "gpu_count",
            [f"job.topology.gpus is {got} but the plan's job {job_id} has {planned.gpus}"],
            job_id,
        )
    problems = plan_problems(doc, planned.to_dict())
    if problems:
        raise _Reject("plan_mismatch", problems, job_id)


# --- collection -------------------------------------------------------------------------


def collect(
    paths: Sequence[Path],
    *,
    plan: Plan | None = None,
    run_id: str | None = None,
    extra_skipped: Sequence[Skipped] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> Collection:
    """Validate every candidate under `paths`; keep one artifact per job; compute coverage.

    With a `plan`, only its jobs are accepted, each as scheduled, and a path that does not exist
    means nothing arrived (coverage says which jobs are missing); without one, a missing path
    is a `CollectError`. Several artifacts for one job (re-runs, duplicated uploads): the
    highest `run.run_attempt`, then `run.attempt`, then the latest `finished_at` wins; the
    others are reported as `superseded` (or `duplicate` when identical). `extra_skipped`
    carries rejections found before reading (e.g. expired GitHub artifacts).
    """
    plan_jobs = {j.id: j for j in plan.jobs} if plan is not None else None
    # a plan without `sku_gpu_names` (older plans) skips the check
    sku_names = plan.sku_gpu_names if plan is not None else {}
    good: dict[str, list[Accepted]] = {}
    skipped: list[Skipped] = list(extra_skipped)
    for source, path, member, early in _candidates(paths, limits, allow_missing=plan is not None):
        try:
            if early is not None:
                raise early
            data = _read(path, member, limits)
            doc = validate_artifact(
                data, run_id=run_id, plan_jobs=plan_jobs, limits=limits, sku_gpu_names=sku_names
            )
        except Rejected as rej:
            skipped.append(
                Skipped(
                    source=source, category=rej.category, reasons=rej.reasons, job_id=rej.job_id
                )
            )
            continue
        good.setdefault(doc["job"]["id"], []).append(_accepted(source, doc))
    accepted = []
    for job_id in sorted(good):
        best, *rest = sorted(good[job_id], key=_preference, reverse=True)
        accepted.append(best)
        skipped.extend(_superseded(other, best) for other in rest)
    skipped.sort(key=lambda s: (s.source, s.category, s.reasons))
    return Collection(
        accepted=tuple(accepted),
        skipped=tuple(skipped),
        coverage=coverage(accepted, skipped, plan),
        plan=plan,
    )


def _accepted(source: str, doc: Mapping[str, Any]) -> Accepted:
    return Accepted(
        source=source,
        job_id=doc["job"]["id"],
        run_id=doc["run"]["run_id"],
        attempt=int(doc["run"]["attempt"]),
        run_attempt=run_attempt_of(doc),
        document=doc,
    )


def _superseded(other: Accepted, best: Accepted) -> Skipped:
    same = same_document(other.document, best.document)
    why = "identical copy of" if same else "superseded by"
    return Skipped(
        source=other.source,
        category="duplicate" if same else "superseded",
        reasons=(f"{why} {best.source} (run attempt {best.run_attempt}, try {best.attempt})",),
        job_id=best.job_id,
    )


def same_document(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two result documents are equal as JSON (key order ignored)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _preference(acc: Accepted) -> tuple[int, int, str, str]:
    finished = acc.document["run"].get("finished_at") or ""
    return (acc.run_attempt, acc.attempt, finished, acc.source)


# --- coverage -------------------------------------------------------------------------

# detailed state → the four states every reader knows (ok / partial / failed / missing)
_SITE_STATUS = {
    "present": "ok",
    "partial": "partial",
    "incomplete": "partial",
    "failed": "failed",
    "rejected": "failed",
    "missing": "missing",
}


def _point_counts(
    planned: Sequence[Mapping[str, Any]], doc: Mapping[str, Any] | None
) -> dict[str, int]:
    counts = {
        "expected": len(planned),
        "ok": 0,
        "invalid": 0,
        "failed": 0,
        "not_run": 0,
        "missing": 0,
    }
    got = {p["id"]: p["status"] for p in doc["points"]} if doc is not None else {}
    for p in planned:
        counts[got.get(p["id"], "missing")] += 1
    return counts


def _rejection_text(rejected: Sequence[Skipped]) -> str | None:
    if not rejected:
        return None
    first = rejected[0]
    return f"artifact rejected ({first.category}): {first.reasons[0] if first.reasons else ''}"


def _job_entry(
    job: Mapping[str, Any], acc: Accepted | None, rejected: Sequence[Skipped]
) -> dict[str, Any]:
    doc = acc.document if acc is not None else None
    if doc is not None:
        state = {"ok": "present", "running": "incomplete"}.get(doc["status"], doc["status"])
    else:
        state = "rejected" if rejected else "missing"
    points = _point_counts(job.get("points", []), doc)
    scenarios = sorted({str(p.get("scenario")) for p in job.get("points", [])})
    entry: dict[str, Any] = {
        "job_id": job["id"],
        "config_id": config_id(job),  # lines the job up with its history (missing-data alerts)
        "status": _SITE_STATUS[state],
        "model": job.get("model"),
        "sku": job.get("sku"),
        "framework": job.get("framework"),
        "precision": job.get("precision"),
        "image": job.get("image"),
        "scenario": ",".join(scenarios) or None,
        "points_expected": points["expected"],
        "points_ok": points["ok"],
        "name": job.get("name"),
        "state": state,
        "failure_class": doc["failure_class"] if doc else None,
        "failure_message": doc["failure_message"] if doc else _rejection_text(rejected),
        "source": acc.source if acc else None,
        "run_attempt": acc.run_attempt if acc else None,
        "rejections": [s.to_json() for s in rejected],
        "points": points,
    }
    return entry


def coverage(
    accepted: Sequence[Accepted], skipped: Sequence[Skipped], plan: Plan | None
) -> dict[str, Any]:
    """Coverage manifest: each expected job present / partial / failed / missing / rejected.

    Without a plan, the expected jobs are the ones that arrived (each artifact carries its
    job's planned points, so point coverage is still exact; only wholly missing jobs are
    unknown, and `plan` is false).
    """
    by_job = {a.job_id: a for a in accepted}
    rejected: dict[str, list[Skipped]] = {}
    for s in skipped:
        if s.job_id is not None and s.category not in NOT_REJECTIONS:
            rejected.setdefault(s.job_id, []).append(s)
    planned = (
        [j.to_dict() for j in plan.jobs]
        if plan is not None
        else [a.document["job"] for a in accepted]
    )
    jobs = [_job_entry(j, by_job.get(j["id"]), rejected.get(j["id"], [])) for j in planned]
    jobs.sort(key=lambda e: e["job_id"])
    return {
        "coverage_version": 1,
        "plan": plan is not None,
        "summary": _summary(jobs, skipped),
        "jobs": jobs,
    }


def _summary(jobs: Sequence[Mapping[str, Any]], skipped: Sequence[Skipped]) -> dict[str, Any]:
    states = ("present", "partial", "failed", "incomplete", "missing", "rejected")
    out: dict[str, Any] = {"jobs": len(jobs)}
    out.update({s: sum(1 for j in jobs if j["state"] == s) for s in states})
    for key in ("expected", "ok", "invalid", "failed", "not_run", "missing"):
        out[f"points_{key}"] = sum(j["points"][key] for j in jobs)
    # artifacts for jobs the plan never scheduled: rejected, counted here
    out["unexpected"] = sum(1 for s in skipped if s.category == "unplanned")
    out["skipped_files"] = len(skipped)
    out["rejected_files"] = sum(1 for s in skipped if s.category not in NOT_REJECTIONS)
    out["complete"] = out["present"] == out["jobs"] and out["points_ok"] == out["points_expected"]
    return out


# --- output -----------------------------------------------------------------------------


def dump_json(obj: Any) -> str:
    """Canonical JSON text for files ixci writes (sorted keys, 1-space indent, newline)."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def write_collection(col: Collection, out: Path) -> None:
    """Write `results/<job-id>.json`, `skipped.json` and `coverage.json` under `out`.

    A full disk or a read-only `out` is a `StorageError` naming the file.
    """
    files = {"skipped.json": dump_json({"skipped": [s.to_json() for s in col.skipped]})}
    files["coverage.json"] = dump_json(col.coverage)
    for acc in col.accepted:
        files[f"results/{ids.job_id(acc.job_id)}.json"] = dump_json(acc.document)
    for rel, text in files.items():
        path = ids.contained(out, rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise storage_error(exc, f"the collection into {out}") from exc
