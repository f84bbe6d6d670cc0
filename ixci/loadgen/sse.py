"""Off the hot path: turn an `Exchange`'s timestamped payload blocks into request facts.

Server-sent events are split per block; each complete event takes the arrival time of the
block that completed it. A block whose bytes prove that every event in it carries content
(compact JSON ``"text":"`` / ``"content":"`` markers, no empty strings, no usage, no errors) is
counted with C-level byte counts only; any other block is parsed event by event with orjson.
Both paths give the same answer; the fast one is what keeps the client off the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ixci.loadgen.http import Exchange
from ixci.loadgen.metrics import ErrorKind

_SLOW_MARKERS = (b'""', b"[DONE]", b'"usage"', b"error", b"event:", b"[]")


@dataclass(kw_only=True, slots=True)
class ParsedStream:
    """What one response said: content chunk times, token counts, and the failure if any."""

    chunk_times_ns: list[int]
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    done: bool = False  # saw `data: [DONE]`
    finish_reason: str | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None


def _content_of(obj: Any) -> bool:
    """True when a parsed chunk carries generated text (completions or chat, incl. reasoning)."""
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not choices or not isinstance(choices, list):
        return False
    c = choices[0]
    if not isinstance(c, dict):
        return False
    if c.get("text"):
        return True
    delta = c.get("delta")
    if isinstance(delta, dict):
        return bool(
            delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning")
        )
    return False


def _slow_event(event: bytes, t: int, out: ParsedStream) -> None:
    data = b""
    is_error_event = False
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data += line[5:].strip()
        elif line.startswith(b"event:") and b"error" in line:
            is_error_event = True
    if not data:
        return
    if data == b"[DONE]":
        out.done = True
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        out.error_kind, out.error = ErrorKind.PROTOCOL, "unparsable event: " + data[:120].decode("utf-8", "replace")
        return
    if not isinstance(obj, dict):
        return
    if is_error_event or "error" in obj:
        err = obj.get("error", obj)
        msg = err.get("message") if isinstance(err, dict) else err
        out.error_kind, out.error = ErrorKind.SERVER_ERROR, str(msg)[:300]
        return
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            out.completion_tokens = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            out.prompt_tokens = usage["prompt_tokens"]
    if _content_of(obj):
        out.chunk_times_ns.append(t)
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        fr = choices[0].get("finish_reason")
        if fr:
            out.finish_reason = str(fr)


def _fast_count(events: bytes, n: int) -> bool:
    """True when all `n` events in `events` are content chunks (provable from bytes alone)."""
    for marker in _SLOW_MARKERS:
        if marker in events:
            return False
    markers = events.count(b'"text":"') + events.count(b'"content":"')
    return markers == n and events.count(b"data:") == n


def parse_stream(ex: Exchange) -> ParsedStream:
    """Parse a streamed (SSE) response body; arrival times come from the blocks."""
    out = ParsedStream(chunk_times_ns=[])
    carry = b""
    sep = b"\n\n"
    for t, block in zip(ex.times, ex.blocks, strict=True):
        buf = carry + block if carry else block
        if sep == b"\n\n" and b"\r\n\r\n" in buf:
            sep = b"\r\n\r\n"  # sse-starlette style line endings
        cut = buf.rfind(sep)
        if cut < 0:
            carry = buf
            continue
        complete, carry = buf[: cut + len(sep)], buf[cut + len(sep) :]
        n = complete.count(sep)
        if _fast_count(complete, n):
            out.chunk_times_ns.extend([t] * n)
            continue
        for event in complete.split(sep)[:-1]:
            _slow_event(event, t, out)
    if carry.strip():
        _slow_event(carry, ex.times[-1] if ex.times else ex.t_end_ns, out)
    return out


def parse_error_body(ex: Exchange) -> str:
    """A short message from a non-streamed (error) response body."""
    body = b"".join(ex.blocks)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace")
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(obj)[:300]
