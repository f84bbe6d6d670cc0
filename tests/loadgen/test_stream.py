"""The hot-path HTTP framing and the deferred SSE parser, fed byte by byte."""

from __future__ import annotations

import pytest

from ixci.loadgen import sse
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


VLLM = b'data: {"id":"cmpl-7","object":"text_completion","created":17,"model":"m","choices":[{"index":0,"text":"%s","logprobs":null,"finish_reason":null}],"usage":null}\n\n'
WORDS = [b" the", b" a", b"x", b" quick", b" brown", b" fox", b"!", b" 42"]


def _stream(middle: bytes) -> Exchange:
    """A vLLM-like stream: 8 events (the template is learned), then one block of 40 events with
    `middle` in place of its 20th, then the end."""
    head = b"".join(VLLM % w for w in WORDS)
    events = [VLLM % WORDS[i % len(WORDS)] for i in range(40)]
    events[19] = middle
    end = VLLM.replace(b'"finish_reason":null', b'"finish_reason":"length"') % b""
    ex, _ = feed(HEAD + chunked(head, b"".join(events), end + b"data: [DONE]\n\n"), 100_000)
    return ex


@pytest.mark.parametrize(
    "middle",
    [
        VLLM % b" jumps",  # a plain content event: the template counts the block
        VLLM % b"",  # empty text: not content
        VLLM.replace(b'"usage":null', b'"usage":{"prompt_tokens":5,"completion_tokens":9}') % b" y",
        VLLM.replace(b'"finish_reason":null', b'"finish_reason":"stop"') % b" y",
        VLLM.replace(b'"usage":null', b'"usage":1234') % b" y",  # same skeleton, not a dict
        VLLM % b'\\" q',  # an escaped quote in the text
        VLLM % b"\\n",  # an escaped newline
        b"data: [DONE]\n\n",
        b'data: {"error":{"message":"boom"}}\n\n',
        b"event: error\n" + VLLM % b" y",
        VLLM.replace(b'"text":"%s"', b'"text": "%s"') % b" y",  # whitespace
        VLLM.replace(b'"index":0', b'"index":1') % b" y",  # same skeleton, another choice
        VLLM % b" two\n\nhalves",  # a raw blank line inside the text: two broken events
        b'data: {"id":"cmpl-7","choices":[{"index":0,"text":" short"}]}\n\n',  # other fields
    ],
)
def test_template_counts_exactly_what_the_full_parse_counts(
    middle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = _stream(middle)
    want = parse_stream(ex, weigh=True)  # every event through orjson: the definition
    calls: list[int] = []
    real = sse._fast_count
    monkeypatch.setattr(sse, "_fast_count", lambda b, n: calls.append(n) or real(b, n))
    got = parse_stream(ex)
    assert got.template is not None  # learned from the first block
    for field in ("chunk_times_ns", "completion_tokens", "prompt_tokens", "done", "error_kind", "events"):  # fmt: skip
        assert getattr(got, field) == getattr(want, field), field
    if middle == VLLM % b" jumps":
        assert 40 not in calls and len(got.chunk_times_ns) == 48  # the template took the block


@pytest.mark.parametrize("last", [VLLM % b" z", VLLM % b"", b'data: {"error":{"message":"x"}}\n\n'])
def test_a_last_read_is_counted_up_to_its_end_events(
    last: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's last read: content events, then the finish chunk, usage and [DONE]. The
    template counts the content and the end is parsed; an odd event just before the end
    sends the whole read to the parser."""
    end = VLLM.replace(b'"finish_reason":null', b'"finish_reason":"length"') % b""
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":31}}\n\n'
    read = b"".join(VLLM % WORDS[i % 8] for i in range(30)) + last + end + usage
    ex, _ = feed(HEAD + chunked(VLLM % b" a", read + b"data: [DONE]\n\n"), 100_000)
    calls: list[int] = []
    real = sse._fast_count
    monkeypatch.setattr(sse, "_fast_count", lambda b, n: calls.append(n) or real(b, n))
    got, want = parse_stream(ex), parse_stream(ex, weigh=True)
    for field in ("chunk_times_ns", "completion_tokens", "prompt_tokens", "done", "error_kind", "events"):  # fmt: skip
        assert getattr(got, field) == getattr(want, field), field
    if last == VLLM % b" z":
        assert got.completion_tokens == 31 and len(got.chunk_times_ns) == 32
        assert max(calls, default=0) < 30  # the 31 content events never went to _fast_count
