"""Collect result artifacts: validate each one, reject bad ones with reasons, report coverage.

Input is any mix of directories, `result.json` files and GitHub artifact zips. Every candidate
is judged on its own: a truncated, non-JSON, NaN-carrying, wrong-kind, wrong-version,
schema-invalid or self-contradictory artifact (e.g. a GPU count its job does not have) goes to
the skip report with its reasons; collection itself never fails on one bad file and never
drops a good one. Against a plan (`ixci plan --format json`) the coverage manifest says, per
job and point, what is present, what failed (with its failure class) and what is missing.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ixci.errors import CollectError

SUPPORTED_SCHEMA_VERSIONS = (1,)
RESULT_KIND = "ixci.result"
ARTIFACT_PREFIX = "result-"  # workflow upload name: result-<job id> (contracts.md §3)
_REL_TOL = 0.02  # throughput identities must hold within 2 % (rounding, clock granularity)


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
    """One validated artifact. `document` is the parsed, schema-valid result.json."""

    source: str
    job_id: str
    run_id: str
    attempt: int
    document: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class Collection:
    """Outcome of a collection: accepted artifacts (one per job), the skip report, coverage."""

    accepted: tuple[Accepted, ...]
    skipped: tuple[Skipped, ...]
    coverage: Mapping[str, Any]


class _Reject(Exception):
    def __init__(self, category: str, reasons: Sequence[str], job_id: str | None = None) -> None:
        super().__init__(category)
        self.category = category
        self.reasons = tuple(reasons)
        self.job_id = job_id


# --- finding candidates -----------------------------------------------------------------


def _candidates(paths: Sequence[Path]) -> Iterator[tuple[str, Path, str | None]]:
    """Yield (source label, file, zip member or None) for every candidate artifact."""
    for root in paths:
        if not root.exists():
            raise CollectError(f"{root}: no such file or directory")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            # labels are relative to the collected folder's parent: stable across machines and
            # runs (they end up in coverage.json on the results branch), never a temp path
            label = path.name if root.is_file() else path.relative_to(root.parent).as_posix()
            if path.suffix == ".zip":
                yield from _zip_members(path, label)
            elif path.name == "result.json" or (
                path.name.startswith("j-") and path.suffix == ".json"
            ):
                yield label, path, None


def _zip_members(path: Path, label: str) -> Iterator[tuple[str, Path, str | None]]:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "result.json"]
    except (zipfile.BadZipFile, OSError):
        yield label, path, "\0bad-zip"
        return
    if not members:
        yield label, path, "\0empty-zip"
    for name in sorted(members):
        yield f"{label}!{name}", path, name


def _read(path: Path, member: str | None) -> bytes:
    if member == "\0bad-zip":
        raise _Reject("corrupt_zip", [f"{path.name} is not a readable zip archive"])
    if member == "\0empty-zip":
        raise _Reject("no_result", [f"{path.name} contains no result.json"])
    try:
        if member is None:
            return path.read_bytes()
        with zipfile.ZipFile(path) as zf:
            return zf.read(member)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise _Reject("unreadable", [f"cannot read: {exc}"]) from exc


# --- parsing and validation -------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise _Reject("nan", [f"non-finite number {name} in JSON (NaN/Infinity are not valid JSON)"])


def parse_artifact(data: bytes) -> dict[str, Any]:
    """Parse result.json bytes strictly (UTF-8, no NaN/Infinity, an object); raise `_Reject`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject("not_utf8", [f"not UTF-8 text: {exc}"]) from exc
    if not text.strip():
        raise _Reject("empty", ["file is empty"])
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        category = "truncated" if truncated else "not_json"
        what = "truncated JSON (ends early)" if truncated else "invalid JSON"
        raise _Reject(
            category, [f"{what}: {exc.msg} at line {exc.lineno} col {exc.colno}"]
        ) from exc
    if not isinstance(doc, dict):
        raise _Reject("wrong_kind", [f"top level is a JSON {type(doc).__name__}, not an object"])
    return doc


