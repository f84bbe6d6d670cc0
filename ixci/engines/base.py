"""What an engine adapter consumes (`EngineJob`) and produces (`ServeSpec`).

An adapter is a pure function `EngineJob -> ServeSpec`: no I/O, no environment, no clock.
The runner builds the `EngineJob` from the plan's job object (contracts.md §2) plus the
resolved model checkpoint; a runtime (docker, podman, slurm, process) turns the `ServeSpec`
into running processes. The adapter owns the request dialect of its engine, because engines
differ on the wire (usage in the last chunk, `[DONE]`, unknown fields rejected, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ixci.job import Job, Pool
from ixci.job import SpecDecoding as SpecDecoding

if TYPE_CHECKING:
    from ixci.loadgen.dialect import Dialect


Scalar = str | int | float | bool | None
PoolJob = Pool  # one pool of a disaggregated deployment, its role set (the plan's type)


def frozen_map(data: Mapping[str, object] | None = None) -> Mapping[str, object]:
    """A read-only copy of `data` (for frozen dataclasses)."""
    return MappingProxyType(dict(data or {}))


def frozen_env(data: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy of an environment mapping."""
    return MappingProxyType({str(k): str(v) for k, v in (data or {}).items()})


@dataclass(frozen=True, kw_only=True)
class EngineJob:
    """The planned job and what the runner resolved around it on this host.

    `job` is the plan's `ixci.job.Job` as it is (nothing of it is copied); the other fields are
    this host's facts: the image actually launched (None for a host process), `model_path`, what
    the engine loads (a local folder/file or a hub id; offline caches mounted by the runtime),
    `served_name`, the model name clients send, the device, the checkpoint's size, where the
    server listens and where `ServeSpec.files` go, and the draft checkpoint as found here.
    Adapters read the job's facts through the properties (units: tokens for lengths).
    """

    job: Job
    image: str | None
    model_path: str
    served_name: str
    device: str = "cuda"  # cuda | rocm | cpu
    model_size_gb: float = 0.0
    host: str = "127.0.0.1"
    port: int = 8000
    files_dir: str = (
        "/tmp/ixci-files"  # where the runner writes ServeSpec.files (same path in containers)
    )
    draft_model: str | None = (
        None  # the draft checkpoint's path here (engines.resolve.resolve_draft)
    )

    def with_topology(self, **changes: Any) -> EngineJob:
        """The same job with some topology fields changed (one pool's launch of a deployment)."""
        topology = replace(self.job.topology, **changes)
        return replace(self, job=replace(self.job, topology=topology))

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def framework(self) -> str:
        return self.job.framework

    @property
    def model_key(self) -> str:
        return self.job.model

    @property
    def precision(self) -> str:
        return self.job.precision

    @property
    def tp(self) -> int:
        return self.job.topology.tp

    @property
    def ep(self) -> int:
        return self.job.topology.ep

    @property
    def pp(self) -> int:
        return self.job.topology.pp

    @property
    def dcp(self) -> int:
        return self.job.topology.dcp

    @property
    def dp(self) -> int:
        """Data-parallel ranks (attention DP size when dp_attention; 1: use tp)."""
        return self.job.topology.dp

    @property
    def dp_attention(self) -> bool:
        return self.job.topology.dp_attention

    @property
    def nodes(self) -> int:
        """Nodes of an aggregated launch; the pools of a disaggregated one carry their own."""
        return self.job.topology.nodes

    @property
    def gpus(self) -> int:
        """GPUs the server uses: the topology's, none on a CPU."""
        return 0 if self.device == "cpu" else self.job.topology.gpus

    @property
    def max_model_len(self) -> int | None:
        return self.job.max_model_len

    @property
    def max_concurrency(self) -> int:
        """The highest concurrency among the job's points (1 without any)."""
        return max((p.concurrency for p in self.job.points if p.concurrency), default=1)

    @property
    def spec_decoding(self) -> SpecDecoding | None:
        """The job's speculative decoding, its draft model as found on this host."""
        spec = self.job.spec_decoding
        if spec is None or not self.draft_model:
            return spec
        return replace(spec, draft_model=self.draft_model)

    @property
    def prefill(self) -> PoolJob | None:
        return self.job.topology.prefill

    @property
    def decode(self) -> PoolJob | None:
        return self.job.topology.decode

    @property
    def kv_transfer(self) -> str | None:
        return self.job.topology.kv_transfer

    @property
    def router(self) -> str | None:
        """Disaggregated: the router's name (plan `topology.router.name`)."""
        router = self.job.topology.router
        return router.name if router else None

    @property
    def router_version(self) -> str | None:
        router = self.job.topology.router
        return router.version if router else None

    @property
    def engine_args(self) -> Mapping[str, object]:
        return frozen_map(self.job.engine_args)

    @property
    def env(self) -> Mapping[str, str]:
        return frozen_env(self.job.env)

    @property
    def attention_dp(self) -> int:
        """Attention data-parallel size when dp_attention is on (dp, or tp when dp is 1)."""
        return self.dp if self.dp > 1 else self.tp

    @property
    def disaggregated(self) -> bool:
        """True when prefill and decode run in separate pools."""
        return self.prefill is not None and self.decode is not None


