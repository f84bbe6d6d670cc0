"""One run's folder on the results branch, and how re-run attempts of the run merge into it.

`runs/YYYY/MM/DD/<run-id>/` holds `run.json`, `coverage.json`, `skipped.json`, `results/<job
id>.json` (the one document per job that derived files and the site read) and
`attempts/<n>/<job id>.json` (every other document a job had in that run, never deleted).

GitHub re-runs keep the run id and raise `run_attempt`. The merge rule, applied whenever a run
id is published again (each step against the branch tip, so concurrent publishers agree):

1. Documents are keyed by (job id, run attempt). A key already on the branch with different
   content is a conflict (`PublishError`): an attempt never rewrites what it published.
2. A job's published document stays `results/<job>.json` unless a document from a *later*
   attempt arrives, the published one is not `ok`, and the later one keeps every point the
   published one measured validly (its ok points ⊇ the published ok points).
3. Every document not chosen is kept under `attempts/<n>/`; jobs new to the run are added.

So a job that succeeded is never replaced, measured points are never lost, and publishing the
same attempt again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ixci import ids
from ixci.errors import PublishError
from ixci.results.collect import (
    Accepted,
    Collection,
    Skipped,
    coverage,
    dump_json,
    run_attempt_of,
    same_document,
)

RESULTS = "results"
ATTEMPTS = "attempts"


def run_folder(run_id: str, date: str) -> str:
    """`runs/YYYY/MM/DD/<run-id>` for a checked run id and an ISO date or timestamp."""
    ids.run_id(run_id)
    day = ids.calendar_date(str(date)[:10], what="run date")
    y, m, d = day.split("-")
    return f"runs/{y}/{m}/{d}/{run_id}"


def run_meta(
    col: Collection, run_id: str, *, date: str, run_attempts: Sequence[int] = (1,)
) -> dict[str, Any]:
    """`run.json`: the run's provenance, a pure function of its artifacts (no publish time)."""
    docs = [a.document for a in col.accepted]
    first = docs[0] if docs else {}
    run = first.get("run", {})
    return {
        "run_id": run_id,
        "date": date,
        "event": run.get("event"),
        "repository": run.get("repository"),
        "git_sha": first.get("git_sha"),
        "ixci_versions": sorted({str(d["ixci_version"]) for d in docs}),
        "schema_versions": sorted({int(d["schema_version"]) for d in docs}),
        "metrics_versions": sorted({int(d["metrics_version"]) for d in docs}),
        "jobs": len(docs),
        "skipped_files": len(col.skipped),
        "run_attempts": sorted(set(run_attempts)),
    }


def run_files(
    col: Collection,
    run_id: str,
    *,
    date: str,
    run_attempts: Sequence[int] = (1,),
    archived: Sequence[Mapping[str, Any]] = (),
) -> dict[str, bytes]:
    """Files of the run folder, relative to it: run.json, coverage.json, skipped.json,
    results/ and (for a re-run) attempts/."""
    meta = run_meta(col, run_id, date=date, run_attempts=run_attempts)
    files = {
        "run.json": dump_json(meta).encode(),
        "coverage.json": dump_json({"run_id": run_id, **col.coverage}).encode(),
        "skipped.json": dump_json({"skipped": [s.to_json() for s in col.skipped]}).encode(),
    }
    for acc in col.accepted:
        files[f"{RESULTS}/{ids.job_id(acc.job_id)}.json"] = dump_json(acc.document).encode()
    for doc in archived:
        key = f"{ATTEMPTS}/{run_attempt_of(doc)}/{ids.job_id(doc['job']['id'])}.json"
        files[key] = dump_json(doc).encode()
    return files


def existing_run(tree: Path, run_id: str) -> Path | None:
    """The folder of `run_id` already on the branch, if any (its date may differ from ours)."""
    found = sorted(tree.glob(f"runs/*/*/*/{ids.run_id(run_id)}"))
    return found[0] if found else None


