"""The result artifact (`result.json`): build, validate, write atomically, read and migrate.

`schemas/result.schema.json` is the contract (contracts.md §3). The runner rewrites the whole
document after every point through `ResultFile.write`, which validates it and replaces the file
atomically (temp file + fsync + rename), so a crash at any moment leaves either the previous or
the new valid document — never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ixci import __version__
from ixci.errors import InvalidInput, Problem

SCHEMA_VERSION = 1
KIND = "ixci.result"
RESULT_FILE = "result.json"
REQUESTS_FILE = "requests.jsonl.gz"
SERVER_LOG = "server.log"
TELEMETRY_FILE = "telemetry.csv"


def utc_now() -> str:
    """Current UTC time as ISO-8601 with milliseconds and a Z suffix."""
    return iso(datetime.now(UTC).timestamp())


def iso(unix_s: float) -> str:
    """Unix seconds → ISO-8601 UTC string (ms precision, `Z`)."""
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def not_run_point(point: Mapping[str, Any]) -> dict[str, Any]:
    """The artifact entry of a plan point that has not run (yet)."""
    return {
        "id": point["id"],
        "scenario": point["scenario"],
        "isl": point["isl"],
        "osl": point["osl"],
        "concurrency": point.get("concurrency"),
        "request_rate": point.get("request_rate"),
        "status": "not_run",
        "failure_class": None,
        "valid": False,
        "invalid_reasons": ["not run"],
        "started_at": None,
        "finished_at": None,
        "metrics": None,
        "client": None,
        "telemetry": None,
    }


def new_result(
    *,
    job: Mapping[str, Any],
    run: Mapping[str, Any],
    provenance: Mapping[str, Any],
    git_sha: str | None,
    metrics_version: int,
) -> dict[str, Any]:
    """A fresh `running` document with every point `not_run`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "ixci_version": __version__,
        "metrics_version": metrics_version,
        "git_sha": git_sha,
        "run": {**run, "finished_at": None},
        "job": dict(job),
        "provenance": dict(provenance),
        "status": "running",
        "failure_class": None,
        "failure_message": None,
        "files": {"requests": REQUESTS_FILE, "server_log": SERVER_LOG},
        "points": [not_run_point(p) for p in job.get("points", [])],
    }


def job_status(points: Sequence[Mapping[str, Any]], failure_class: str | None) -> str:
    """ok when every point is ok; failed when none is; partial otherwise."""
    ok = sum(1 for p in points if p["status"] == "ok")
    if failure_class is None and ok == len(points) and points:
        return "ok"
    return "partial" if ok else "failed"


def problems(doc: Any, *, file: str = RESULT_FILE) -> list[Problem]:
    """Schema problems of a result document ([] when valid)."""
    from ixci.schemas import validate_instance

    return validate_instance("result", doc, file=file)


def validate(doc: Any, *, file: str = RESULT_FILE) -> None:
    """Raise `InvalidInput` with every schema problem of `doc`."""
    found = problems(doc, file=file)
    if found:
        raise InvalidInput(found)


def migrate(doc: dict[str, Any], *, file: str = RESULT_FILE) -> dict[str, Any]:
    """Bring an older artifact to SCHEMA_VERSION (explicit steps; none needed yet for v1)."""
    version = doc.get("schema_version")
    if version == SCHEMA_VERSION:
        return doc
    raise InvalidInput(
        [
            Problem(
                file=file,
                line=1,
                col=1,
                path="schema_version",
                message=f"unsupported schema_version {version!r} (this ixci reads {SCHEMA_VERSION})",
            )
        ]
    )


def load(path: Path) -> dict[str, Any]:
    """Read, migrate and validate a result.json."""
    doc = migrate(json.loads(path.read_text(encoding="utf-8")), file=str(path))
    validate(doc, file=str(path))
    return doc


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultFile:
    """The artifact folder of one job and its live document."""

    def __init__(self, folder: Path, doc: dict[str, Any]) -> None:
        self.folder = folder
        self.doc = doc

    @property
    def path(self) -> Path:
        """`<folder>/result.json`."""
        return self.folder / RESULT_FILE

    def set_point(self, index: int, entry: Mapping[str, Any]) -> None:
        """Replace point `index` and write."""
        self.doc["points"][index] = dict(entry)
        self.write()

    def finish(self, *, failure_class: str | None, failure_message: str | None) -> None:
        """Set the final status and `finished_at`, then write."""
        self.doc["failure_class"] = failure_class
        self.doc["failure_message"] = failure_message
        self.doc["status"] = job_status(self.doc["points"], failure_class)
        self.doc["run"]["finished_at"] = utc_now()
        self.write()

    def write(self) -> None:
        """Validate the document and replace result.json atomically."""
        validate(self.doc, file=str(self.path))
        write_atomic(self.path, (json.dumps(self.doc, indent=1, allow_nan=False) + "\n").encode())
