"""The plan file's types: one `Job` per warm server launch, its `Topology`, `Point`s and
`Estimate`, and the `Plan` that holds them (contracts.md §2, `schemas/plan.schema.json`).

Every reader of a plan (or of the job object embedded in result.json) goes through
`from_dict`; every writer through `to_dict`, and `to_dict(from_dict(d)) == d` for each job the
planner writes. This module is the only place that knows the key names of the plan's job
object; everything else reads attributes. It imports nothing of ixci but `ixci.errors`.

Reading is strict about types and about what a job must have; the topology's parallelism
degrees may be absent (the result schema requires only `tp` and `gpus`) and then read as their
defaults (1, false, none). A malformed object raises `FieldError`, a `ValueError` naming the
field; `load_plan` turns it into `InvalidInput` with the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ixci.errors import InvalidInput, Problem

PLAN_VERSION = 1
ROLES = ("prefill", "decode")
MAX_REPEATS = (
    20  # a point's repeats: 1..20 (ixci.results.intervals.MAX_REPEATS, its t table's reach)
)


class FieldError(ValueError):
    """A plan or job object with a missing or mistyped field; `field` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


# ----------------------------------------------------------------------------- field readers

_MISSING: Any = object()


def _get(d: Mapping[str, Any], key: str, at: str, default: Any) -> Any:
    if not isinstance(d, Mapping):
        raise FieldError(at, f"expected an object, got {type(d).__name__}")
    if key in d:
        return d[key]
    if default is _MISSING:
        raise FieldError(_join(at, key), "required")
    return default


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _reader(ok: Callable[[Any], bool], what: str) -> Callable[..., Any]:
    """A field reader: the value of `key` if `ok(value)`, None where the default is None and the
    value is null or absent, else a `FieldError` saying it expected `what`."""

    def read(d: Mapping[str, Any], key: str, at: str, default: Any = _MISSING) -> Any:
        value = _get(d, key, at, default)
        if value is None and default is None:
            return None
        if not ok(value):
            raise FieldError(_join(at, key), f"expected {what}, got {value!r:.40}")
        return value

    return read


