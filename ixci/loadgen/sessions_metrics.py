"""The one definition of the multi-turn (sessions) metrics; docs/agentic.md explains each.

Over the successful turns of a sessions point (base units: seconds, tokens, tokens/s):
  ttft_cold / ttft_warm: TTFT summaries of first turns / of all later turns.
  ttft_by_turn[k]: TTFT summary of turn k (1 = a session's first, cold turn; turns past
    TURN_CAP are pooled under "TURN_CAP+").
  ttft_by_context[bucket]: TTFT summary of the turns whose prompt length falls in the bucket
    (edges CONTEXT_EDGES), split `cold` (first turns) / `warm` (later turns) so cold and warm
    turns compare at equal prompt length.
  prefix_cache_hit_rate: sum(cached_tokens) / sum(prompt tokens) over the turns whose response
    reported `cached_tokens` (client-visible; None when no response did).
  session_e2e: per session whose turns all succeeded, last response completed − first send
    (tool pauses included).
  e2e_normalized_interactivity: InferenceX's: 1 / Pq over requests of (E2E latency / output
    tokens) for q = 50 and 90 (linear-interpolation percentiles; E2E latency = last content
    chunk − send, as its client measures it).
  interactivity_per_token: ixci's: median and p10 over requests of 1 / TPOT.
  output_throughput_per_gpu: output tokens / measured window / GPUs (None without a GPU count).
Bump SESSIONS_METRICS_VERSION whenever a formula changes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ixci.loadgen.metrics import RequestRecord, measured_window, summarize

SESSIONS_METRICS_VERSION = 1
TURN_CAP = 16
CONTEXT_EDGES = (0, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
_SHORT = ("mean", "median", "p90", "p99")


@dataclass(frozen=True, kw_only=True)
class TurnRecord:
    """One request of a session: the loadgen record plus where it sits in its session."""

    record: RequestRecord
    session: str
    turn: int  # 0-based index in the session
    prompt_tokens_requested: int
    cached_tokens: int | None = None

    @property
    def prompt_tokens(self) -> int:
        """The server's count where it reported one, else the requested length."""
        p = self.record.prompt_tokens
        return p if p is not None else self.prompt_tokens_requested


def _short(values: Sequence[float]) -> dict[str, Any]:
    full = summarize(values)
    return {"count": len(values), **{k: full[k] for k in _SHORT}}


def context_bucket(tokens: int) -> str:
    """The label of the CONTEXT_EDGES bucket holding `tokens`: "1024-2048", …, "131072+"."""
    for lo, hi in itertools.pairwise(CONTEXT_EDGES):
        if lo <= tokens < hi:
            return f"{lo}-{hi}"
    return f"{CONTEXT_EDGES[-1]}+"


def _bucket_order(label: str) -> int:
    return int(label.split("-")[0].rstrip("+"))


def ttft_by_turn(turns: Sequence[TurnRecord]) -> dict[str, dict[str, Any]]:
    """TTFT summaries keyed by 1-based turn index (pooled past TURN_CAP)."""
    groups: dict[int, list[float]] = {}
    for t in turns:
        if (v := t.record.ttft_s) is not None:
            groups.setdefault(min(t.turn + 1, TURN_CAP), []).append(v)
    return {(f"{k}+" if k == TURN_CAP else str(k)): _short(v) for k, v in sorted(groups.items())}


def ttft_by_context(turns: Sequence[TurnRecord]) -> dict[str, dict[str, Any]]:
    """TTFT summaries per prompt-length bucket, all turns and split cold (turn 1) / warm."""
    groups: dict[str, dict[str, list[float]]] = {}
    for t in turns:
        if (v := t.record.ttft_s) is None:
            continue
        g = groups.setdefault(context_bucket(t.prompt_tokens), {"all": [], "cold": [], "warm": []})
        g["all"].append(v)
        g["cold" if t.turn == 0 else "warm"].append(v)
    return {
        b: {k: _short(v) for k, v in groups[b].items()} for b in sorted(groups, key=_bucket_order)
    }


def prefix_cache_hit_rate(turns: Sequence[TurnRecord]) -> float | None:
    """Cached prompt tokens / prompt tokens over the turns that reported cached_tokens."""
    reported = [t for t in turns if t.cached_tokens is not None]
    prompt = sum(t.prompt_tokens for t in reported)
    return (
        sum(min(t.cached_tokens or 0, t.prompt_tokens) for t in reported) / prompt
        if prompt
        else None
    )


def session_e2e(all_turns: Sequence[TurnRecord]) -> tuple[list[float], int]:
    """(E2E seconds of each session whose turns all succeeded, sessions with a failed turn)."""
    spans: dict[str, list[int]] = {}
    failed: set[str] = set()
    for t in all_turns:
        if not t.record.ok:
            failed.add(t.session)
        span = spans.setdefault(t.session, [t.record.t_send_ns, t.record.t_end_ns])
        span[0], span[1] = min(span[0], t.record.t_send_ns), max(span[1], t.record.t_end_ns)
    done = [(e - s) * 1e-9 for sid, (s, e) in spans.items() if sid not in failed]
    return done, len(failed)


