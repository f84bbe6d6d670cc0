"""Multi-turn session traces: the model, a seeded synthetic generator, and file readers.

A trace is a tuple of `Session`s; a session is a sequence of `Turn`s. A turn adds new
user/tool content (`Segment`s) to the conversation, asks for `output_tokens` tokens, and is
preceded by `pause_s` seconds of tool time (0 for a session's first turn). The prompt of turn k
is the whole conversation so far — every earlier turn's new content and its answer — plus the
new content of turn k, so an engine's prefix cache can hit on everything before.

A `Segment` is `length` tokens whose content is a pure function of its `key` (the same key
gives the same tokens, and a shorter segment with the same key is a prefix of a longer one):
the shared system prompt of the synthetic generator and Mooncake's `hash_ids` blocks are
segments with keys shared between sessions.

Sources (docs/agentic.md describes the formats and distributions):
  - `synthetic(spec, seed)`: documented, parameterised distributions;
  - `read_mooncake(path)`: Mooncake's JSONL (`timestamp` ms, `input_length`, `output_length`,
    `hash_ids`, blocks of `block_tokens` tokens) — one single-turn session per line, arriving at
    its timestamp;
  - `read_conversations(path)`: JSONL, one conversation per line with per-turn lengths.
Files are bounded (`MAX_TRACE_BYTES`, `MAX_SESSIONS`, `MAX_TURNS`, `MAX_PROMPT_TOKENS`); a bad
line raises `TraceError` naming file, line and field.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ixci.errors import IxciError

MAX_TRACE_BYTES = 256 << 20
MAX_SESSIONS = 1_000_000
MAX_TURNS = 1_000
MAX_PROMPT_TOKENS = 1 << 21
MOONCAKE_BLOCK_TOKENS = 512


class TraceError(IxciError):
    """A trace file that cannot be replayed (its file, line and field are in the message)."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Segment:
    """`length` tokens whose content depends only on `key`."""

    key: int
    length: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Turn:
    """New content, requested answer length, and the tool pause (s) before the turn is sent."""

    new: tuple[Segment, ...]
    output_tokens: int
    pause_s: float = 0.0

    @property
    def new_tokens(self) -> int:
        return sum(s.length for s in self.new)


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    """One conversation. `start_s`: arrival offset from the start of the point (None: whenever
    a closed-loop slot or the open-loop arrival process takes it)."""

    id: str
    turns: tuple[Turn, ...]
    start_s: float | None = None

    def prompt_lengths(self) -> list[int]:
        """Prompt tokens of each turn: everything before (answers included) + the turn's new."""
        out, context = [], 0
        for t in self.turns:
            context += t.new_tokens
            out.append(context)
            context += t.output_tokens
        return out


def stable_key(*parts: object) -> int:
    """A 63-bit key from `parts`, the same in every process and Python version."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def answer_segment(session: Session, turn: int) -> Segment:
    """The stand-in for the answer to `turn` that later turns carry in their context."""
    return Segment(stable_key("answer", session.id, turn), session.turns[turn].output_tokens)


# ----------------------------------------------------------------------------- synthetic


@dataclass(frozen=True, slots=True)
class IntRange:
    """Integers drawn uniformly from [lo, hi]."""

    lo: int
    hi: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    @classmethod
    def parse(cls, raw: Any) -> IntRange:
        """An int (fixed) or a mapping {min, max}."""
        if isinstance(raw, Mapping):
            return cls(int(raw["min"]), int(raw["max"]))
        return cls(int(raw), int(raw))


@dataclass(frozen=True, kw_only=True)
class SyntheticSpec:
    """The synthetic generator's distributions (tokens and seconds).

    turns: turns per session, uniform. system_prompt_tokens: one prefix shared by every session.
    first_turn_tokens: the first turn's own content (after the system prompt), uniform.
    new_tokens: each later turn's new user/tool content, uniform. output_tokens: every answer,
    uniform. Tool pauses before turns 2.. are exponential with mean `pause_mean_s`, capped at
    `pause_max_s` (0 mean: no pause).
    """

    sessions: int
    turns: IntRange
    system_prompt_tokens: int = 0
    first_turn_tokens: IntRange = IntRange(64, 64)
    new_tokens: IntRange = IntRange(32, 32)
    output_tokens: IntRange = IntRange(16, 16)
    pause_mean_s: float = 0.0
    pause_max_s: float = 60.0


def synthetic(spec: SyntheticSpec, seed: int) -> tuple[Session, ...]:
    """`spec.sessions` sessions drawn from `spec`'s distributions; the same seed, the same trace."""
    rng = random.Random(seed)
    system = Segment(stable_key("system", seed), spec.system_prompt_tokens)
    out = []
    for s in range(spec.sessions):
        sid = f"s{s}"
        turns = []
        for k in range(spec.turns.draw(rng)):
            own = Segment(
                stable_key("user", seed, sid, k),
                (spec.first_turn_tokens if k == 0 else spec.new_tokens).draw(rng),
            )
            new = (system, own) if k == 0 and system.length else (own,)
            pause = 0.0
            if k and spec.pause_mean_s > 0:
                pause = min(spec.pause_max_s, rng.expovariate(1.0 / spec.pause_mean_s))
            turns.append(Turn(new=new, output_tokens=spec.output_tokens.draw(rng), pause_s=pause))
        out.append(Session(id=sid, turns=tuple(turns)))
    return tuple(out)


