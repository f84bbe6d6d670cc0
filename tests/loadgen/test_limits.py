"""Size limits, linear parsing, --max-duration against any server, and the runner's verdict.

The fault servers are real processes: `hostile_server.py` (exact injected responses) and the
stub (`perf/loadgen/stub_server.py`, well-formed streams). The full table of hostile responses
is tests/hostile/test_server_responses.py; these are the defects one by one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from ixci.errors import JobFailure, ServerCrashed
from ixci.loadgen import PointConfig, get_dialect, run_point
from ixci.loadgen.http import Exchange, StreamProtocol
from ixci.loadgen.sse import parse_stream

pytestmark = pytest.mark.timeout(120)

FAST = ["--ttft-ms", "5", "--itl-ms", "1"]


def cfg(url: str, **kw: object) -> PointConfig:
    base: dict[str, object] = dict(
        url=url,
        model="m",
        isl=8,
        osl=8,
        concurrency=2,
        num_requests=4,
        warmup_requests=0,
        workers=1,
    )
    base.update(kw)
    return PointConfig(**base)  # type: ignore[arg-type]


# -- linear-time SSE parsing ---------------------------------------------------------------


def _one_line_exchange(size: int) -> Exchange:
    """A response whose one content event is `size` bytes long, read in 64 KiB blocks."""
    body = b'data: {"choices":[{"text":"' + b"x" * size + b'"}]}\n\n'
    ex = Exchange()
    ex.status = 200
    ex.blocks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    ex.times = list(range(1, len(ex.blocks) + 1))
    return ex


def _parse_seconds(ex: Exchange) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        parsed = parse_stream(ex)
        best = min(best, time.perf_counter() - t0)
        assert parsed.chunk_times_ns == [len(ex.blocks)] and parsed.error_kind is None
    return best


def test_sse_parse_time_grows_linearly_with_line_length() -> None:
    """1, 4 and 16 MB lines: 16x the bytes may cost at most ~40x the time (quadratic: 256x)."""
    t1, t4, t16 = (_parse_seconds(_one_line_exchange(mb << 20)) for mb in (1, 4, 16))
    assert t4 / t1 < 10 and t16 / t1 < 40, (t1, t4, t16)


# -- HTTP framing: violations end the exchange at once, never raise ----------------------------


class _Sink:
    """A stand-in transport for feeding bytes straight into a StreamProtocol."""

    def __init__(self) -> None:
        self.aborted = False

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _feed(
    *pieces: bytes, max_bytes: int = 1 << 30, max_line: int = 1 << 30
) -> tuple[Exchange, bool]:
    proto = StreamProtocol()
    sink = _Sink()
    proto.transport = sink  # type: ignore[assignment]
    done: list[Exchange] = []
    proto.send(b"GET / HTTP/1.1\r\n\r\n", done.append, max_bytes=max_bytes, max_line=max_line)
    for piece in pieces:
        proto.feed(piece, 1)
    return (done[0] if done else Exchange()), sink.aborted


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        ((b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\ndata",), "bad Content-Length"),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\ndata",), "bad Content-Length"),
        ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc",), "bad chunk size"),
        ((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",), "bad chunk size"),
        (
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"7" * 40 + b"\r\n",),
            "over the limit",
        ),
        ((b"HTTP/1.1 2x0 OK\r\n\r\n",), "bad status line"),
        ((b"HTTP/1.1 200 OK\r\n", b"X: " + b"a" * 70000), "head over"),
    ],
)
def test_bad_framing_ends_the_exchange_at_once(pieces: tuple[bytes, ...], why: str) -> None:
    ex, aborted = _feed(*pieces)
    assert ex.error is not None and ex.error.startswith("protocol: ") and why in ex.error, ex.error
    assert aborted  # the connection is not reused after a violation


def test_response_and_line_limits_cut_while_the_bytes_arrive() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    ex, _ = _feed(head, b"data: " + b"x" * 5000, max_line=4096)
    assert ex.error is not None and "line of the response over the limit of 4096" in ex.error
    assert sum(map(len, ex.blocks)) < 8192  # nothing kept past the limit
    ex, _ = _feed(head, *[b"data: {}\n\n" * 100] * 50, max_bytes=10_000)
    assert ex.error is not None and "response over the limit of 10000 bytes" in ex.error
    ok, aborted = _feed(
        head.replace(b"\r\n\r\n", b"\r\nContent-Length: 10\r\n\r\n"), b"data: x\n\n\n"
    )
    assert ok.error is None and not aborted and b"".join(ok.blocks) == b"data: x\n\n\n"


def test_default_limits_are_far_above_real_streams() -> None:
    """A real engine's token event is ~150-300 bytes (logprobs top-20: ~3 KB)."""
    from ixci.loadgen.config import MAX_LINE_BYTES, RESPONSE_BASE_BYTES, RESPONSE_BYTES_PER_TOKEN

    assert MAX_LINE_BYTES >= 1 << 20
    assert RESPONSE_BYTES_PER_TOKEN >= 5 * 3000 and RESPONSE_BASE_BYTES >= 1 << 20
    assert (
        cfg("http://h:1").response_limit(1024)
        == RESPONSE_BASE_BYTES + 1024 * RESPONSE_BYTES_PER_TOKEN
    )
    assert cfg("http://h:1", max_response_bytes=5000).response_limit(1024) == 5000


