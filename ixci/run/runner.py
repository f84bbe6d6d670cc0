"""One job end to end: preflight → launch → readiness → points (load + telemetry) → cleanup.

The runner owns the failure taxonomy (`ixci.errors.JobFailure` subclasses, exit codes 10–19,
`failure_class` in the artifact) and the guarantees around it:
- the artifact is rewritten (validated, atomically) after every point, so finished points
  survive any later failure, and a document exists from the first second;
- every wait is bounded: readiness by the model-size-aware timeout, each point by the
  scenario's max duration plus slack, a hung server by failed health probes;
- cleanup runs in `finally` and on cancellation: the load generator's process group, the
  sampler and the deployment (only its own processes/containers) are stopped;
- cancellation (the GitHub runner's SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after
  that) ends the job within `STOP_BUDGET_S`: a `CancelToken` set by the signal handler makes
  blocking waits (readiness, health probes, version queries) raise `Cancelled` at once, the
  client gets `CANCEL_CLIENT_GRACE_S` and the engine `RunOptions.cancel_grace_s` to exit before
  SIGKILL, and a second signal never interrupts that cleanup.
Ambient state (environment, clock, runtime, driver, cancellation) is injected.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ixci.engines.base import ServeSpec, localize
from ixci.errors import (
    Cancelled,
    CommandFailed,
    ErrorRateExceeded,
    IxciError,
    JobFailure,
    PreflightFailed,
    ServerCrashed,
    TelemetryInvalid,
)
from ixci.results.result import SERVER_LOG, TELEMETRY_FILE, ResultFile, new_result, utc_now
from ixci.run import cachestate, repeats, servermetrics, specdec
from ixci.run.cancel import interruptible
from ixci.run.cancel import reason as _reason
from ixci.run.jobspec import JobSpec, PointDriver, PointOutcome, PointSpec, RunOptions
from ixci.run.readiness import engine_version, http_get, placed_serve, server_exited, wait_ready
from ixci.run.telemetry import (
    CPU_NO_POWER,
    Sampler,
    check_idle,
    check_sku,
    point_telemetry,
    role_telemetry,
)
from ixci.runtimes.base import Deployment, ImageInfo, LaunchContext, Runtime
from ixci.runtimes.state import process_token

# From the first cancel signal to exit, in seconds: under the GitHub runner's 7.5 s before its
# SIGTERM (and 10 s before SIGKILL). The parts: ≤ 0.2 s until the point loop notices, the client
# CANCEL_CLIENT_GRACE_S, the engine RunOptions.cancel_grace_s, container removal and the final
# artifact write in the rest.
STOP_BUDGET_S = 6.0
CANCEL_CLIENT_GRACE_S = 1.5


# ----------------------------------------------------------------------------- the job


class JobRun:
    """State of one attempt; `run()` drives it and always cleans up."""

    def __init__(
        self,
        spec: JobSpec,
        opts: RunOptions,
        *,
        runtime: Runtime,
        driver: PointDriver,
        cancel: threading.Event,
        serve: ServeSpec,
    ) -> None:
        self.spec = spec
        self.opts = opts
        self.runtime = runtime
        self.driver = driver
        self.cancel = cancel
        self.serve = serve
        self.folder = opts.output / spec.job.id
        self.deployment: Deployment | None = None
        self.sampler = Sampler(spec.vendor, spec.gpu_indices, self.folder / TELEMETRY_FILE)
        self.timings: dict[str, float | None] = {}
        self.result = ResultFile(self.folder, self._fresh())

    def _fresh(self) -> dict[str, Any]:
        from ixci.loadgen.metrics import METRICS_VERSION

        run = {
            "run_id": self.opts.run_id,
            "attempt": self.opts.attempt,
            "run_attempt": self.opts.run_attempt,
            "event": self.opts.event,
            "repository": self.opts.repository,
            "started_at": utc_now(),
        }
        prov = {
            "image": None,
            "image_digest": None,
            "engine_version": None,
            "server_argv": list(self.serve.argv),
            "server_env": dict(self.serve.env),
            "runtime": self.spec.runtime,
            "runner_name": self.opts.runner_name,
            "hostname": self.opts.hostname,
            "driver_version": None,
            "gpu_names": [],
            "gpu_indices": list(self.spec.gpu_indices),
            "telemetry_source": self.sampler.source,
            "client": {"name": "ixci-loadgen", "version": _version()},
            "notes": list(self.serve.notes),
            "timings": {},
        }
        return new_result(
            job=self.spec.job.to_dict(),
            run=run,
            provenance=prov,
            git_sha=self.opts.git_sha,
            metrics_version=METRICS_VERSION,
        )

    @property
    def prov(self) -> dict[str, Any]:
        """The live provenance block."""
        return self.result.doc["provenance"]  # type: ignore[no-any-return]

    def run(self) -> ResultFile:
        """Run the job; raise the `JobFailure` that ended it (the artifact says the same)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.result.write()
        failure: JobFailure | None = None
        t0 = time.monotonic()
        try:
            self._preflight()
            self._launch()
            self._points()
            if self.spec.evals is not None:  # same warm server, no restart (ixci.evals.step)
                self.spec.evals.run(self)
        except JobFailure as exc:
            failure = exc
        except IxciError as exc:  # e.g. a bad loadgen config: an invalid job, not a crash
            failure = JobFailure(exc.render())
        finally:
            self._cleanup()
            self.timings["total_s"] = time.monotonic() - t0
            self.prov["timings"] = {k: v for k, v in self.timings.items()}
        failure = failure or self._point_failure()
        self.result.finish(
            failure_class=failure.failure_class if failure else None,
            failure_message=failure.render() if failure else None,
        )
        if failure:
            raise failure
        return self.result

    # -- phases

    def _preflight(self) -> None:
        t = time.monotonic()
        self._check_disk()
        if self.spec.vendor in ("nvidia", "amd"):
            self._check_gpus()
        else:
            self.prov["notes"].append(CPU_NO_POWER)
        info: ImageInfo = self.runtime.preflight(self.serve, self._ctx())
        self.prov.update(image=info.image, image_digest=info.digest)
        self.prov["notes"].extend(info.notes)
        self.timings["preflight_s"] = time.monotonic() - t
        self.result.write()

    def _check_disk(self) -> None:
        import shutil

        free_gb = shutil.disk_usage(self.folder).free / 1e9
        if free_gb < self.opts.min_free_disk_gb:
            raise PreflightFailed(
                f"only {free_gb:.1f} GB free under {self.folder} (need {self.opts.min_free_disk_gb} GB)"
            )

    def _check_gpus(self) -> None:
        from ixci.run.telemetry import amd_inventory, nvidia_inventory

        try:
            gpus = nvidia_inventory() if self.spec.vendor == "nvidia" else amd_inventory()
        except CommandFailed as exc:
            raise PreflightFailed(f"cannot query GPUs: {exc.message}") from exc
        check_idle(gpus, self.spec.gpu_indices)
        check_sku(gpus, self.spec.gpu_indices, sku=self.spec.job.sku,
                  names=self.spec.sku_gpu_names, memory_gb=self.spec.sku_memory_gb)  # fmt: skip
        chosen = [g for g in gpus if g.index in self.spec.gpu_indices]
        self.prov["gpu_names"] = [g.name for g in chosen]
        self.prov["driver_version"] = chosen[0].driver if chosen else None

    def _ctx(self) -> LaunchContext:
        return LaunchContext(
            job_id=self.spec.job.id,
            run_id=self.opts.run_id,
            attempt=self.opts.attempt,
            vendor=self.spec.vendor,
            gpu_indices=self.spec.gpu_indices,
            workdir=self.folder,
            model_cache=self.opts.model_cache,
            host_env=self.opts.host_env,
            pull=self.opts.pull,
            owner=self.opts.owner,
            state_dir=self.opts.state_dir,
            parent=process_token(os.getpid()),  # cleanup leaves a running job's things alone
        )

    def _launch(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"{_reason(self.cancel)} before launch")
        self.deployment = self.runtime.launch(
            self.serve, self._ctx(), log_path=self.folder / SERVER_LOG
        )
        self.prov["server_argv"] = list(self.deployment.argv)
        self.result.write()
        timeout = self.opts.ready_timeout_s or self.serve.ready_timeout_s
        t = time.monotonic()
        self.serve = placed_serve(
            self.deployment,
            self.serve,
            places_components=self.runtime.places_components,
            timeout_s=timeout,
            cancel=self.cancel,
        )
        if self.serve.host != self.spec.engine_job.host:
            self.prov["notes"].append(
                f"client-facing component on {self.serve.host} (from the runtime)"
            )
        self.timings["launch_to_ready_s"] = (time.monotonic() - t) + wait_ready(
            self.deployment,
            self.serve,
            timeout_s=timeout - (time.monotonic() - t),
            cancel=self.cancel,
        )
        with interruptible(self.cancel):
            self.prov["engine_version"] = engine_version(
                self.serve, self.runtime.host_binaries, self.opts.host_env
            )
        self.result.write()

    def _points(self) -> None:
        self.sampler.start()
        t = time.monotonic()
        try:
            for index, repeat in repeats.schedule(self.spec.points):  # round-robin over repeats
                self._point(index, replace(self.spec.points[index], repeat=repeat))
        finally:
            self.timings["points_s"] = time.monotonic() - t

    def _point(self, index: int, point: PointSpec) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"{_reason(self.cancel)} between points")
        entry = dict(self.result.doc["points"][index])
        entry["started_at"] = utc_now()
        entry["cache"] = cachestate.before_point(
            self.serve, point.cache, prime=lambda: self._prime(point)
        )
        scrape = servermetrics.PointMetrics(self.serve).begin()
        try:
            outcome = self.driver(
                self.serve, point, self.spec, folder=self.folder, watch=self._watch(point)
            )
        except JobFailure as exc:
            entry.update(
                server_metrics=scrape.end(),
                status="failed",
                failure_class=exc.failure_class,
                valid=False,
                invalid_reasons=[exc.message.splitlines()[0]],
                finished_at=utc_now(),
            )
            self.result.set_point(index, entry)
            raise
        finally:
            entry["server_metrics"] = scrape.end()  # idempotent; stops the sampler on any exit
        self._check_alive("during point " + point.id)
        measured = self._measured(entry, point, outcome)
        if point.repeats > 1:
            measured = repeats.fold(entry, measured, repeat=point.repeat, planned=point.repeats)
            self._roofline(measured, point)  # on the mean over the repeats
        self.result.set_point(index, measured)

    def _prime(self, point: PointSpec) -> None:
        """The point once, unmeasured, in a scratch folder (cache `prime`, ixci.run.cachestate)."""
        import shutil

        scratch = self.folder / ".prime"
        try:
            self.driver(self.serve, point, self.spec, folder=scratch, watch=self._watch(point))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _measured(
        self, entry: dict[str, Any], point: PointSpec, outcome: PointOutcome
    ) -> dict[str, Any]:
        res = outcome.point
        metrics = res.get("metrics") or {}
        reasons = list(res.get("invalid_reasons", []))
        tele = self._telemetry(outcome, metrics)
        failure_class = None
        if float(metrics.get("error_rate") or 0.0) > point.error_threshold:
            failure_class = ErrorRateExceeded.failure_class
            reasons.append(
                f"error rate {metrics.get('error_rate'):.3f} > threshold {point.error_threshold}"
            )
        if point.requires_power and not tele["power_valid"]:
            failure_class = failure_class or TelemetryInvalid.failure_class
            reasons += [f"power required: {r}" for r in tele["invalid_reasons"]]
        valid = bool(res.get("valid", True)) and not reasons
        entry.update(
            status="ok" if valid else "invalid",
            failure_class=failure_class,
            valid=valid,
            invalid_reasons=sorted(set(reasons)),
            started_at=res.get("started_at") or entry["started_at"],
            finished_at=res.get("finished_at") or utc_now(),
            metrics=metrics or None,
            client=_client(res.get("client")),
            telemetry=tele,
        )
        if res.get("sessions"):
            entry["sessions"] = res["sessions"]
        entry["speculative"] = specdec.point_block(res.get("drafts"), entry.get("server_metrics"))
        self._roofline(entry, point)
        return entry

    def _roofline(self, entry: dict[str, Any], point: PointSpec) -> None:
        if self.spec.roofline is not None:
            entry["roofline"] = self.spec.roofline.point(
                isl=point.isl,
                osl=point.osl,
                concurrency=point.concurrency,
                metrics=entry.get("metrics") or {},
            )

    def _telemetry(self, outcome: PointOutcome, metrics: Mapping[str, Any]) -> dict[str, Any]:
        window = outcome.window
        if window is not None and self.sampler.source is not None:
            self.sampler.wait_past(window[1], timeout_s=3.0)
        t0, t1 = window if window is not None else (0.0, 0.0)
        reason = CPU_NO_POWER if self.spec.vendor == "cpu" else None
        tele = point_telemetry(
            self.sampler.samples(),
            self.spec.gpu_indices if self.sampler.source else (),
            t0,
            t1,
            source=self.sampler.source,
            output_tokens=int(metrics.get("total_output_tokens") or 0),
            input_tokens=int(metrics.get("total_input_tokens") or 0),
            no_power_reason=reason,
        )
        if window is None and self.sampler.source is not None:
            tele["power_valid"] = False
            tele["invalid_reasons"] = ["the load generator reported no measured window"]
        if self.spec.engine_job.disaggregated:
            engine = self.spec.engine_job
            tele["roles"] = role_telemetry(
                tele,
                pools={"prefill": engine.prefill, "decode": engine.decode},
                vendor=self.spec.vendor,
                runtime=self.spec.runtime,
                gpu_indices=self.spec.gpu_indices,
                components=self.serve.components,
            )
        return tele

    def _watch(self, point: PointSpec) -> Callable[[], None]:
        """A callback the driver calls often: raises on cancel, crash, hang, or overrun."""
        deadline = time.monotonic() + point.max_duration_s + self.opts.point_slack_s
        state: dict[str, float] = {
            "next_probe": time.monotonic() + self.opts.probe_interval_s,
            "failed": 0,
        }

        def watch() -> None:
            if self.cancel.is_set():
                raise Cancelled(f"{_reason(self.cancel)} during point {point.id}")
            with interruptible(self.cancel):
                self._probe(point, deadline, state)

        return watch

    def _probe(self, point: PointSpec, deadline: float, state: dict[str, float]) -> None:
        """`watch`'s checks: the server is alive, within the point's limit, answering health."""
        self._check_alive(f"during point {point.id}")
        now = time.monotonic()
        if now > deadline:
            limit = point.max_duration_s + self.opts.point_slack_s
            # a server that still answers its health probe did not hang: the client overran
            # (its responses are classified per request; blaming the engine would be false)
            url = self.serve.base_url + self.serve.health_path
            if http_get(url, timeout=self.opts.probe_interval_s)[0] == 200:
                raise JobFailure(
                    f"point {point.id}: the load generator overran its limit of {limit:.0f} s "
                    "while the server answered its health probe"
                )
            raise ServerCrashed(
                f"point {point.id} overran its limit of {limit:.0f} s "
                f"(server hung?); last log lines:\n{self._tail()}"
            )
        if now >= state["next_probe"]:
            status, _ = http_get(
                self.serve.base_url + self.serve.health_path, timeout=self.opts.probe_interval_s
            )
            state["failed"] = 0 if status == 200 else state["failed"] + 1
            state["next_probe"] = time.monotonic() + self.opts.probe_interval_s
            if state["failed"] >= self.opts.hang_probes:
                raise ServerCrashed(
                    f"server stopped responding during point {point.id} "
                    f"({state['failed']} health probes failed); last log lines:\n{self._tail()}"
                )

    def _tail(self) -> str:
        return self.deployment.log_tail(25) if self.deployment else ""

    def _check_alive(self, when: str) -> None:
        if self.deployment is not None and self.deployment.poll() is not None:
            raise server_exited(self.deployment, f"crashed {when}", ServerCrashed)

    def _point_failure(self) -> JobFailure | None:
        classes = [p.get("failure_class") for p in self.result.doc["points"]]
        if ErrorRateExceeded.failure_class in classes:
            return ErrorRateExceeded(
                "client error rate over the threshold in: "
                + ", ".join(
                    p["id"]
                    for p in self.result.doc["points"]
                    if p.get("failure_class") == "error_rate"
                )
            )
        if TelemetryInvalid.failure_class in classes:
            return TelemetryInvalid("power telemetry invalid on a scenario that requires power")
        return None

    def _cleanup(self) -> None:
        import shutil

        self.sampler.stop()
        if self.deployment is not None:
            grace = self.opts.cancel_grace_s if self.cancel.is_set() else self.opts.grace_s
            self.deployment.stop(grace_s=grace)
        shutil.rmtree(self.folder / ".points", ignore_errors=True)  # the driver's scratch files