# ----------------------------------------------------------------------------- readers


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; TraceError on size, JSON or shape."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TraceError(
            f"{path}: cannot read the trace ({exc.strerror})",
            hint="give the path of a JSONL trace file",
        ) from exc
    if size > MAX_TRACE_BYTES:
        raise TraceError(
            f"{path}: {size} bytes > the {MAX_TRACE_BYTES >> 20} MiB limit for a trace",
            hint="cut the trace into smaller files",
        )
    out = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise TraceError(
                    f"{path}:{n}: not a JSON object ({exc})",
                    hint="one JSON object per line (JSONL)",
                ) from None
            if not isinstance(obj, dict):
                raise TraceError(
                    f"{path}:{n}: a JSON {type(obj).__name__}, not an object",
                    hint="one JSON object per line (JSONL)",
                )
            out.append((n, obj))
            if len(out) > MAX_SESSIONS:
                raise TraceError(
                    f"{path}:{n}: more than {MAX_SESSIONS} lines", hint="cut the trace"
                )
    if not out:
        raise TraceError(f"{path}: the trace is empty", hint="one JSON object per line (JSONL)")
    return out


def _int(
    where: str, obj: Mapping[str, Any], key: str, lo: int, hi: int, default: int | None = None
) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TraceError(
            f"{where}: field {key!r}: expected an integer in [{lo}, {hi}], got {value!r:.40}",
            hint=f"set {key!r} to a token count",
        )
    return value


def _seconds(where: str, obj: Mapping[str, Any], key: str, *, scale: float = 1.0) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise TraceError(f"{where}: field {key!r}: expected a number >= 0, got {value!r:.40}")
    return float(value) * scale


def read_mooncake(path: Path, *, block_tokens: int = MOONCAKE_BLOCK_TOKENS) -> tuple[Session, ...]:
    """Mooncake trace lines → single-turn sessions arriving at `timestamp` (ms, relative to the
    first line). Block i of a prompt is `hash_ids[i]`'s content: equal ids, equal tokens."""
    lines = _lines(path)
    out, t0 = [], None
    for n, obj in lines:
        where = f"{path}:{n}"
        ts = _seconds(where, obj, "timestamp", scale=1e-3)
        t0 = ts if t0 is None else t0
        length = _int(where, obj, "input_length", 1, MAX_PROMPT_TOKENS)
        output = _int(where, obj, "output_length", 1, MAX_PROMPT_TOKENS)
        ids = obj.get("hash_ids")
        if not isinstance(ids, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) for h in ids
        ):
            raise TraceError(f"{where}: field 'hash_ids': expected a list of integers")
        need = math.ceil(length / block_tokens)
        if len(ids) != need:
            raise TraceError(
                f"{where}: field 'hash_ids': {len(ids)} ids for input_length {length} "
                f"(blocks of {block_tokens} tokens need {need})",
                hint="check the trace's block size (--block-tokens / block-tokens)",
            )
        new = tuple(
            Segment(stable_key("block", h), min(block_tokens, length - i * block_tokens))
            for i, h in enumerate(ids)
        )
        start = None if ts is None or t0 is None else max(0.0, ts - t0)
        out.append(
            Session(id=f"line{n}", start_s=start, turns=(Turn(new=new, output_tokens=output),))
        )
    return tuple(out)


def read_conversations(path: Path) -> tuple[Session, ...]:
    """Conversation lines: {"id", "start_s"?, "shared_prefix_tokens"?, "turns": [{"new_tokens",
    "output_tokens", "pause_s"?}]}. A shared prefix is one content for every session that has one."""
    out, seen = [], set()
    for n, obj in _lines(path):
        where = f"{path}:{n}"
        sid = obj.get("id", f"line{n}")
        if not isinstance(sid, str | int) or isinstance(sid, bool) or len(str(sid)) > 200:
            raise TraceError(f"{where}: field 'id': expected a string of at most 200 characters")
        if str(sid) in seen:
            raise TraceError(f"{where}: field 'id': {sid!r} repeats an earlier conversation")
        seen.add(str(sid))
        raw = obj.get("turns")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TURNS:
            raise TraceError(f"{where}: field 'turns': expected a list of 1 to {MAX_TURNS} turns")
        shared = _int(where, obj, "shared_prefix_tokens", 0, MAX_PROMPT_TOKENS, 0)
        turns = []
        for k, t in enumerate(raw):
            tw = f"{where}: turns[{k}]"
            if not isinstance(t, dict):
                raise TraceError(f"{tw}: expected an object")
            own = Segment(
                stable_key("conv", sid, k), _int(tw, t, "new_tokens", 1, MAX_PROMPT_TOKENS)
            )
            new = (Segment(stable_key("shared"), shared), own) if k == 0 and shared else (own,)
            pause = _seconds(tw, t, "pause_s") or 0.0
            turns.append(
                Turn(
                    new=new,
                    output_tokens=_int(tw, t, "output_tokens", 1, MAX_PROMPT_TOKENS),
                    pause_s=pause if k else 0.0,
                )
            )
        session = Session(id=str(sid), turns=tuple(turns), start_s=_seconds(where, obj, "start_s"))
        if session.prompt_lengths()[-1] > MAX_PROMPT_TOKENS:
            raise TraceError(
                f"{where}: the conversation grows past {MAX_PROMPT_TOKENS} prompt tokens"
            )
        out.append(session)
    return tuple(out)


