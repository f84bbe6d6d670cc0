"""A request's record from its exchange: the transport error, the HTTP status, or the parsed
stream checked for truncation and implausible usage counts, with its tokens per chunk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ixci.loadgen.http import Exchange
from ixci.loadgen.metrics import GAVE_UP, ErrorKind, RequestRecord, TokenSource
from ixci.loadgen.sse import ParsedStream, parse_error_body, parse_stream

if TYPE_CHECKING:
    from ixci.loadgen.worker import WorkerSpec

_TRANSPORT_ERRORS = {
    "connect": ErrorKind.CONNECT,
    "truncated": ErrorKind.TRUNCATED,
    "timeout": ErrorKind.TIMEOUT,
    "cut": ErrorKind.CUT,
}
USAGE_SLACK_FACTOR, USAGE_SLACK_TOKENS = 8, 65536  # see _implausible_usage
# the transport errors the client gave up on (metrics.GAVE_UP): they end nowhere
TRANSPORT_GAVE_UP = frozenset(e for e, kind in _TRANSPORT_ERRORS.items() if kind in GAVE_UP)


def record_from(
    ex: Exchange, base: dict[str, Any], *, req_in: int, req_out: int, spec: WorkerSpec
) -> RequestRecord:
    """The record of exchange `ex` (`base`: its index, times and requested lengths)."""
    if ex.error is not None:
        kind = _TRANSPORT_ERRORS.get(ex.error, ErrorKind.PROTOCOL)
        detail = (
            ex.error
            if not ex.blocks or ex.status
            else b"".join(ex.blocks)[:200].decode("utf-8", "replace")
        )
        return RequestRecord(ok=False, error_kind=kind, error=detail, **base)
    if not 200 <= ex.status < 300:
        return RequestRecord(
            ok=False,
            error_kind=ErrorKind.HTTP_STATUS,
            error=f"HTTP {ex.status}: {parse_error_body(ex)}",
            **base,
        )
    p = parse_stream(ex, max_line=spec.max_line_bytes)
    if p.error_kind is None and (bad := _implausible_usage(p, req_in, req_out)):
        p.error_kind, p.error = ErrorKind.PROTOCOL, bad
    if p.error_kind is None and (short := _truncation(p, req_out, spec)):
        p.error_kind, p.error = ErrorKind.TRUNCATED, short
    if p.error_kind is not None:
        return RequestRecord(ok=False, error_kind=p.error_kind, error=p.error, **base)
    if not p.chunk_times_ns:
        return RequestRecord(
            ok=False,
            error_kind=ErrorKind.NO_CONTENT,
            error="no generated content",
            **base,
        )
    source = TokenSource.USAGE if p.completion_tokens is not None else TokenSource.CHUNKS
    out = p.completion_tokens if p.completion_tokens is not None else len(p.chunk_times_ns)
    tokens: tuple[int, ...] = ()
    if out != len(p.chunk_times_ns):  # several tokens per chunk: weigh each chunk (rare, slow path)
        w = parse_stream(ex, max_line=spec.max_line_bytes, weigh=True)
        tokens = chunk_tokens(out, w.chunk_chars or [], w.chunk_usage)
    return RequestRecord(
        ok=True,
        chunk_times_ns=tuple(p.chunk_times_ns),
        output_tokens=out,
        prompt_tokens=p.prompt_tokens,
        token_source=source,
        chunk_tokens=tokens,
        chunk_slack_runs=tuple(p.chunk_slack or ()),
        draft_tokens=p.draft[0] if p.draft else None,
        draft_accepted=p.draft[1] if p.draft else None,
        **base,
    )


def _truncation(p: ParsedStream, req_out: int, s: WorkerSpec) -> str | None:
    """Why a stream that ended without a transport error is nevertheless cut short, or None.

    The dialect's end marker must be there (`[DONE]`; a dialect without it must end with a
    `finish_reason`): a stream without length or chunking that closes early, or one that ends
    cleanly mid-answer, lacks it. A server asked for exactly `req_out` tokens (ignore_eos /
    min_tokens) must deliver them — by its usage count, or by content chunks unless it says it
    stopped at the length limit (several tokens per chunk).
    """
    if s.expect_done and not p.done:
        return f"the stream ended without data: [DONE] after {len(p.chunk_times_ns)} content chunks"
    if not s.expect_done and p.finish_reason is None:
        return (
            f"the stream ended without a finish_reason after {len(p.chunk_times_ns)} content chunks"
        )
    if s.exact_length:
        got = p.completion_tokens
        if got is None and p.finish_reason != "length":
            got = len(p.chunk_times_ns)
        if got is not None and got < req_out:
            return f"{got} of the {req_out} tokens asked for exactly (ignore_eos)"
    return None


def chunk_tokens(out: int, chars: list[int], usage: list[int] | None) -> tuple[int, ...]:
    """The tokens of each content chunk of a request that produced `out` tokens.

    Exact when the server sent a cumulative completion count on every chunk (`usage`);
    otherwise shared in proportion to each chunk's text length, at least one token a chunk,
    rounded by largest remainders. () when it cannot be apportioned (fewer tokens than chunks,
    no text): the metrics then use the average.
    """
    n = len(chars)
    if usage is not None and len(usage) == n and n:
        diffs = [b - a for a, b in zip([0, *usage[:-1]], usage, strict=True)]
        if all(d >= 1 for d in diffs) and sum(diffs) == out:
            return tuple(diffs)
    total = sum(chars)
    if n == 0 or out < n or total <= 0:
        return ()
    ideal = [out * c / total for c in chars]
    share = [max(1, int(x)) for x in ideal]
    left = out - sum(share)
    if left > 0:  # fewer than n short (floors): the chunks furthest below their ideal get one more
        for i in sorted(range(n), key=lambda j: share[j] - ideal[j])[:left]:
            share[i] += 1
    while left < 0:  # the one-token floor overshot: take from those furthest above their ideal
        for i in sorted((j for j in range(n) if share[j] > 1), key=lambda j: ideal[j] - share[j])[
            :-left
        ]:
            share[i] -= 1
        left = out - sum(share)
    return tuple(share)


def _implausible_usage(p: ParsedStream, req_in: int, req_out: int) -> str | None:
    """Why the server's usage counts cannot be true for this request, or None.

    A count may exceed the request (a chat template adds prompt tokens; the approximate
    tokenizer is off), but not by `USAGE_SLACK_FACTOR`× plus `USAGE_SLACK_TOKENS`: beyond that
    the number is corrupt or hostile and would inflate the point's throughput.
    """
    for name, got, asked in (
        ("completion", p.completion_tokens, req_out),
        ("prompt", p.prompt_tokens, req_in),
    ):
        if got is not None and got > USAGE_SLACK_FACTOR * asked + USAGE_SLACK_TOKENS:
            return f"usage.{name}_tokens {got} is impossible for a request of {asked}"
    return None
