"""Bounded-memory aggregation (ixci.loadgen.spill): the same metrics, bit for bit, as in memory,
from records spilled to disk, in memory that does not grow with the number of records."""

from __future__ import annotations

import gzip
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ixci.loadgen import fold, spill, timing
from ixci.loadgen.fold import Fold, checks_of, point_metrics_of
from ixci.loadgen.metrics import (
    NS,
    ErrorKind,
    RequestRecord,
    Slo,
    TokenSource,
    draft_totals,
    point_metrics,
    point_metrics_from,
    steady_window,
    summarize,
)
from ixci.loadgen.run import write_requests
from ixci.loadgen.spill import (
    Joined,
    RecordSpill,
    Values,
    iter_spilled,
    summarize_values,
    write_spilled_requests,
)

CHUNKS = 48


def synthetic(n: int, seed: int = 7, *, slack: bool = False) -> list[RequestRecord]:
    """`n` requests as a saturated closed loop makes them: overlapping, mixed chunk sizes, some
    warm-up, some failures and cuts, ties in the gaps, and (with `slack`) late-stamped chunks."""
    rng = np.random.default_rng(seed)
    out = []
    t = 1_000_000_000
    for i in range(n):
        send = t + int(rng.integers(0, 2_000_000))
        t += 400_000
        roll = rng.random()
        if roll < 0.03:
            kind = ErrorKind.CUT if roll < 0.01 else ErrorKind.HTTP_STATUS
            out.append(
                RequestRecord(
                    index=i,
                    worker=i % 2,
                    warmup=False,
                    t_send_ns=send,
                    t_end_ns=send + 5_000_000,
                    ok=False,
                    error_kind=kind,
                    requested_input_tokens=128,
                    requested_output_tokens=CHUNKS,
                )
            )
            continue
        # gaps on a 10 µs grid (many equal values) with a heavy tail
        gaps = (
            rng.integers(1, 40, CHUNKS) * 10_000 + (rng.random(CHUNKS) < 0.02) * 7_000_000
        ).astype(np.int64)
        times = tuple((send + np.cumsum(gaps)).tolist())
        tokens = tuple(int(k) for k in rng.integers(1, 4, CHUNKS)) if i % 3 == 0 else ()
        out_tokens = sum(tokens) if tokens else CHUNKS
        slacks = (
            tuple(
                (int(j), int(j) + int(rng.integers(1, 4)), int(rng.integers(1, 3_000_000)))
                for j in rng.choice(CHUNKS, 2, replace=False)
            )
            if slack and i % 5 == 0
            else ()
        )
        out.append(
            RequestRecord(
                index=i,
                worker=i % 2,
                warmup=i < 8,
                t_send_ns=send,
                t_end_ns=times[-1] + 50_000,
                ok=True,
                chunk_times_ns=times,
                output_tokens=out_tokens,
                prompt_tokens=128 if i % 7 else None,
                requested_input_tokens=128,
                requested_output_tokens=CHUNKS,
                token_source=TokenSource.CHUNKS if i % 11 == 0 else TokenSource.USAGE,
                chunk_tokens=tokens,
                chunk_slack_runs=slacks,
                retried=i % 13 == 0,
                t_retry_ns=send + 1000 if i % 13 == 0 else None,
                draft_tokens=10 if i % 4 == 0 else None,
                draft_accepted=7 if i % 4 == 0 else None,
            )
        )
    return out


def spill_files(records: list[RequestRecord], folder: Path) -> list[Path]:
    """Two workers' spill files, each in its own completion order."""
    files = [RecordSpill(folder / f"worker-{w}.jsonl") for w in range(2)]
    for r in records:
        files[r.worker].write(r)
    for f in files:
        f.close()
    return [f.path for f in files]


def ordered(records: list[RequestRecord]) -> list[RequestRecord]:
    """The records as the point aggregates them: worker 0's, then worker 1's."""
    return [r for w in range(2) for r in records if r.worker == w]


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).lognormal(size=50_001) * 1e-3,
        np.round(np.random.default_rng(2).normal(size=30_000), 2),  # negatives, many ties
        np.full(20_000, 0.0125),  # one value: the histogram narrows to the full 64 bits
        np.random.default_rng(3).integers(0, 5, 40_000) * 1e-4,
        np.array([0.25]),
    ],
)
@pytest.mark.parametrize("cap", [128, 4096])
def test_summarize_values_is_numpy_bit_for_bit(values: np.ndarray, cap: int) -> None:
    v = Values(cap=cap)
    v.extend(values.tolist())
    assert v.spilled == (values.size >= cap)
    assert summarize_values(v, with_p10=True) == summarize(values, with_p10=True)
    v.close()