def trace_summary(sessions: Sequence[Session]) -> dict[str, Any]:
    """Counts and means of a trace (recorded with the point)."""
    turns = [len(s.turns) for s in sessions]
    prompts = [p for s in sessions for p in s.prompt_lengths()]
    outs = [t.output_tokens for s in sessions for t in s.turns]
    return {
        "sessions": len(sessions),
        "turns": sum(turns),
        "turns_mean": sum(turns) / len(turns) if turns else 0.0,
        "prompt_tokens_mean": sum(prompts) / len(prompts) if prompts else 0.0,
        "prompt_tokens_max": max(prompts, default=0),
        "output_tokens_mean": sum(outs) / len(outs) if outs else 0.0,
    }


# ----------------------------------------------------------------------------- the profile block


@dataclass(frozen=True, kw_only=True)
class SessionsWorkload:
    """A scenario's `workload: {kind: sessions, …}` block, parsed (schemas/scenario.schema.json).

    trace: `synthetic`, `mooncake` or `conversations`; file: the trace file (relative to the
    catalog root) for the readers. max_sessions: replay at most this many sessions of a file.
    session_rate: open loop, sessions per second (None: closed loop at the point's concurrency,
    or the file's own arrival times when every session has one).
    """

    trace: str = "synthetic"
    file: str | None = None
    synthetic: SyntheticSpec = SyntheticSpec(sessions=64, turns=IntRange(4, 4))
    max_sessions: int | None = None
    session_rate: float | None = None
    block_tokens: int = MOONCAKE_BLOCK_TOKENS

    @classmethod
    def from_profile(cls, d: Mapping[str, Any]) -> SessionsWorkload:
        """From the validated kebab-case block (or its `to_json`)."""
        pause = d.get("tool-pause-s") or {}
        spec = SyntheticSpec(
            sessions=int(d.get("sessions", 64)),
            turns=IntRange.parse(d.get("turns", 4)),
            system_prompt_tokens=int(d.get("system-prompt-tokens", 0)),
            first_turn_tokens=IntRange.parse(d.get("first-turn-tokens", 64)),
            new_tokens=IntRange.parse(d.get("new-tokens", 32)),
            output_tokens=IntRange.parse(d.get("output-tokens", 16)),
            pause_mean_s=float(pause.get("mean", 0.0)),
            pause_max_s=float(pause.get("max", 60.0)),
        )
        return cls(
            trace=str(d.get("trace", "synthetic")),
            file=d.get("file"),
            synthetic=spec,
            max_sessions=d.get("max-sessions"),
            session_rate=d.get("session-rate"),
            block_tokens=int(d.get("block-tokens", MOONCAKE_BLOCK_TOKENS)),
        )

    def to_json(self) -> dict[str, Any]:
        """The kebab-case block again (what run-job hands the load-generator child)."""
        s = self.synthetic
        out: dict[str, Any] = {
            "kind": "sessions",
            "trace": self.trace,
            "sessions": s.sessions,
            "turns": {"min": s.turns.lo, "max": s.turns.hi},
            "system-prompt-tokens": s.system_prompt_tokens,
            "first-turn-tokens": {"min": s.first_turn_tokens.lo, "max": s.first_turn_tokens.hi},
            "new-tokens": {"min": s.new_tokens.lo, "max": s.new_tokens.hi},
            "output-tokens": {"min": s.output_tokens.lo, "max": s.output_tokens.hi},
            "tool-pause-s": {"mean": s.pause_mean_s, "max": s.pause_max_s},
            "block-tokens": self.block_tokens,
        }
        for key, value in (
            ("file", self.file),
            ("max-sessions", self.max_sessions),
            ("session-rate", self.session_rate),
        ):
            if value is not None:
                out[key] = value
        return out

    def sessions(self, *, root: Path, seed: int) -> tuple[Session, ...]:
        """The trace to replay (seeded for `synthetic`; files read relative to `root`)."""
        if self.trace == "synthetic":
            return synthetic(self.synthetic, seed)
        if self.file is None:
            raise TraceError(
                f"a {self.trace} workload needs a `file`", hint="add file: path/to/trace.jsonl"
            )
        path = root / self.file
        if self.trace == "mooncake":
            found = read_mooncake(path, block_tokens=self.block_tokens)
        elif self.trace == "conversations":
            found = read_conversations(path)
        else:
            raise TraceError(
                f"unknown trace kind {self.trace!r}",
                hint="use synthetic, mooncake or conversations",
            )
        return found[: self.max_sessions] if self.max_sessions is not None else found