# -- through the client, against real servers --------------------------------------------------


def test_limits_are_configurable_and_normal_streams_pass_the_defaults(stub: Callable) -> None:
    s = stub(*FAST)
    ok = run_point(cfg(s.url, osl=64), dialect=get_dialect("vllm"))
    assert ok.metrics["completed"] == 4 and ok.metrics["errors"] == {}
    # 64 events of ~130 bytes each cannot fit in 2 KiB
    small = run_point(cfg(s.url, osl=64, max_response_bytes=2048), dialect=get_dialect("vllm"))
    assert small.metrics["errors"] == {"protocol": 4}


def test_100mb_line_is_cut_by_the_limit_quickly(hostile: Callable) -> None:
    url = hostile("long-line")
    t0 = time.monotonic()
    r = run_point(cfg(url, request_timeout_s=60.0), dialect=get_dialect("openai"))
    assert r.metrics["errors"] == {"protocol": 4}
    assert time.monotonic() - t0 < 20  # was: 100 MB read whole, then parsed in quadratic time


def test_bad_content_length_fails_at_once_not_at_the_timeout(hostile: Callable) -> None:
    url = hostile("bad-content-length")
    t0 = time.monotonic()
    r = run_point(cfg(url, request_timeout_s=60.0), dialect=get_dialect("openai"))
    assert r.metrics["errors"] == {"protocol": 4}
    assert time.monotonic() - t0 < 10  # was: an uncaught ValueError, then the 60 s timeout


@pytest.mark.parametrize("mode", ["silent", "trickle", "endless-stream"])
def test_max_duration_ends_the_point_against_any_server(hostile: Callable, mode: str) -> None:
    """Never answers, trickles, streams forever (with the response limit lifted): the point ends
    within a bounded margin of --max-duration and the requests in flight are counted as `cut`."""
    url = hostile(mode)
    lifted = (
        {"max_response_bytes": 1 << 40, "max_line_bytes": 1 << 40}
        if mode == "endless-stream"
        else {}
    )
    t0 = time.monotonic()
    r = run_point(cfg(url, max_duration_s=2.0, request_timeout_s=600.0, num_requests=10, **lifted),
                  dialect=get_dialect("openai"))  # fmt: skip
    took = time.monotonic() - t0
    assert r.metrics["errors"] == {"cut": 2} and r.metrics["completed"] == 0
    assert took < 2.0 + 5.0, f"{took:.1f} s"
    # the invalid point says why it ran short and what to change
    (why,) = [x for x in r.invalid_reasons if x.startswith("max-duration 2 s ran out")]
    assert "2 measured and 0 warm-up requests cut" in why and "max-duration-s" in why


def test_max_duration_bounds_the_open_loop_wait(stub: Callable) -> None:
    """A long arrival gap must not carry the point past --max-duration."""
    s = stub(*FAST)
    t0 = time.monotonic()
    run_point(cfg(s.url, concurrency=None, request_rate=0.05, num_requests=5, max_duration_s=1.5),
              dialect=get_dialect("vllm"))  # fmt: skip
    assert time.monotonic() - t0 < 1.5 + 5.0


