"""Speculative-decoding acceptance of one point, as the engine measured it.

The point's `speculative` block (schemas/result.schema.json) comes from the first source that
has it:
- the responses themselves: llama.cpp puts `timings.draft_n` / `draft_n_accepted` in each
  request's final chunk; the load generator keeps them per request (`RequestRecord`) and sums
  them over the measured requests (`loadgen.metrics.draft_totals`, `from_totals`);
- the engine's Prometheus counters over the point (`server_metrics`, ixci/run/servermetrics.py):
  vLLM's (and llama.cpp's) draft rounds, draft tokens and accepted tokens, their deltas over
  the point;
- the engine's acceptance gauges (SGLang's `spec_accept_rate` / `spec_accept_length`, each the
  scheduler's figure over its last logging interval), averaged over the point's samples.

Definitions, whatever the source: `acceptance_rate` = accepted draft tokens / proposed draft
tokens; `mean_accepted_length` = tokens produced per target verification step = 1 + accepted
tokens / draft rounds (the engine's own figure where it publishes one). None when the source
does not give what a figure needs; the whole block is None when nothing drafted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROUND = 6


def from_totals(totals: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The block from the load generator's per-request sums (`loadgen.metrics.draft_totals`);
    None when no measured request drafted a token."""
    if not totals or not totals.get("draft_tokens"):
        return None
    return block("llama.cpp response timings (draft_n, draft_n_accepted)",
                 draft_tokens=int(totals["draft_tokens"]),
                 accepted_tokens=int(totals["accepted_tokens"]), drafts=None,
                 requests=int(totals["requests"]))  # fmt: skip


def from_server_metrics(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Acceptance from a point's `server_metrics` record: counter deltas first, else gauges."""
    series = (record or {}).get("series") or {}

    def delta(name: str) -> int | None:
        entry = series.get(name) or {}
        value = entry.get("delta") if entry.get("kind") == "counter" else None
        return int(value) if isinstance(value, int | float) else None

    proposed, accepted = delta("spec_draft_tokens"), delta("spec_accepted_tokens")
    if proposed:
        raw = ", ".join(series[n]["raw"] for n in ("spec_drafts", "spec_draft_tokens",
                                                   "spec_accepted_tokens") if n in series)  # fmt: skip
        return block(f"/metrics counter deltas ({raw})", draft_tokens=proposed,
                     accepted_tokens=accepted, drafts=delta("spec_drafts"))  # fmt: skip
    rate, length = (series.get(n) for n in ("spec_accept_rate", "spec_accept_length"))
    if rate is None and length is None:
        return None
    raw = ", ".join(e["raw"] for e in (rate, length) if e is not None)
    return {
        "source": f"/metrics gauges, mean over the point's samples ({raw})",
        "draft_tokens": None, "accepted_tokens": None, "drafts": None,
        "acceptance_rate": _fraction(rate["mean"]) if rate else None,
        "mean_accepted_length": _length(length["mean"]) if length else None,
    }  # fmt: skip


def block(source: str, *, draft_tokens: int, accepted_tokens: int | None, drafts: int | None,
          requests: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The `speculative` block from counts (rate and length derived as the module says)."""
    rate = accepted_tokens / draft_tokens if accepted_tokens is not None and draft_tokens else None
    length = 1 + accepted_tokens / drafts if accepted_tokens is not None and drafts else None
    out: dict[str, Any] = {
        "source": source[:200], "draft_tokens": draft_tokens, "accepted_tokens": accepted_tokens,
        "drafts": drafts, "acceptance_rate": _fraction(rate), "mean_accepted_length": _length(length),
    }  # fmt: skip
    if requests is not None:
        out["requests"] = requests
    return out


def point_block(
    totals: Mapping[str, Any] | None, server_metrics: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The point's `speculative` block: counts and rate from the per-request sums when the load
    generator has them (the measured requests only), else from the engine's metrics; None when
    neither shows drafting. Responses count no draft rounds: the mean accepted length then
    comes from the engine's counters (a ratio over the point, its warm-up requests included)."""
    client, server = from_totals(totals), from_server_metrics(server_metrics)
    if client is None:
        return server
    if server is not None and server["mean_accepted_length"] is not None:
        client["mean_accepted_length"] = server["mean_accepted_length"]
        # the series names are in the point's server_metrics record
        client["source"] += "; mean accepted length from /metrics counter deltas"
    return client


def _fraction(v: float | None) -> float | None:
    # the server's word: a rate outside [0, 1] is no rate
    return round(v, ROUND) if v is not None and 0.0 <= v <= 1.0 else None


def _length(v: float | None) -> float | None:
    return round(v, ROUND) if v is not None and v >= 0.0 else None
