"""Recompute a point's metrics from its saved request records and compare them with the stored ones.

`requests.jsonl.gz` keeps every request's send and end times and the arrival of each content
chunk (delta-encoded, `RequestRecord.to_json`), so the metrics of a result are a pure function
of that file: `recompute_folder` proves it for `ixci loadgen --output/--requests-out` pairs and
for `ixci run-job` artifacts (records tagged with their `point_id`).
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ixci.errors import IxciError, UsageError
from ixci.loadgen.metrics import RequestRecord, Slo, point_metrics, record_from_json

# Computed by the client while it ran, not from the records: not recomputable.
NOT_FROM_RECORDS = frozenset({"open_loop"})
_REL_TOL = 1e-9


class RecordsMismatch(IxciError):
    """A result's metrics differ from those recomputed from its request records."""

    exit_code = 20


@dataclass(frozen=True, kw_only=True)
class PointAudit:
    """One point: the metric paths compared and the ones that differ (path, stored, recomputed)."""

    point: str
    compared: int
    mismatches: tuple[tuple[str, Any, Any], ...]
    skipped: tuple[str, ...] = ()


def read_records(path: Path) -> dict[str | None, list[RequestRecord]]:
    """The records of a `requests.jsonl.gz`, grouped by `point_id` (None when untagged).

    `UsageError` naming the file and line for a line that is not a request record.
    """
    groups: dict[str | None, list[RequestRecord]] = {}
    try:
        with gzip.open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    doc = orjson.loads(line)
                    rec = record_from_json(doc)
                except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                    raise UsageError(
                        f"{path}:{number}: not a request record ({type(exc).__name__}: {exc})",
                        hint="pass the requests.jsonl.gz written with the result (ixci loadgen --requests-out)",
                    ) from None
                groups.setdefault(doc.get("point_id"), []).append(rec)
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: cannot read request records: {exc}") from None
    return groups


def _walk(stored: Any, fresh: Any, path: str) -> Iterator[tuple[str, Any, Any, bool]]:
    """(path, stored, recomputed, equal) for every leaf of the recomputed metrics."""
    if isinstance(fresh, Mapping):
        for key, value in fresh.items():
            sub = stored.get(key) if isinstance(stored, Mapping) else None
            yield from _walk(sub, value, f"{path}.{key}" if path else key)
        return
    if (
        isinstance(fresh, float)
        and isinstance(stored, int | float)
        and not isinstance(stored, bool)
    ):
        equal = math.isclose(fresh, float(stored), rel_tol=_REL_TOL, abs_tol=1e-12)
    else:
        equal = fresh == stored
    yield path, stored, fresh, equal


def audit_point(
    name: str,
    stored: Mapping[str, Any],
    records: list[RequestRecord],
    *,
    concurrency: int | None,
    slo: Slo | None,
) -> PointAudit:
    """Recompute one point's metrics from `records` and compare them with `stored`.

    `concurrency`: the closed-loop concurrency (None for open loop), as the point was run.
    `slo`: the goodput SLOs; None when unknown (goodput is then not compared).
    """
    fresh = point_metrics(records, concurrency=concurrency, slo=slo).to_json()
    skipped = sorted(NOT_FROM_RECORDS & set(stored)) + ([] if slo is not None else ["goodput"])
    for key in skipped:
        fresh.pop(key, None)
    leaves = list(_walk(stored, fresh, ""))
    bad = tuple((p, s, f) for p, s, f, equal in leaves if not equal)
    return PointAudit(point=name, compared=len(leaves), mismatches=bad, skipped=tuple(skipped))


def _slo(raw: Any) -> Slo | None:
    if not isinstance(raw, Mapping):
        return None
    return Slo(**{k: raw.get(k) for k in ("ttft_s", "tpot_s", "e2el_s")})


def recompute_folder(result_path: Path, requests_path: Path) -> list[PointAudit]:
    """Audit every point of `result_path` against the records in `requests_path`.

    A loadgen result (`kind: ixci.loadgen`) is one point; a run-job artifact has `points`, whose
    records carry `point_id`. `UsageError` when either file is missing or not what it should be.
    """
    try:
        doc = orjson.loads(result_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"{result_path}: cannot read the result: {exc}") from None
    if not requests_path.is_file():
        raise UsageError(
            f"{requests_path}: no request records next to the result",
            hint="write them with --requests-out (ixci loadgen) or keep the artifact's requests.jsonl.gz",
        )
    groups = read_records(requests_path)
    if doc.get("kind") == "ixci.loadgen":
        config = doc.get("config") or {}
        closed = config.get("concurrency") if config.get("request_rate") is None else None
        records = [r for group in groups.values() for r in group]
        return [
            audit_point(
                "point", doc["metrics"], records, concurrency=closed, slo=_slo(config.get("slo"))
            )
        ]
    audits = []
    for point in doc.get("points") or []:
        if not isinstance(point, Mapping) or not isinstance(point.get("metrics"), Mapping):
            continue
        closed = point.get("concurrency") if point.get("request_rate") is None else None
        audits.append(
            audit_point(
                str(point.get("id")),
                point["metrics"],
                groups.get(point.get("id"), []),
                concurrency=closed,
                slo=None,
            )
        )
    if not audits:
        raise UsageError(f"{result_path}: no point with metrics to recompute")
    return audits
