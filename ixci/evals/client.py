"""The eval client: OpenAI-compatible requests with bounded concurrency, time and size.

A reply is untrusted: at most `MAX_BODY_BYTES` are read, only the fields the scorer needs are
kept (text cut to `MAX_TEXT_CHARS`, at most `MAX_TOOL_CALLS` calls), and any malformed body
becomes an error for that row, never an exception for the suite.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ixci.loadgen.sse import draft_counts

MAX_BODY_BYTES = 1024 * 1024
MAX_TEXT_CHARS = 20_000
MAX_TOOL_CALLS = 8


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request: endpoint path suffix and JSON body."""

    endpoint: str  # chat | completions
    body: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What was kept of one reply; `error` set when there is no usable answer."""

    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    draft: tuple[int, int] | None = None  # llama.cpp timings: (draft_n, draft_n_accepted)
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def post(base_url: str, req: Request, *, timeout_s: float) -> Reply:
    """Send one request; every failure is a `Reply` with `error` (never raises)."""
    path = "/v1/chat/completions" if req.endpoint == "chat" else "/v1/completions"
    http = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=json.dumps(req.body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as resp:
            raw = resp.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return Reply(error=f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        return Reply(error=f"request failed: {type(exc).__name__}: {str(exc)[:200]}")
    if len(raw) > MAX_BODY_BYTES:
        return Reply(error=f"reply larger than {MAX_BODY_BYTES} bytes")
    return parse_reply(raw)


def parse_reply(raw: bytes) -> Reply:
    """The usable parts of a completion body (chat or text); malformed → `Reply(error=…)`."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Reply(error="reply is not JSON")
    if not isinstance(data, dict):
        return Reply(error="reply is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Reply(error="reply has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text = message.get("content") if message else choice.get("text")
    calls = message.get("tool_calls") if message else None
    return Reply(
        text=text[:MAX_TEXT_CHARS] if isinstance(text, str) else "",
        tool_calls=tuple(c for c in calls[:MAX_TOOL_CALLS] if isinstance(c, dict))
        if isinstance(calls, list)
        else (),
        draft=draft_counts(data.get("timings")),
    )


def post_all(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    timeout_s: float,
    stop: Callable[[], bool] = lambda: False,
) -> list[Reply]:
    """Every request with at most `concurrency` in flight; replies in request order.

    When `stop()` turns true, requests not yet sent are answered `error="stopped"`.
    """

    def one(req: Request) -> Reply:
        if stop():
            return Reply(error="stopped")
        return post(base_url, req, timeout_s=timeout_s)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, requests))
