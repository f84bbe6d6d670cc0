"""The hot path: a raw HTTP/1.1 `asyncio.Protocol` that only timestamps and frames.

`data_received` takes `time.perf_counter_ns()` first, then does just enough HTTP framing
(status line, chunked or Content-Length body) to know when the response ends, keeping each
de-chunked payload block with its arrival time. SSE/JSON parsing happens later, off the hot
path (`ixci.loadgen.sse`). Request bytes are built once, before the measurement.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter_ns
from typing import cast
from urllib.parse import urlsplit

from ixci.errors import UsageError

_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _LENGTH, _UNTIL_CLOSE, _DONE = range(6)


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
            raise UsageError(f"server URL {url!r} must not have a path", hint="use http://HOST:PORT")
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
        "status",
        "t_end_ns",
        "t_send_ns",
        "times",
    )

    def __init__(self) -> None:
        self.t_send_ns = 0
        self.t_end_ns = 0
        self.first_byte_ns = 0
        self.status = 0
        self.content_type = b""
        self.close_after = False
        self.times: list[int] = []  # arrival time of each payload block
        self.blocks: list[bytes] = []  # de-chunked payload blocks
        self.error: str | None = None  # "connect" / "truncated" / "protocol: …" (transport level)


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

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        t = perf_counter_ns()  # first, before any work: the arrival time
        ex = self.exchange
        if ex is None:
            return  # stray bytes between exchanges (e.g. an error page after close)
        if not ex.first_byte_ns:
            ex.first_byte_ns = t
        if self._state == _HEAD:
            data = self._read_head(data)
            if self._state == _HEAD or not data:
                if self._state == _DONE:
                    self._finish(t)
                return
        if self._state == _CHUNK_SIZE or self._state == _CHUNK_DATA:
            self._read_chunked(data, t, ex)
        elif self._state == _LENGTH:
            take = data[: self._remaining]
            self._remaining -= len(take)
            ex.times.append(t)
            ex.blocks.append(take)
            if self._remaining <= 0:
                self._finish(t)
        elif self._state == _UNTIL_CLOSE:
            ex.times.append(t)
            ex.blocks.append(data)

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
    def send(self, payload: bytes, on_done: Callable[[Exchange], None]) -> Exchange:
        """Write `payload` now; `t_send_ns` is taken just before the write."""
        ex = Exchange()
        self.exchange = ex
        self.on_done = on_done
        self._state = _HEAD
        self._head = b""
        assert self.transport is not None
        ex.t_send_ns = perf_counter_ns()
        self.transport.write(payload)
        return ex

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- framing -----------------------------------------------------------------------
    def _read_head(self, data: bytes) -> bytes:
        buf = (self._head + data).lstrip(b"\r\n")  # a late CRLF ending the last response
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._head = buf
            return b""
        head, rest = buf[:end], buf[end + 4 :]
        self._head = b""
        ex = self.exchange
        assert ex is not None
        lines = head.split(b"\r\n")
        try:
            ex.status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            ex.error = "protocol: bad status line " + lines[0][:80].decode("latin-1")
            self._state = _DONE
            self.closed = True
            self.abort()
            return b""
        chunked, length = False, -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.lower() == b"close":
                ex.close_after = True
            elif name == b"content-type":
                ex.content_type = value
        if lines[0].startswith(b"HTTP/1.0"):
            ex.close_after = True
        if chunked:
            self._state, self._line = _CHUNK_SIZE, b""
        elif length >= 0:
            self._state, self._remaining = _LENGTH, length
            if length == 0:
                self._state = _DONE
        else:
            self._state = _UNTIL_CLOSE
            ex.close_after = True
        return rest

    def _read_chunked(self, data: bytes, t: int, ex: Exchange) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._state == _CHUNK_DATA:
                end = min(n, pos + self._remaining)
                if end > pos:
                    ex.times.append(t)
                    ex.blocks.append(data[pos:end])
                self._remaining -= end - pos
                pos = end
                if self._remaining == 0:
                    self._state = _CHUNK_SIZE
                continue
            # _CHUNK_SIZE: "<hex>[;ext]\r\n", possibly preceded by the previous chunk's CRLF
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._line += data[pos:]
                return
            line = (self._line + data[pos:nl]).strip()
            self._line = b""
            pos = nl + 1
            if not line:
                continue  # the CRLF that closes a chunk's data
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                ex.error = "protocol: bad chunk size"
                self.closed = True
                self.abort()
                self._finish(t)
                return
            if size == 0:
                self._finish(t)  # trailers (never used by these servers) are ignored
                return
            self._state, self._remaining = _CHUNK_DATA, size

    def _finish(self, t: int) -> None:
        ex = self.exchange
        self._state = _DONE
        if ex is None:
            return
        ex.t_end_ns = t
        self.exchange = None
        cb, self.on_done = self.on_done, None
        if ex.close_after and self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()
        if cb is not None:
            cb(ex)


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    target: Target,
    on_lost: Callable[[StreamProtocol], None] | None = None,
) -> StreamProtocol:
    """Connect a new `StreamProtocol` to `target` (raises OSError on failure)."""
    _, proto = await loop.create_connection(
        lambda: StreamProtocol(on_lost), target.host, target.port
    )
    return proto
