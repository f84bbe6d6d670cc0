#!/usr/bin/env python3
"""A server that answers completion requests with one exact hostile response (a real process).

Usage: hostile_server.py MODE [--every N] [--port P]. Prints ``READY <port>`` once listening.
Every N-th completion request (counted from 1; default every one) gets the MODE response,
the others a well-formed stream of `max_tokens` one-token events with usage and [DONE].
GET /health answers 200 (so a runner's health probe sees a live server).

The modes are the table in `MODES`; each writes raw bytes to the socket, so the fault is
exactly what the test names (no HTTP library in between to tidy it up). Writers that stream
forever stop when the client closes the connection.
"""

from __future__ import annotations

import argparse
import itertools
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable

SSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
CHUNKED = SSE + b"Transfer-Encoding: chunked\r\n\r\n"
EVENT = b'data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":" tok","finish_reason":null}]}\n\n'
DONE = b"data: [DONE]\n\n"
MAX_TOKENS = re.compile(rb'"max(?:_completion)?_tokens"\s*:\s*(\d+)')
MB = 1 << 20


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def usage(completion: object, prompt: object = 4) -> bytes:
    return b'data: {"choices":[],"usage":{"prompt_tokens":%s,"completion_tokens":%s}}\n\n' % (
        str(prompt).encode(),
        str(completion).encode(),
    )


def normal(n: int) -> bytes:
    return CHUNKED + chunk(EVENT * n + usage(n) + DONE) + b"0\r\n\r\n"


def sized(body: bytes, ctype: bytes = b"text/event-stream") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        ctype,
        len(body),
        body,
    )


def forever(
    sock: socket.socket, first: bytes, piece: bytes, pause: float = 0.0, limit: int | None = None
) -> None:
    """Write `first`, then `piece` again and again (until `limit` bytes, or the client goes)."""
    sock.sendall(first)
    for sent in itertools.count():
        if limit is not None and sent * len(piece) >= limit:
            return
        sock.sendall(piece)
        if pause:
            time.sleep(pause)


def silent(sock: socket.socket) -> None:
    """Never answer; return when the client closes."""
    while sock.recv(65536):
        pass


Writer = Callable[[socket.socket, int], None]


def _static(data: bytes) -> Writer:
    return lambda sock, n: sock.sendall(data)


def _held(data: bytes) -> Writer:
    """Send `data` and keep the connection open (a keep-alive server): a client that cannot
    frame the response must notice by itself, not wait for its timeout."""

    def write(sock: socket.socket, n: int) -> None:
        sock.sendall(data)
        silent(sock)

    return write


MODES: dict[str, Writer] = {
    "ok": lambda sock, n: sock.sendall(normal(n)),
    # sizes and time
    "endless-stream": lambda sock, n: forever(sock, CHUNKED, chunk(EVENT * 64)),
    "long-line": lambda sock, n: forever(sock, SSE + b"\r\ndata: ", b"x" * MB, limit=100 * MB),
    "long-line-chunked": lambda sock, n: forever(
        sock, CHUNKED + chunk(b"data: "), chunk(b"x" * MB), limit=100 * MB
    ),
    "trickle": lambda sock, n: forever(sock, CHUNKED, b"1\r\nx\r\n", pause=0.05),
    "silent": lambda sock, n: silent(sock),
    "endless-head": lambda sock, n: forever(
        sock, b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"a" * 1000 + b"\r\n"
    ),
    "huge-content-length": _static(
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n" + EVENT
    ),
    # HTTP framing
    "bad-content-length": _held(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n" + EVENT),
    "negative-content-length": _held(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n" + EVENT),
    "conflicting-content-length": _held(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n" + EVENT
    ),
    "bad-status-line": _held(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
    "bad-chunk-size": _held(CHUNKED + b"zz\r\n" + EVENT + b"\r\n0\r\n\r\n"),
    "negative-chunk-size": _held(CHUNKED + b"-5\r\n" + EVENT + b"\r\n0\r\n\r\n"),
    "endless-chunk-size-line": lambda sock, n: forever(sock, CHUNKED, b"0" * 65536),
    # the payload
    "invalid-utf8": _static(
        CHUNKED + chunk(b'data: {"choices":[{"text":"\xff\xfe tok"}]}\n\n' + DONE) + b"0\r\n\r\n"
    ),
    "garbage-sse": _static(CHUNKED + chunk(bytes(range(256)) * 8) + b"0\r\n\r\n"),
    "non-json-200": _static(sized(b"<html><body>hello</body></html>", b"text/html")),
    "data-not-json": _static(CHUNKED + chunk(b"data: {not json at all\n\n" + DONE) + b"0\r\n\r\n"),
    "usage-negative": lambda sock, n: sock.sendall(
        CHUNKED + chunk(EVENT * n + usage(-5) + DONE) + b"0\r\n\r\n"
    ),
    "usage-huge": lambda sock, n: sock.sendall(
        CHUNKED + chunk(EVENT * n + usage(10**30) + DONE) + b"0\r\n\r\n"
    ),
    "usage-impossible": lambda sock, n: sock.sendall(
        CHUNKED + chunk(EVENT * n + usage(10**6) + DONE) + b"0\r\n\r\n"
    ),
    "usage-string": lambda sock, n: sock.sendall(
        CHUNKED + chunk(EVENT * n + usage('"8"') + DONE) + b"0\r\n\r\n"
    ),
    "many-empty-events": lambda sock, n: forever(sock, CHUNKED, chunk(b"data: {}\n\n" * 4096)),
    # cut short: 5 of the requested tokens
    "until-close-short": _static(SSE + b"\r\n" + EVENT * 5),  # no length, no chunking, closes
    "short-no-done": _static(CHUNKED + chunk(EVENT * 5) + b"0\r\n\r\n"),  # ends cleanly, no [DONE]
    "short-with-done": _static(CHUNKED + chunk(EVENT * 5 + usage(5) + DONE) + b"0\r\n\r\n"),
}


class Handler(socketserver.BaseRequestHandler):
    counter = itertools.count(1)
    lock = threading.Lock()

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = (
                    int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                    if b"ength:" in head
                    else 0
                )
                while len(buf) < length:
                    buf += sock.recv(65536)
                body, buf = buf[:length], buf[length:]
                if not self.answer(sock, head, body):
                    return
        except (BrokenPipeError, ConnectionResetError):
            return

    def answer(self, sock: socket.socket, head: bytes, body: bytes) -> bool:
        """Answer one request; False when the connection must close."""
        if head.startswith(b"GET"):
            sock.sendall(sized(b'{"status":"ok"}', b"application/json"))
            return True
        found = MAX_TOKENS.search(body)
        n = int(found.group(1)) if found else 8
        with self.lock:
            k = next(self.counter)
        server: Server = self.server  # type: ignore[assignment]
        if server.mode == "ok" or k % server.every:
            sock.sendall(normal(n))
            return True
        MODES[server.mode](sock, n)
        return False


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, mode: str, every: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.mode, self.every = mode, every


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with Server(args.port, args.mode, args.every) as server:
        print(f"READY {server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
