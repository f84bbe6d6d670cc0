"""What a schema-valid result must also mean: consistent numbers, and the job the plan scheduled.

The JSON Schema checks shapes; these checks read meaning. A result may not claim GPUs its job
does not have, points it was not planned to run, throughputs its own token totals and time
contradict, or a status its points contradict. Against a plan, the artifact's job must be the
plan's job field for field (model, SKU, framework, precision, image — a digest-pinned image
also binds `provenance.image_digest` — runner, topology, engine arguments, scenarios and
points): a job id is only a name, and an artifact written by a pull request's code can put any
job id on any numbers. Each function returns a list of problems ([] when fine).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ixci.job import FieldError, Topology

_REL_TOL = 0.02  # throughput identities must hold within 2 % (rounding, clock granularity)
# per-event bookkeeping the plan adds to a job; everything else is the job's identity
NOT_IDENTITY = frozenset({"estimate", "selected_because"})
_PINNED = re.compile(r"@(sha256:[0-9a-f]{64})$")
_MISSING = object()


def result_topology(doc: Mapping[str, Any]) -> Topology:
    """The topology of a result's job, typed. The result schema requires only `tp` and `gpus`;
    absent degrees read as their defaults. `FieldError` when a field is mistyped or a pool's
    `gpus` is not its workers × tp × pp."""
    return Topology.from_dict(doc["job"]["topology"], "job.topology")


def _topology_problems(job: Mapping[str, Any], topo: Topology) -> list[str]:
    if topo.disaggregated:
        if topo.prefill is None or topo.decode is None:
            return ["job.topology: disaggregated but the prefill or decode pool is missing"]
        total = topo.prefill.gpus + topo.decode.gpus
        if total != topo.gpus:
            return [
                f"job.topology.gpus is {topo.gpus} but prefill + decode pools have {total} GPUs"
            ]
        return []
    per_replica = topo.tp * topo.pp
    if job.get("sku") == "cpu" and topo.gpus == 0:
        return []
    if topo.gpus <= 0 or topo.gpus % per_replica:
        return [f"job.topology.gpus is {topo.gpus}, not a multiple of tp×pp = {per_replica}"]
    return []


def gpu_claims(doc: Mapping[str, Any]) -> list[str]:
    """A result may not claim GPUs its job does not have (topology, provenance, telemetry)."""
    try:
        topo = result_topology(doc)
    except FieldError as exc:
        return [str(exc)]
    gpus = topo.gpus
    problems = _topology_problems(doc["job"], topo)
    names = doc["provenance"]["gpu_names"]
    if names and len(names) != gpus:
        problems.append(f"provenance.gpu_names lists {len(names)} GPUs but the job has {gpus}")
    for i, point in enumerate(doc["points"]):
        measured = _telemetry_gpus(point)
        if measured > gpus:
            problems.append(f"points/{i}/telemetry.gpus is {measured} but the job has {gpus}")
    return problems


def _telemetry_gpus(point: Mapping[str, Any]) -> int:
    """How many GPUs a point's telemetry sampled (0 without telemetry)."""
    tele = point.get("telemetry")
    return int(tele.get("gpus", 0)) if isinstance(tele, Mapping) else 0  # not-topology: telemetry


def point_problems(doc: Mapping[str, Any]) -> list[str]:
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
    repeats = [r for r in point.get("repeats") or [] if isinstance(r, Mapping)]
    if not repeats:
        return _rate_problems(f"points/{i}/metrics", m)
    # a repeated point's rates are the mean of its valid repeats' while its counts and durations
    # are sums (ixci.run.repeats): each repeat must be consistent, and the point their mean
    problems = []
    good = []
    for k, rep in enumerate(repeats):
        rm = rep.get("metrics")
        if isinstance(rm, Mapping):
            problems += _rate_problems(f"points/{i}/repeats/{k}/metrics", rm)
            if rep.get("valid"):
                good.append(rm)
    if good and not _close(m["output_throughput"], math.fsum(g["output_throughput"] for g in good)
                           / len(good)):  # fmt: skip
        problems.append(
            f"points/{i}/metrics.output_throughput {m['output_throughput']} ≠ the mean over its "
            f"{len(good)} valid repeats"
        )
    return problems + _sum_problems(f"points/{i}/metrics", m)


def _rate_problems(where: str, m: Mapping[str, Any]) -> list[str]:
    """Throughput = tokens / window, and the total = input + output, of one measurement."""
    problems = []
    dur = m["duration_s"]
    if m["completed"] > 0 and dur <= 0:
        problems.append(f"{where}.duration_s is {dur} with {m['completed']} completed requests")
    elif dur > 0 and not _close(m["output_throughput"], m["total_output_tokens"] / dur):
        problems.append(
            f"{where}.output_throughput {m['output_throughput']} ≠ "
            f"total_output_tokens / duration_s = {m['total_output_tokens'] / dur:.6g}"
        )
    return problems + _sum_problems(where, m)


def _sum_problems(where: str, m: Mapping[str, Any]) -> list[str]:
    if not _close(m["total_token_throughput"], m["input_throughput"] + m["output_throughput"]):
        return [f"{where}.total_token_throughput ≠ input + output throughput"]
    return []


def status_problems(doc: Mapping[str, Any]) -> list[str]:
    status, fclass = doc["status"], doc["failure_class"]
    if status == "failed" and fclass is None:
        return ["status is failed but failure_class is null"]
    if status == "ok" and fclass is not None:
        return [f"status is ok but failure_class is {fclass!r}"]
    if status == "ok" and any(p["status"] != "ok" for p in doc["points"]):
        return ["status is ok but not every point is ok"]
    return []


def _shown(value: Any) -> str:
    text = "(absent)" if value is _MISSING else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def plan_problems(doc: Mapping[str, Any], planned: Mapping[str, Any]) -> list[str]:
    """Every field in which the artifact's job differs from the plan's job of the same id."""
    job = doc["job"]
    out = []
    for key in sorted((set(job) | set(planned)) - NOT_IDENTITY):
        want, got = planned.get(key, _MISSING), job.get(key, _MISSING)
        if want != got:
            out.append(f"job.{key} is {_shown(got)}, the plan scheduled {_shown(want)}")
    pinned = _PINNED.search(str(planned.get("image") or ""))
    digest = doc["provenance"].get("image_digest")
    if pinned and digest is not None and digest != pinned.group(1):
        out.append(
            f"provenance.image_digest is {_shown(digest)}, but the plan pins the image to "
            f"{pinned.group(1)}"
        )
    return out