def _client(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    keys = (
        "cpu_percent",
        "loop_lag_p99_s",
        "saturated",
        "workers",
        "receive_stamps",
        "clock_residual_s",
    )
    return {k: data[k] for k in keys if k in data}


def _version() -> str:
    from ixci import __version__

    return __version__


def run_job(
    spec: JobSpec,
    opts: RunOptions,
    *,
    runtime: Runtime,
    driver: PointDriver,
    serve: ServeSpec,
    cancel: threading.Event | None = None,
    retries: int = 0,
    on_retry: Callable[[JobFailure, int], None] | None = None,
) -> ResultFile:
    """Run `spec`, retrying infrastructure failures (preflight, image, not_ready) up to `retries`.

    Every attempt writes the same artifact folder (the last attempt wins, `run.attempt` says
    which). Raises the final `JobFailure`; `UnsafeValue` for a run id or job id that is not
    safe in names, labels and scripts (`ixci.ids`), before anything is written.
    """
    from ixci import ids

    ids.run_id(opts.run_id)
    ids.stem(spec.job.id, what="job id")
    cancel = cancel or threading.Event()
    if not runtime.places_components:  # all components on this host
        serve = localize(serve)
    attempt = opts.attempt
    while True:
        job_run = JobRun(
            spec,
            _with_attempt(opts, attempt),
            runtime=runtime,
            driver=driver,
            cancel=cancel,
            serve=serve,
        )
        try:
            return job_run.run()
        except JobFailure as exc:
            if not exc.infrastructure or attempt - opts.attempt >= retries or cancel.is_set():
                raise
            if on_retry:
                on_retry(exc, attempt)
            attempt += 1


def _with_attempt(opts: RunOptions, attempt: int) -> RunOptions:
    return replace(opts, attempt=attempt)
