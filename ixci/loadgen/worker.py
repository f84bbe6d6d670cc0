"""One client worker: an event loop that owns a slice of the concurrency and of the requests.

Closed loop: each slot owns a pre-warmed keep-alive connection and sends its next request the
moment the previous one completes; warm-up requests are simply a slot's first requests, so the
measured phase starts staggered (no synchronized burst). Open loop: gamma/Poisson arrivals,
optionally capped by the slot count. A request that fails before its first byte is retried once
on a fresh connection. Parsing runs in short slices between I/O polls; GC is frozen and off
during the run; event-loop lag, CPU time and run-queue wait are recorded.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns

from ixci.loadgen.fold import Fold, Folded
from ixci.loadgen.http import READS, Exchange, StreamProtocol, Target, open_connection
from ixci.loadgen.metrics import RequestRecord, Slo
from ixci.loadgen.records import TRANSPORT_GAVE_UP, record_from
from ixci.loadgen.spill import RecordSpill

_PARSE_SLICE_NS = 200_000  # at most this much parsing between two I/O polls
_LAG_PERIOD_S = 0.01
_SPIN_S = 0.002  # the open loop yields instead of sleeping this close to a send
_CONNECT_BATCH = 64
_CONNECT_TIMEOUT_S = 10.0  # a server that accepts nothing costs at most this per connection


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """Everything one worker needs; picklable (sent once to a worker process)."""

    worker: int
    workers: int
    target: Target
    payloads: tuple[bytes, ...]  # complete HTTP requests, cycled
    requested: tuple[tuple[int, int], ...]  # (input, output) tokens requested per payload
    fresh_connection: bool
    slots: int | None  # closed-loop slots (None: unbounded open loop)
    rate: float | None  # open-loop arrivals per second for this worker
    burstiness: float
    warmup: int
    count: int | None
    min_requests: int
    duration_s: float | None
    min_duration_s: float
    max_duration_s: float | None
    request_timeout_s: float
    seed: int
    kernel_stamps: bool = True
    response_limits: tuple[
        int, ...
    ] = ()  # bytes each payload's response may send (cycled; () = none)
    max_line_bytes: int = 1 << 62
    expect_done: bool = False  # the dialect ends every stream with `data: [DONE]`
    exact_length: bool = (
        False  # the server was asked for exactly the requested tokens (ignore_eos/min_tokens)
    )
    max_unparsed_bytes: int = (
        64 << 20
    )  # parse inline (slowing the sends) past this many unparsed bytes
    # append each finished record to this file (`spill.RecordSpill`) and fold it into the
    # point's aggregates (`fold.Fold`, files beside it) instead of keeping it: memory then stays
    # bounded whatever the run's length (None: keep them in `records`)
    spill_path: str | None = None
    slo: Slo | None = None  # goodput's objectives, for the fold


@dataclass(kw_only=True)
class WorkerOutput:
    worker: int
    records: list[RequestRecord]
    cpu_s: float
    wall_s: float
    runqueue_wait_s: float | None
    lags_s: Sequence[float]
    errors: list[str] = field(default_factory=list)
    reads: int = 0
    kernel_stamped_reads: int = 0
    max_stamp_age_ns: int = 0  # the oldest kernel stamp converted to perf_counter's clock
    max_unparsed_bytes: int = 0  # the most response bytes that waited for parsing at once
    send_lags_s: Sequence[float] = field(default_factory=list)  # open loop: actual − scheduled send
    unparsed_at_end: int = 0  # responses still unparsed when the last one arrived
    drain_s: float = 0.0  # time spent parsing them after the run (work outside the window)
    spill_path: str | None = None  # the records are in this file (`records` is then empty)
    spilled: int = 0  # how many
    folded: Folded | None = None  # and folded into these aggregates (with `spill_path`)


def _schedstat() -> tuple[int, int] | None:
    """(on-CPU ns, run-queue wait ns) of this thread, or None off Linux."""
    try:
        parts = Path("/proc/thread-self/schedstat").read_text().split()
        return int(parts[0]), int(parts[1])
    except (OSError, IndexError, ValueError):
        return None


class Worker:
    """Runs one `WorkerSpec` on the current thread's event loop."""

    def __init__(self, spec: WorkerSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.s = spec
        self.loop = loop
        self.issued = 0
        self.measured_start: int | None = None
        # the measured window as the validator will see it (metrics.measured_window), so far: the
        # earliest send and the latest end of the measured requests completed (given-up ones end
        # nowhere); min_duration_s is met on it, not on the clock of the first measured issue
        self._window_send_ns: int | None = None
        self._window_end_ns: int | None = None
        self.records: list[RequestRecord] = []
        self._spill = self._fold = None
        if spec.spill_path is not None:
            path = Path(spec.spill_path)
            self._spill = RecordSpill(path)
            self._fold = Fold(path.with_name(path.stem + ".fold"), spec.slo)
        self._pending: collections.deque[tuple[int, bool, Exchange, int | None]] = (
            collections.deque()
        )
        self._pending_bytes = 0  # response bytes received and not parsed yet (bounded)
        self.max_pending_bytes = 0
        self._parse_scheduled = False
        self._idle: list[StreamProtocol] = []
        # 8 bytes a sample, not a list's 32: open loop keeps one send lag per request
        self._lags = array("d")
        self._lag_handle: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._schedule_lags = array("d")
        self._deadline_ns: int | None = None  # max_duration after the start: nothing runs past it
        self._inflight: dict[Exchange, StreamProtocol] = {}

    # -- the request stream --------------------------------------------------------------
    def _next(self) -> tuple[int, bool] | None:
        s, k = self.s, self.issued
        now = perf_counter_ns()
        if self._deadline_ns is not None and now >= self._deadline_ns:
            return None
        if k < s.warmup:
            self.issued += 1
            return k, True
        if self.measured_start is None:
            self.measured_start = now
        m, elapsed = k - s.warmup, (now - self.measured_start) * 1e-9
        minimum_met = m >= s.min_requests and self._window_s() >= s.min_duration_s
        bound_hit = (s.count is not None and m >= s.count) or (
            s.duration_s is not None and elapsed >= s.duration_s
        )
        if bound_hit and minimum_met:
            return None
        self.issued += 1
        return k, False

    def _window_s(self) -> float:
        if self._window_send_ns is None or self._window_end_ns is None:
            return 0.0
        return max(0, self._window_end_ns - self._window_send_ns) * 1e-9

    def _widen_window(self, ex: Exchange, first_send: int | None) -> None:
        if ex.error in TRANSPORT_GAVE_UP:
            return
        sent = ex.t_send_ns if first_send is None else first_send
        if self._window_send_ns is None or sent < self._window_send_ns:
            self._window_send_ns = sent
        if self._window_end_ns is None or ex.t_end_ns > self._window_end_ns:
            self._window_end_ns = ex.t_end_ns

    # -- connections -----------------------------------------------------------------------
    async def prewarm(self) -> None:
        """Open the connections the run will use before the clock starts."""
        if self.s.fresh_connection:
            return
        n = self.s.slots if self.s.slots is not None else 64
        for start in range(0, n, _CONNECT_BATCH):
            batch = [self._connect() for _ in range(start, min(n, start + _CONNECT_BATCH))]
            for res in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(res, StreamProtocol):
                    self._idle.append(res)

    async def _connection(self, reuse: StreamProtocol | None) -> StreamProtocol:
        if reuse is not None and not reuse.closed and not self.s.fresh_connection:
            return reuse
        while self._idle and not self.s.fresh_connection:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return await self._connect()

    async def _connect(self) -> StreamProtocol:
        """A new connection; OSError (TimeoutError included) when it cannot be made in time."""
        timeout = min(_CONNECT_TIMEOUT_S, self.s.request_timeout_s)
        if self._deadline_ns is not None:
            timeout = min(timeout, max(0.0, (self._deadline_ns - perf_counter_ns()) * 1e-9))
        return await asyncio.wait_for(
            open_connection(self.loop, self.s.target, kernel_stamps=self.s.kernel_stamps), timeout
        )

    # -- one request -----------------------------------------------------------------------
    async def _request(
        self, k: int, warm: bool, conn: StreamProtocol | None, scheduled_ns: int | None = None
    ) -> StreamProtocol | None:
        """Send request `k` (retried once on a fresh connection when it fails before any byte)
        and queue its exchange for parsing; returns the connection when it can be reused.
        `scheduled_ns`: the open loop's planned send time (its error is recorded)."""
        s = self.s
        payload = s.payloads[k % len(s.payloads)]
        limit = s.response_limits[k % len(s.response_limits)] if s.response_limits else 1 << 62
        first_send: int | None = None  # the first attempt's send time, when retried
        ex = Exchange()
        for attempt in (0, 1):
            try:
                conn = await self._connection(None if attempt else conn)
                if self._past_deadline():
                    raise TimeoutError("max_duration ran out before the request was sent")
            except OSError as exc:
                ex = Exchange()
                ex.t_send_ns = ex.t_end_ns = perf_counter_ns()
                ex.error = "cut" if self._past_deadline() else "connect"
                ex.blocks = [str(exc).encode() or type(exc).__name__.encode()]
                if conn is not None:
                    conn.abort()
                conn = None
            else:
                fut: asyncio.Future[Exchange] = self.loop.create_future()
                ex = conn.send(payload, fut.set_result, max_bytes=limit, max_line=s.max_line_bytes)
                self._inflight[ex] = conn
                timer = self.loop.call_later(s.request_timeout_s, self._timeout, conn, ex)
                ex = await fut
                timer.cancel()
                self._inflight.pop(ex, None)
            if scheduled_ns is not None and attempt == 0:
                self._schedule_lags.append(max(0, ex.t_send_ns - scheduled_ns) * 1e-9)
            if ex.error == "connect" and attempt == 0:
                first_send, conn = ex.t_send_ns, None
                continue
            break
        if not warm:
            self._widen_window(ex, first_send)
        self._pending.append((k, warm, ex, first_send))
        self._pending_bytes += ex.size
        if self._pending_bytes > self.s.max_unparsed_bytes:
            self._parse_backlog()
        if not self._parse_scheduled:
            self._parse_scheduled = True
            self.loop.call_soon(self._parse_some)
        if conn is None or conn.closed or self.s.fresh_connection:
            if conn is not None and not conn.closed:
                conn.abort()
            return None
        return conn

    def _timeout(self, conn: StreamProtocol, ex: Exchange, reason: str = "timeout") -> None:
        if conn.exchange is ex:
            # past max_duration the client ends it either way: a cut, even if its timer fired first
            ex.error = "cut" if self._past_deadline() else reason
            conn.abort()

    def _past_deadline(self) -> bool:
        return self._deadline_ns is not None and perf_counter_ns() >= self._deadline_ns

    def _cut(self) -> None:
        """max_duration ran out: end every exchange still in flight (classified `cut`)."""
        self._deadline_ns = perf_counter_ns()  # the loop's timer clock may run a little early
        for ex, conn in list(self._inflight.items()):
            self._timeout(conn, ex, "cut")

    # -- deferred parsing --------------------------------------------------------------------
    def _parse_one(self) -> None:
        item = self._pending.popleft()
        self._pending_bytes -= item[2].size
        if self._spill is not None and self._fold is not None:
            record = self._record(*item)
            self._fold.add(record, self._spill.write(record))
        else:
            self.records.append(self._record(*item))

    def _parse_some(self) -> None:
        self.max_pending_bytes = max(self.max_pending_bytes, self._pending_bytes)
        deadline = perf_counter_ns() + _PARSE_SLICE_NS
        while self._pending and perf_counter_ns() < deadline:
            self._parse_one()
        if self._pending:
            self.loop.call_soon(self._parse_some)
        else:
            self._parse_scheduled = False

    def _parse_backlog(self) -> None:
        """Parsing fell behind by more than `max_unparsed_bytes`: catch up to half of it now.

        The sender waits meanwhile, so the client's own limit shows as its lower throughput and
        CPU use (never as memory that grows with the run's length)."""
        self.max_pending_bytes = max(self.max_pending_bytes, self._pending_bytes)
        while self._pending and self._pending_bytes > self.s.max_unparsed_bytes // 2:
            self._parse_one()

    def _record(self, k: int, warm: bool, ex: Exchange, first_send: int | None) -> RequestRecord:
        req_in, req_out = self.s.requested[k % len(self.s.requested)]
        base = {
            "index": self.s.worker + k * self.s.workers,
            "worker": self.s.worker,
            "warmup": warm,
            "t_send_ns": ex.t_send_ns if first_send is None else first_send,
            "t_end_ns": ex.t_end_ns,
            "requested_input_tokens": req_in,
            "requested_output_tokens": req_out,
            "retried": first_send is not None,
            "t_retry_ns": None if first_send is None else ex.t_send_ns,
            "http_status": ex.status or None,
        }
        return record_from(ex, base, req_in=req_in, req_out=req_out, spec=self.s)

    # -- loop lag ------------------------------------------------------------------------------
    def _lag_tick(self) -> None:
        now = time.perf_counter()
        self._lags.append(max(0.0, now - self._expected))
        self._expected = now + _LAG_PERIOD_S
        self._lag_handle = self.loop.call_later(_LAG_PERIOD_S, self._lag_tick)

    # -- drivers ---------------------------------------------------------------------------------
    async def _slot(self) -> None:
        conn: StreamProtocol | None = self._idle.pop() if self._idle else None
        while (nxt := self._next()) is not None:
            conn = await self._request(nxt[0], nxt[1], conn)
        if conn is not None:
            conn.abort()

    async def _open_loop(self) -> None:
        s = self.s
        assert s.rate is not None
        rng = random.Random(s.seed * 7919 + s.worker)
        cap = asyncio.Semaphore(s.slots) if s.slots is not None else None
        tasks: set[asyncio.Task[None]] = set()
        t_next = time.perf_counter()
        while True:
            t_next += rng.gammavariate(s.burstiness, 1.0 / (s.rate * s.burstiness))
            await self._sleep_until(t_next)
            if cap is not None:
                await cap.acquire()
            nxt = self._next()
            if nxt is None:
                if cap is not None:
                    cap.release()
                break
            task = self.loop.create_task(self._open_request(nxt[0], nxt[1], cap, int(t_next * 1e9)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _sleep_until(self, t: float) -> None:
        """Sleep until perf_counter() time `t` (never past max_duration).

        The loop's timers are coarse (libuv: 1 ms), so the last `_SPIN_S` is spent yielding
        to the loop — I/O goes on meanwhile — rather than asleep: sends stay within a fraction
        of a millisecond of their schedule (`open_loop.send_lag_*` in the metrics)."""
        deadline = None if self._deadline_ns is None else self._deadline_ns * 1e-9
        end = t if deadline is None else min(t, deadline)
        delay = end - time.perf_counter() - _SPIN_S
        if delay > 0:
            await asyncio.sleep(delay)
        while time.perf_counter() < end:
            await asyncio.sleep(0)

    async def _open_request(
        self, k: int, warm: bool, cap: asyncio.Semaphore | None, scheduled_ns: int
    ) -> None:
        try:
            conn = await self._request(
                k, warm, self._idle.pop() if self._idle else None, scheduled_ns
            )
            if conn is not None:
                self._idle.append(conn)
        finally:
            if cap is not None:
                cap.release()

    def _drain(self) -> tuple[int, float, Folded | None]:
        """After the run: parse what is left, close the spill file and the idle connections →
        (exchanges left unparsed at the end, seconds spent parsing them, the finished fold)."""
        unparsed, t_drain = len(self._pending), time.perf_counter()
        while self._pending:
            self._parse_one()
        drain = time.perf_counter() - t_drain
        if self._spill is not None:
            self._spill.close()
        folded = None if self._fold is None else self._fold.finish()
        for conn in self._idle:
            conn.abort()
        return unparsed, drain, folded

    async def run(self, start_at_ns: int) -> WorkerOutput:
        """Wait until `start_at_ns` (perf_counter_ns clock), run the point, return the records."""
        delay = (start_at_ns - perf_counter_ns()) * 1e-9
        if delay > 0:
            await asyncio.sleep(delay)
        READS[:] = [0, 0, 0]
        gc.collect()
        gc.freeze()
        gc.disable()
        sched0, cpu0, wall0 = _schedstat(), time.process_time(), time.perf_counter()
        self._expected = time.perf_counter() + _LAG_PERIOD_S
        self._lag_handle = self.loop.call_later(_LAG_PERIOD_S, self._lag_tick)
        cut = None
        if self.s.max_duration_s is not None:  # warm-up included: the whole point is bounded
            self._deadline_ns = perf_counter_ns() + int(self.s.max_duration_s * 1e9)
            cut = self.loop.call_later(self.s.max_duration_s, self._cut)
        try:
            if self.s.rate is not None:
                await self._open_loop()
            else:
                slots = self.s.slots or 1
                await asyncio.gather(*(self._slot() for _ in range(slots)))
        finally:
            if self._lag_handle is not None:
                self._lag_handle.cancel()
            if cut is not None:
                cut.cancel()
            cpu, wall, sched1 = (
                time.process_time() - cpu0,
                time.perf_counter() - wall0,
                _schedstat(),
            )
            gc.enable()
            gc.unfreeze()
        unparsed, drain, folded = self._drain()
        wait = (sched1[1] - sched0[1]) * 1e-9 if sched0 and sched1 else None
        return WorkerOutput(
            worker=self.s.worker,
            records=self.records,
            cpu_s=cpu,
            wall_s=wall,
            runqueue_wait_s=wait,
            lags_s=self._lags,
            reads=READS[0],
            kernel_stamped_reads=READS[1],
            max_stamp_age_ns=READS[2],
            max_unparsed_bytes=self.max_pending_bytes,
            send_lags_s=self._schedule_lags,
            unparsed_at_end=unparsed,
            drain_s=drain,
            spill_path=self.s.spill_path,
            spilled=0 if self._spill is None else self._spill.count,
            folded=folded,
        )


def new_loop() -> asyncio.AbstractEventLoop:
    """A fresh event loop: uvloop when installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_in_this_thread(spec: WorkerSpec, ready: Callable[[], int]) -> WorkerOutput:
    """Prewarm, call `ready()` for the common start time, run, and close the loop."""
    loop = new_loop()
    try:
        worker = Worker(spec, loop)
        loop.run_until_complete(worker.prewarm())
        start_at = ready()
        return loop.run_until_complete(worker.run(start_at))
    finally:
        loop.close()


def process_main(spec: WorkerSpec, conn: object) -> None:
    """Entry point of a worker process: one message in (start time), one message out."""
    from multiprocessing.connection import Connection

    assert isinstance(conn, Connection)

    def ready() -> int:
        conn.send("ready")
        start: int = conn.recv()
        return start

    try:
        out = run_in_this_thread(spec, ready)
    except BaseException as exc:  # report any failure to the parent instead of dying silently
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    conn.send(("ok", out))
    conn.close()
