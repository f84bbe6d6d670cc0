"""Run one point: build prompts, split the work over worker processes, aggregate, write records.

This is the library entry the runner calls (`run_point`, `run_point_async`). Each worker owns a
slice of the concurrency and of the requests; the only messages between processes are the
start time going out and each worker's summary coming back at the end. The records themselves
go to one spill file per worker as they finish (`ixci.loadgen.spill`), and the point is
aggregated from those files, so the client's memory does not grow with the run's length.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import numpy as np

from ixci.errors import IxciError, UsageError
from ixci.loadgen.config import ClientHealth, DatasetInfo, PointConfig, PointResult, TokenizerSource
from ixci.loadgen.dataset import Codec, HFCodec, PromptSet, ServerCodec, build_prompts
from ixci.loadgen.dialect import Dialect, request_body
from ixci.loadgen.fold import checks_of, point_metrics_of
from ixci.loadgen.http import Target, request_bytes
from ixci.loadgen.metrics import PointMetrics, RequestRecord
from ixci.loadgen.spill import REQUESTS_GZIP_LEVEL, read_spilled, write_spilled_requests
from ixci.loadgen.timing import TIMING_TOLERANCE_S
from ixci.loadgen.worker import WorkerOutput, WorkerSpec, process_main, run_in_this_thread

# A point is flagged client_saturated past any of these (see docs/loadgen.md).
SATURATED_CPU_PERCENT = 85.0
SATURATED_LOOP_LAG_P99_S = 0.005
SATURATED_RUNQUEUE_PERCENT = 10.0
SATURATED_SCHEDULE_LAG_P99_S = 0.005
_START_DELAY_NS = 100_000_000
_WORKER_READY_TIMEOUT_S = 120.0


class LoadgenFailed(IxciError):
    """The load generator itself could not run (a worker died, the server is unreachable…)."""

    exit_code = 19


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# open loop: streamed chunks per second one worker takes while staying clear of saturation. On
# a 16-core host's CPU one worker spent 33 % of its core on 100 req/s × 64 one-token chunks
# (≈ 20 k chunks/s at 100 %), and saturated (send lag p99 23 ms) at 1,000 req/s
# (perf/loadgen/README.md, open loop); half the full rate leaves room for bursts.
OPEN_LOOP_CHUNKS_PER_WORKER = 10_000


def auto_workers(config: PointConfig) -> int:
    """One worker per 256 closed-loop slots; open loop, one per 2,000 req/s or per
    `OPEN_LOOP_CHUNKS_PER_WORKER` streamed chunks/s (rate × OSL, one token a chunk at worst),
    whichever needs more; at most one per CPU."""
    want = math.ceil((config.concurrency or 1) / 256)
    if config.request_rate is not None and config.concurrency is None:
        chunks = config.request_rate * config.osl
        want = max(math.ceil(config.request_rate / 2000),
                   math.ceil(chunks / OPEN_LOOP_CHUNKS_PER_WORKER))  # fmt: skip
    return max(1, min(want, available_cpus()))


def _split(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


def make_codec(config: PointConfig, dialect: Dialect) -> Codec | None:
    """The best token source available: tokenizer file, server endpoints, or None (approximate)."""
    if config.tokenizer is not None:
        return HFCodec(config.tokenizer)
    if dialect.tokenize_path:
        codec = ServerCodec(config.url, dialect, config.model)
        if codec.probe():
            return codec
    return None


def _prompt_count(config: PointConfig) -> int:
    measured = (
        config.num_requests
        if config.num_requests is not None
        else max(config.min_requests, 4 * (config.concurrency or 1), 256)
    )
    return config.warmup + max(measured, config.min_requests)


def _specs(
    config: PointConfig, dialect: Dialect, prompts: PromptSet, workers: int, seed: int
) -> list[WorkerSpec]:
    target = Target.parse(config.url)
    path = dialect.path(config.endpoint)
    payloads = [
        request_bytes(
            target,
            path,
            request_body(
                dialect,
                endpoint=config.endpoint,
                model=config.model,
                prompt=p.text,
                max_tokens=p.output_tokens,
                extra=config.extra_body,
            ),
            headers=config.headers,
            close=dialect.fresh_connection,
        )
        for p in prompts.prompts
    ]
    requested = [(p.input_tokens, p.output_tokens) for p in prompts.prompts]
    limits = [config.response_limit(p.output_tokens) for p in prompts.prompts]
    specs = []
    for i in range(workers):
        specs.append(
            WorkerSpec(
                worker=i,
                workers=workers,
                target=target,
                payloads=tuple(payloads[i::workers]),
                requested=tuple(requested[i::workers]),
                fresh_connection=dialect.fresh_connection,
                slots=None
                if config.concurrency is None
                else _split(config.concurrency, workers, i),
                rate=None if config.request_rate is None else config.request_rate / workers,
                burstiness=config.burstiness,
                warmup=_split(config.warmup, workers, i),
                count=None
                if config.num_requests is None
                else _split(config.num_requests, workers, i),
                min_requests=_split(config.min_requests, workers, i),
                duration_s=config.duration_s,
                min_duration_s=config.min_duration_s,
                max_duration_s=config.max_duration_s,
                request_timeout_s=config.timeout_s,
                seed=seed,
                kernel_stamps=config.kernel_stamps,
                response_limits=tuple(limits[i::workers]),
                max_line_bytes=config.max_line_bytes,
                max_unparsed_bytes=config.max_unparsed_bytes,
                expect_done=dialect.sends_done,
                exact_length=dialect.ignore_eos or dialect.min_tokens,
            )
        )
    return specs


def _run_processes(
    specs: Sequence[Any], main: Callable[[Any, Any], None] = process_main
) -> list[Any]:
    """Run one `main(spec, pipe)` process per spec; each worker's output, in spec order."""
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for spec in specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=main, args=(spec, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        for pipe in pipes:
            if not pipe.poll(_WORKER_READY_TIMEOUT_S):
                raise LoadgenFailed("a load-generator worker did not become ready in time")
            msg = pipe.recv()
            if msg != "ready":
                raise LoadgenFailed(f"load-generator worker failed while preparing: {msg[1]}")
        start_at = perf_counter_ns() + _START_DELAY_NS  # CLOCK_MONOTONIC: shared by processes
        for pipe in pipes:
            pipe.send(start_at)
        outputs = []
        for pipe in pipes:
            status, payload = pipe.recv()
            if status != "ok":
                raise LoadgenFailed(f"load-generator worker failed: {payload}")
            outputs.append(payload)
        return outputs
    except EOFError as exc:
        raise LoadgenFailed("a load-generator worker died (see its stderr)") from exc
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def _client_health(outputs: Sequence[WorkerOutput]) -> ClientHealth:
    cpu = max((o.cpu_s / o.wall_s * 100.0 if o.wall_s > 0 else 0.0) for o in outputs)
    lags = np.concatenate([np.asarray(o.lags_s) for o in outputs]) if outputs else np.empty(0)
    lag_p99 = float(np.percentile(lags, 99)) if lags.size else 0.0
    waits = [
        o.runqueue_wait_s / o.wall_s * 100.0
        for o in outputs
        if o.runqueue_wait_s is not None and o.wall_s > 0
    ]
    wait = max(waits) if waits else None
    sends = np.concatenate([np.asarray(o.send_lags_s) for o in outputs]) if outputs else np.empty(0)
    sched = float(np.percentile(sends, 99)) if sends.size else 0.0
    reasons = []
    if cpu >= SATURATED_CPU_PERCENT:
        reasons.append(f"worker CPU {cpu:.0f}% >= {SATURATED_CPU_PERCENT:.0f}%")
    if lag_p99 > SATURATED_LOOP_LAG_P99_S:
        reasons.append(
            f"event-loop lag p99 {lag_p99 * 1e3:.1f} ms > {SATURATED_LOOP_LAG_P99_S * 1e3:.0f} ms"
        )
    if wait is not None and wait >= SATURATED_RUNQUEUE_PERCENT:
        reasons.append(f"waited for a CPU {wait:.0f}% of the time")
    if sched > SATURATED_SCHEDULE_LAG_P99_S:
        reasons.append(f"open-loop sends late by {sched * 1e3:.1f} ms (p99)")
    return ClientHealth(
        cpu_percent=cpu,
        loop_lag_p99_s=lag_p99,
        saturated=bool(reasons),
        workers=len(outputs),
        runqueue_wait_percent=wait,
        reasons=tuple(reasons),
        reads=sum(o.reads for o in outputs),
        kernel_stamped_reads=sum(o.kernel_stamped_reads for o in outputs),
        max_unparsed_bytes=max((o.max_unparsed_bytes for o in outputs), default=0),
        unparsed_at_end=sum(o.unparsed_at_end for o in outputs),
        drain_s=max((o.drain_s for o in outputs), default=0.0),
        stamp_age_max_s=max((o.max_stamp_age_ns for o in outputs), default=0) * 1e-9,
    )


def open_loop_accuracy(outputs: Sequence[WorkerOutput]) -> dict[str, Any] | None:
    """Open loop: how late each request was sent against its schedule (seconds), or None.

    `sends` counts the requests; `send_lag_p50_s` / `send_lag_p99_s` / `send_lag_max_s`
    are linear-interpolation percentiles of (actual send − scheduled send), clipped at 0.
    """
    lags = np.concatenate([np.asarray(o.send_lags_s) for o in outputs]) if outputs else np.empty(0)
    if not lags.size:
        return None
    p50, p99 = np.percentile(lags, [50, 99], method="linear")
    return {
        "sends": int(lags.size),
        "send_lag_p50_s": float(p50),
        "send_lag_p99_s": float(p99),
        "send_lag_max_s": float(lags.max()),
    }


def write_requests(path: Path, records: Sequence[RequestRecord]) -> int:
    """Write one JSON line per request (sorted by send time) to a gzip file; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=REQUESTS_GZIP_LEVEL) as fh:
        for r in sorted(records, key=lambda r: r.t_send_ns):
            fh.write(r.to_line())
    return len(records)


def run_point(
    config: PointConfig, *, dialect: Dialect, requests_path: Path | None = None
) -> PointResult:
    """Measure one point against a warm server and return its metrics (base units).

    Blocking; uses `config.workers` (or `auto_workers`) processes — one worker runs in this
    thread. Writes per-request records to `requests_path` (gzip JSON lines) when given.
    Raises `UsageError` for a bad config or dialect, `LoadgenFailed` when the client cannot
    run; request failures are counted in the metrics, never raised.
    """
    return _measure(config, dialect, requests_path, isolate=False)


def _measure(
    config: PointConfig, dialect: Dialect, requests_path: Path | None, *, isolate: bool
) -> PointResult:
    started = datetime.now(UTC)
    Target.parse(config.url)  # a bad URL fails before any prompt is built
    workers = config.workers or auto_workers(config)
    if workers < 1:
        raise UsageError("workers must be >= 1")
    if config.concurrency is not None:
        workers = min(workers, config.concurrency)  # every worker owns at least one slot
    codec = make_codec(config, dialect)
    prompts = build_prompts(
        count=_prompt_count(config),
        isl=config.isl,
        osl=config.osl,
        range_ratio=config.range_ratio,
        shared_prefix_tokens=config.shared_prefix_tokens,
        seed=config.seed,
        codec=codec,
    )
    spill_dir = Path(tempfile.mkdtemp(prefix="ixci-loadgen-"))
    try:
        return _measure_spilled(
            config, dialect, requests_path, isolate, prompts, workers, spill_dir, started
        )
    finally:
        shutil.rmtree(spill_dir, ignore_errors=True)


def _measure_spilled(
    config: PointConfig,
    dialect: Dialect,
    requests_path: Path | None,
    isolate: bool,
    prompts: PromptSet,
    workers: int,
    spill_dir: Path,
    started: datetime,
) -> PointResult:
    """Run the workers, each spilling its finished records to `spill_dir` and folding them into
    the point's aggregates as they finish (`ixci.loadgen.fold`), and merge the folds: memory is
    bounded in the run's length and no record is read again but those across the steady-state
    window's edges."""
    outputs = _run_spilling(config, dialect, prompts, workers, spill_dir, isolate)
    folds = [o.folded for o in outputs if o.folded is not None]
    paths = [Path(o.spill_path) for o in outputs if o.spill_path is not None]
    if len(folds) != len(outputs) or len(paths) != len(outputs):
        raise LoadgenFailed("a load-generator worker returned no spilled records")

    def fetch(wanted: Sequence[tuple[int, int]]) -> list[RequestRecord]:
        out = []
        for part, offset in wanted:  # a few records: those across the steady window's edges
            out += read_spilled(paths[part], [offset])
        return out

    closed = config.concurrency if config.request_rate is None else None
    metrics = point_metrics_of(folds, fetch, concurrency=closed)
    if config.request_rate is not None:
        metrics = PointMetrics(values={**metrics.values, "open_loop": open_loop_accuracy(outputs)})
    checks = checks_of(folds)
    dataset = _dataset(config, prompts, checks.checked, checks.offset, checks.mismatched)
    health = _client_health(outputs)
    reasons = _invalid_reasons(config, metrics.values, dataset) + _clock_reason(health)
    if reasons and config.max_duration_s is not None:
        reasons += _cut_reason(config.max_duration_s, checks.cut)
    written = 0
    if requests_path is not None:
        written = write_spilled_requests(requests_path, paths)
    return PointResult(
        metrics=metrics,
        client=health,
        dataset=dataset,
        dialect=dialect.name,
        valid=not reasons,
        invalid_reasons=tuple(reasons),
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        requests_written=written,
        drafts=checks.drafts,
    )


def _run_spilling(
    config: PointConfig,
    dialect: Dialect,
    prompts: PromptSet,
    workers: int,
    spill_dir: Path,
    isolate: bool,
) -> list[WorkerOutput]:
    """Run the point's workers, each spilling its finished records to a file in `spill_dir` →
    their outputs. A lone worker runs in this thread unless `isolate`; else each has a process."""
    specs = [
        replace(s, spill_path=str(spill_dir / f"worker-{s.worker}.jsonl"), slo=config.slo)
        for s in _specs(config, dialect, prompts, workers, config.seed)
    ]
    if len(specs) == 1 and not isolate:
        specs = [replace(specs[0], worker=0, workers=1)]
        return [run_in_this_thread(specs[0], lambda: perf_counter_ns())]
    return _run_processes(specs)


def _dataset(
    config: PointConfig, prompts: PromptSet, checked: int, offset: int | None, mismatched: int
) -> DatasetInfo:
    """The point's `DatasetInfo`: its prompts and what the prompt token check found."""
    return DatasetInfo(
        kind="random",
        tokenizer_source=prompts.source,
        tokenizer=prompts.tokenizer,
        seed=config.seed,
        prompts=len(prompts.prompts),
        isl_mean=float(np.mean([p.input_tokens for p in prompts.prompts])),
        osl_mean=float(np.mean([p.output_tokens for p in prompts.prompts])),
        shared_prefix_tokens=config.shared_prefix_tokens,
        range_ratio=config.range_ratio,
        prompt_tokens_checked=checked,
        prompt_tokens_offset=offset,
        prompt_tokens_mismatched=mismatched,
    )


def _cut_reason(max_duration_s: float, cut: Mapping[bool, int]) -> list[str]:
    """Why an invalid point ran short when the client cut requests at `max_duration_s` (`cut`:
    warm-up → requests cut): the bound covers the warm-up too, so a slow warm-up leaves the
    measured requests no time."""
    if not cut[True] and not cut[False]:
        return []
    return [
        f"max-duration {max_duration_s:g} s ran out ({cut[False]} measured and {cut[True]} "
        "warm-up requests cut): it bounds the warm-up and the measured requests together; "
        "raise the scenario's max-duration-s"
    ]


def _clock_reason(health: ClientHealth) -> list[str]:
    """Why the point's times cannot be vouched for when converting a kernel stamp between the
    clocks may have moved it by more than the timing tolerance (`ClientHealth.clock_residual_s`)."""
    if health.clock_residual_s <= TIMING_TOLERANCE_S:
        return []
    return [
        f"kernel stamps up to {health.stamp_age_max_s:.1f} s old when read: converting them to "
        f"the client's clock may be off by up to {health.clock_residual_s * 1e3:.2f} ms "
        f"(> {TIMING_TOLERANCE_S * 1e3:.0f} ms)"
    ]


def _invalid_reasons(config: PointConfig, m: Mapping[str, Any], dataset: DatasetInfo) -> list[str]:
    reasons = []
    if m["completed"] == 0:
        reasons.append("no request completed")
    if m["error_rate"] > config.error_threshold:
        reasons.append(f"error rate {m['error_rate']:.1%} > {config.error_threshold:.1%}")
    if m["completed"] < config.min_requests:
        reasons.append(f"{m['completed']} requests < minimum sample {config.min_requests}")
    if m["duration_s"] < config.min_duration_s:
        reasons.append(f"measured {m['duration_s']:.3f} s < minimum {config.min_duration_s:g} s")
    if (
        dataset.tokenizer_source is not TokenizerSource.APPROXIMATION
        and dataset.prompt_tokens_mismatched
    ):
        reasons.append(
            f"{dataset.prompt_tokens_mismatched} prompts' server token counts differ from the request"
        )
    return reasons


async def run_point_async(
    config: PointConfig, *, dialect: Dialect, requests_path: Path | None = None
) -> PointResult:
    """`run_point` for callers inside an event loop: awaits without blocking the caller's loop;
    the measurement always runs in worker processes (never sharing the caller's GIL)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, lambda: _measure(config, dialect, requests_path, isolate=True)
    )
