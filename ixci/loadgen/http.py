"""The hot path: a raw HTTP/1.1 reader that only timestamps and frames.

Each read is stamped with its arrival time, then gets just enough HTTP framing (status line,
chunked or Content-Length body) to know when the response ends, keeping each de-chunked
payload block with its arrival time. SSE/JSON parsing happens later, off the hot path
(`ixci.loadgen.sse`). Request bytes are built once, before the measurement.

Arrival times come from the kernel where it can give them: the socket has SO_TIMESTAMPNS
set and is read with recvmsg(2), whose control message carries the time the data reached
the socket. A client that is busy — hundreds of streams writing in the same millisecond, a
wave of completions to answer, a moment off the CPU — then reads late but still stamps
each read with when the bytes arrived, not when it got to them. Without a kernel stamp
(another OS, or `kernel_stamps=False`) the read is stamped with `perf_counter_ns()` as it
is taken. Kernel stamps are CLOCK_REALTIME; each is turned into the perf_counter_ns
(CLOCK_MONOTONIC) clock by its age at the read, so clock slewing cannot accumulate; the age
is scaled by the two clocks' measured rate (`RealtimeRate`), since a clock being slewed runs
up to a few per mille fast or slow (seen: 5,000 ppm on a virtual machine syncing its clock,
1.5 ms off on a 300 ms stall).

The server is untrusted: every response is held to size limits while it arrives (its bytes on
the wire, its head and chunk-size lines, and an unchunked body's longest line), and framing
that is not HTTP/1.1 (a bad status line, Content-Length or chunk size) ends the exchange at
once with a `protocol: …` error, so nothing a server sends can raise out of `feed`, grow
memory without bound, or leave the request waiting for its timeout. On a chunked stream the
cost is one subtraction and one comparison per read.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter_ns, time_ns
from typing import cast
from urllib.parse import urlsplit

from ixci.errors import UsageError
from ixci.loadgen.clock import RealtimeRate

_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _LENGTH, _UNTIL_CLOSE, _DONE = range(6)

# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in asm-generic/socket.h, used by x86-64, arm64, riscv,
# ppc and s390; Python's socket module does not export it.
_SO_TIMESTAMPNS = 35
_STAMPS = sys.platform == "linux"
_ANC_SIZE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
_READ_SIZE = 65536
_MAX_STAMP_AGE_NS = 10_000_000_000  # older than this: a clock step, not an arrival
MAX_HEAD_BYTES = 65536  # a response head (status line + headers); servers send < 1 KiB
_MAX_SIZE_LINE = 4096  # a chunk-size line ("<hex>[;ext]"); servers send < 10 bytes
_timespec = struct.Struct("qq").unpack


_RATE = RealtimeRate()
# this process's reads, those stamped by the kernel, and the oldest kernel stamp taken (ns: the
# age its conversion to perf_counter's clock spanned) — reset per run
READS = [0, 0, 0]


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where requests go: host, port and the Host header value."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Target:
        """`http://HOST:PORT[/]` → Target; `UsageError` for anything else (no TLS on this path)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(f"unsupported server URL {url!r}", hint="use http://HOST:PORT")
        if parts.path not in ("", "/"):
            raise UsageError(
                f"server URL {url!r} must not have a path", hint="use http://HOST:PORT"
            )
        return cls(host=parts.hostname, port=parts.port or 80)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def request_bytes(
    target: Target,
    path: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    close: bool = False,
) -> bytes:
    """One complete HTTP/1.1 POST request (head + JSON body), ready to write."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {target.authority}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
        "Connection: close" if close else "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Exchange:
    """One request/response on a connection: the raw timestamped payload and its outcome."""

    __slots__ = (
        "blocks",
        "close_after",
        "content_type",
        "error",
        "first_byte_ns",
        "size",
        "slack",
        "status",
        "t_end_ns",
        "t_send_ns",
        "times",
    )

    def __init__(self) -> None:
        self.t_send_ns = 0
        self.t_end_ns = 0
        self.first_byte_ns = 0
        self.size = 0  # bytes the response sent (head and framing included)
        self.status = 0
        self.content_type = b""
        self.close_after = False
        self.times: list[int] = []  # arrival time of each payload block
        self.blocks: list[bytes] = []  # de-chunked payload blocks
        # (first block, end block, ns) of each read that carried several of the server's chunks:
        # stamps there may be late by up to ns (see ixci.loadgen.timing); empty while reads are clean
        self.slack: list[tuple[int, int, int]] = []
        self.error: str | None = (
            None  # "connect" / "truncated" / "cut" / "protocol: …" (transport level)
        )


def _keep_parts(ex: Exchange, t: int, parts: list[memoryview]) -> None:
    """One read's de-chunked payload as one block (one copy of the bytes)."""
    if parts:
        ex.times.append(t)
        ex.blocks.append(b"".join(parts))