_int = _reader(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
_num = _reader(lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number")
_str = _reader(lambda v: isinstance(v, str), "a string")
_obj = _reader(lambda v: isinstance(v, Mapping), "an object")


def _bool(d: Mapping[str, Any], key: str, at: str, default: Any = _MISSING) -> bool:
    value = _get(d, key, at, default)
    if not isinstance(value, bool):
        raise FieldError(_join(at, key), f"expected true or false, got {value!r:.40}")
    return value


def _list(d: Mapping[str, Any], key: str, at: str, default: Any = _MISSING) -> list[Any]:
    value = _get(d, key, at, default)
    if not isinstance(value, list | tuple):
        raise FieldError(_join(at, key), f"expected a list, got {value!r:.40}")
    return list(value)


def _strs(d: Mapping[str, Any], key: str, at: str, default: Any = _MISSING) -> tuple[str, ...]:
    items = _list(d, key, at, default)
    if not all(isinstance(s, str) for s in items):
        raise FieldError(_join(at, key), "expected a list of strings")
    return tuple(items)


def plain(value: Any) -> Any:
    """Mappings/tuples (including read-only proxies) → plain dicts/lists for JSON; StrEnum
    members → their value."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


# ----------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecDecoding:
    """Speculative decoding as the plan states it (method: eagle, eagle3, mtp, ngram,
    draft-model); `draft_model` is a reference (`local:FILE`, a hub id) or, in an engine's
    input, the resolved path."""

    method: str
    num_speculative_tokens: int
    draft_model: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], at: str = "spec_decoding") -> SpecDecoding:
        return cls(
            method=_str(d, "method", at),
            num_speculative_tokens=_int(d, "num_speculative_tokens", at, 1) or 1,
            draft_model=_str(d, "draft_model", at, None),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "num_speculative_tokens": self.num_speculative_tokens,
            "draft_model": self.draft_model,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """One pool of a disaggregated deployment: `workers` identical workers of tp × pp GPUs.

    `role` is the key the pool sits under (prefill or decode; an engine's single pool may say
    `worker`); it is not serialised. `sku` None means the recipe's SKU (catalog only: the plan
    always names it)."""

    workers: int
    tp: int
    ep: int = 1
    pp: int = 1
    dp_attention: bool = False
    nodes_per_worker: int = 1
    sku: str | None = None
    engine_args: Mapping[str, Any] = field(default_factory=dict)
    role: str = ""

    @property
    def gpus(self) -> int:
        """GPUs used by the pool: workers × tp × pp (EP and DP-attention reuse the TP ranks)."""
        return self.workers * self.tp * self.pp

    @property
    def nodes(self) -> int:
        return self.workers * self.nodes_per_worker

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], role: str, at: str) -> Pool:
        pool = cls(
            role=role,
            workers=_int(d, "workers", at, 1),
            tp=_int(d, "tp", at, 1),
            ep=_int(d, "ep", at, 1),
            pp=_int(d, "pp", at, 1),
            dp_attention=_bool(d, "dp_attention", at, False),
            nodes_per_worker=_int(d, "nodes_per_worker", at, 1),
            sku=_str(d, "sku", at, None),
            engine_args=dict(_obj(d, "engine_args", at, {})),
        )
        gpus = _int(d, "gpus", at, None)
        if gpus is not None and gpus != pool.gpus:
            raise FieldError(_join(at, "gpus"), f"{gpus} but workers × tp × pp is {pool.gpus}")
        return pool

    def to_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "tp": self.tp,
            "ep": self.ep,
            "pp": self.pp,
            "dp_attention": self.dp_attention,
            "nodes_per_worker": self.nodes_per_worker,
            "gpus": self.gpus,
            "sku": self.sku,
            "engine_args": plain(self.engine_args),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Router:
    """The router in front of a disaggregated deployment, at its exact version."""

    name: str
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Parallelism, GPUs and nodes of one launch; `gpus` = tp × pp × dp, or the sum of both
    pools when disaggregated (then `router` and `kv_transfer` are set too)."""

    tp: int = 1
    gpus: int = 0
    ep: int = 1
    pp: int = 1
    dp: int = 1
    dcp: int = 1
    dp_attention: bool = False
    nodes: int = 1
    disaggregated: bool = False
    prefill: Pool | None = None
    decode: Pool | None = None
    router: Router | None = None
    kv_transfer: str | None = None

    def __getitem__(self, key: str) -> Any:
        """Read by plan-JSON key: kept only for tests of other owners that still subscript
        `Job.topology` (tests/plan/test_importer*.py). ixci's own code reads attributes
        (tests/infra/test_job_contract.py fails on a string-key read outside this module)."""
        return self.to_dict()[key]

    @property
    def pools(self) -> tuple[Pool, ...]:
        """The prefill and decode pools that are set (none when aggregated)."""
        return tuple(p for p in (self.prefill, self.decode) if p is not None)

    def parallelism(self) -> dict[str, Any]:
        """tp, ep, pp, dcp, dp_attention and gpus: the launch's columns in flat tables."""
        return {
            "tp": self.tp,
            "ep": self.ep,
            "pp": self.pp,
            "dcp": self.dcp,
            "dp_attention": self.dp_attention,
            "gpus": self.gpus,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], at: str = "topology") -> Topology:
        pools = {
            role: Pool.from_dict(raw, role, _join(at, role))
            for role in ROLES
            if (raw := _obj(d, role, at, None))
        }
        router = _obj(d, "router", at, None)
        return cls(
            tp=_int(d, "tp", at, 1),
            gpus=_int(d, "gpus", at, 0),
            ep=_int(d, "ep", at, 1),
            pp=_int(d, "pp", at, 1),
            dp=_int(d, "dp", at, 1),
            dcp=_int(d, "dcp", at, 1),
            dp_attention=_bool(d, "dp_attention", at, False),
            nodes=_int(d, "nodes", at, None) or 1,
            disaggregated=_bool(d, "disaggregated", at, False),
            prefill=pools.get("prefill"),
            decode=pools.get("decode"),
            router=None
            if router is None
            else Router(
                name=_str(router, "name", _join(at, "router")),
                version=_str(router, "version", _join(at, "router"), None),
            ),
            kv_transfer=_str(d, "kv_transfer", at, None),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tp": self.tp,
            "ep": self.ep,
            "pp": self.pp,
            "dp": self.dp,
            "dcp": self.dcp,
            "dp_attention": self.dp_attention,
            "nodes": self.nodes,
            "gpus": self.gpus,
            "disaggregated": self.disaggregated,
            "prefill": self.prefill.to_dict() if self.prefill else None,
            "decode": self.decode.to_dict() if self.decode else None,
        }
        if self.disaggregated:
            router = self.router
            out["router"] = {"name": router.name, "version": router.version} if router else None
            out["kv_transfer"] = self.kv_transfer
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One measurement on a warm server: a scenario at a concurrency (or request rate)."""

    id: str
    scenario: str
    isl: int
    osl: int
    concurrency: int | None
    request_rate: float | None = None
    repeats: int = 1  # the scenario's `repeats`; not part of the id (same point, more samples)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], at: str) -> Point:
        pid = _str(d, "id", at)
        repeats = _get(d, "repeats", at, 1)
        if (
            isinstance(repeats, bool)
            or not isinstance(repeats, int)
            or not 1 <= repeats <= MAX_REPEATS
        ):
            raise FieldError(_join(at, "repeats"), f"point {pid}: repeats {repeats!r:.40} is not "
                             f"an integer in 1..{MAX_REPEATS}")  # fmt: skip
        return cls(
            id=pid,
            scenario=_str(d, "scenario", at),
            isl=_int(d, "isl", at),
            osl=_int(d, "osl", at),
            concurrency=_int(d, "concurrency", at, None),
            request_rate=_num(d, "request_rate", at, None),
            repeats=repeats,
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan-JSON object (contracts.md §2); `repeats` only when above 1."""
        out: dict[str, Any] = {
            "id": self.id,
            "scenario": self.scenario,
            "isl": self.isl,
            "osl": self.osl,
            "concurrency": self.concurrency,
            "request_rate": self.request_rate,
        }
        if self.repeats > 1:
            out["repeats"] = self.repeats
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """GPU time of one job (seconds of wall time, GPU-hours = wall × GPUs)."""

    server_start_s: float
    warmup_s: float
    points_s: float
    total_gpu_hours: float
    restart_per_point_gpu_hours: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], at: str = "estimate") -> Estimate:
        names = ("server_start_s", "warmup_s", "points_s", "total_gpu_hours",
                 "restart_per_point_gpu_hours")  # fmt: skip
        values = {n: _num(d, n, at) for n in names}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The plan-JSON object; floats rounded so the JSON is stable and readable."""
        return {
            "server_start_s": round(self.server_start_s, 1),
            "warmup_s": round(self.warmup_s, 1),
            "points_s": round(self.points_s, 1),
            "total_gpu_hours": round(self.total_gpu_hours, 4),
            "restart_per_point_gpu_hours": round(self.restart_per_point_gpu_hours, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One distinct server launch and every point measured on it; `recipes` lists every recipe
    file contributing points (usually one)."""

    id: str
    name: str
    runs_on: tuple[str, ...]
    recipes: tuple[str, ...]
    model: str
    sku: str
    framework: str
    precision: str
    runner: str
    image: str | None
    topology: Topology
    spec_decoding: SpecDecoding | None
    engine_args: Mapping[str, Any]
    env: Mapping[str, str]
    max_model_len: int | None
    checkpoint: str
    points: tuple[Point, ...]
    estimate: Estimate
    selected_because: tuple[str, ...] = ()

    @property
    def recipe(self) -> str:
        """The first contributing recipe path (contracts.md §2 `recipe`)."""
        return self.recipes[0]

    @property
    def gpus(self) -> int:
        """Accelerators the job holds for its whole duration."""
        return self.topology.gpus

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], at: str = "") -> Job:
        """The job object of a plan (or of a result.json); `FieldError` names what is wrong."""
        recipes = _strs(d, "recipes", at)
        if not recipes or _str(d, "recipe", at) != recipes[0]:
            raise FieldError(_join(at, "recipe"), "must be the first of `recipes`")
        env = _obj(d, "env", at)
        if not all(isinstance(v, str) for v in env.values()):
            raise FieldError(_join(at, "env"), "values must be strings")
        spec = _obj(d, "spec_decoding", at, None)
        return cls(
            id=_str(d, "id", at),
            name=_str(d, "name", at),
            runs_on=_strs(d, "runs_on", at),
            recipes=recipes,
            model=_str(d, "model", at),
            sku=_str(d, "sku", at),
            framework=_str(d, "framework", at),
            precision=_str(d, "precision", at),
            runner=_str(d, "runner", at),
            image=_str(d, "image", at, None),
            topology=Topology.from_dict(_obj(d, "topology", at), _join(at, "topology")),
            spec_decoding=None
            if spec is None
            else SpecDecoding.from_dict(spec, _join(at, "spec_decoding")),
            engine_args=dict(_obj(d, "engine_args", at)),
            env=dict(env),
            max_model_len=_int(d, "max_model_len", at, None),
            checkpoint=_str(d, "checkpoint", at),
            points=tuple(
                Point.from_dict(p, f"{_join(at, 'points')}[{i}]")
                for i, p in enumerate(_list(d, "points", at))
            ),
            estimate=Estimate.from_dict(_obj(d, "estimate", at), _join(at, "estimate")),
            selected_because=_strs(d, "selected_because", at, ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan-JSON job object (contracts.md §2), also embedded in result.json."""
        return {
            "id": self.id,
            "name": self.name,
            "runs_on": list(self.runs_on),
            "recipe": self.recipe,
            "recipes": list(self.recipes),
            "model": self.model,
            "sku": self.sku,
            "framework": self.framework,
            "precision": self.precision,
            "checkpoint": self.checkpoint,
            "runner": self.runner,
            "image": self.image,
            "topology": self.topology.to_dict(),
            "spec_decoding": self.spec_decoding.to_dict() if self.spec_decoding else None,
            "engine_args": plain(self.engine_args),
            "env": dict(self.env),
            "max_model_len": self.max_model_len,
            "points": [p.to_dict() for p in self.points],
            "estimate": self.estimate.to_dict(),
            "selected_because": list(self.selected_because),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The selected jobs of one event, ready for output."""

    event: str
    catalog_sha: str
    jobs: tuple[Job, ...]
    notes: tuple[str, ...] = ()
    # SKU of each planned job → the names its GPUs report (catalog `gpu-names`; empty: the SKU
    # key must be a word of the name); collect rejects artifacts from other GPUs
    sku_gpu_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def points(self) -> int:
        """Number of points over all jobs."""
        return sum(len(j.points) for j in self.jobs)

    @property
    def gpu_hours(self) -> float:
        """Estimated GPU-hours of the plan with one warm server per job."""
        return sum(j.estimate.total_gpu_hours for j in self.jobs)

    @property
    def restart_gpu_hours(self) -> float:
        """Estimated GPU-hours if the server restarted for every point (the incumbent's way)."""
        return sum(j.estimate.restart_per_point_gpu_hours for j in self.jobs)

    def job(self, job_id: str) -> Job | None:
        """The planned job `job_id`, or None."""
        return next((j for j in self.jobs if j.id == job_id), None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """A plan document; `summary` and `plan_version` are derived, so not read back."""
        names = _obj(d, "sku_gpu_names", "", {})
        return cls(
            event=_str(d, "event", ""),
            catalog_sha=_str(d, "catalog_sha", "", ""),
            jobs=tuple(Job.from_dict(j, f"jobs[{i}]") for i, j in enumerate(_list(d, "jobs", ""))),
            notes=_strs(d, "notes", "", ()),
            sku_gpu_names={str(k): _strs(names, k, "sku_gpu_names") for k in names},
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan-JSON document (contracts.md §2)."""
        return {
            "plan_version": PLAN_VERSION,
            "event": self.event,
            "catalog_sha": self.catalog_sha,
            "jobs": [j.to_dict() for j in self.jobs],
            "summary": {
                "jobs": len(self.jobs),
                "points": self.points,
                "gpu_hours": round(self.gpu_hours, 3),
                "restart_per_point_gpu_hours": round(self.restart_gpu_hours, 3),
            },
            "notes": list(self.notes),
            "sku_gpu_names": {k: list(v) for k, v in sorted(self.sku_gpu_names.items())},
        }

    def to_json(self) -> str:
        """Byte-identical for the same catalog and selection (sorted keys, fixed separators)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def load_plan(path: Path) -> Plan:
    """Read `ixci plan --format json` output. `InvalidInput` (exit 3) names the file and the
    field when it cannot be read or is not a plan of this version."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _invalid(path, "", f"cannot read the plan: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list):
        raise _invalid(
            path, "jobs", "not a plan (no `jobs` list; is it `ixci plan --format json`?)"
        )
    version = raw.get("plan_version", PLAN_VERSION)
    if version != PLAN_VERSION:
        raise _invalid(path, "plan_version", f"{version!r:.20} is not {PLAN_VERSION}")
    try:
        return Plan.from_dict(raw)
    except FieldError as exc:
        raise _invalid(path, exc.field, exc.message) from exc


def _invalid(path: Path, at: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(file=str(path), line=1, col=1, path=at, message=message)])
