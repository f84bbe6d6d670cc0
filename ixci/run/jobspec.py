"""What the runner is given: the job (`JobSpec`, around the planned `ixci.job.Job`), its points
(`PointSpec`, around each planned `ixci.job.Point`), the run's options, and the load driver's
protocol (`PointDriver` → `PointOutcome`). `ixci.run.runner` runs them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ixci.engines.base import EngineJob, ServeSpec, frozen_env
from ixci.job import Job, Point
from ixci.run import roofline


@dataclass(frozen=True, kw_only=True)
class PointSpec:
    """One plan point (`ixci.job.Point`, as planned) with its scenario's load parameters
    (tokens, seconds) and which repeat this measurement is."""

    point: Point
    endpoint: str = "completions"
    num_requests: int = 16
    min_duration_s: float = 0.0
    max_duration_s: float = 1800.0
    warmup_requests: int | None = None
    range_ratio: float = 0.0
    error_threshold: float = 0.05
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    requires_power: bool = False
    workload: Mapping[str, Any] | None = None  # a sessions workload block (loadgen.traces), JSON
    cache: str = "keep"  # before the point: flush | prime | keep (ixci.run.cachestate)
    repeat: int = 1  # which repeat this measurement is (set by the runner's schedule)

    @property
    def id(self) -> str:
        return self.point.id

    @property
    def scenario(self) -> str:
        return self.point.scenario

    @property
    def isl(self) -> int:
        return self.point.isl

    @property
    def osl(self) -> int:
        return self.point.osl

    @property
    def concurrency(self) -> int | None:
        return self.point.concurrency

    @property
    def request_rate(self) -> float | None:
        return self.point.request_rate

    @property
    def repeats(self) -> int:
        """The scenario's `repeats` for this event (ixci/run/repeats.py)."""
        return self.point.repeats


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A resolved job: the adapter input around the planned job, where and how to run it."""

    engine_job: EngineJob
    runtime: str
    vendor: str  # nvidia | amd | cpu
    gpu_indices: tuple[int, ...]
    points: tuple[PointSpec, ...]
    tokenizer: str | None = None
    sku_gpu_names: tuple[str, ...] = ()  # the SKU's `gpu-names` (empty: its key must name the GPU)
    sku_memory_gb: float | None = None
    roofline: roofline.Inputs | None = None  # None: the catalog lacks a fact the bound needs
    evals: Any = None  # ixci.evals.step.EvalStep: accuracy on the warm server after the points

    @property
    def job(self) -> Job:
        """The planned job (the artifact records its `to_dict()`)."""
        return self.engine_job.job


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Run-level settings and the injected environment."""

    output: Path
    run_id: str
    attempt: int = 1
    run_attempt: int = 1  # the workflow run attempt (GitHub re-runs keep the run id)
    event: str | None = None
    repository: str | None = None
    runner_name: str | None = None
    hostname: str = "localhost"
    git_sha: str | None = None
    host_env: Mapping[str, str] = field(default_factory=frozen_env)
    model_cache: str | None = None
    pull: bool = False
    grace_s: float = 10.0  # the engine's SIGTERM → SIGKILL grace at the end of a job
    cancel_grace_s: float = 3.0  # the same when cancelled (must fit STOP_BUDGET_S)
    ready_timeout_s: float | None = None  # override of the adapter's model-size-aware timeout
    point_slack_s: float = 120.0  # added to a point's max duration before it counts as a hang
    hang_probes: int = 3  # consecutive failed health probes during a point → hang
    probe_interval_s: float = 5.0
    min_free_disk_gb: float = 1.0
    owner: str = "local"  # cleanup scope (runtimes.state.owner_scope of RUNNER_NAME)
    state_dir: Path | None = None  # where process groups are recorded (None: nowhere)


@dataclass(frozen=True, kw_only=True)
class PointOutcome:
    """What the load generator returned for one point (`point` follows contracts.md §3)."""

    point: Mapping[str, Any]  # metrics, client, valid, invalid_reasons, started_at, finished_at
    window: tuple[float, float] | None  # measured window, Unix seconds


class PointDriver(Protocol):
    """Runs one point against a ready server; must stop promptly when `cancel` is set."""

    def __call__(
        self,
        spec: ServeSpec,
        point: PointSpec,
        job: JobSpec,
        *,
        folder: Path,
        watch: Callable[[], None],
    ) -> PointOutcome: ...
