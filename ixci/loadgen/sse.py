"""Off the hot path: turn an `Exchange`'s timestamped payload blocks into request facts.

Server-sent events are split per block; each complete event takes the arrival time of the
block that completed it. A block whose bytes prove that every event in it carries content
(compact JSON ``"text":"`` / ``"content":"`` markers, no empty strings, no usage, no errors) is
counted with C-level byte counts only; any other block is parsed event by event with orjson.
Both paths give the same answer; the fast one is what keeps the client off the bottleneck.

The body is untrusted: parsing is linear in its size whatever its shape (an event split over
thousands of blocks is joined once, never re-copied per block), it stops at the first
violation, and a response that is not an event stream, is not UTF-8, carries unparsable JSON or
impossible usage counts is a `protocol` failure (sizes are capped earlier, in `http`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ixci.loadgen.http import Exchange
from ixci.loadgen.metrics import ErrorKind

_SLOW_MARKERS = (b'""', b"[DONE]", b'"usage"', b"error", b"event:", b"[]")
_TEXT_MARKERS = (b'"text":"', b'"content":"')
_LEARN_TRIES = 4  # a stream whose first content events make no template gets none
_LF2, _CRLF2 = b"\n\n", b"\r\n\r\n"
MAX_USAGE_TOKENS = 1 << 31  # no model reads or writes 2 G tokens in one request


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
    events: int = 0  # events that carried a `data:` field
    chunk_slack: list[tuple[int, int, int]] | None = (
        None  # (first, end content chunk, ns): chunks first..end-1 may be stamped ns late
    )
    chunk_chars: list[int] | None = None  # characters of text per content chunk (when asked for)
    chunk_usage: list[int] | None = None  # cumulative completion tokens per content chunk, if sent
    draft: tuple[int, int] | None = None  # llama.cpp `timings`: (draft_n, draft_n_accepted)
    template: Template | None = None  # this stream's content event, once one was proven
    learn_tries: int = 0  # content events tried as the template (at most `_LEARN_TRIES`)


class Template:
    """One of a stream's content events, to count the stream's next events in a few scans.

    An engine sends every content event of a stream with the same fields; only the text
    differs. Learned from an event proven to be a content chunk (one `data:` line, no
    backslash, one text marker, no usage, error or timings), with `pre` its bytes up to the
    text and `post` those after it, a block is n such events when it begins with `pre`, ends
    with `post`, holds `post + pre` n − 1 times, no backslash, no `pre + post` (an empty
    text), and exactly n times the event's double quotes and newlines: the texts between then
    hold no quote, escape or line break, so no other field (`usage`, `error`, a finish reason,
    `[DONE]`, an SSE `event:` line) and no extra event can hide in them. As `_fast_count`, it reads the
    bytes, not the JSON: a malformed event that keeps the skeleton counts as content.
    """

    __slots__ = ("boundary", "empty", "newlines", "post", "pre", "quotes", "sep")

    def __init__(self, event: bytes, sep: bytes, marker: bytes) -> None:
        self.sep = sep
        opening = event.index(marker) + len(marker) - 1  # the text's opening quote
        closing = event.index(b'"', opening + 1)
        self.pre, self.post = event[: opening + 1], event[closing:]
        self.boundary, self.empty = self.post + self.pre, self.pre + self.post
        self.quotes = event.count(b'"')  # all in `pre` and `post`: the text has none
        self.newlines = event.count(b"\n")  # all in `post`: one line and its separator

    @staticmethod
    def learn(event: bytes, sep: bytes) -> Template | None:
        """The template of `event` (ending with `sep`), or None unless it is a plain content
        chunk: one `data:` line, no backslash, one text marker, no usage counts, error or
        timings (which a later event could change without moving a quote)."""
        if (
            b"\\" in event
            or event.count(b"\n") != sep.count(b"\n")
            or not event.startswith(b"data:")
        ):
            return None
        markers = [m for m in _TEXT_MARKERS if m in event]
        if len(markers) != 1 or event.count(markers[0]) != 1:
            return None
        try:
            obj = orjson.loads(event[5:])
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or not _content_of(obj):
            return None
        if obj.get("usage") is not None or "error" in obj or "timings" in obj:
            return None
        return Template(event, sep, markers[0])

    def count(self, block: bytes, sep: bytes) -> int | None:
        """n when `block` (whole events ending with `sep`) is n events of this template, else
        None. n comes from the boundaries; the newlines, all in `post`, prove that no text
        holds a blank line (so the block has n events, without counting its separators)."""
        if not (
            sep == self.sep
            and block.startswith(self.pre)
            and block.endswith(self.post)
            and b"\\" not in block
            and self.empty not in block
        ):
            return None
        n = block.count(self.boundary) + 1
        if block.count(b'"') != n * self.quotes or block.count(b"\n") != n * self.newlines:
            return None
        return n


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
    parts: list[bytes] = []  # joined once: an event of many `data:` lines stays linear
    is_error_event = False
    for line in event.splitlines():
        if line.startswith(b"data:"):
            parts.append(line[5:].strip())
        elif line.startswith(b"event:") and b"error" in line:
            is_error_event = True
    if not parts:
        return
    out.events += 1
    data = b"".join(parts)
    if not data:
        return
    if data == b"[DONE]":
        out.done = True
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        out.error_kind, out.error = (
            ErrorKind.PROTOCOL,
            "unparsable event: " + data[:120].decode("utf-8", "replace"),
        )
        return
    if not isinstance(obj, dict):
        return
    if is_error_event or "error" in obj:
        err = obj.get("error", obj)
        msg = err.get("message") if isinstance(err, dict) else err
        out.error_kind, out.error = ErrorKind.SERVER_ERROR, str(msg)[:300]
        return
    usage = obj.get("usage")
    if isinstance(usage, dict) and not _usage(usage, out):
        return
    if "timings" in obj:  # llama.cpp: the final chunk carries the request's draft statistics
        out.draft = draft_counts(obj["timings"]) or out.draft
    if _content_of(obj):
        out.chunk_times_ns.append(t)
        if out.chunk_chars is not None:
            _weigh(obj, usage, out)
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        fr = choices[0].get("finish_reason")
        if fr:
            out.finish_reason = str(fr)[:40]


def draft_counts(timings: Any) -> tuple[int, int] | None:
    """(draft tokens proposed, accepted) from llama.cpp's `timings`; None when absent or not
    a sane pair of counts (the server's word: accepted above proposed is no count)."""
    if not isinstance(timings, dict):
        return None
    n, acc = timings.get("draft_n"), timings.get("draft_n_accepted")
    if type(n) is not int or type(acc) is not int:
        return None
    return (n, acc) if 0 <= acc <= n < MAX_USAGE_TOKENS else None


def _slack(ex: Exchange, before: list[int], out: ParsedStream) -> None:
    """Content chunks whose stamp may be late: in a read that carried several server chunks,
    every content chunk but the read's last. Chunks without content (role, finish, usage,
    [DONE]) are taken as written with the content chunk before them (engines send them in the
    same step), so a read that adds only those to one content chunk is not suspect.
    `before[b]`: content chunks completed before block b was parsed."""
    runs: list[tuple[int, int, int]] = []
    for first, end, ns in ex.slack:
        lo = before[first] if first < len(before) else len(out.chunk_times_ns)
        hi = before[end] if end < len(before) else len(out.chunk_times_ns)
        if hi - 1 > lo:
            runs.append((lo, hi - 1, ns))
    out.chunk_slack = runs or None


def _weigh(obj: dict[str, Any], usage: Any, out: ParsedStream) -> None:
    """Record a content chunk's text length and, when the server sends it per chunk, its
    cumulative completion count (for the tokens of each chunk; see `chunk_tokens`)."""
    c = obj["choices"][0]
    delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
    text = (
        c.get("text")
        or delta.get("content")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
        or ""
    )
    assert out.chunk_chars is not None
    out.chunk_chars.append(len(text) if isinstance(text, str) else 1)
    count = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if out.chunk_usage is not None and type(count) is int:
        out.chunk_usage.append(count)
    else:
        out.chunk_usage = None  # not on every chunk: unusable


def _usage(usage: dict[str, Any], out: ParsedStream) -> bool:
    """Take the usage counts; False (a protocol failure) when one is present but not a count.

    `null` is skipped (OpenAI sends `"usage": null` on every chunk before the last); anything
    else must be a non-negative integer below `MAX_USAGE_TOKENS` (a float, a bool, a string,
    a negative or a huge number is not a token count). Plausibility against the request is
    checked by the worker, which knows what was asked.
    """
    for key in ("completion_tokens", "prompt_tokens"):
        value = usage.get(key)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= MAX_USAGE_TOKENS:
            out.error_kind, out.error = (
                ErrorKind.PROTOCOL,
                f"usage.{key} is not a token count: {str(value)[:40]}",
            )
            return False
        if key == "completion_tokens":
            out.completion_tokens = value
        else:
            out.prompt_tokens = value
    return True


def _fast_count(events: bytes, n: int) -> bool:
    """True when all `n` events in `events` are content chunks (provable from bytes alone).

    Non-ASCII bytes must be valid UTF-8 (orjson, on the slow path, would reject them).
    """
    for marker in _SLOW_MARKERS:
        if marker in events:
            return False
    markers = events.count(_TEXT_MARKERS[0]) + events.count(_TEXT_MARKERS[1])
    if markers != n or events.count(b"data:") != n:
        return False
    if not events.isascii():
        try:
            events.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _separator(sep: bytes, tail: bytes, block: bytes) -> bytes:
    """Switch to CRLF events (sse-starlette) once a CRLF blank line is seen, seams included."""
    if (
        sep == _LF2
        and (b"\r" in block or b"\r" in tail)
        and (_CRLF2 in block or _CRLF2 in tail + block[:3])
    ):
        return _CRLF2
    return sep


def parse_stream(ex: Exchange, *, max_line: int = 1 << 62, weigh: bool = False) -> ParsedStream:
    """Parse a streamed (SSE) response body; arrival times come from the blocks.

    Linear in the body size: an incomplete event is kept as a list of blocks (plus its last
    3 bytes, to find a separator split across blocks) and joined once when it completes.
    An event longer than `max_line` bytes (every engine sends an event as one line) is a
    `protocol` failure. Stops at the first failure (`error_kind` set). A content chunk
    completed by a block in `ex.slack` inherits that block's slack (`chunk_slack`). `weigh`
    parses every event (no byte-count fast path) to fill `chunk_chars` and `chunk_usage`.
    """
    out = ParsedStream(chunk_times_ns=[])
    if weigh:
        out.chunk_chars, out.chunk_usage = [], []
    before: list[int] = []  # content chunks completed before each block (only when ex.slack)
    pieces: list[bytes] = []  # the incomplete event, block by block
    pending = 0  # its length
    tail = b""  # its last 3 bytes (a separator is at most 4)
    sep = _LF2
    for t, block in zip(ex.times, ex.blocks, strict=True):  # one block per read (http.py)
        if ex.slack:
            before.append(len(out.chunk_times_ns))
        sep = _separator(sep, tail, block)
        found = block.rfind(sep)
        cut = found if found >= 0 else None
        if cut is None and pieces:
            k = (tail + block[: len(sep) - 1]).rfind(sep)
            cut = k - len(tail) if k >= 0 else None  # negative: the separator began in `tail`
        if cut is None:
            pieces.append(block)
            pending += len(block)
            tail = (tail + block[-3:])[-3:]
            if pending > max_line:
                out.error_kind, out.error = (
                    ErrorKind.PROTOCOL,
                    f"an event over the line limit of {max_line} bytes",
                )
                return out
            continue
        end = cut + len(sep)
        complete = b"".join((*pieces, block[:end])) if pieces else block[:end]
        rest = block[end:]
        pieces, tail, pending = ([rest], rest[-3:], len(rest)) if rest else ([], b"", 0)
        _parse_complete(complete, sep, t, out)
        if out.error_kind is not None:
            return out
    return _finish(ex, pieces, before, out)


def _parse_complete(complete: bytes, sep: bytes, t: int, out: ParsedStream) -> None:
    """Count or parse the whole events in `complete` (it ends with `sep`), all arrived at `t`.

    Until the stream has a `Template`, events are parsed one at a time and tried as one; then
    the template counts a block, or all of it but its end (a stream's last read: the finish
    chunk, usage, `[DONE]`, parsed); `_fast_count` takes what the template cannot."""
    if out.chunk_chars is not None:  # weighing: every event through the parser
        _parse_events(complete, sep, t, out)
        return
    if out.template is None and out.learn_tries < _LEARN_TRIES:
        complete = _learn(complete, sep, t, out)
        if not complete or out.error_kind is not None:
            return
    tpl = out.template
    if tpl is not None:
        if (n := tpl.count(complete, sep)) is not None:
            _count(n, t, out)
            return
        cut = complete.rfind(tpl.post) + len(tpl.post)
        if len(tpl.post) <= cut < len(complete) and (n := tpl.count(complete[:cut], sep)):
            _count(n, t, out)
            complete = complete[cut:]
    n = complete.count(sep)
    if _fast_count(complete, n):
        _count(n, t, out)
        return
    _parse_events(complete, sep, t, out)


def _count(n: int, t: int, out: ParsedStream) -> None:
    """n content chunks proven from the bytes, all arrived at `t`."""
    out.chunk_times_ns.extend([t] * n)
    out.events += n


def _parse_events(complete: bytes, sep: bytes, t: int, out: ParsedStream) -> None:
    for event in complete.split(sep)[:-1]:
        _slow_event(event, t, out)
        if out.error_kind is not None:
            return


def _learn(complete: bytes, sep: bytes, t: int, out: ParsedStream) -> bytes:
    """Parse the leading events of `complete` until one makes the stream's `Template` (or the
    tries run out) → the events after it."""
    start = 0
    while out.template is None and out.learn_tries < _LEARN_TRIES:
        end = complete.find(sep, start)
        if end < 0:
            break
        before = len(out.chunk_times_ns)
        _slow_event(complete[start:end], t, out)
        if out.error_kind is not None:
            return b""
        if len(out.chunk_times_ns) > before:  # a content chunk: the template candidate
            out.learn_tries += 1
            out.template = Template.learn(complete[start : end + len(sep)], sep)
        start = end + len(sep)
    return complete[start:] if start else complete


def _finish(
    ex: Exchange, pieces: list[bytes], before: list[int], out: ParsedStream
) -> ParsedStream:
    """`parse_stream` after the last block: parse the event left without a closing blank line
    (`pieces`), fail a non-empty response that held no event, and mark the content chunks whose
    stamps may be late (`before`: as in `_slack`)."""
    if pieces:
        last = b"".join(pieces)
        if last.strip():
            _slow_event(last, ex.times[-1] if ex.times else ex.t_end_ns, out)
    if (
        out.error_kind is None
        and not out.events
        and not out.done
        and any(b.strip() for b in ex.blocks)
    ):
        kind = ex.content_type.decode("latin-1") or "none"
        first = b"".join(ex.blocks)[:80].decode("utf-8", "replace")
        out.error_kind, out.error = (
            ErrorKind.PROTOCOL,
            f"not an event stream (Content-Type {kind}): {first!r}",
        )
    if ex.slack and out.error_kind is None:
        _slack(ex, before, out)
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
