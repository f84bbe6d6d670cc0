#!/usr/bin/env python3
"""A streaming OpenAI-compatible stub server that records ground truth at write time.

Used by `perf/loadgen/bench.py` (the side-by-side benchmark) and by `tests/loadgen` (fault
injection, dialect shapes). It answers POST /v1/completions and /v1/chat/completions with an
SSE stream of `max_tokens` one-token events (" tok"), `--events-per-write` events per HTTP
chunk, the first after `--ttft-ms` and then one write every `--itl-ms` (0: as fast as it can).
It counts prompt tokens as whitespace-separated words. GET /truth returns what it wrote
(per-request TTFT and write gaps measured with perf_counter_ns just before each write) and
POST /reset clears it. /tokenize and /detokenize follow llama.cpp's shapes (one word = one token).

Faults (`--fault KIND --fault-every N`: every N-th request, counted from 1):
  drop         close the connection (RST) right after reading the request, before any byte
  cut          abort the connection after `--fault-after` tokens (truncated stream)
  http500      answer HTTP 500 with a JSON error body
  slow         wait `--slow-s` seconds before the first byte
  error-event  send an SSE error event after `--fault-after` tokens, then end the stream
  keepalive    after a complete response, silently close the idle connection (llama.cpp-like)
Dialect switches: --no-done (no `data: [DONE]`), --no-usage, --reject-unknown (HTTP 422 on
ignore_eos/min_tokens, like `transformers serve`), --sse-crlf (CRLF line endings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
from time import perf_counter_ns

OPENAI_FIELDS = {
    "model",
    "prompt",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "user",
}


MAX_TOKENS = re.compile(rb'"max(?:_completion)?_tokens"\s*:\s*(\d+)')
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


class Truth:
    def __init__(self) -> None:
        self.ttft_ns: list[int] = []
        self.gaps_ns: list[int] = []
        self.tokens = 0
        self.requests = 0

    def summary(self) -> dict[str, object]:
        def stats(xs: list[int]) -> dict[str, float] | None:
            if not xs:
                return None
            s = sorted(xs)

            def pct(q: float) -> float:
                k = (len(s) - 1) * q / 100
                lo = int(k)
                hi = min(lo + 1, len(s) - 1)
                return (s[lo] + (s[hi] - s[lo]) * (k - lo)) * 1e-9

            return {
                "mean": statistics.fmean(s) * 1e-9,
                "median": pct(50),
                "p99": pct(99),
                "n": len(s),
            }

        return {
            "requests": self.requests,
            "tokens": self.tokens,
            "ttft": stats(self.ttft_ns),
            "itl": stats(self.gaps_ns),
        }


class Options:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.__dict__.update(vars(ns))


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Handler(asyncio.Protocol):
    counter = 0

    def __init__(self, opts: Options, truth: Truth, vocab: dict[str, int]) -> None:
        self.o = opts
        self.truth = truth
        self.vocab = vocab
        self.buf = b""
        self.t: asyncio.Transport | None = None
        self.busy = False
        self.doomed = False  # a keep-alive connection the server has decided to drop
        self.t_recv: int | None = None  # arrival of the first byte of the request being read
        self.scheduled = False
        self.loop = asyncio.get_running_loop()
        sep = b"\r\n\r\n" if opts.sse_crlf else b"\n\n"
        self.sep = sep

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        # Timestamp first and parse later (as the client does): with hundreds of requests
        # arriving together, parsing each before reading the next socket would stamp the later
        # ones late and make the truth itself wrong.
        if self.t_recv is None:
            self.t_recv = perf_counter_ns()
        self.buf += data
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.process)

    def process(self) -> None:
        self.scheduled = False
        while not self.busy and self.t_recv is not None:
            t_recv = self.t_recv
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            self.t_recv = perf_counter_ns() if self.buf else None  # a pipelined request: now
            method, path = head.split(" ", 2)[:2]
            self.handle(method, path, body, t_recv)

    # -- routes --------------------------------------------------------------------------
    def reply(self, status: int, obj: object, reason: str = "OK") -> None:
        body = json.dumps(obj).encode()
        assert self.t is not None
        self.t.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(body), body)
        )

    def handle(self, method: str, path: str, body: bytes, t_recv: int) -> None:
        if method == "GET" and path == "/truth":
            return self.reply(200, self.truth.summary())
        if method == "POST" and path == "/reset":
            self.truth.__init__()  # type: ignore[misc]
            Handler.counter = 0
            return self.reply(200, {"ok": True})
        if method == "GET" and path in ("/health", "/v1/models"):
            return self.reply(200, {"status": "ok", "data": [{"id": "stub"}]})
        if path == "/tokenize":
            words = json.loads(body).get("content", "").split()
            return self.reply(
                200, {"tokens": [self.vocab.setdefault(w, len(self.vocab) + 1) for w in words]}
            )
        if path == "/detokenize":
            inv = {v: k for k, v in self.vocab.items()}
            return self.reply(
                200, {"content": " ".join(inv.get(i, "x") for i in json.loads(body)["tokens"])}
            )
        if path not in ("/v1/completions", "/v1/chat/completions"):
            return self.reply(404, {"error": {"message": f"no route {path}"}}, "Not Found")
        if self.o.reject_unknown:
            unknown = sorted(set(json.loads(body)) - OPENAI_FIELDS)
            if unknown:
                return self.reply(
                    422, {"detail": f"unknown fields {unknown}"}, "Unprocessable Entity"
                )
        Handler.counter += 1
        fault = self.o.fault if self.o.fault and Handler.counter % self.o.fault_every == 0 else None
        assert self.t is not None
        if self.doomed:
            fault = "drop"
        if fault == "drop":
            sock = self.t.get_extra_info("socket")
            if sock is not None:  # RST instead of FIN
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            self.t.abort()
            return None
        if fault == "http500":
            return self.reply(
                500,
                {"error": {"message": "injected failure", "code": 500}},
                "Internal Server Error",
            )
        self.busy = True
        # Only what the schedule needs is read now (byte search, no JSON): a burst of requests
        # must not delay the stub's reading of the next ones. The prompt is counted at the end.
        chat = path.endswith("chat/completions")
        found = MAX_TOKENS.search(body)
        n = int(found.group(1)) if found else 16
        usage = INCLUDE_USAGE.search(body) is not None and not self.o.no_usage
        Stream(self, chat=chat, n=n, body=body, usage=usage, fault=fault, t_recv=t_recv).start()
        return None

    def finished(self, keepalive_drop: bool) -> None:
        self.busy = False
        if keepalive_drop and self.t is not None:
            self.doomed = True  # a request reusing it is reset before any byte
            self.loop.call_later(0.05, self.t.close)  # the idle connection dies later
            return
        if self.buf and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.process)


class Stream:
    """One streamed response, written on a fixed schedule from the request's arrival."""

    def __init__(
        self,
        h: Handler,
        *,
        chat: bool,
        n: int,
        body: bytes,
        usage: bool,
        fault: str | None,
        t_recv: int,
    ) -> None:
        self.h, self.n, self.usage, self.fault, self.t_recv = h, n, usage, fault, t_recv
        self.body, self.chat = body, chat
        self.head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        self.sent = 0
        self.last_write = 0
        o = h.o
        self.per_write = o.events_per_write
        if chat:
            event = b'data: {"id":"c","object":"chat.completion.chunk","model":"stub","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}'
            self.first = (
                b'data: {"id":"c","object":"chat.completion.chunk","model":"stub","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
                + h.sep
            )
            self.finish = (
                b'data: {"id":"c","object":"chat.completion.chunk","model":"stub","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}'
                + h.sep
            )
        else:
            event = b'data: {"id":"c","object":"text_completion","model":"stub","choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":null}]}'
            self.first = b""
            self.finish = (
                b'data: {"id":"c","object":"text_completion","model":"stub","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length"}]}'
                + h.sep
            )
        self.event = event + h.sep
        self.full = chunk(self.event * self.per_write)

    def start(self) -> None:
        h = self.h
        if self.first:
            self.head += chunk(self.first)
        delay = h.o.slow_s if self.fault == "slow" else h.o.ttft_ms / 1e3
        self.t0 = self.t_recv + int(delay * 1e9)
        self.schedule(0)

    def schedule(self, k: int) -> None:
        when = (self.t0 + k * int(self.h.o.itl_ms * 1e6) - perf_counter_ns()) * 1e-9
        if when > 0:
            self.h.loop.call_later(when, self.write)
        else:
            self.h.loop.call_soon(self.write)

    def write(self) -> None:
        h, t = self.h, self.h.t
        if t is None or t.is_closing():
            return
        bursts = h.o.burst if h.o.itl_ms == 0 else 1
        for _ in range(bursts):
            left = self.n - self.sent
            if self.fault in ("cut", "error-event") and self.sent >= h.o.fault_after:
                return self.inject()
            k = min(self.per_write, left)
            data = self.full if k == self.per_write else chunk(self.event * k)
            now = perf_counter_ns()
            if self.sent == 0:
                h.truth.ttft_ns.append(now - self.t_recv)
            else:
                h.truth.gaps_ns.append(now - self.last_write)
                h.truth.gaps_ns.extend([0] * (k - 1))
            if self.sent == 0 and k > 1:
                h.truth.gaps_ns.extend([0] * (k - 1))
            self.last_write = now
            if self.head:  # the status line goes out with the first token (one write)
                data, self.head = self.head + data, b""
            t.write(data)
            self.sent += k
            h.truth.tokens += k
            if self.sent >= self.n:
                return self.end()
        self.schedule(self.sent // self.per_write)
        return None

    def inject(self) -> None:
        h, t = self.h, self.h.t
        assert t is not None
        if self.fault == "cut":
            t.abort()
            return
        t.write(
            self.head
            + chunk(
                b'data: {"error":{"message":"injected error event","type":"server_error"}}' + h.sep
            )
        )
        t.write(b"0\r\n\r\n")
        h.finished(False)

    def end(self) -> None:
        h, t = self.h, self.h.t
        assert t is not None
        tail = self.finish
        if self.usage:
            req = json.loads(self.body)
            prompt = req["messages"][-1]["content"] if self.chat else req.get("prompt", "")
            pt = len(str(prompt).split())
            tail += (
                b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}'
                % (pt, self.sent, pt + self.sent)
                + h.sep
            )
        if not h.o.no_done:
            tail += b"data: [DONE]" + h.sep
        t.write(chunk(tail) + b"0\r\n\r\n")
        h.truth.requests += 1
        h.finished(self.fault == "keepalive")


async def serve(opts: Options) -> None:
    truth = Truth()
    vocab: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Handler(opts, truth, vocab), opts.host, opts.port, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    if opts.port_file:
        with open(opts.port_file + ".tmp", "w") as fh:
            fh.write(str(port))
        os.replace(opts.port_file + ".tmp", opts.port_file)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--ttft-ms", type=float, default=100.0)
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--events-per-write", type=int, default=1)
    p.add_argument("--burst", type=int, default=8, help="writes per callback when --itl-ms 0")
    p.add_argument(
        "--fault", choices=["drop", "cut", "http500", "slow", "error-event", "keepalive"]
    )
    p.add_argument("--fault-every", type=int, default=5)
    p.add_argument("--fault-after", type=int, default=3)
    p.add_argument("--slow-s", type=float, default=5.0)
    p.add_argument("--no-done", action="store_true")
    p.add_argument("--no-usage", action="store_true")
    p.add_argument("--reject-unknown", action="store_true")
    p.add_argument("--sse-crlf", action="store_true")
    opts = Options(p.parse_args(argv))
    try:
        import uvloop

        uvloop.run(serve(opts))
    except ImportError:
        asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
