"""Golden tests of the sessions metrics on a hand-computed case (docs/agentic.md)."""

from __future__ import annotations

import json

import pytest

from ixci.loadgen.metrics import ErrorKind, RequestRecord
from ixci.loadgen.sessions_metrics import TurnRecord, context_bucket, sessions_metrics

S = 1_000_000_000


def _ok(send: float, chunks: list[float], out: int, prompt: int) -> RequestRecord:
    return RequestRecord(
        index=0,
        worker=0,
        warmup=False,
        t_send_ns=int(send * S),
        t_end_ns=int(chunks[-1] * S),
        ok=True,
        chunk_times_ns=tuple(int(c * S) for c in chunks),
        output_tokens=out,
        prompt_tokens=prompt,
        requested_input_tokens=prompt,
        requested_output_tokens=out,
    )


# session A: two turns; session B: a cold turn, then a failed one
TURNS = [
    TurnRecord(
        record=_ok(0, [1, 2, 3], 3, 100),
        session="A",
        turn=0,
        prompt_tokens_requested=100,
        cached_tokens=0,
    ),
    TurnRecord(
        record=_ok(4, [4.5, 5], 2, 300),
        session="A",
        turn=1,
        prompt_tokens_requested=300,
        cached_tokens=200,
    ),
    TurnRecord(record=_ok(0, [2], 1, 600), session="B", turn=0, prompt_tokens_requested=600),
    TurnRecord(
        record=RequestRecord(
            index=1,
            worker=0,
            warmup=False,
            t_send_ns=3 * S,
            t_end_ns=int(3.5 * S),
            ok=False,
            error_kind=ErrorKind.HTTP_STATUS,
        ),
        session="B",
        turn=1,
        prompt_tokens_requested=700,
    ),
]


def test_sessions_metrics_golden() -> None:
    m = sessions_metrics(TURNS, gpus=2)
    assert m["sessions_completed"] == 1 and m["sessions_failed"] == 1 and m["turns_completed"] == 3
    # TTFT by turn: turn 1 = [1.0, 2.0], turn 2 = [0.5]
    t1 = m["ttft_by_turn"]["1"]
    assert (t1["count"], t1["mean"], t1["median"]) == (2, 1.5, 1.5)
    assert t1["p90"] == pytest.approx(1.9)
    assert m["ttft_by_turn"]["2"]["mean"] == pytest.approx(0.5)
    # by context bucket, cold and warm apart
    ctx = m["ttft_by_context"]
    assert list(ctx) == ["0-256", "256-512", "512-1024"]
    assert ctx["0-256"]["cold"]["mean"] == 1.0 and ctx["0-256"]["warm"]["count"] == 0
    assert ctx["256-512"]["warm"]["mean"] == 0.5 and ctx["256-512"]["cold"]["mean"] is None
    assert ctx["512-1024"]["all"]["mean"] == 2.0
    # client-visible hit rate over the turns that reported cached_tokens: (0 + 200) / (100 + 300)
    assert m["prefix_cache_hit_rate"] == 0.5 and m["cached_tokens_reported"] == 2
    # session E2E: only A completed, 0 → 5 s (tool pause included)
    assert m["session_e2e"]["count"] == 1 and m["session_e2e"]["mean"] == 5.0
    # InferenceX: E2EL/out per request = [1.0, 0.5, 2.0]; P50 = 1.0, P90 = 1.8 (linear)
    assert m["e2e_normalized_interactivity"]["p50"] == pytest.approx(1.0)
    assert m["e2e_normalized_interactivity"]["p90"] == pytest.approx(1 / 1.8)
    # ixci: 1/TPOT per request = [1.0, 2.0] (B's one-token answer has no TPOT)
    assert m["interactivity_per_token"]["median"] == pytest.approx(1.5)
    assert m["interactivity_per_token"]["p10"] == pytest.approx(1.1)
    # 6 output tokens over the window 0 → 5 s on 2 GPUs
    assert m["output_throughput_per_gpu"] == pytest.approx(0.6)


def test_no_gpu_count_and_no_cached_reports_give_none() -> None:
    m = sessions_metrics([t for t in TURNS if t.cached_tokens is None], gpus=None)
    assert m["prefix_cache_hit_rate"] is None and m["output_throughput_per_gpu"] is None
    empty = sessions_metrics([], gpus=4)
    assert empty["e2e_normalized_interactivity"] == {"p50": None, "p90": None}
    assert empty["session_e2e"]["count"] == 0 and empty["ttft_by_turn"] == {}


def test_cached_tokens_above_the_prompt_count_as_the_prompt() -> None:
    """A server claiming more cached tokens than the prompt has cannot push the rate past 1."""
    t = TurnRecord(
        record=_ok(0, [1], 1, 10),
        session="x",
        turn=1,
        prompt_tokens_requested=10,
        cached_tokens=10**9,
    )
    assert sessions_metrics([t], gpus=1)["prefix_cache_hit_rate"] == 1.0


@pytest.mark.parametrize(
    ("tokens", "label"),
    [(0, "0-256"), (255, "0-256"), (256, "256-512"), (131071, "65536-131072"), (131072, "131072+")],
)
def test_context_buckets(tokens: int, label: str) -> None:
    assert context_bucket(tokens) == label


def test_tidy_table_gets_session_columns_only_from_sessions_points() -> None:
    import copy
    import json
    from pathlib import Path

    from ixci.loadgen.sessions_metrics import SESSION_COLUMNS
    from ixci.results.aggregate import tidy_table

    artifact = (
        Path(__file__).resolve().parents[1]
        / "data"
        / "artifacts"
        / "j-19419ed0cfaa"
        / "result.json"
    )
    doc = json.loads(artifact.read_text())
    plain = tidy_table([doc])
    assert not set(SESSION_COLUMNS) & set(plain.columns)  # single-turn tables keep their shape
    multi = copy.deepcopy(doc)
    multi["points"][0]["sessions"] = sessions_metrics(TURNS, gpus=2)
    table = tidy_table([multi])
    assert list(table.columns[-len(SESSION_COLUMNS) :]) == list(SESSION_COLUMNS)
    row = table[table["point_id"] == multi["points"][0]["id"]].iloc[0]
    assert row["prefix_cache_hit_rate"] == 0.5 and row["session_e2e_median_s"] == 5.0
    assert row["ttft_cold_median_s"] == 1.5 and row["ttft_warm_median_s"] == 0.5
    assert row["e2e_norm_interactivity_p90"] == pytest.approx(1 / 1.8)
    assert row["interactivity_per_token_p10"] == pytest.approx(1.1)
    # TTFT by context as JSON text: [bucket, cold median, cold n, warm median, warm n]
    assert json.loads(row["ttft_by_context"]) == [["0-256", 1.0, 1, None, 0], ["256-512", None, 0, 0.5, 1],
                                                  ["512-1024", 2.0, 1, None, 0]]  # fmt: skip


@pytest.mark.parametrize(
    "bad", [None, {}, "x", {"0-256": "not a summary"}, {"0-256": {"cold": {"median": "1"}}}]
)
def test_context_profile_of_odd_blocks(bad: object) -> None:
    """A hand-edited or older block never raises: odd summaries become empty sides."""
    from ixci.loadgen.sessions_metrics import context_profile

    out = context_profile(bad)
    assert (
        out is None
        if not bad or not isinstance(bad, dict)
        else json.loads(out) == [["0-256", None, 0, None, 0]]
    )
