"""Replay multi-turn sessions on a warm server (the `sessions` workload kind).

Built on the single-turn load generator's request machinery (`worker.Worker`: connections,
kernel receive stamps, timeouts, parsing, records): `SessionWorker` only replaces its two
drivers. Closed loop: `concurrency` slots, each takes the next session and runs its turns in
order — a turn is sent when the previous answer is complete and its tool pause is over, so the
point's concurrency is the number of sessions in flight. Open loop: sessions arrive at
`session_rate` (gamma gaps, shape `burstiness`) or at the trace's own `start_s`, optionally
capped at `concurrency` sessions in flight. A trace whose every session has a start time
(Mooncake's timestamps) is replayed at those times unless a session rate is given.

Prompts are real token ids where a tokenizer is known (the completions endpoint takes a list
of ids, so turn k's prompt starts with exactly turn k−1's prompt and the engine's prefix cache
can hit); without one they are words (≈ one token each; counts approximate, as in `dataset`).
The answer to turn k is carried into the context of turn k+1 as a seeded stand-in of the
requested length (the engine's own answer is not re-sent): the cache can hit up to the end of
the previous prompt, and the stand-in is prefilled like new tool output. Every request's
record carries its session, turn index, context length and the server's `cached_tokens`.
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter_ns
from typing import Any, cast

import numpy as np

from ixci.errors import UsageError
from ixci.loadgen import run as single
from ixci.loadgen.config import DatasetInfo, PointConfig, PointResult, TokenizerSource
from ixci.loadgen.dataset import _WORDS, Codec
from ixci.loadgen.dialect import Dialect, Endpoint
from ixci.loadgen.http import Exchange, StreamProtocol, Target
from ixci.loadgen.metrics import RequestRecord, point_metrics
from ixci.loadgen.session_prompts import Contents, RequestTemplate, TurnPayloads
from ixci.loadgen.sessions_metrics import TurnRecord, sessions_metrics
from ixci.loadgen.spill import REQUESTS_GZIP_LEVEL
from ixci.loadgen.traces import Session, SessionsWorkload, trace_summary
from ixci.loadgen.worker import Worker, WorkerOutput, WorkerSpec, new_loop

_CACHED = re.compile(rb'"(?:cached_tokens|cache_n)"\s*:\s*(\d{1,12})')


@dataclass(frozen=True, kw_only=True)
class SessionPlan:
    """One session as a worker runs it: (payload index, pause before it) per turn."""

    start_s: float | None
    turns: tuple[tuple[int, float], ...]


@dataclass(frozen=True, kw_only=True)
class SessionSpec:
    """A `WorkerSpec` (payloads of all its sessions' turns) plus the sessions' order of play."""

    base: WorkerSpec
    sessions: tuple[SessionPlan, ...]
    trace_times: bool  # open loop at the sessions' own start_s (else gamma arrivals at base.rate)


@dataclass(frozen=True, kw_only=True)
class SessionsOutcome:
    """A sessions point: the usual point result plus per-turn records and the sessions block."""

    point: PointResult
    turns: tuple[TurnRecord, ...]
    sessions: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.point.to_json(), "sessions": self.sessions}


def cached_tokens(ex: Exchange) -> int | None:
    """The server's `cached_tokens` (OpenAI `prompt_tokens_details`) or llama.cpp `cache_n` from
    the last event that reports one; None when the server reports neither."""
    found = None
    for block in reversed(ex.blocks):
        hits = _CACHED.findall(block)
        if hits:
            found = int(hits[-1])
            break
    return found


class SessionWorker(Worker):
    """A `Worker` whose slots play whole sessions instead of independent requests."""

    def __init__(self, spec: SessionSpec, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(spec.base, loop)
        self.plan = spec.sessions
        self.trace_times = spec.trace_times
        self._queue = collections.deque(range(len(spec.sessions)))
        self.cached: dict[int, int] = {}

    def _record(self, k: int, warm: bool, ex: Exchange, first_send: int | None) -> RequestRecord:
        rec = super()._record(k, warm, ex, first_send)
        if rec.ok and (hit := cached_tokens(ex)) is not None:
            self.cached[k] = hit
        return rec

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds` (never past max_duration); the event loop's timers may fire up to a
        millisecond early (uvloop rounds), so sleep again until the time has really passed."""
        until = perf_counter_ns() + int(seconds * 1e9)
        if self._deadline_ns is not None:
            until = min(until, self._deadline_ns)
        while (left := until - perf_counter_ns()) > 0:
            await asyncio.sleep(left * 1e-9)

    async def _session(self, i: int, conn: StreamProtocol | None) -> StreamProtocol | None:
        for j, (k, pause) in enumerate(self.plan[i].turns):
            if j and pause > 0:
                await self._pause(pause)
            if self._past_deadline():
                break
            self.issued += 1
            conn = await self._request(k, False, conn)
        return conn

    async def _slot(self) -> None:
        conn: StreamProtocol | None = self._idle.pop() if self._idle else None
        while self._queue and not self._past_deadline():
            conn = await self._session(self._queue.popleft(), conn)
        if conn is not None:
            conn.abort()

    async def _open_loop(self) -> None:
        s = self.s
        rng = random.Random(s.seed * 7919 + s.worker)
        cap = asyncio.Semaphore(s.slots) if s.slots is not None else None
        tasks: set[asyncio.Task[None]] = set()
        t0 = t_next = time.perf_counter()
        for i, plan in enumerate(self.plan):
            if self.trace_times:
                t_next = t0 + (plan.start_s or 0.0)
            else:
                assert s.rate is not None
                t_next += rng.gammavariate(s.burstiness, 1.0 / (s.rate * s.burstiness))
            await self._pause(t_next - time.perf_counter())  # ≤ 0: late already, send now
            if cap is not None:
                await cap.acquire()
            if self._past_deadline():
                break
            self._schedule_lags.append(max(0.0, time.perf_counter() - t_next))
            task = self.loop.create_task(self._open_session(i, cap))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _open_session(self, i: int, cap: asyncio.Semaphore | None) -> None:
        try:
            conn = await self._session(i, self._idle.pop() if self._idle else None)
            if conn is not None:
                self._idle.append(conn)
        finally:
            if cap is not None:
                cap.release()


# ----------------------------------------------------------------------------- layout


def _token_prompts(config: PointConfig, dialect: Dialect, codec: Codec | None) -> bool:
    return (
        codec is not None
        and config.endpoint is Endpoint.COMPLETIONS
        and not dialect.rejects_unknown_fields
    )


_TurnOrder = tuple[
    list[tuple[int, int]], list[tuple[int, int]], list[tuple[str, int, int]], list[SessionPlan]
]


@dataclass(frozen=True, kw_only=True)
class _Layout:
    specs: list[SessionSpec]
    turn_of: list[
        list[tuple[str, int, int]]
    ]  # per worker, per payload: (session, turn, prompt tokens)


def _layout(
    config: PointConfig,
    dialect: Dialect,
    sessions: Sequence[Session],
    workers: int,
    codec: Codec | None,
    trace_times: bool,
    rate: float | None,
) -> _Layout:
    target = Target.parse(config.url)
    as_ids = _token_prompts(config, dialect, codec)
    contents = Contents(
        codec.candidates() if as_ids and codec is not None else _WORDS, as_ids=as_ids
    )
    template = RequestTemplate(
        dialect=dialect,
        endpoint=config.endpoint,
        model=config.model,
        extra=config.extra_body,
        target=target,
        headers=config.headers,
        as_ids=as_ids,
    )
    specs, turn_of = [], []
    for w in range(workers):
        mine = list(sessions[w::workers])
        index, requested, table, plans = _turn_order(mine)
        # built turn by turn as the worker sends them (the worker only indexes it and takes len)
        payloads = TurnPayloads(sessions=mine, at=index, contents=contents, template=template)
        base = WorkerSpec(
            worker=w,
            workers=workers,
            target=target,
            payloads=cast(tuple[bytes, ...], payloads),
            requested=tuple(requested) or ((0, 0),),
            fresh_connection=dialect.fresh_connection,
            slots=None
            if config.concurrency is None
            else single._split(config.concurrency, workers, w),
            rate=None if rate is None else rate / workers,
            burstiness=config.burstiness,
            warmup=0,
            count=len(index),
            min_requests=0,
            duration_s=None,
            min_duration_s=0.0,
            max_duration_s=config.max_duration_s,
            request_timeout_s=config.timeout_s,
            seed=config.seed,
            kernel_stamps=config.kernel_stamps,
            response_limits=tuple(config.response_limit(o) for _, o in requested),
            max_line_bytes=config.max_line_bytes,
        )
        specs.append(SessionSpec(base=base, sessions=tuple(plans), trace_times=trace_times))
        turn_of.append(table)
    return _Layout(specs=specs, turn_of=turn_of)


def _turn_order(sessions: Sequence[Session]) -> _TurnOrder:
    """One worker's sessions, turn by turn in payload order → per payload its (session, turn)
    position and requested (prompt, output) tokens, its (session id, turn, prompt tokens) row;
    and each session's plan."""
    index: list[tuple[int, int]] = []
    requested: list[tuple[int, int]] = []
    table: list[tuple[str, int, int]] = []
    plans = []
    for si, s in enumerate(sessions):
        turns = []
        for j, tokens in enumerate(s.prompt_lengths()):
            turns.append((len(index), s.turns[j].pause_s))
            index.append((si, j))
            requested.append((tokens, s.turns[j].output_tokens))
            table.append((s.id, j, tokens))
        plans.append(SessionPlan(start_s=s.start_s, turns=tuple(turns)))
    return index, requested, table, plans


# ----------------------------------------------------------------------------- processes


def _run_here(spec: SessionSpec) -> tuple[WorkerOutput, dict[int, int]]:
    loop = new_loop()
    try:
        worker = SessionWorker(spec, loop)
        loop.run_until_complete(worker.prewarm())
        out = loop.run_until_complete(worker.run(perf_counter_ns()))
        return out, worker.cached
    finally:
        loop.close()


def session_process_main(spec: SessionSpec, conn: object) -> None:
    """Entry of a session worker process (the same protocol as `worker.process_main`)."""
    from multiprocessing.connection import Connection

    assert isinstance(conn, Connection)
    try:
        loop = new_loop()
        worker = SessionWorker(spec, loop)
        loop.run_until_complete(worker.prewarm())
        conn.send("ready")
        start: int = conn.recv()
        out = loop.run_until_complete(worker.run(start))
        loop.close()
    except BaseException as exc:  # report any failure to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    conn.send(("ok", (out, worker.cached)))
    conn.close()


def _run_workers(specs: Sequence[SessionSpec]) -> list[tuple[WorkerOutput, dict[int, int]]]:
    """Run the session workers (one: in this process; more: one process each) → per worker, in
    spec order: its output and the server's cached tokens per payload."""
    if len(specs) == 1:
        return [_run_here(specs[0])]
    return single._run_processes(specs, main=session_process_main)


# ----------------------------------------------------------------------------- the point


def _arrivals(
    config: PointConfig, workload: SessionsWorkload, sessions: Sequence[Session]
) -> tuple[bool, float | None]:
    """(replay the trace's own start times?, open-loop session rate or None for closed loop)."""
    rate = workload.session_rate if workload.session_rate is not None else config.request_rate
    if rate is not None:
        return False, rate
    if sessions and all(s.start_s is not None for s in sessions):
        return (
            True,
            1.0,
        )  # the trace's own arrival times; the concurrency (if any) caps sessions in flight
    if config.concurrency is None:
        raise UsageError(
            "a sessions point needs a concurrency, a session rate, or a trace with start times"
        )
    return False, None


def run_sessions_point(
    config: PointConfig,
    workload: SessionsWorkload,
    *,
    dialect: Dialect,
    root: Path,
    requests_path: Path | None = None,
    gpus: int | None = None,
) -> SessionsOutcome:
    """Replay `workload` against a warm server and measure it (base units).

    `config` gives the server, endpoint, concurrency (sessions in flight), tokenizer, seed,
    limits and workers; its isl/osl/num_requests are not used. Every turn is measured (no
    warm-up: a warm-up would change the cache state the point is about). `gpus` (the job's GPU
    count) gives the per-GPU throughput. Raises `TraceError`/`UsageError` for a bad workload and
    `LoadgenFailed` when the client cannot run; request failures are counted, never raised.
    """
    started = datetime.now(UTC)
    sessions = workload.sessions(root=root, seed=config.seed)
    trace_times, rate = _arrivals(config, workload, sessions)
    workers = config.workers or single.auto_workers(
        replace(config, request_rate=None) if rate is None else config
    )
    workers = max(1, min(workers, len(sessions), config.concurrency or len(sessions)))
    codec = single.make_codec(config, dialect)
    layout = _layout(config, dialect, sessions, workers, codec, trace_times, rate)
    results = _run_workers(layout.specs)
    outputs = [o for o, _ in results]
    records = [r for o in outputs for r in o.records]
    turns = _turn_records(outputs, [c for _, c in results], layout, workers)
    closed = config.concurrency if rate is None else None
    metrics = point_metrics(records, concurrency=closed, slo=config.slo)
    block = sessions_metrics(turns, gpus=gpus)
    dataset = _dataset(config, workload, codec, turns)
    reasons = single._invalid_reasons(
        replace(config, min_requests=0, min_duration_s=0.0), metrics.values, dataset
    )
    written = write_turns(requests_path, turns) if requests_path is not None else 0
    point = PointResult(
        metrics=metrics,
        client=single._client_health(outputs),
        dataset=dataset,
        dialect=dialect.name,
        valid=not reasons,
        invalid_reasons=tuple(reasons),
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        requests_written=written,
    )
    summary = {
        "workload": workload.to_json(),
        "trace": trace_summary(sessions),
        "arrivals": "trace" if trace_times else ("open" if rate is not None else "closed"),
        "prompts": "token_ids" if _token_prompts(config, dialect, codec) else "text",
        **block,
    }
    return SessionsOutcome(point=point, turns=tuple(turns), sessions=summary)


def _dataset(
    config: PointConfig,
    workload: SessionsWorkload,
    codec: Codec | None,
    turns: Sequence[TurnRecord],
) -> DatasetInfo:
    """The point's `DatasetInfo`: the trace, the tokenizer, and the turns' count and mean
    requested prompt and output tokens."""
    source = codec.source if codec is not None else TokenizerSource.APPROXIMATION
    return DatasetInfo(
        kind=f"sessions:{workload.trace}",
        tokenizer_source=source,
        tokenizer=codec.name if codec else None,
        seed=config.seed,
        prompts=len(turns),
        isl_mean=float(np.mean([t.prompt_tokens_requested for t in turns])) if turns else 0.0,
        osl_mean=float(np.mean([t.record.requested_output_tokens for t in turns]))
        if turns
        else 0.0,
        shared_prefix_tokens=workload.synthetic.system_prompt_tokens
        if workload.trace == "synthetic"
        else 0,
        range_ratio=0.0,
    )


def _turn_records(
    outputs: Sequence[WorkerOutput], cached: Sequence[dict[int, int]], layout: _Layout, workers: int
) -> list[TurnRecord]:
    out = []
    for o, hits, table in zip(outputs, cached, layout.turn_of, strict=True):
        for r in o.records:
            k = (r.index - o.worker) // workers
            session, turn, tokens = table[k]
            out.append(
                TurnRecord(
                    record=r,
                    session=session,
                    turn=turn,
                    prompt_tokens_requested=tokens,
                    cached_tokens=hits.get(k),
                )
            )
    return out


def write_turns(requests_path: Path, turns: Sequence[TurnRecord]) -> int:
    """The point's request lines (as `run.write_requests`) with session, turn and cached_tokens
    added; returns the count."""
    import gzip

    import orjson

    requests_path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(turns, key=lambda t: t.record.t_send_ns)
    with gzip.open(requests_path, "wb", compresslevel=REQUESTS_GZIP_LEVEL) as fh:
        for t in rows:
            line = t.record.to_json() | {
                "session": t.session,
                "turn": t.turn,
                "cached_tokens": t.cached_tokens,
            }
            fh.write(orjson.dumps(line) + b"\n")
    return len(rows)


def workload_json(workload: SessionsWorkload, *, root: Path) -> dict[str, Any]:
    """`workload.to_json()` with its trace file made absolute under the catalog `root`."""
    out = workload.to_json()
    if workload.file is not None:
        out["file"] = str((root / workload.file).resolve())
    return out


def run_workload_point(
    config: PointConfig,
    block: dict[str, Any],
    *,
    dialect: Dialect,
    requests_path: Path | None,
    gpus: int | None,
) -> SessionsOutcome:
    """`run_sessions_point` for run-job's load-generator child: `block` is `workload_json`'s."""
    return run_sessions_point(
        config,
        SessionsWorkload.from_profile(block),
        dialect=dialect,
        root=Path("/"),
        requests_path=requests_path,
        gpus=gpus,
    )
