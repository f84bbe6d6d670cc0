"""The prompts of a session's turns, built when a turn is sent rather than all up front.

A turn's prompt is the whole conversation so far, so a trace's prompts add up quadratically in
its turns (256 agentic sessions of 16 turns with 30k-token contexts would be ~100M tokens):
`TurnPayloads` keeps each segment's content once (as a JSON fragment) and builds a turn's
request bytes on access. `session_prompts` is the same definition as token lists (tests).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, overload

from ixci.loadgen.dialect import Dialect, Endpoint, request_body
from ixci.loadgen.http import Target, request_bytes
from ixci.loadgen.traces import Segment, Session, answer_segment

_SLOT = "@@ixci-session-prompt@@"
_SLOT_JSON = b'"' + _SLOT.encode() + b'"'


class Contents:
    """The tokens of segments: ids drawn from `pool` (or words), a pure function of the key.

    With `as_ids` the prompt is a JSON list of ids; otherwise words joined by spaces (the pool
    is then plain ASCII words, so the text needs no JSON escaping).
    """

    def __init__(self, pool: Sequence[Any], *, as_ids: bool) -> None:
        self.pool = list(pool)
        self.as_ids = as_ids
        self.sep = b"," if as_ids else b" "
        self._memo: dict[tuple[int, int], bytes] = {}

    def tokens(self, seg: Segment) -> list[Any]:
        rng = random.Random(seg.key)
        n = len(self.pool)
        return [self.pool[rng.randrange(n)] for _ in range(seg.length)]

    def fragment(self, seg: Segment) -> bytes:
        """The segment as it appears inside the prompt's JSON (memoised: shared prefixes once)."""
        key = (seg.key, seg.length)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = self.sep.join(str(t).encode() for t in self.tokens(seg))
        return got


def session_prompts(session: Session, contents: Contents) -> list[list[Any]]:
    """The prompt of every turn as tokens: the whole conversation so far + the turn's new content."""
    history: list[Any] = []
    out = []
    for k, turn in enumerate(session.turns):
        for seg in turn.new:
            history.extend(contents.tokens(seg))
        out.append(list(history))
        history.extend(contents.tokens(answer_segment(session, k)))
    return out


class RequestTemplate:
    """The complete HTTP request of a turn around its prompt (one body template per length)."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        endpoint: Endpoint,
        model: str,
        extra: Mapping[str, Any],
        target: Target,
        headers: Mapping[str, str],
        as_ids: bool,
    ) -> None:
        self.dialect, self.endpoint, self.model = dialect, endpoint, model
        self.extra = {**extra, "prompt": _SLOT} if as_ids else dict(extra)
        self.target, self.headers, self.as_ids = target, dict(headers), as_ids
        self._bodies: dict[int, tuple[bytes, bytes]] = {}

    def build(self, prompt: bytes, max_tokens: int) -> bytes:
        head, tail = self._bodies.get(max_tokens) or self._split(max_tokens)
        inner = b"[" + prompt + b"]" if self.as_ids else b'"' + prompt + b'"'
        return request_bytes(
            self.target,
            self.dialect.path(self.endpoint),
            head + inner + tail,
            headers=self.headers,
            close=self.dialect.fresh_connection,
        )

    def _split(self, max_tokens: int) -> tuple[bytes, bytes]:
        body = request_body(
            self.dialect,
            endpoint=self.endpoint,
            model=self.model,
            prompt=_SLOT,
            max_tokens=max_tokens,
            extra=self.extra,
        )
        head, found, tail = body.partition(_SLOT_JSON)
        assert found and _SLOT_JSON not in tail, "the prompt slot must appear exactly once"
        self._bodies[max_tokens] = (head, tail)
        return head, tail


class TurnPayloads(Sequence[bytes]):
    """Request bytes of turn `at[k] = (session, turn)`, built when the worker sends it."""

    def __init__(
        self,
        *,
        sessions: Sequence[Session],
        at: Sequence[tuple[int, int]],
        contents: Contents,
        template: RequestTemplate,
    ) -> None:
        self.sessions, self.at = list(sessions), list(at)
        self.contents, self.template = contents, template

    def __len__(self) -> int:
        return len(self.at)

    @overload
    def __getitem__(self, k: int) -> bytes: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[bytes]: ...

    def __getitem__(self, k: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        si, ti = self.at[k]
        session, c = self.sessions[si], self.contents
        parts = []
        for j in range(ti):
            parts += [c.fragment(seg) for seg in session.turns[j].new]
            parts.append(c.fragment(answer_segment(session, j)))
        parts += [c.fragment(seg) for seg in session.turns[ti].new]
        prompt = c.sep.join(p for p in parts if p)
        return self.template.build(prompt, session.turns[ti].output_tokens)