@pytest.mark.parametrize("slack", [False, True])
def test_spilled_point_metrics_equal_in_memory(
    slack: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = ordered(synthetic(1500, slack=slack))
    slo = Slo(ttft_s=0.005, tpot_s=0.0003)
    expected = point_metrics(records, concurrency=48, slo=slo).to_json()
    assert expected["itl"]["p99"] is not None or slack  # the in-memory reference computed something
    assert expected["steady_state"]["output_throughput"] is not None  # 48 in flight is reached
    assert (expected["timing"]["slack_chunks"] > 0) == slack
    paths = spill_files(records, tmp_path)
    monkeypatch.setattr(spill, "BLOCK", 4096)  # ~70 k chunk gaps: every distribution goes to disk
    got = point_metrics_from(lambda: iter_spilled(paths), concurrency=48, slo=slo).to_json()
    assert got == expected
    assert (
        point_metrics_from(lambda: iter_spilled(paths), concurrency=None).to_json()
        == point_metrics(records, concurrency=None).to_json()
    )
    assert draft_totals(iter_spilled(paths)) == draft_totals(records)


@pytest.mark.parametrize("held", [None, 64])
def test_spilled_requests_file_is_the_in_memory_one(
    held: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = ordered(synthetic(400))
    paths = spill_files(records, tmp_path)
    if held:  # the index sorted in partitions on disk, read back in blocks
        monkeypatch.setattr(spill, "SORT_HELD", held)
        monkeypatch.setattr(spill, "BLOCK", 50)
    assert write_spilled_requests(tmp_path / "a.jsonl.gz", paths) == write_requests(
        tmp_path / "b.jsonl.gz", records
    )
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == gzip.decompress(
        (tmp_path / "b.jsonl.gz").read_bytes()
    )


def _sorted_in_memory(blocks: list[np.ndarray], key: str | None) -> np.ndarray:
    whole = np.concatenate(blocks)
    return whole[np.argsort(whole if key is None else whole[key], kind="stable")]


@pytest.mark.parametrize("shape", ["spread", "duplicates", "one dense key"])
def test_sorted_blocks_is_one_stable_sort_holding_a_bounded_count(
    shape: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    keys = {
        "spread": rng.integers(-(10**18), 10**18, n),
        "duplicates": rng.integers(0, 40, n) * 10**12,
        "one dense key": np.where(rng.random(n) < 0.5, 123, rng.integers(0, 10**9, n)),
    }[shape]
    pairs = np.empty(n, dtype=[("k", "<i8"), ("i", "<i8")])
    pairs["k"], pairs["i"] = keys, np.arange(n)  # `i` shows a stable sort: ties keep their order
    blocks = [pairs[i : i + 700] for i in range(0, n, 700)]
    got = list(spill.sorted_blocks(lambda: iter(blocks), tmp_path, key="k", held=600))
    assert np.concatenate(got).tobytes() == _sorted_in_memory(blocks, "k").tobytes()
    dense = int(np.unique(keys, return_counts=True)[1].max())
    assert len(got) > (n - dense) // 600 and all(b.size <= max(600, dense) for b in got)
    assert list(tmp_path.iterdir()) == []  # the partitions are removed as they are read
    plain = list(spill.sorted_blocks(lambda: iter([keys]), tmp_path, held=n))
    assert len(plain) == 1 and plain[0].tobytes() == np.sort(keys, kind="stable").tobytes()
    assert list(spill.sorted_blocks(lambda: iter([keys[:0]]), tmp_path)) == []


def _peak(paths: list[Path]) -> int:
    tracemalloc.start()
    try:
        point_metrics_from(lambda: iter_spilled(paths), concurrency=64)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_aggregation_memory_does_not_grow_with_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spill, "BLOCK", 4096)
    small = spill_files(synthetic(3000, seed=1, slack=True), tmp_path / "small")
    large = spill_files(synthetic(9000, seed=1, slack=True), tmp_path / "large")
    _peak(small)  # first use: lazy imports and caches out of the figures
    small_peak, large_peak = _peak(small), _peak(large)
    # 6,000 more requests (~280 k more chunk gaps; every distribution far past BLOCK): the peak
    # grows only by the per-request send/end times and their sort for the steady-state window
    # (about 100 bytes a request), never by the chunks
    per_request = (large_peak - small_peak) / 6000
    assert per_request < 400, (small_peak, large_peak)
    # while keeping the records in memory (as the client did before) costs kilobytes a request
    tracemalloc.start()
    try:
        point_metrics(list(iter_spilled(large)), concurrency=64)
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert held / 9000 > 1500, held
    assert held > 3 * large_peak, (held, large_peak)


def _intervals_one_value_at_a_time(records: list[RequestRecord]) -> dict[str, list[list[float]]]:
    """The definition of the fold's timing intervals, one value at a time (their first, scalar
    version)."""
    out: dict[str, list[list[float]]] = {name: [[], [], []] for name in timing.TIMED}

    def put(name: str, *trio: float) -> None:
        for column, v in zip(out[name], trio, strict=True):
            column.append(v)

    for r in records:
        t = r.chunk_times_ns
        if not t:
            continue
        slack = [0] * len(t)
        for first, end, ns in r.chunk_slack_runs:
            for i in range(first, end):
                if 0 <= i < len(t):
                    slack[i] = max(slack[i], ns)
        ttft, e2el = (t[0] - r.t_send_ns) * NS, (t[-1] - r.t_send_ns) * NS
        put("ttft", ttft, ttft - slack[0] * NS, ttft)
        put("e2el", e2el, e2el - slack[-1] * NS, e2el)
        tokens = r.tokens_per_chunk()
        for i in range(1, len(t)):
            g = (t[i] - t[i - 1]) * NS
            lo, hi = g - slack[i] * NS, g + slack[i - 1] * NS
            put("itl", g, lo, hi)
            if r.output_tokens > 0 and tokens[i] > 0:
                put("itl_per_token", g / tokens[i], lo / tokens[i], hi / tokens[i])
        if r.output_tokens > 1:
            n = r.output_tokens - 1
            span = e2el - ttft
            tpot, lo, hi = span / n, (span - slack[-1] * NS) / n, (span + slack[0] * NS) / n
            put("tpot", tpot, lo, hi)
            if tpot > 0:
                put("interactivity", 1.0 / tpot, 1.0 / hi, 1.0 / lo if lo > 0 else float("inf"))
    return out


def _one_token_a_chunk(r: RequestRecord) -> RequestRecord:
    return replace(r, chunk_tokens=(), output_tokens=len(r.chunk_times_ns))


def test_many_slack_runs_give_what_one_run_at_a_time_gives() -> None:
    """A client that reads each late chunk apart gives one run per chunk: those records take
    the array path. Overlapping, inverted and out-of-range runs included."""
    rng = np.random.default_rng(5)
    for n_runs in (fold._FEW_RUNS, 40, 900):
        first = rng.integers(-5, 1040, n_runs)
        end = first + rng.integers(-3, 9, n_runs)
        runs = tuple(
            (int(a), int(b), int(ns))
            for a, b, ns in zip(first, end, rng.integers(0, 10**6, n_runs), strict=True)
        )
        for chunks in (1024, 0):
            r = RequestRecord(
                index=0, worker=0, warmup=False, t_send_ns=1, t_end_ns=2, ok=True,
                chunk_times_ns=tuple(range(10, 10 + chunks)), output_tokens=chunks,
                chunk_slack_runs=runs,
            )  # fmt: skip
            got, want = fold._chunk_slack(r), fold._chunk_slack_few(r)
            assert got[1:] == want[1:] and want[1] > 0
            if chunks:
                assert got[0] is not None and want[0] is not None
                assert got[0].tobytes() == want[0].tobytes() and want[0].any()
            else:
                assert got[0] is None and want[0] is None


@pytest.mark.parametrize("tokens", ["mixed", "one a chunk", "one a chunk, then mixed"])
def test_array_intervals_and_gaps_are_the_per_value_definitions_bit_for_bit(
    tokens: str, tmp_path: Path
) -> None:
    """Also while ITL per token shares ITL's files (every chunk one token so far), and when it
    stops sharing after the timing intervals began."""
    records = [r for r in synthetic(600, slack=True) if r.ok and not r.warmup]
    if tokens != "mixed":
        cut = len(records) if tokens == "one a chunk" else 300
        records = [_one_token_a_chunk(r) for r in records[:cut]] + records[cut:]
    odd = records[0]  # zero-token chunks, a repeated and an out-of-range slack mark
    records.append(replace(odd, index=10_000, chunk_tokens=(0, 2) * (len(odd.chunk_times_ns) // 2),
                           output_tokens=len(odd.chunk_times_ns),
                           chunk_slack_runs=((1, 2, 5), (1, 3, 9), (CHUNKS - 1, CHUNKS + 3, 7), (-2, 0, 2))))  # fmt: skip
    records.append(replace(odd, index=10_001, output_tokens=0))  # no tokens: no ITL per token
    if tokens == "one a chunk":
        records = [_one_token_a_chunk(r) for r in records]
    assert records[1].chunk_slack_runs == ()  # values before the first mark: exact intervals
    fold = Fold(tmp_path, None)
    for i, r in enumerate(records):
        fold.add(r, i)
    done = fold.finish()
    assert done.slack_chunks == sum(b - a for r in records for a, b, _ in r.chunk_slack_runs)
    assert done.slack_max_ns > 0 and done.lows is not None and done.highs is not None
    shared = done.dist["itl_per_token"] == done.dist["itl"]  # the same file
    assert shared == (tokens == "one a chunk")
    want = _intervals_one_value_at_a_time(records)
    for name in timing.TIMED:
        for saved, column in zip(
            (done.dist[name], done.lows[name], done.highs[name]), want[name], strict=True
        ):
            vals = Joined([saved])
            assert vals.block(0, len(vals)).tobytes() == np.asarray(column).tobytes(), name
            vals.close()
    # the point's ITL distributions (arrays) against RequestRecord's per-value definitions
    plain = [replace(r, chunk_slack_runs=()) for r in records if not r.warmup]
    m = point_metrics(plain, concurrency=64).to_json()
    assert not m["timing"]["invalid"]
    assert m["itl"] == summarize(np.asarray([g for r in plain for g in r.itl_s()]))
    per_token = [g for r in plain for g in r.itl_per_token_s()]
    assert len(per_token) > 20_000 and m["itl_per_token"] == summarize(np.asarray(per_token))


def test_worker_folds_merged_in_worker_order_are_the_point_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What run_point does: each worker folds its records as it spills them (refs: the spill
    offsets) and the point merges the folds, reading back only the records across the steady
    window's edges. Worker 1's stamps are all exact (no intervals), worker 0's are not. The
    rows are read back in blocks and the steady window's 3,000 events sorted in partitions."""
    monkeypatch.setattr(spill, "BLOCK", 4096)  # every distribution goes to disk
    monkeypatch.setattr(spill, "SORT_HELD", 256)
    monkeypatch.setattr(fold, "_ROWS_BLOCK", 100)
    records = [
        r if r.worker == 0 else replace(r, chunk_slack_runs=())
        for r in ordered(synthetic(1500, slack=True))
    ]
    slo = Slo(ttft_s=0.005, tpot_s=0.0003)
    files = [RecordSpill(tmp_path / f"worker-{w}.jsonl") for w in range(2)]
    folds = [Fold(tmp_path / f"fold-{w}", slo) for w in range(2)]
    for r in records:
        folds[r.worker].add(r, files[r.worker].write(r))
    for f in files:
        f.close()
    done = [f.finish() for f in folds]
    assert done[0].lows is not None and done[1].lows is None
    read_back: list[tuple[int, int]] = []

    def fetch(wanted: list[tuple[int, int]]) -> list[RequestRecord]:
        read_back.extend(wanted)
        return [spill.read_spilled(files[part].path, [ref])[0] for part, ref in wanted]

    got = point_metrics_of(done, fetch, concurrency=48).to_json()
    assert got == point_metrics(records, concurrency=48, slo=slo).to_json()
    # the steady window's tokens by their definition: each chunk's tokens at its arrival
    w = steady_window(records, concurrency=48)
    assert w is not None
    out = 0.0
    for r in records:
        if r.ok and r.chunk_times_ns:
            tokens = zip(r.chunk_times_ns, r.tokens_per_chunk(), strict=True)
            out += sum(k for t, k in tokens if w.start_ns <= t <= w.end_ns)
    assert got["steady_state"]["output_throughput"] == out / w.duration_s
    assert 0 < len(read_back) < len(records) / 4  # only the records across the window's edges
    checks = checks_of(done)
    assert checks.drafts == draft_totals(records)
    assert checks.cut == {True: 0, False: sum(r.error_kind == ErrorKind.CUT for r in records)}
    assert checks.checked == sum(r.ok and r.prompt_tokens is not None for r in records)