def e2e_normalized_interactivity(records: Sequence[RequestRecord]) -> dict[str, float | None]:
    """InferenceX's E2E-normalized interactivity: 1 / P50 and 1 / P90 of (E2EL / output tokens)."""
    ratios = [
        e / r.output_tokens for r in records if r.ok and r.output_tokens > 0 and (e := r.e2el_s)
    ]
    if not ratios:
        return {"p50": None, "p90": None}
    p50, p90 = np.percentile(np.asarray(ratios, dtype=np.float64), [50.0, 90.0], method="linear")
    return {
        "p50": float(1.0 / p50) if p50 > 0 else None,
        "p90": float(1.0 / p90) if p90 > 0 else None,
    }


def interactivity_per_token(records: Sequence[RequestRecord]) -> dict[str, float | None]:
    """ixci's per-request 1 / TPOT: its median and p10 (the slow tail)."""
    full = summarize(
        [1.0 / v for r in records if r.ok and (v := r.tpot_s) is not None and v > 0], with_p10=True
    )
    return {"median": full["median"], "p10": full["p10"]}


def sessions_metrics(turns: Sequence[TurnRecord], *, gpus: int | None) -> dict[str, Any]:
    """The `sessions` metrics block of a point (keys of schemas/result.schema.json#/$defs/sessions)."""
    ok = [t for t in turns if t.record.ok]
    records = [t.record for t in turns]
    e2e, failed_sessions = session_e2e(turns)
    window = measured_window(records)
    out_tokens = sum(t.record.output_tokens for t in ok)
    per_gpu = None
    if gpus and window is not None and window.duration_s > 0:
        per_gpu = out_tokens / window.duration_s / gpus
    return {
        "sessions_metrics_version": SESSIONS_METRICS_VERSION,
        "sessions_completed": len(e2e),
        "sessions_failed": failed_sessions,
        "turns_completed": len(ok),
        "ttft_cold": _short([v for t in ok if t.turn == 0 and (v := t.record.ttft_s) is not None]),
        "ttft_warm": _short([v for t in ok if t.turn > 0 and (v := t.record.ttft_s) is not None]),
        "ttft_by_turn": ttft_by_turn(ok),
        "ttft_by_context": ttft_by_context(ok),
        "prefix_cache_hit_rate": prefix_cache_hit_rate(ok),
        "cached_tokens_reported": sum(1 for t in ok if t.cached_tokens is not None),
        "session_e2e": _short(e2e),
        "e2e_normalized_interactivity": e2e_normalized_interactivity(records),
        "interactivity_per_token": interactivity_per_token(records),
        "gpus": gpus,
        "output_throughput_per_gpu": per_gpu,
    }


SESSION_COLUMNS: tuple[str, ...] = (
    "ttft_cold_median_s",
    "ttft_warm_median_s",
    "prefix_cache_hit_rate",
    "session_e2e_median_s",
    "e2e_norm_interactivity_p50",
    "e2e_norm_interactivity_p90",
    "interactivity_per_token_p10",
    "ttft_by_context",
)
"""Tidy-table columns of a sessions point (present only when some point has a sessions block).
`ttft_by_context` is JSON text (`context_profile`): the table stays flat and its CSV readable."""


def session_columns(block: Any) -> dict[str, Any]:
    """The SESSION_COLUMNS of one point's `sessions` block ({} for a single-turn point)."""
    if not isinstance(block, dict):
        return {}

    def get(*path: str) -> Any:
        node: Any = block
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, int | float) and not isinstance(node, bool) else None

    values = (
        get("ttft_cold", "median"),
        get("ttft_warm", "median"),
        get("prefix_cache_hit_rate"),
        get("session_e2e", "median"),
        get("e2e_normalized_interactivity", "p50"),
        get("e2e_normalized_interactivity", "p90"),
        get("interactivity_per_token", "p10"),
        context_profile(block.get("ttft_by_context")),
    )
    return dict(zip(SESSION_COLUMNS, values, strict=True))


def context_profile(by_context: Any) -> str | None:
    """`ttft_by_context` as compact JSON text for the tidy table: a list, in bucket order, of
    `[bucket, cold median s, cold count, warm median s, warm count]` (median None for an empty
    side), e.g. `[["256-512",0.139,110,0.052,532]]`. None without buckets."""
    if not isinstance(by_context, dict) or not by_context:
        return None
    rows = []
    for label, node in by_context.items():  # in bucket order, as sessions_metrics writes them
        node = node if isinstance(node, dict) else {}
        row: list[Any] = [str(label)]
        for side in ("cold", "warm"):
            summary = node.get(side)
            summary = summary if isinstance(summary, dict) else {}
            median, count = summary.get("median"), summary.get("count")
            row.append(
                float(median) if isinstance(median, int | float) and _number(median) else None
            )
            row.append(int(count) if isinstance(count, int | float) and _number(count) else 0)
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"), allow_nan=False)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
