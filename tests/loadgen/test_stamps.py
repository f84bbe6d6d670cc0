"""The socket transport: the kernel's receive time survives a client that reads late; long
requests are written in pieces.

A server thread in this process writes the first bytes of a response while the client's event
loop is blocked; both share CLOCK_MONOTONIC, so the server's write times are the truth the
client's stamps are held to. Injected timing, so a thread server and not an engine.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from time import perf_counter_ns

import pytest

from ixci.loadgen.clock import RealtimeRate
from ixci.loadgen.http import Exchange, Target, open_connection, request_bytes

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="kernel receive stamps are Linux-only"
)

STALL_S = 0.3
# A kernel stamp is CLOCK_REALTIME; a realtime clock that is being corrected in steps (seen: a
# virtual machine stepping it 0.5 ms every 100 ms while it synced) moves within one read's age
# by up to one step more than the measured rate predicts (`RealtimeRate`).
STEP_MS = 0.6
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b'data: {"choices":[{"index":0,"text":" a","finish_reason":null}]}\n\n'


def _serve_once(listener: socket.socket, wrote: list[int], second_after_s: float) -> None:
    conn, _ = listener.accept()
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        time.sleep(0.05)  # the client is stalled by now
        wrote.append(perf_counter_ns())
        conn.sendall(HEAD + b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
        time.sleep(second_after_s)
        wrote.append(perf_counter_ns())
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENT), EVENT))
        conn.recv(1)  # until the client closes


def _exchange_with_stall(
    kernel_stamps: bool, second_after_s: float = 0.5
) -> tuple[Exchange, list[int], int]:
    """The first write lands during a STALL_S client stall; the second `second_after_s` later."""
    listener = socket.create_server(("127.0.0.1", 0))
    wrote: list[int] = []
    server = threading.Thread(
        target=_serve_once, args=(listener, wrote, second_after_s), daemon=True
    )
    server.start()
    target = Target.parse(f"http://127.0.0.1:{listener.getsockname()[1]}")

    async def go() -> tuple[Exchange, int]:
        loop = asyncio.get_running_loop()
        conn = await open_connection(loop, target, kernel_stamps=kernel_stamps)
        done: asyncio.Future[Exchange] = loop.create_future()
        conn.send(request_bytes(target, "/v1/completions", b"{}"), done.set_result)
        time.sleep(STALL_S)  # the loop is blocked while the first write arrives
        stall_end = perf_counter_ns()
        ex = await asyncio.wait_for(done, 10)
        conn.abort()
        return ex, stall_end

    try:
        ex, stall_end = asyncio.run(go())
    finally:
        listener.close()
        server.join(5)
    return ex, wrote, stall_end


def test_kernel_stamps_keep_arrival_times_through_a_client_stall() -> None:
    ex, wrote, stall_end = _exchange_with_stall(kernel_stamps=True)
    assert ex.error is None and ex.status == 200
    first_late = (ex.first_byte_ns - wrote[0]) * 1e-6
    assert -STEP_MS <= first_late < 5, (
        f"first byte stamped {first_late:.2f} ms after the server wrote it"
    )
    assert wrote[0] < stall_end < wrote[1]
    gap, truth = (ex.times[1] - ex.times[0]) * 1e-6, (wrote[1] - wrote[0]) * 1e-6
    assert len(ex.times) == 2 and abs(gap - truth) < 5, (gap, truth)


def test_client_stamps_read_late_through_the_same_stall() -> None:
    """The comparison: stamped at read time, the first arrival lands after the stall."""
    ex, wrote, stall_end = _exchange_with_stall(kernel_stamps=False)
    assert ex.error is None and ex.status == 200
    assert ex.first_byte_ns >= stall_end
    assert (ex.first_byte_ns - wrote[0]) * 1e-6 > 100  # ms; the stall is 300 ms


def test_writes_coalesced_during_a_stall_carry_the_last_arrival() -> None:
    """The limit: TCP merges segments that wait in the socket and keeps the newest stamp, so
    both writes landing in one stall read as one read stamped at the second write — later
    than the truth for the first, but still earlier than a read-time stamp."""
    ex, wrote, stall_end = _exchange_with_stall(kernel_stamps=True, second_after_s=0.05)
    assert ex.error is None and wrote[1] < stall_end
    assert len(ex.times) == 1 and ex.slack  # one read, two chunks: one block, marked late
    assert wrote[1] - STEP_MS * 1e6 <= ex.first_byte_ns < stall_end


def _slow_reader(listener: socket.socket, got: list[int]) -> None:
    conn, _ = listener.accept()
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                v
                for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            )
        )
        received = len(body)
        while received < length:
            time.sleep(0.001)  # slower than the client writes: its socket buffer fills
            received += len(conn.recv(1 << 16))
        got.append(received)
        ok = b'{"ok":1}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok))
        conn.recv(1)


def test_a_request_larger_than_the_socket_buffer_is_written_in_pieces() -> None:
    """Long prompts: send() takes part of the request, the rest goes out when writable."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[int] = []
    server = threading.Thread(target=_slow_reader, args=(listener, got), daemon=True)
    server.start()
    target = Target.parse(f"http://127.0.0.1:{listener.getsockname()[1]}")
    body = b"x" * (16 << 20)

    async def go() -> tuple[Exchange, int]:
        loop = asyncio.get_running_loop()
        conn = await open_connection(loop, target)
        done: asyncio.Future[Exchange] = loop.create_future()
        conn.send(request_bytes(target, "/v1/completions", body), done.set_result)
        assert conn.transport is not None
        pending = len(conn.transport._out)  # type: ignore[attr-defined]
        ex = await asyncio.wait_for(done, 30)
        conn.abort()
        return ex, pending

    try:
        ex, pending = asyncio.run(go())
    finally:
        listener.close()
        server.join(5)
    assert pending > 0  # the first send() did not take it all
    assert got == [len(body)]
    assert ex.error is None and ex.status == 200 and b"".join(ex.blocks) == b'{"ok":1}'


def test_the_realtime_rate_scales_kernel_ages_and_restarts_on_a_step() -> None:
    """A realtime clock running 0.5 % fast (as one being slewed or stepped into sync): an age of
    300 ms read on it is 301.5 ms, and the measured rate brings it back to 300 ms."""
    rate = RealtimeRate(min_span_ns=50_000_000, max_span_ns=10**12)
    rt0, mono0 = rate._rt0, rate._mono0
    assert rate.update(rt0 + 10_050_000, mono0 + 10_000_000) == 1.0  # span too short: no estimate
    ratio = rate.update(rt0 + 1_005_000_000, mono0 + 1_000_000_000)
    assert ratio == pytest.approx(1.005)
    assert 301_500_000 / ratio == pytest.approx(300_000_000)
    # a 1 s step of the realtime clock is no rate: the anchor restarts and the ratio is 1 again
    assert rate.update(rt0 + 3_000_000_000, mono0 + 1_100_000_000) == 1.0
    assert rate.update(rt0 + 3_000_000_000 + 100_000_000, mono0 + 1_200_000_000) == 1.0