def _check_identity(doc: Mapping[str, Any]) -> None:
    kind = doc.get("kind")
    if kind != RESULT_KIND:
        raise _Reject(
            "wrong_kind", [f"kind is {kind!r}, expected {RESULT_KIND!r} (not an ixci result)"]
        )
    version = doc.get("schema_version")
    if "schema_version" not in doc:
        raise _Reject(
            "schema_version", ["schema_version is missing; every ixci result declares one"]
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _Reject(
            "schema_version",
            [
                f"schema_version {version!r} is not supported (this ixci reads "
                f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade ixci to collect it"
            ],
        )


@cache
def result_schema() -> dict[str, Any]:
    """The result JSON Schema: `schemas/` of the source tree, or `ixci/_schemas` of the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "_schemas"):
        path = candidate / "result.schema.json"
        if path.is_file():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    raise CollectError("result.schema.json not found next to the ixci package")


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        result_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


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


def _topology_problems(job: Mapping[str, Any]) -> list[str]:
    topo = job["topology"]
    gpus = int(topo["gpus"])
    if topo.get("disaggregated"):
        pools = [topo.get("prefill"), topo.get("decode")]
        if not all(isinstance(p, Mapping) and isinstance(p.get("gpus"), int) for p in pools):
            return ["job.topology: disaggregated but prefill/decode pools lack a gpus count"]
        total = sum(int(p["gpus"]) for p in pools if isinstance(p, Mapping))
        if total != gpus:
            return [f"job.topology.gpus is {gpus} but prefill + decode pools have {total} GPUs"]
        return []
    per_replica = int(topo["tp"]) * int(topo.get("pp") or 1)
    if job.get("sku") == "cpu" and gpus == 0:
        return []
    if gpus <= 0 or gpus % per_replica:
        return [f"job.topology.gpus is {gpus}, not a multiple of tp×pp = {per_replica}"]
    return []


def _gpu_claims(doc: Mapping[str, Any]) -> list[str]:
    """A result may not claim GPUs its job does not have (provenance and telemetry)."""
    gpus = int(doc["job"]["topology"]["gpus"])
    problems = _topology_problems(doc["job"])
    names = doc["provenance"]["gpu_names"]
    if names and len(names) != gpus:
        problems.append(f"provenance.gpu_names lists {len(names)} GPUs but the job has {gpus}")
    for i, point in enumerate(doc["points"]):
        tele = point.get("telemetry")
        if isinstance(tele, Mapping) and tele.get("gpus", 0) > gpus:
            problems.append(f"points/{i}/telemetry.gpus is {tele['gpus']} but the job has {gpus}")
    return problems


def _point_problems(doc: Mapping[str, Any]) -> list[str]:
    planned = {p["id"]: p for p in doc["job"]["points"]}
    problems: list[str] = []
    seen: set[str] = set()
    for i, point in enumerate(doc["points"]):
        pid = point["id"]
        if pid in seen:
            problems.append(f"points/{i}: duplicate point id {pid}")
        seen.add(pid)
        spec = planned.get(pid)
        if spec is None:
            problems.append(f"points/{i}: point {pid} is not one of the job's planned points")
            continue
        for key in ("scenario", "isl", "osl", "concurrency", "request_rate"):
            if key in spec and spec[key] != point.get(key):
                problems.append(
                    f"points/{i}.{key} is {point.get(key)!r}, the plan says {spec[key]!r}"
                )
        problems.extend(_metric_problems(i, point))
    return problems


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-6)


def _metric_problems(i: int, point: Mapping[str, Any]) -> list[str]:
    m = point.get("metrics")
    status = point["status"]
    if status == "ok" and (m is None or not point["valid"]):
        return [f"points/{i}: status ok but {'no metrics' if m is None else 'valid is false'}"]
    if status == "failed" and point.get("failure_class") is None:
        return [f"points/{i}: status failed without a failure_class"]
    if not isinstance(m, Mapping):
        return []
    problems = []
    dur = m["duration_s"]
    if m["completed"] > 0 and dur <= 0:
        problems.append(
            f"points/{i}/metrics.duration_s is {dur} with {m['completed']} completed requests"
        )
    elif dur > 0 and not _close(m["output_throughput"], m["total_output_tokens"] / dur):
        problems.append(
            f"points/{i}/metrics.output_throughput {m['output_throughput']} ≠ "
            f"total_output_tokens / duration_s = {m['total_output_tokens'] / dur:.6g}"
        )
    if not _close(m["total_token_throughput"], m["input_throughput"] + m["output_throughput"]):
        problems.append(f"points/{i}/metrics.total_token_throughput ≠ input + output throughput")
    return problems


def _status_problems(doc: Mapping[str, Any]) -> list[str]:
    status, fclass = doc["status"], doc["failure_class"]
    if status == "failed" and fclass is None:
        return ["status is failed but failure_class is null"]
    if status == "ok" and fclass is not None:
        return [f"status is ok but failure_class is {fclass!r}"]
    if status == "ok" and any(p["status"] != "ok" for p in doc["points"]):
        return ["status is ok but not every point is ok"]
    return []


def validate_artifact(
    data: bytes,
    *,
    run_id: str | None = None,
    plan_jobs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Parse and validate one artifact; return the document or raise `_Reject` with reasons.

    Checks, in order: UTF-8 + strict JSON (truncation and NaN named as such); kind and
    schema_version; the JSON Schema (all errors); then meaning: topology and GPU claims, points
    against the job's planned points, throughput identities, status consistency, the expected
    run id, and — with a plan — that the job is the plan's job (same GPU count and points).
    """
    doc = parse_artifact(data)
    _check_identity(doc)
    errors = _schema_errors(doc)
    if errors:
        raise _Reject("schema", errors, _job_id(doc))
    job_id = doc["job"]["id"]
    gpu = _gpu_claims(doc)
    if gpu:
        raise _Reject("gpu_count", gpu, job_id)
    if run_id is not None and doc["run"]["run_id"] != run_id:
        raise _Reject(
            "wrong_run", [f"run.run_id is {doc['run']['run_id']!r}, expected {run_id!r}"], job_id
        )
    if plan_jobs is not None and job_id in plan_jobs:
        _check_against_plan(doc, plan_jobs[job_id])
    problems = _point_problems(doc) + _status_problems(doc)
    if problems:
        raise _Reject("inconsistent", problems, job_id)
    return doc


def _job_id(doc: Mapping[str, Any]) -> str | None:
    job = doc.get("job")
    jid = job.get("id") if isinstance(job, Mapping) else None
    return jid if isinstance(jid, str) else None


def _check_against_plan(doc: Mapping[str, Any], planned: Mapping[str, Any]) -> None:
    job = doc["job"]
    want = planned.get("topology", {}).get("gpus")
    if want is not None and want != job["topology"]["gpus"]:
        raise _Reject(
            "gpu_count",
            [
                f"job.topology.gpus is {job['topology']['gpus']} but the plan's job {job['id']} has {want}"
            ],
            job["id"],
        )
    want_points = {p["id"] for p in planned.get("points", [])}
    got_points = {p["id"] for p in job["points"]}
    if want_points and want_points != got_points:
        raise _Reject(
            "plan_mismatch",
            [f"job {job['id']} has points {sorted(got_points)}, the plan {sorted(want_points)}"],
            job["id"],
        )


# --- collection -------------------------------------------------------------------------


def collect(
    paths: Sequence[Path],
    *,
    plan: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    extra_skipped: Sequence[Skipped] = (),
) -> Collection:
    """Validate every candidate under `paths`; keep one artifact per job; compute coverage.

    Several artifacts for one job (re-runs, duplicated uploads): the highest `run.attempt`
    wins, then the latest `finished_at`; the others are reported as `superseded`.
    `extra_skipped` carries rejections found before reading (e.g. expired GitHub artifacts).
    """
    plan_jobs = {j["id"]: j for j in plan["jobs"]} if plan is not None else None
    good: dict[str, list[Accepted]] = {}
    skipped: list[Skipped] = list(extra_skipped)
    for source, path, member in _candidates(paths):
        try:
            doc = validate_artifact(_read(path, member), run_id=run_id, plan_jobs=plan_jobs)
        except _Reject as rej:
            skipped.append(
                Skipped(
                    source=source, category=rej.category, reasons=rej.reasons, job_id=rej.job_id
                )
            )
            continue
        acc = Accepted(
            source=source,
            job_id=doc["job"]["id"],
            run_id=doc["run"]["run_id"],
            attempt=int(doc["run"]["attempt"]),
            document=doc,
        )
        good.setdefault(acc.job_id, []).append(acc)
    accepted = []
    for job_id in sorted(good):
        best, *rest = sorted(good[job_id], key=_preference, reverse=True)
        accepted.append(best)
        for other in rest:
            same = json.dumps(other.document, sort_keys=True) == json.dumps(
                best.document, sort_keys=True
            )
            why = "identical copy of" if same else "superseded by"
            skipped.append(
                Skipped(
                    source=other.source,
                    category="duplicate" if same else "superseded",
                    reasons=(f"{why} {best.source} (attempt {best.attempt})",),
                    job_id=job_id,
                )
            )
    skipped.sort(key=lambda s: (s.source, s.category))
    return Collection(
        accepted=tuple(accepted), skipped=tuple(skipped), coverage=coverage(accepted, skipped, plan)
    )


def _preference(acc: Accepted) -> tuple[int, str, str]:
    return (acc.attempt, acc.document["run"].get("finished_at") or "", acc.source)


# --- coverage -------------------------------------------------------------------------

# detailed state → the four states every reader knows (ok / partial / failed / missing)
_SITE_STATUS = {
    "present": "ok",
    "partial": "partial",
    "incomplete": "partial",
    "failed": "failed",
    "rejected": "failed",
    "missing": "missing",
    "unexpected": "ok",
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
        "rejections": [s.to_json() for s in rejected],
        "points": points,
    }
    return entry


def coverage(
    accepted: Sequence[Accepted], skipped: Sequence[Skipped], plan: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Coverage manifest: each expected job present / partial / failed / missing / rejected.

    Without a plan, the expected jobs are the ones that arrived (each artifact carries its
    job's planned points, so point coverage is still exact; only wholly missing jobs are
    unknown, and `plan` is false).
    """
    by_job = {a.job_id: a for a in accepted}
    rejected: dict[str, list[Skipped]] = {}
    for s in skipped:
        if s.job_id is not None and s.category not in {"duplicate", "superseded"}:
            rejected.setdefault(s.job_id, []).append(s)
    planned = list(plan["jobs"]) if plan is not None else [a.document["job"] for a in accepted]
    planned_ids = {j["id"] for j in planned}
    jobs = [_job_entry(j, by_job.get(j["id"]), rejected.get(j["id"], [])) for j in planned]
    for a in accepted:
        if a.job_id not in planned_ids:
            entry = _job_entry(a.document["job"], a, [])
            entry["state"] = "unexpected"
            entry["status"] = {"ok": "ok", "failed": "failed"}.get(a.document["status"], "partial")
            jobs.append(entry)
    jobs.sort(key=lambda e: e["job_id"])
    return {
        "coverage_version": 1,
        "plan": plan is not None,
        "summary": _summary(jobs, skipped),
        "jobs": jobs,
    }


def _summary(jobs: Sequence[Mapping[str, Any]], skipped: Sequence[Skipped]) -> dict[str, Any]:
    states = ("present", "partial", "failed", "incomplete", "missing", "rejected", "unexpected")
    out: dict[str, Any] = {"jobs": len(jobs)}
    out.update({s: sum(1 for j in jobs if j["state"] == s) for s in states})
    for key in ("expected", "ok", "invalid", "failed", "not_run", "missing"):
        out[f"points_{key}"] = sum(j["points"][key] for j in jobs)
    out["skipped_files"] = len(skipped)
    out["complete"] = out["present"] == out["jobs"] and out["points_ok"] == out["points_expected"]
    return out


# --- output -----------------------------------------------------------------------------


def dump_json(obj: Any) -> str:
    """Canonical JSON text for files ixci writes (sorted keys, 1-space indent, newline)."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def write_collection(col: Collection, out: Path) -> None:
    """Write `results/<job-id>.json`, `skipped.json` and `coverage.json` under `out`."""
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    for acc in col.accepted:
        (results / f"{acc.job_id}.json").write_text(dump_json(acc.document), encoding="utf-8")
    (out / "skipped.json").write_text(
        dump_json({"skipped": [s.to_json() for s in col.skipped]}), encoding="utf-8"
    )
    (out / "coverage.json").write_text(dump_json(col.coverage), encoding="utf-8")


def load_plan(path: Path) -> dict[str, Any]:
    """Read `ixci plan --format json` output; raise `CollectError` if it is not a plan."""
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CollectError(
            f"{path}: cannot read the plan: {exc}",
            hint="pass the file written by `ixci plan --format json`",
        ) from exc
    if not isinstance(plan, dict) or not isinstance(plan.get("jobs"), list):
        raise CollectError(
            f"{path}: not a plan (no `jobs` list)",
            hint="pass the file written by `ixci plan --format json`",
        )
    for i, job in enumerate(plan["jobs"]):
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise CollectError(f"{path}: jobs/{i}: a job without an `id`")
    return plan