def stage_run(tree: Path, files: Mapping[str, bytes], folder: str) -> bool:
    """Write a new run folder into `tree`; False if an identical one is already there.

    Every path is checked to stay inside `tree`. An existing, different folder for the run id
    is a `PublishError` here; re-run attempts go through `stage_attempt`.
    """
    run_id = folder.rsplit("/", 1)[-1]
    existing = existing_run(tree, run_id)
    if existing is not None:
        if _read_folder(existing) == dict(files) and existing == ids.contained(tree, folder):
            return False
        raise PublishError(
            f"run {run_id} is already published at {existing.relative_to(tree)} with different content",
            hint="published runs are append-only; a re-run attempt is merged by `ixci publish`",
        )
    _write_folder(tree, folder, files)
    return True


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _write_folder(tree: Path, folder: str, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        path = ids.contained(tree, folder, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --- attempts ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Staged:
    """What staging a run did: its folder (relative to the tree) and whether files changed."""

    folder: str
    changed: bool


def stage_attempt(
    tree: Path, col: Collection, run_id: str, *, date: str, run_attempt: int
) -> Staged:
    """Add this collection of `run_id` to `tree`: a new folder, or merged into the published one
    by the rule in this module's docstring. `PublishError` on a conflicting attempt."""
    existing = existing_run(tree, run_id)
    if existing is None:
        folder = run_folder(run_id, date)
        files = run_files(col, run_id, date=date, run_attempts=[run_attempt])
        _write_folder(tree, folder, files)
        return Staged(folder=folder, changed=True)
    folder = existing.relative_to(tree).as_posix()
    old = _read_folder(existing)
    files = _merged_files(old, col, run_id, run_attempt)
    if files == old:
        return Staged(folder=folder, changed=False)
    for rel in old.keys() - files.keys():  # only derived run files can change name; none do
        ids.contained(existing, rel).unlink()
    _write_folder(tree, folder, files)
    return Staged(folder=folder, changed=True)


def _merged_files(
    old: Mapping[str, bytes], col: Collection, run_id: str, run_attempt: int
) -> dict[str, bytes]:
    meta = orjson.loads(old["run.json"]) if "run.json" in old else {}
    published = _published_docs(old)
    store = _store(old, published)
    for acc in col.accepted:
        _add(store, acc.document, run_id)
    chosen: dict[str, Mapping[str, Any]] = dict(published)
    for acc in col.accepted:
        chosen[acc.job_id] = _choose(chosen.get(acc.job_id), acc.document)
    winners = {(job, run_attempt_of(doc)) for job, doc in chosen.items()}
    archived = [doc for key, doc in sorted(store.items()) if key not in winners]
    sources = {**_new_sources(col), **_old_sources(old, published, chosen)}
    accepted = [_as_accepted(doc, sources) for _, doc in sorted(chosen.items())]
    skipped = _merged_skipped(old, col.skipped)
    merged = Collection(
        accepted=tuple(accepted),
        skipped=skipped,
        coverage=coverage(accepted, skipped, col.plan),
        plan=col.plan,
    )
    attempts = [*meta.get("run_attempts", [1]), run_attempt]
    date = str(meta.get("date") or _earliest(accepted))
    return run_files(merged, run_id, date=date, run_attempts=attempts, archived=archived)


def _published_docs(old: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    out = {}
    for rel, data in old.items():
        parts = rel.split("/")
        if len(parts) == 2 and parts[0] == RESULTS and parts[1].endswith(".json"):
            doc = orjson.loads(data)
            out[str(doc["job"]["id"])] = doc
    return out


def _store(
    old: Mapping[str, bytes], published: Mapping[str, dict[str, Any]]
) -> dict[tuple[str, int], dict[str, Any]]:
    store = {(job, run_attempt_of(doc)): doc for job, doc in published.items()}
    for rel, data in old.items():
        if rel.startswith(f"{ATTEMPTS}/") and rel.endswith(".json"):
            doc = orjson.loads(data)
            store.setdefault((str(doc["job"]["id"]), run_attempt_of(doc)), doc)
    return store


def _add(store: dict[tuple[str, int], dict[str, Any]], doc: Mapping[str, Any], run_id: str) -> None:
    key = (str(doc["job"]["id"]), run_attempt_of(doc))
    have = store.get(key)
    if have is not None and not same_document(have, doc):
        raise PublishError(
            f"run {run_id}: job {key[0]} of run attempt {key[1]} is already published with "
            "different content",
            hint="an attempt never rewrites what it published; a re-run publishes as a new "
            "attempt (GITHUB_RUN_ATTEMPT / --run-attempt on run-job), or use a new --run-id",
        )
    store[key] = dict(doc)


def _ok_points(doc: Mapping[str, Any]) -> set[str]:
    return {str(p["id"]) for p in doc["points"] if p["status"] == "ok" and p.get("valid")}


def _choose(current: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Mapping[str, Any]:
    """Rule 2: the later attempt takes a job's place only if it loses no valid point."""
    if current is None:
        return new
    later = run_attempt_of(new) > run_attempt_of(current)
    if later and current["status"] != "ok" and _ok_points(new) >= _ok_points(current):
        return new
    return current


def _old_sources(
    old: Mapping[str, bytes],
    published: Mapping[str, Mapping[str, Any]],
    chosen: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Source labels of the documents that stay published (so a re-publish changes nothing)."""
    if "coverage.json" not in old:
        return {}
    jobs = orjson.loads(old["coverage.json"]).get("jobs", [])
    return {
        str(j["job_id"]): str(j["source"])
        for j in jobs
        if j.get("source")
        and str(j["job_id"]) in chosen
        and chosen[str(j["job_id"])] is published.get(str(j["job_id"]))
    }


def _new_sources(col: Collection) -> dict[str, str]:
    return {a.job_id: a.source for a in col.accepted}


def _as_accepted(doc: Mapping[str, Any], sources: Mapping[str, str]) -> Accepted:
    job_id = str(doc["job"]["id"])
    return Accepted(
        source=sources.get(job_id, f"published/{job_id}"),
        job_id=job_id,
        run_id=str(doc["run"]["run_id"]),
        attempt=int(doc["run"]["attempt"]),
        run_attempt=run_attempt_of(doc),
        document=doc,
    )


def _merged_skipped(old: Mapping[str, bytes], new: Sequence[Skipped]) -> tuple[Skipped, ...]:
    rows = orjson.loads(old["skipped.json"]).get("skipped", []) if "skipped.json" in old else []
    merged = {
        (s.source, s.category, s.reasons, s.job_id): s for s in [*(_skipped(r) for r in rows), *new]
    }
    return tuple(sorted(merged.values(), key=lambda s: (s.source, s.category, s.reasons)))


def _skipped(row: Mapping[str, Any]) -> Skipped:
    return Skipped(
        source=str(row["source"]),
        category=str(row["category"]),
        reasons=tuple(str(r) for r in row.get("reasons", [])),
        job_id=row.get("job_id"),
    )


def _earliest(accepted: Sequence[Accepted]) -> str:
    return min(str(a.document["run"]["started_at"]) for a in accepted)