class StreamProtocol(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection carrying one exchange at a time.

    `on_done(exchange)` is called once per exchange: when the response ends, or when the
    connection is lost (with `exchange.error` set; `first_byte_ns == 0` means nothing arrived).
    """

    def __init__(self, on_lost: Callable[[StreamProtocol], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.on_done: Callable[[Exchange], None] | None = None
        self.closed = False
        self._on_lost = on_lost
        self._state = _DONE
        self._head = b""
        self._line = b""
        self._remaining = 0
        self._budget = self._limit = 0  # bytes this response may (still) send; set by `send`
        self._max_line = 0  # longest payload line allowed (unchunked bodies; see `send`)
        self._run = 0  # payload bytes since the last newline
        self._read_ns = 0  # when the previous read was taken (client clock)

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        """asyncio's entry: the data is stamped now."""
        self.feed(data, perf_counter_ns())

    def feed(self, data: bytes, t: int, now: int = 0) -> None:
        """Frame `data`, which arrived at `t` and was read at `now` (perf_counter_ns clock;
        0: at `t`).

        Never raises: whatever the server sent, a violation ends the exchange with a
        `protocol: …` error (the `except` is a last resort; it costs nothing when not taken).
        """
        ex = self.exchange
        prev, self._read_ns = self._read_ns, now or t
        if ex is None:
            return  # stray bytes between exchanges (e.g. an error page after close)
        if t < ex.t_send_ns:
            t = ex.t_send_ns  # only a clock step can put an arrival before the send
        if not ex.first_byte_ns:
            ex.first_byte_ns = t
        self._budget -= len(data)
        if self._budget < 0:
            self._fail(t, f"protocol: response over the limit of {self._limit} bytes")
            return
        try:  # free when nothing is raised (3.11+)
            if self._state == _HEAD:
                data = self._read_head(data, t)
                if self._state == _HEAD or not data:
                    if self._state == _DONE:
                        self._finish(t)
                    return
            if self._state == _CHUNK_SIZE or self._state == _CHUNK_DATA:
                first = len(ex.times)
                if self._read_chunked(data, t, ex) > 1:  # several server chunks in one read
                    self._mark_slack(ex, first, t - max(prev, ex.t_send_ns))
            elif self._state == _LENGTH:
                take = data[: self._remaining]
                self._remaining -= len(take)
                if self._keep(ex, t, take) and self._remaining <= 0:
                    self._finish(t)
            elif self._state == _UNTIL_CLOSE:
                self._keep(ex, t, data)
        except Exception as exc:  # a framing bug must not hang the request
            self._fail(t, f"protocol: unframeable response ({type(exc).__name__})")

    @staticmethod
    def _mark_slack(ex: Exchange, first: int, slack: int) -> None:
        """One read carried several server chunks: loopback TCP may have merged them while the
        client was away, stamping all with the newest one's arrival. Record the read's block
        and `slack`, the time since the connection was last read (the parser decides which
        content chunks may be late; see ixci.loadgen.timing)."""
        if slack > 0 and len(ex.times) > first:
            ex.slack.append((first, len(ex.times), slack))

    def _keep(self, ex: Exchange, t: int, block: bytes) -> bool:
        """Keep one payload block; False (exchange failed) when it makes a line too long."""
        ex.times.append(t)
        ex.blocks.append(block)
        nl = block.rfind(b"\n")
        self._run = self._run + len(block) if nl < 0 else len(block) - nl - 1
        if self._run > self._max_line:
            self._fail(
                t, f"protocol: a line of the response over the limit of {self._max_line} bytes"
            )
            return False
        return True

    def _fail(self, t: int, message: str) -> None:
        """End the exchange now with `message`; the connection cannot be reused."""
        ex = self.exchange
        if ex is not None:
            ex.error = ex.error or message
        self.closed = True
        self.abort()
        self._finish(t)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.exchange
        if ex is not None and self._state != _DONE:
            t = perf_counter_ns()
            if self._state == _UNTIL_CLOSE:
                self._finish(t)
            else:
                ex.error = ex.error or ("truncated" if ex.first_byte_ns else "connect")
                self._finish(t)
        if self._on_lost is not None:
            self._on_lost(self)

    # -- sending -----------------------------------------------------------------------
    def send(
        self,
        payload: bytes,
        on_done: Callable[[Exchange], None],
        *,
        max_bytes: int = 1 << 62,
        max_line: int = 1 << 62,
    ) -> Exchange:
        """Write `payload` now; `t_send_ns` is taken just before the write.

        The response may send at most `max_bytes` bytes (head and framing included); past that
        the exchange ends with a `protocol: …` error. An unchunked body is also held to
        `max_line` bytes per line here; a chunked one (every engine's stream) is held to it by
        the parser (`sse.parse_stream`), which costs the hot path nothing — memory is bounded
        by `max_bytes` either way.
        """
        ex = Exchange()
        self.exchange = ex
        self.on_done = on_done
        self._state = _HEAD
        self._head = b""
        self._budget = self._limit = max_bytes
        self._max_line = max_line
        self._run = 0
        assert self.transport is not None
        ex.t_send_ns = perf_counter_ns()
        self.transport.write(payload)
        return ex

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- framing -----------------------------------------------------------------------
    def _read_head(self, data: bytes, t: int) -> bytes:
        buf = (self._head + data).lstrip(b"\r\n")  # a late CRLF ending the last response
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._head = buf
            if len(buf) > MAX_HEAD_BYTES:
                self._fail(t, f"protocol: response head over {MAX_HEAD_BYTES} bytes")
            return b""
        head, rest = buf[:end], buf[end + 4 :]
        self._head = b""
        ex = self.exchange
        assert ex is not None
        lines = head.split(b"\r\n")
        status = _status(lines[0])
        if status is None or end > MAX_HEAD_BYTES:
            what = (
                "bad status line " + lines[0][:80].decode("latin-1")
                if status is None
                else "head too long"
            )
            self._fail(t, "protocol: " + what)
            return b""
        ex.status = status
        framing = self._headers(lines[1:], ex, t)
        if framing is None:
            return b""
        chunked, length = framing
        if lines[0].startswith(b"HTTP/1.0"):
            ex.close_after = True
        if chunked:
            self._state, self._line = _CHUNK_SIZE, b""
        elif length >= 0:
            if length > self._budget:
                self._fail(
                    t, f"protocol: Content-Length {length} over the limit of {self._limit} bytes"
                )
                return b""
            self._state, self._remaining = _LENGTH, length
            if length == 0:
                self._state = _DONE
        else:
            self._state = _UNTIL_CLOSE
            ex.close_after = True
        return rest

    def _headers(self, lines: list[bytes], ex: Exchange, t: int) -> tuple[bool, int] | None:
        """(chunked?, Content-Length or -1) from the header lines; None after a failure."""
        chunked, length = False, -1
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"content-length":
                # RFC 9112 §6.3: digits only, and repeated values must agree
                if not value.isdigit() or len(value) > 18 or (length >= 0 and int(value) != length):
                    self._fail(t, "protocol: bad Content-Length " + value[:40].decode("latin-1"))
                    return None
                length = int(value)
            elif name == b"connection" and value.lower() == b"close":
                ex.close_after = True
            elif name == b"content-type":
                ex.content_type = value[:200]
        return chunked, length

    def _read_chunked(self, data: bytes, t: int, ex: Exchange) -> int:
        """De-chunk one read into one payload block (however many server chunks it carried)
        → how many chunks gave it data."""
        pos, n = 0, len(data)
        view, parts = memoryview(data), []
        while pos < n:
            if self._state == _CHUNK_DATA:
                end = min(n, pos + self._remaining)
                if end > pos:
                    parts.append(view[pos:end])
                self._remaining -= end - pos
                pos = end
                if self._remaining == 0:
                    self._state = _CHUNK_SIZE
                continue
            # _CHUNK_SIZE: "<hex>[;ext]\r\n", possibly preceded by the previous chunk's CRLF
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._line += data[pos:]
                if len(self._line) > _MAX_SIZE_LINE:
                    self._fail(t, "protocol: chunk-size line too long")
                    return 0
                break
            line = (self._line + data[pos:nl]).strip()
            self._line = b""
            pos = nl + 1
            if not line:
                continue  # the CRLF that closes a chunk's data
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                size = -1
            if size < 0 or size > self._budget:  # int() takes "-5": a negative size walks back
                why = "bad chunk size" if size < 0 else f"chunk of {size} bytes over the limit"
                self._fail(t, "protocol: " + why)
                return 0
            if size == 0:
                _keep_parts(ex, t, parts)
                self._finish(t)  # trailers (never used by these servers) are ignored
                return len(parts)
            self._state, self._remaining = _CHUNK_DATA, size
        _keep_parts(ex, t, parts)
        return len(parts)

    def _finish(self, t: int) -> None:
        ex = self.exchange
        self._state = _DONE
        if ex is None:
            return
        ex.t_end_ns = t
        ex.size = self._limit - self._budget
        self.exchange = None
        cb, self.on_done = self.on_done, None
        if ex.close_after and self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()
        if cb is not None:
            cb(ex)


def _status(line: bytes) -> int | None:
    """The status code of an HTTP/1.x status line, or None when it is not one."""
    parts = line.split(b" ", 2)
    if (
        len(parts) < 2
        or not parts[0].startswith(b"HTTP/1.")
        or len(parts[1]) != 3
        or not parts[1].isdigit()
    ):
        return None
    return int(parts[1])


class SocketTransport:
    """A minimal transport over a non-blocking socket, read with recvmsg(2) for its stamps.

    Implements what `StreamProtocol` uses of `asyncio.Transport` (write, close, abort,
    is_closing, get_extra_info); `connection_lost` is called once, from the loop.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        proto: StreamProtocol,
        *,
        stamps: bool,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._proto = proto
        self._out = b""
        self._closing = False
        self._lost = False
        self._anc = _ANC_SIZE if stamps else 0
        self.kernel_stamps = stamps
        proto.connection_made(cast(asyncio.BaseTransport, self))
        loop.add_reader(self._fd, self._read)

    def _read(self) -> None:
        try:
            data, anc, _, _ = self._sock.recvmsg(_READ_SIZE, self._anc)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._connection_lost(exc)
            return
        if not data:
            self._connection_lost(None)
            return
        rt = time_ns()  # realtime first: a preemption here only makes the stamp later
        now = t = perf_counter_ns()
        READS[0] += 1
        if anc:
            sec, nsec = _timespec(anc[0][2])
            age = rt - (sec * 1_000_000_000 + nsec)
            if 0 <= age < _MAX_STAMP_AGE_NS:
                t -= int(age / _RATE.update(rt, now))
                READS[1] += 1
                if age > READS[2]:
                    READS[2] = age
        self._proto.feed(data, t, now)

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._connection_lost(exc)
            return
        if sent < len(data):
            self._out = data[sent:]
            self._loop.add_writer(self._fd, self._flush)

    def _flush(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._connection_lost(exc)
            return
        self._out = self._out[sent:]
        if not self._out:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._connection_lost(None)

    def close(self) -> None:
        """Close after the pending output is written."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._out:
            self._connection_lost(None)

    def abort(self) -> None:
        """Close now, discarding pending output."""
        self._closing = True
        self._connection_lost(None)

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._sock if name == "socket" else default

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._out:
            self._loop.remove_writer(self._fd)
            self._out = b""
        self._sock.close()
        self._loop.call_soon(self._proto.connection_lost, exc)


def _stamped_socket(family: int, kernel_stamps: bool) -> tuple[socket.socket, bool]:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stamps = kernel_stamps and _STAMPS and _ANC_SIZE > 0
    if stamps:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            stamps = False
    return sock, stamps


_resolved: dict[tuple[str, int], tuple[int, tuple[object, ...]]] = {}


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    target: Target,
    on_lost: Callable[[StreamProtocol], None] | None = None,
    *,
    kernel_stamps: bool = True,
) -> StreamProtocol:
    """Connect a new `StreamProtocol` to `target` (raises OSError on failure).

    With `kernel_stamps` (Linux), reads are stamped by the kernel's receive time.
    """
    key = (target.host, target.port)
    if key not in _resolved:  # resolved once per process, not per connection
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(errno.EHOSTUNREACH, f"cannot resolve {target.host}")
        _resolved[key] = (infos[0][0], infos[0][4])
    family, address = _resolved[key]
    sock, stamps = _stamped_socket(family, kernel_stamps)
    try:
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    proto = StreamProtocol(on_lost)
    SocketTransport(loop, sock, proto, stamps=stamps)
    return proto
