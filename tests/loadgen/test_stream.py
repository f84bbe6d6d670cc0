"""The hot-path HTTP framing and the deferred SSE parser, fed byte by byte."""

from __future__ import annotations

import pytest

from ixci.loadgen.http import Exchange, StreamProtocol, Target, request_bytes
from ixci.loadgen.metrics import ErrorKind
from ixci.loadgen.sse import parse_stream


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> None:
        return None


def chunked(*payloads: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EV = b'data: {"choices":[{"index":0,"text":" a","finish_reason":null}]}\n\n'
FIN = b'data: {"choices":[{"index":0,"text":"","finish_reason":"length"}]}\n\n'
USAGE = (
    b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\ndata: [DONE]\n\n'
)


def feed(response: bytes, step: int) -> tuple[Exchange, list[Exchange]]:
    proto = StreamProtocol()
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    done: list[Exchange] = []
    ex = proto.send(b"POST / HTTP/1.1\r\n\r\n", done.append)
    for i in range(0, len(response), step):
        proto.data_received(response[i : i + step])
    return ex, done


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 100_000])
def test_chunked_framing_and_parse_at_any_split(step: int) -> None:
    body = chunked(EV, EV + EV[:10], EV[10:] + FIN + USAGE)
    ex, done = feed(HEAD + body, step)
    assert done == [ex] and ex.status == 200 and ex.error is None
    p = parse_stream(ex)
    assert len(p.chunk_times_ns) == 3  # the empty finish chunk and usage are not content
    assert (p.completion_tokens, p.prompt_tokens, p.done, p.finish_reason) == (3, 7, True, "length")


def test_fast_and_slow_paths_agree() -> None:
    ex, _ = feed(HEAD + chunked(EV * 8, EV * 8, FIN + USAGE), 100_000)
    fast = parse_stream(ex)
    spaced = EV.replace(b'"text":" a"', b'"text": " a"')  # not compact JSON → slow path
    ex2, _ = feed(HEAD + chunked(spaced * 8, spaced * 8, FIN + USAGE), 100_000)
    assert len(fast.chunk_times_ns) == len(parse_stream(ex2).chunk_times_ns) == 16


def test_chat_role_chunk_is_not_content_and_crlf_events() -> None:
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\r\n\r\n'
    tok = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\r\n\r\n'
    reasoning = (
        b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"hm","content":null}}]}\r\n\r\n'
    )
    ex, _ = feed(HEAD + chunked(role, reasoning, tok, tok), 5)
    p = parse_stream(ex)
    assert len(p.chunk_times_ns) == 3 and p.completion_tokens is None


def test_error_event_and_content_length_error() -> None:
    err = b'data: {"error":{"message":"boom"}}\n\n'
    ex, _ = feed(HEAD + chunked(EV, err), 4)
    p = parse_stream(ex)
    assert p.error_kind is ErrorKind.SERVER_ERROR and p.error == "boom"
    body = b'{"error":{"message":"bad"}}'
    ex2, done = feed(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), 3)
    assert done == [ex2] and ex2.status == 500 and b"".join(ex2.blocks) == body


def test_connection_lost_before_and_after_first_byte() -> None:
    proto = StreamProtocol()
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    done: list[Exchange] = []
    ex = proto.send(b"x", done.append)
    proto.connection_lost(ConnectionResetError())
    assert ex.error == "connect" and done == [ex]
    proto2 = StreamProtocol()
    proto2.connection_made(FakeTransport())  # type: ignore[arg-type]
    ex2 = proto2.send(b"x", done.append)
    proto2.data_received(HEAD + b"5\r\nda")
    proto2.connection_lost(None)
    assert ex2.error == "truncated"


def test_request_bytes_and_target() -> None:
    t = Target.parse("http://127.0.0.1:8000/")
    raw = request_bytes(
        t, "/v1/completions", b"{}", headers={"Authorization": "Bearer k"}, close=True
    )
    assert raw.startswith(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert (
        b"Content-Length: 2\r\n" in raw
        and b"Connection: close" in raw
        and raw.endswith(b"\r\n\r\n{}")
    )