# Placeholders a component's argv/env may contain; the runtime that places the components
# substitutes them (Slurm: in the step, from IXCI_NODE_<component> and SLURM_NODEID; one-host
# runtimes: `resolve_local`). They let an adapter name a peer without knowing where it runs.
NODE_RANK = "{node_rank}"  # this process's node index within its component (0 = head)
_HOST_RE = re.compile(r"\{host:([A-Za-z0-9_-]+)\}")


def host_of(component: str) -> str:
    """Placeholder for the address of the (head) node that runs component `component`."""
    return "{host:" + component + "}"


def has_placeholders(text: str) -> bool:
    """True when `text` names a peer's host or the node rank (it must be resolved at launch)."""
    return NODE_RANK in text or _HOST_RE.search(text) is not None


def resolve_local(text: str, *, host: str = "127.0.0.1", node_rank: int = 0) -> str:
    """Substitute the placeholders for a deployment whose components all run on one host."""
    return _HOST_RE.sub(host, text).replace(NODE_RANK, str(node_rank))


def localize(spec: ServeSpec, host: str = "127.0.0.1") -> ServeSpec:
    """`spec` with every placeholder resolved for a runtime that runs all components on one
    host (node rank 0, every peer on `host`); unchanged when there are none."""
    from dataclasses import replace

    comps = tuple(
        replace(c, argv=tuple(resolve_local(a, host=host) for a in c.argv),
                env=frozen_env({k: resolve_local(v, host=host) for k, v in c.env.items()}))
        for c in spec.components
    )  # fmt: skip
    return spec if comps == spec.components else replace(spec, components=comps)


@dataclass(frozen=True, kw_only=True)
class Component:
    """One process of a deployment: the server itself, a router / front end, a prefill or
    decode worker, or a service the others need (Dynamo's etcd and NATS).

    `gpus` is how many accelerators this process needs in total and `nodes` how many nodes it
    spans (a multi-node worker: `gpus / nodes` per node, one head at node rank 0); the runtime
    assigns concrete devices. `tasks_per_node` > 1 starts one process per GPU (MPI ranks,
    TensorRT-LLM). `port` is set on components that serve HTTP (health on `health_path`, else
    the spec's). `image` overrides the spec's image for this component (None: the spec's).
    """

    name: str
    role: str  # server | frontend | prefill | decode | worker | service
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=frozen_env)
    gpus: int = 0
    nodes: int = 1
    port: int | None = None
    health_path: str | None = None
    tasks_per_node: int = 1
    image: str | None = None


@dataclass(frozen=True, kw_only=True)
class MetricsMap:
    """Where an engine publishes Prometheus metrics and which of its series mean what.

    `gauges` and `counters` map an ixci name (`ixci.run.servermetrics.GAUGES` / `COUNTERS`) to the
    engine's own series names, first found wins (engines renamed series between versions; a
    counter matches with or without its `_total` suffix). `hit_rate` says how the prefix-cache
    hit rate follows from them: `queries` Δhits/Δqueries, `uncached` Δhits/(Δhits+Δprompt
    tokens) for an engine whose prompt counter excludes cached tokens, `gauge` the engine's own
    hit-rate gauge, None none.
    """

    path: str = "/metrics"
    gauges: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    counters: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    hit_rate: str | None = None