def test_some_hostile_responses_do_not_spoil_the_others(hostile: Callable) -> None:
    url = hostile("usage-negative", "--every", "3")
    r = run_point(cfg(url, concurrency=1, num_requests=9), dialect=get_dialect("vllm"))
    assert r.metrics["errors"] == {"protocol": 3} and r.metrics["completed"] == 6
    assert r.metrics["total_output_tokens"] == 6 * 8


# -- run-job: an overrunning client is not an engine crash -----------------------------------


def _watch_after_deadline(base_url: str) -> Callable[[], None]:
    from ixci.run.runner import JobRun

    run = JobRun.__new__(JobRun)  # only what `_watch` reads
    run.cancel = threading.Event()
    run.deployment = None
    run.opts = SimpleNamespace(point_slack_s=0.0, probe_interval_s=2.0, hang_probes=3)  # type: ignore[assignment]
    run.serve = SimpleNamespace(base_url=base_url, health_path="/health")  # type: ignore[assignment]
    point = SimpleNamespace(id="p1", max_duration_s=0.0)
    watch = run._watch(point)  # type: ignore[arg-type]
    time.sleep(0.01)
    return watch


def test_overrun_with_a_healthy_server_is_not_blamed_on_the_engine(
    hostile: Callable, free_port: int
) -> None:
    watch = _watch_after_deadline(hostile("endless-stream"))  # answers GET /health with 200
    with pytest.raises(JobFailure) as got:
        watch()
    assert not isinstance(got.value, ServerCrashed) and got.value.failure_class == "internal"
    assert "load generator overran" in got.value.message
    dead = _watch_after_deadline(f"http://127.0.0.1:{free_port}")  # nothing listens: still a crash
    with pytest.raises(ServerCrashed):
        dead()


def test_a_chunked_stream_line_over_the_limit_fails_in_the_parser() -> None:
    ex = _one_line_exchange(3 << 20)
    assert parse_stream(ex).error_kind is None
    bad = parse_stream(ex, max_line=1 << 20)
    assert bad.error_kind == "protocol" and bad.error is not None and "line limit" in bad.error


# -- the minimum duration, met on the window the verdict measures ---------------------------


def test_min_duration_is_met_on_the_measured_window_not_on_the_issue_clock(stub: Callable) -> None:
    """The client stops sending once the minimum duration has passed; the verdict measures it
    from the first measured send to the last completion. With the issue clock (started at the
    first measured issue, read just after a completion) the two disagreed by microseconds, and a
    point whose last completion fell in that gap was `invalid` ("measured 15.0 s < minimum
    15.0 s"): at ~1 ms per request, one point in a few. Forty such points must all be valid."""
    s = stub("--ttft-ms", "0", "--itl-ms", "0")
    reasons = []
    for _ in range(40):
        r = run_point(
            cfg(s.url, osl=1, concurrency=1, num_requests=1, min_duration_s=0.01),
            dialect=get_dialect("vllm"),
        )
        if r.invalid_reasons or r.metrics["duration_s"] < 0.01:
            reasons.append((r.metrics["duration_s"], r.invalid_reasons))
    assert not reasons, reasons


def test_open_loop_gets_a_worker_per_ten_thousand_streamed_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One worker saturated at 1,000 req/s of 64 one-token chunks (perf/loadgen/README.md, open
    loop): the automatic count follows rate × OSL, not only the request rate."""
    from ixci.loadgen import run

    monkeypatch.setattr(run, "available_cpus", lambda: 16)

    def workers(rate: float | None, osl: int, concurrency: int | None = None) -> int:
        return run.auto_workers(PointConfig(url="http://127.0.0.1:1", model="m", isl=8, osl=osl,
                                            concurrency=concurrency, request_rate=rate,
                                            num_requests=10))  # fmt: skip

    assert workers(100, 64) == 1
    assert workers(1000, 64) == 7
    assert workers(2000, 64) == 13
    assert workers(4000, 8) == 4  # 32,000 chunks/s; 2 by the request rate alone
    assert workers(10_000, 1024) == 16  # at most one per CPU
    assert workers(None, 1024, concurrency=1024) == 4  # closed loop: one per 256 slots
