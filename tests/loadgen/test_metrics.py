"""Golden tests: every point metric on hand-computed request records (metrics.md)."""

from __future__ import annotations

import pytest

from ixci.loadgen.metrics import (
    METRICS,
    METRICS_VERSION,
    ErrorKind,
    RequestRecord,
    Slo,
    TokenSource,
    point_metrics,
    summarize,
)

MS = 1_000_000  # ns


def rec(
    index: int,
    send_ms: float,
    chunks_ms: list[float],
    end_ms: float,
    *,
    out: int,
    warmup: bool = False,
    ok: bool = True,
    prompt: int | None = 10,
    kind: ErrorKind | None = None,
    tokens: tuple[int, ...] = (),
) -> RequestRecord:
    return RequestRecord(
        index=index,
        worker=0,
        warmup=warmup,
        t_send_ns=int(send_ms * MS),
        t_end_ns=int(end_ms * MS),
        ok=ok,
        chunk_times_ns=tuple(int(c * MS) for c in chunks_ms),
        output_tokens=out,
        prompt_tokens=prompt,
        requested_input_tokens=10,
        requested_output_tokens=4,
        error_kind=kind,
        token_source=TokenSource.USAGE,
        chunk_tokens=tokens,
    )


# R0: warm-up (excluded from metrics, counted for the steady-state window)
# R1: TTFT 100 ms, chunks at 100/120/150/160 ms, 4 tokens   → TPOT 20 ms, ITL 20/30/10 ms
# R2: sent at 10 ms, chunks at 60/100 ms, 4 tokens (1 then 3) → TTFT 50 ms, TPOT 13.33 ms
# R3: HTTP 500 at 20 → 25 ms
RECORDS = [
    rec(0, -100, [-50, 0], 5, out=2, warmup=True),
    rec(1, 0, [100, 120, 150, 160], 165, out=4),
    rec(2, 10, [60, 100], 110, out=4, tokens=(1, 3)),
    rec(3, 20, [], 25, out=0, ok=False, prompt=None, kind=ErrorKind.HTTP_STATUS),
]


@pytest.fixture(scope="module")
def m() -> dict:
    return point_metrics(RECORDS, concurrency=2, slo=Slo(ttft_s=0.08)).to_json()


def test_counts_window_and_throughputs(m: dict) -> None:
    assert (m["completed"], m["failed"]) == (2, 1)
    assert m["error_rate"] == pytest.approx(1 / 3)
    assert m["errors"] == {"http_status": 1}
    assert m["duration_s"] == pytest.approx(
        0.165
    )  # first measured send 0 → last measured end 165 ms
    assert (m["total_input_tokens"], m["total_output_tokens"]) == (20, 8)
    assert m["token_count_source"] == "usage"
    assert m["request_throughput"] == pytest.approx(2 / 0.165)
    assert m["output_throughput"] == pytest.approx(8 / 0.165)
    assert m["input_throughput"] == pytest.approx(20 / 0.165)
    assert m["total_token_throughput"] == pytest.approx(28 / 0.165)
    assert m["goodput"] == pytest.approx(1 / 0.165)  # only R2 has TTFT ≤ 80 ms


def test_ttft_distribution(m: dict) -> None:
    t = m["ttft"]  # values 100 ms, 50 ms
    assert t["mean"] == pytest.approx(0.075)
    assert t["std"] == pytest.approx(0.025)  # population std
    assert t["median"] == pytest.approx(0.075)
    assert t["p90"] == pytest.approx(0.095)  # linear interpolation: 50 + 0.9·50 ms
    assert t["p99"] == pytest.approx(0.0995)
    assert t["p99_9"] == pytest.approx(0.09995)


def test_tpot_e2el_itl(m: dict) -> None:
    assert m["tpot"]["mean"] == pytest.approx((0.02 + 0.04 / 3) / 2)
    assert m["e2el"]["mean"] == pytest.approx((0.16 + 0.09) / 2)
    itl = m["itl"]  # chunk gaps 20, 30, 10, 40 ms
    assert itl["mean"] == pytest.approx(0.025)
    assert itl["std"] == pytest.approx(0.0111803399)
    assert itl["median"] == pytest.approx(0.025)
    assert itl["p90"] == pytest.approx(0.037)
    # token-normalised: each gap ÷ the tokens of THAT chunk (metrics v2). R2's 40 ms gap closes
    # its chunk of 3 tokens → 13.33 ms (v1 divided by the average, 2 per chunk → 20 ms)
    assert m["itl_per_token"]["mean"] == pytest.approx((0.02 + 0.03 + 0.01 + 0.04 / 3) / 4)
    assert m["itl_per_token"]["median"] == pytest.approx(
        (0.04 / 3 + 0.02) / 2
    )  # sorted 10, 13.3, 20, 30 ms


def test_interactivity_is_per_request_never_one_over_std(m: dict) -> None:
    i = m["interactivity"]  # 1/TPOT: 50 and 75 tok/s
    assert i["mean"] == pytest.approx(62.5)
    assert i["std"] == pytest.approx(12.5)
    assert i["p10"] == pytest.approx(52.5)  # the slow tail
    assert i["p90"] == pytest.approx(72.5)


def test_steady_state_window(m: dict) -> None:
    s = m["steady_state"]  # concurrency 2 reached at 0 ms; first drop after the last send: 110 ms
    assert (s["start_s"], s["end_s"]) == (pytest.approx(0.0), pytest.approx(0.110))
    # every token delivered inside [0, 110 ms] counts, warm-up included: R0's chunk at 0 ms
    # (1 token), R1's chunk at 100 ms (1 token), R2's two chunks (1 + 3 tokens); input tokens
    # count where the first chunk falls in the window (R1, R2)
    assert s["output_throughput"] == pytest.approx(6 / 0.110)
    assert s["total_token_throughput"] == pytest.approx((6 + 20) / 0.110)


def test_contract_keys_and_units() -> None:
    keys = set(point_metrics(RECORDS, concurrency=2).to_json())
    assert keys == {
        "completed",
        "failed",
        "error_rate",
        "errors",
        "duration_s",
        "total_input_tokens",
        "total_output_tokens",
        "token_count_source",
        "request_throughput",
        "input_throughput",
        "output_throughput",
        "total_token_throughput",
        "goodput",
        "ttft",
        "tpot",
        "itl",
        "itl_per_token",
        "e2el",
        "interactivity",
        "steady_state",
        "retries",
        "retry_rate",
        "timing",
    }
    assert (
        METRICS_VERSION == 2
    )  # v2: ITL per token by each chunk's tokens; T ends at the last completed response
    assert METRICS["ttft"].unit == "s" and METRICS["ttft"].higher_is_better is False
    assert METRICS["output_throughput"].higher_is_better is True
    assert all(k in METRICS for k in keys - {"errors", "steady_state", "timing"})


def test_edge_cases() -> None:
    assert summarize([])["mean"] is None
    one = rec(9, 0, [30], 31, out=1)
    assert one.tpot_s is None and one.itl_s() == []  # TPOT only for out > 1
    m = point_metrics([one], concurrency=1).to_json()
    assert m["tpot"]["mean"] is None and m["interactivity"]["p10"] is None
    assert m["ttft"]["mean"] == pytest.approx(0.030)
    assert point_metrics([], concurrency=1).to_json()["output_throughput"] == 0.0