@dataclass(frozen=True, kw_only=True)
class CacheFlush:
    """How an engine empties its prefix / KV cache over HTTP (`ixci.run.cachestate`).

    `kind`: `post` (one POST to `path`) or `slots` (llama.cpp: list `GET /slots`, then
    `POST /slots/{id}?action=erase` for each). `needs` says what the server must have been
    started with for the endpoint to exist (shown when it answers 404/501).
    """

    kind: str
    path: str
    needs: str = ""


@dataclass(frozen=True, kw_only=True)
class ServeSpec:
    """How to serve one job: image, processes, and how to talk to the result.

    - `components[0]` is the client-facing process (it owns `port`); all components start
      together and readiness is judged on the client-facing one. If any component dies,
      the deployment has crashed.
    - `health_path` must answer 200 once the engine can take requests; the runner then sends
      a real one-token completion with `dialect`.
    - `ready_timeout_s` is model-size-aware (seconds), computed by the adapter.
    - `version_path` is a JSON endpoint reporting the engine version; `version_argv` a command
      printing it (used when the server reports none).
    - `files` (name → text) are written by the runner into `files_dir` before launch (config
      files such as TensorRT-LLM's extra options); containers mount `files_dir` at the same path.
    """

    engine: str
    image: str | None
    components: tuple[Component, ...]
    host: str
    port: int
    health_path: str
    version_path: str | None
    ready_timeout_s: float
    model_name: str
    model_path: str
    dialect: Dialect
    version_argv: tuple[str, ...] | None = None  # a command printing the engine version
    files: Mapping[str, str] = field(default_factory=frozen_env)  # name -> content, in files_dir
    files_dir: str | None = None
    mounts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    metrics: MetricsMap | None = None  # Prometheus metrics of the client-facing server
    cache_flush: CacheFlush | None = None  # None: the engine has no cache flush over HTTP

    @property
    def argv(self) -> tuple[str, ...]:
        """The client-facing process's argv (the one recorded as `server_argv`)."""
        return self.components[0].argv

    @property
    def env(self) -> Mapping[str, str]:
        """The client-facing process's environment additions."""
        return self.components[0].env

    @property
    def base_url(self) -> str:
        """http://host:port of the client-facing server."""
        return f"http://{self.host}:{self.port}"

    @property
    def gpus(self) -> int:
        """Total accelerators needed by all components."""
        return sum(c.gpus for c in self.components)


class Adapter(Protocol):
    """An engine adapter: a pure function from a resolved job to a launch description."""

    def __call__(self, job: EngineJob, /) -> ServeSpec: ...


def ready_timeout(model_size_gb: float, *, base_s: float = 120.0, gb_per_s: float = 1.0) -> float:
    """Readiness timeout in seconds: `base_s` plus the time to load the weights at `gb_per_s`.

    Hundreds of GB at ~1 GB/s from a local cache is the slow case we must allow; a hung
    server must still fail in bounded time (InferenceX weakness 5: no timeout at all).
    """
    return base_s + max(model_size_gb, 0.0) / max(gb_per_s, 1e-3)


def engine_arg_flags(args: Mapping[str, object], *, style: str = "--{}") -> list[str]:
    """Structured engine args → CLI flags: `{"max_num_seqs": 256}` → `--max-num-seqs 256`.

    `True` → bare flag, `False`/`None` → omitted, lists → repeated values after one flag,
    mappings → compact JSON. Keys keep their order (the plan's canonical order).
    """
    import json

    out: list[str] = []
    for key, value in args.items():
        flag = style.format(str(key).replace("_", "-"))
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list | tuple):
            out.append(flag)
            out.extend(str(v) for v in value)
        elif isinstance(value, Mapping):
            out.extend([flag, json.dumps(dict(value), separators=(",", ":"), sort_keys=True)])
        else:
            out.extend([flag, str(value)])
    return out
