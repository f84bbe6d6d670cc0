"""Point metrics folded in as each record finishes, so the end of a point reads nothing twice.

A saturated client finishes thousands of requests a second; aggregating them only after the
load stopped, in one process, took longer than the load itself (a 10-minute point never
finished). Each worker now folds its records into a `Fold` right after spilling them, while it
runs: the counts and token totals, every distribution's values (`spill.Values` files), the
timing intervals from the first stamp that may be late on, the prompt-token, cut and
speculative-decoding checks, and one fixed-size row per request (send, end, chunk span, tokens)
for the steady-state window. `Fold.finish` gives a picklable `Folded`.

`point_metrics_of` merges the workers' `Folded` in worker order, the order their spill files
are read in: the metrics are those `metrics.point_metrics` gives over the records in that
order, bit for bit (`spill.summarize_values` over the joined values files). Only the records
that straddle an edge of the steady-state window, about two per slot, are read back from the
spill files, to count their tokens inside it.
"""

from __future__ import annotations

import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ixci.loadgen.metrics import (
    DISTRIBUTIONS,
    GAVE_UP,
    NS,
    ErrorKind,
    PointMetrics,
    RequestRecord,
    Slo,
    TokenSource,
    Window,
    _input_tokens,
    sweep,
)
from ixci.loadgen.spill import Joined, Values, sorted_blocks, summarize_values

# one row per request: send, end, first / lowest / highest chunk time (ns), its tokens (the sum
# of `tokens_per_chunk`), input tokens, where the record is (`ref`), WARM | COUNTED flags
ROW = np.dtype(
    [
        ("send", "<i8"),
        ("end", "<i8"),
        ("first", "<i8"),
        ("lo", "<i8"),
        ("hi", "<i8"),
        ("out", "<f8"),
        ("inp", "<i8"),
        ("ref", "<i8"),
        ("flags", "u1"),
    ]
)
_FIELDS = ("send", "end", "first", "lo", "hi", "out", "inp", "ref", "flags")
WARM, COUNTED = 1, 2  # warm-up; successful with content (its tokens count in the window)
_ROWS_BLOCK = 1 << 14  # rows held before they go to the file
# values each distribution's buffer holds before they go to its file (256 KiB): a point folds
# up to 18 of them, and a buffer's memory is only touched as it fills — with `spill.BLOCK`'s
# 2 MiB the per-request ones grew the client by ~50 bytes a request for its first 262 k
_VALUES_HELD = 1 << 15
Saved = tuple[str, int]  # a saved `Values` file: (path, values)
Fetch = Callable[[Sequence[tuple[int, int]]], list[RequestRecord]]  # (part, ref) → records


@dataclass(frozen=True, kw_only=True)
class Folded:
    """One worker's fold, finished: small counts, and the paths of its values and rows files."""

    n_measured: int
    n_ok: int
    n_failed: int
    retries: int
    good: int
    total_in: int
    total_out: int
    errors: Mapping[str, int]
    sources: frozenset[str]
    start_ns: int | None  # earliest measured send
    end_ns: int | None  # latest end of a measured request not given up on
    dist: Mapping[str, Saved]
    lows: Mapping[str, Saved] | None  # timing intervals; None: no stamp of this fold may be late
    highs: Mapping[str, Saved] | None
    slack_chunks: int
    slack_max_ns: int
    offsets: Mapping[int, int]  # prompt tokens reported − requested → requests (warm-up too)
    cut_measured: int
    cut_warmup: int
    drafted: int
    accepted: int
    draft_requests: int
    rows: Saved


@dataclass(frozen=True, kw_only=True)
class Checks:
    """The prompt-token check, the speculative-decoding totals and the cuts of a point."""

    checked: int
    offset: int | None  # the common reported − requested prompt tokens
    mismatched: int  # requests off that offset
    drafts: dict[str, int] | None  # `metrics.draft_totals`
    cut: dict[bool, int]  # warm-up → requests cut at max-duration


_FEW_RUNS = 16  # below it a loop over the runs is quicker than building arrays of them


def _chunk_slack(r: RequestRecord) -> tuple[np.ndarray | None, int, int]:
    """The record's slack per content chunk (ns; None without chunks), the number of chunks
    its slack runs name, and the largest slack (0 without runs)."""
    runs = r.chunk_slack_runs
    if len(runs) < _FEW_RUNS:
        return _chunk_slack_few(r)
    a = np.array(runs, dtype=np.int64)
    first, end, ns = a[:, 0], a[:, 1], a[:, 2]
    named, largest = int(np.maximum(end - first, 0).sum()), int(ns.max())
    n = len(r.chunk_times_ns)
    if not n:
        return None, named, largest
    lo, hi = np.clip(first, 0, n), np.clip(end, 0, n)
    k = np.maximum(hi - lo, 0)
    slack = np.zeros(n, dtype=np.int64)
    if total := int(k.sum()):  # each run's chunks: lo + 0..k-1, run after run
        at = np.repeat(lo - (np.cumsum(k) - k), k) + np.arange(total)
        np.maximum.at(slack, at, np.repeat(ns, k))
    return slack, named, largest


def _chunk_slack_few(r: RequestRecord) -> tuple[np.ndarray | None, int, int]:
    """`_chunk_slack`, one run at a time."""
    runs = r.chunk_slack_runs
    named = sum(end - first for first, end, _ in runs if end > first)
    largest = max((ns for _, _, ns in runs), default=0)
    t = r.chunk_times_ns
    if not t:
        return None, named, largest
    slack = np.zeros(len(t), dtype=np.int64)
    for first, end, ns in runs:
        part = slack[max(first, 0) : max(min(end, len(t)), 0)]
        np.maximum(part, ns, out=part)
    return slack, named, largest


class Fold:
    """Folds finished records, one at a time, into the point's running aggregates (files under
    `folder`); `finish` once, then `point_metrics_of`."""

    def __init__(self, folder: Path, slo: Slo | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.slo = slo or Slo()
        self.dist = {
            name: Values(_VALUES_HELD, path=folder / f"{name}.f8") for name in DISTRIBUTIONS
        }
        self.lows: dict[str, Values] | None = None
        self.highs: dict[str, Values] | None = None
        self._shared = True  # ITL per token equals ITL so far (every chunk one token)
        self.n_measured = self.n_ok = self.n_failed = self.retries = self.good = 0
        self.total_in = self.total_out = 0
        self.errors: dict[str, int] = {}
        self.sources: set[str] = set()
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self.slack_chunks = self.slack_max_ns = 0
        self.offsets: Counter[int] = Counter()
        self.cut = {True: 0, False: 0}
        self.drafted = self.accepted = self.draft_requests = 0
        self._cols: dict[str, array[Any]] = {
            name: array("d" if name == "out" else "B" if name == "flags" else "q")
            for name in _FIELDS
        }
        self._rows_path = folder / "rows.bin"
        self._rows: IO[bytes] | None = open(self._rows_path, "wb")  # noqa: SIM115 - finish()
        self._row_count = 0

    def add(self, r: RequestRecord, ref: int) -> None:
        """Fold in one finished record; `ref` finds it again (`Fetch`): its spill offset."""
        counted = r.ok and bool(r.chunk_times_ns)  # its tokens count in the steady window
        times = np.asarray(r.chunk_times_ns, dtype=np.int64) if counted else None
        tokens: list[float] = r.tokens_per_chunk() if counted else []
        self._row(r, ref, times, tokens)
        self._check(r)
        if r.warmup:
            return
        self.n_measured += 1
        self.retries += r.retried
        self.start_ns = r.t_send_ns if self.start_ns is None else min(self.start_ns, r.t_send_ns)
        if r.error_kind not in GAVE_UP:
            self.end_ns = r.t_end_ns if self.end_ns is None else max(self.end_ns, r.t_end_ns)
        if not r.ok:
            # a request the client itself cut at --max-duration is an unfinished sample, not a
            # failure of the server: counted in `errors.cut`, never in `failed` or `error_rate`
            kind = str(r.error_kind or ErrorKind.PROTOCOL)
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.n_failed += r.error_kind != ErrorKind.CUT
            return
        self.n_ok += 1
        self.total_in += _input_tokens(r)
        self.total_out += r.output_tokens
        self.sources.add(str(r.token_source))
        self.good += self.slo.met_by(r)
        if times is not None:
            self._values(r, times, tokens)

    def _row(
        self, r: RequestRecord, ref: int, times: np.ndarray | None, tokens: list[float]
    ) -> None:
        c = self._cols
        c["send"].append(r.t_send_ns)
        c["end"].append(r.t_end_ns)
        c["first"].append(0 if times is None else int(times[0]))
        c["lo"].append(0 if times is None else int(times.min()))
        c["hi"].append(0 if times is None else int(times.max()))
        c["out"].append(sum(tokens))  # as the steady window sums them (0 without content)
        c["inp"].append(0 if times is None else _input_tokens(r))
        c["ref"].append(ref)
        c["flags"].append(WARM * r.warmup | COUNTED * (times is not None))
        if len(c["ref"]) >= _ROWS_BLOCK:
            self._flush_rows()

    def _flush_rows(self) -> None:
        n = len(self._cols["ref"])
        if not n or self._rows is None:
            return
        block = np.empty(n, dtype=ROW)
        for name, col in self._cols.items():
            block[name] = np.frombuffer(col, dtype=ROW[name])
            del col[:]
        block.tofile(self._rows)
        self._row_count += n

    def _check(self, r: RequestRecord) -> None:
        if r.ok and r.prompt_tokens is not None:
            self.offsets[r.prompt_tokens - r.requested_input_tokens] += 1
        if r.error_kind == ErrorKind.CUT:
            self.cut[r.warmup] += 1
        if r.ok and not r.warmup and r.draft_tokens is not None:
            self.drafted += r.draft_tokens or 0
            self.accepted += r.draft_accepted or 0
            self.draft_requests += 1

    def _values(self, r: RequestRecord, times: np.ndarray, tokens: list[float]) -> None:
        """A completed measured request's values (`times`: its chunk times, `tokens`: its
        `tokens_per_chunk`), and the intervals that hold their true values once any stamp of
        this fold may be late (`ixci.loadgen.timing`)."""
        slack, marks, largest = _chunk_slack(r)
        self.slack_chunks, self.slack_max_ns = (
            self.slack_chunks + marks,
            max(self.slack_max_ns, largest),
        )
        if marks and self.lows is None:
            self._start_intervals()
        t = r.chunk_times_ns
        if slack is None:
            return
        s0, s_last = int(slack[0]) * NS, int(slack[-1]) * NS
        ttft, e2el = (t[0] - r.t_send_ns) * NS, (t[-1] - r.t_send_ns) * NS
        self._put("ttft", ttft, ttft - s0, ttft)
        self._put("e2el", e2el, e2el - s_last, e2el)
        if len(t) > 1:
            # int64 → float64, then × NS: what Python does for `int * float`, value for value
            g = np.diff(times).astype(np.float64) * NS
            sl = slack.astype(np.float64) * NS
            lo, hi = g - sl[1:], g + sl[:-1]
            # one token a chunk (no chunk_tokens, as many tokens as chunks): each value ÷ 1.0,
            # which is the value itself — ITL per token is ITL, not written again (`_shared`)
            shared = self._shared and not r.chunk_tokens and r.output_tokens == len(t)
            if not shared:
                self._unshare()  # before this record's ITL: the copy ends where it begins
            self._put_array("itl", g, lo, hi)
            if not shared and r.output_tokens > 0:  # as `RequestRecord.itl_per_token_s`
                closing = np.asarray(tokens[1:], dtype=np.float64)
                keep = closing > 0
                k = closing[keep]
                self._put_array("itl_per_token", g[keep] / k, lo[keep] / k, hi[keep] / k)
        if r.output_tokens > 1:
            n = r.output_tokens - 1
            span = e2el - ttft
            tpot, lo_t, hi_t = span / n, (span - s_last) / n, (span + s0) / n
            self._put("tpot", tpot, lo_t, hi_t)
            if tpot > 0:
                inf = float("inf")
                self._put("interactivity", 1.0 / tpot, 1.0 / hi_t, 1.0 / lo_t if lo_t > 0 else inf)

    def _unshare(self) -> None:
        """ITL per token stops being ITL: write out what it shared so far, then its own."""
        if not self._shared:
            return
        self._shared = False
        groups = [self.dist] + [g for g in (self.lows, self.highs) if g is not None]
        for group in groups:
            for block in group["itl"].blocks():
                group["itl_per_token"].extend_array(block)

    def _start_intervals(self) -> None:
        """The first mark: every value so far was stamped exactly, so its interval is itself."""
        self.lows, self.highs = {}, {}
        for name, vals in self.dist.items():
            lows = self.lows[name] = Values(_VALUES_HELD, path=self.folder / f"{name}.lo.f8")
            highs = self.highs[name] = Values(_VALUES_HELD, path=self.folder / f"{name}.hi.f8")
            for block in vals.blocks():
                lows.extend_array(block)
                highs.extend_array(block)

    def _put(self, name: str, v: float, lo: float, hi: float) -> None:
        self.dist[name].append(v)
        if self.lows is not None and self.highs is not None:
            self.lows[name].append(lo)
            self.highs[name].append(hi)

    def _put_array(self, name: str, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.dist[name].extend_array(v)
        if self.lows is not None and self.highs is not None:
            self.lows[name].extend_array(lo)
            self.highs[name].extend_array(hi)

    def finish(self) -> Folded:
        """Write what is still in memory and close the files → the picklable `Folded`."""
        self._flush_rows()
        if self._rows is not None:
            self._rows.close()
            self._rows = None

        def save(group: Mapping[str, Values] | None) -> dict[str, Saved] | None:
            if group is None:
                return None
            saved = {name: v.save() for name, v in group.items() if name != "itl_per_token"}
            per_token = group["itl_per_token"]
            saved["itl_per_token"] = saved["itl"] if self._shared else per_token.save()
            per_token.close()
            return {name: saved[name] for name in group}  # in `DISTRIBUTIONS` order

        return Folded(
            n_measured=self.n_measured,
            n_ok=self.n_ok,
            n_failed=self.n_failed,
            retries=self.retries,
            good=self.good,
            total_in=self.total_in,
            total_out=self.total_out,
            errors=dict(self.errors),
            sources=frozenset(self.sources),
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            dist=save(self.dist) or {},
            lows=save(self.lows),
            highs=save(self.highs),
            slack_chunks=self.slack_chunks,
            slack_max_ns=self.slack_max_ns,
            offsets=dict(self.offsets),
            cut_measured=self.cut[False],
            cut_warmup=self.cut[True],
            drafted=self.drafted,
            accepted=self.accepted,
            draft_requests=self.draft_requests,
            rows=(str(self._rows_path), self._row_count),
        )


def _counts(folds: Sequence[Folded]) -> tuple[dict[str, Any], Window | None]:
    """The point's counts, token totals, rates and measured window."""
    n_measured, n_ok, n_failed = (
        sum(getattr(f, k) for f in folds) for k in ("n_measured", "n_ok", "n_failed")
    )
    retries, good = sum(f.retries for f in folds), sum(f.good for f in folds)
    total_in, total_out = sum(f.total_in for f in folds), sum(f.total_out for f in folds)
    errors: Counter[str] = Counter()
    for f in folds:
        errors.update(f.errors)
    sources = set().union(*(f.sources for f in folds))
    starts = [f.start_ns for f in folds if f.start_ns is not None]
    ends = [f.end_ns for f in folds if f.end_ns is not None]
    start = min(starts) if starts else None
    window = None if start is None else Window(start_ns=start, end_ns=max(ends) if ends else start)
    t = window.duration_s if window else 0.0
    source = "mixed" if len(sources) > 1 else next(iter(sources), str(TokenSource.USAGE))
    rate = (lambda x: x / t) if t > 0 else (lambda x: 0.0)
    values: dict[str, Any] = {
        "completed": n_ok,
        "failed": n_failed,
        "retries": retries,
        "retry_rate": retries / n_measured if n_measured else 0.0,
        "error_rate": n_failed / (n_ok + n_failed) if n_ok or n_failed else 0.0,
        "errors": dict(sorted(errors.items())),
        "duration_s": t,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "token_count_source": source,
        "request_throughput": rate(n_ok),
        "input_throughput": rate(total_in),
        "output_throughput": rate(total_out),
        "total_token_throughput": rate(total_in + total_out),
        "goodput": rate(good),
    }
    return values, window


def _row_blocks(folds: Sequence[Folded]) -> Iterator[tuple[int, np.ndarray]]:
    """Every request's row in worker order, a block at a time, with the worker (part) of each."""
    for part, f in enumerate(folds):
        path, left = f.rows
        with open(path, "rb") as fh:
            while left > 0:
                block = np.fromfile(fh, dtype=ROW, count=min(left, _ROWS_BLOCK))
                if not block.size:
                    raise ValueError(f"{path}: {left} rows short")
                left -= block.size
                yield part, block


def _steady_of(folds: Sequence[Folded], measured: Window, concurrency: int | None) -> Window | None:
    """`metrics.steady_window` from the rows, held a block at a time (the closed-loop events
    are sorted by `spill.sorted_blocks`, in partitions on disk when there are many)."""
    if concurrency is None:
        sends = [
            (int(s.min()), int(s.max()))
            for _, b in _row_blocks(folds)
            if (s := b["send"][(b["flags"] & WARM) == 0]).size
        ]
        if not sends:
            return None
        return Window(start_ns=min(lo for lo, _ in sends), end_ns=max(hi for _, hi in sends))
    last_send = max((int(b["send"].max()) for _, b in _row_blocks(folds)), default=0)

    def keys() -> Iterator[np.ndarray]:
        for _, b in _row_blocks(folds):
            yield b["send"] * 2 + 1
            yield b["end"] * 2

    with tempfile.TemporaryDirectory(
        prefix="ixci-steady-", dir=Path(folds[0].rows[0]).parent
    ) as tmp:
        return sweep(sorted_blocks(keys, Path(tmp)), last_send, measured, concurrency)


def _steady_tokens(folds: Sequence[Folded], w: Window, fetch: Fetch) -> tuple[float, float]:
    """(input, output) tokens of successful requests (warm-up included: the server produced them
    inside the window) in window `w`: output tokens at chunk arrival, input at the first chunk.
    Requests wholly inside count their row's tokens; those across an edge are read back."""
    inp, out = 0, 0.0
    for part, rows in _row_blocks(folds):
        counted = (rows["flags"] & COUNTED) != 0
        inside = counted & (rows["lo"] >= w.start_ns) & (rows["hi"] <= w.end_ns)
        across = np.flatnonzero(
            counted & ~inside & (rows["hi"] >= w.start_ns) & (rows["lo"] <= w.end_ns)
        )
        tokens = np.where(inside, rows["out"], 0.0)
        records = fetch([(part, int(rows["ref"][i])) for i in across])
        for i, r in zip(across.tolist(), records, strict=True):
            tokens[i] = sum(
                k
                for t, k in zip(r.chunk_times_ns, r.tokens_per_chunk(), strict=True)
                if w.start_ns <= t <= w.end_ns
            )
        for k in tokens[counted].tolist():  # in record order, one add at a time (as a loop)
            out += k
        first = rows["first"]
        inp += int(rows["inp"][counted & (first >= w.start_ns) & (first <= w.end_ns)].sum())
    return float(inp), out


def _steady_json(
    folds: Sequence[Folded], w: Window | None, measured: Window | None, fetch: Fetch
) -> dict[str, Any]:
    measured_start = (measured or Window(start_ns=0, end_ns=0)).start_ns
    if w is None or w.duration_s <= 0:
        return {
            "start_s": None,
            "end_s": None,
            "duration_s": 0.0,
            "output_throughput": None,
            "total_token_throughput": None,
        }
    inp, out = _steady_tokens(folds, w, fetch)
    return {
        "start_s": (w.start_ns - measured_start) * NS,
        "end_s": (w.end_ns - measured_start) * NS,
        "duration_s": w.duration_s,
        "output_throughput": out / w.duration_s,
        "total_token_throughput": (inp + out) / w.duration_s,
    }


def checks_of(folds: Sequence[Folded]) -> Checks:
    """The prompt-token check (common offset and requests off it), drafts and cuts."""
    offsets: Counter[int] = Counter()
    for f in folds:
        offsets.update(f.offsets)
    n = sum(f.draft_requests for f in folds)
    drafts = (
        {
            "draft_tokens": sum(f.drafted for f in folds),
            "accepted_tokens": sum(f.accepted for f in folds),
            "requests": n,
        }
        if n
        else None
    )
    cut = {True: sum(f.cut_warmup for f in folds), False: sum(f.cut_measured for f in folds)}
    if not offsets:
        return Checks(checked=0, offset=None, mismatched=0, drafts=drafts, cut=cut)
    common = offsets.most_common(1)[0][0]
    checked = offsets.total()
    return Checks(
        checked=checked, offset=common, mismatched=checked - offsets[common], drafts=drafts, cut=cut
    )


def point_metrics_of(
    folds: Sequence[Folded], fetch: Fetch, *, concurrency: int | None
) -> PointMetrics:
    """The point's metrics from its workers' folds, in worker order (`fetch` reads back the
    records across the steady-state window's edges)."""
    from ixci.loadgen.timing import judge

    values, window = _counts(folds)
    full: dict[
        str, dict[str, float | None]
    ] = {}  # with p10 for all: the timing bounds need it, and its ranks cost no extra pass
    for name in DISTRIBUTIONS:
        parts = [f.dist[name] for f in folds]
        if name == "itl_per_token" and parts == [f.dist["itl"] for f in folds]:
            full[name] = full["itl"]  # every fold shared ITL's values (one token a chunk)
        else:
            joined = Joined(parts)
            try:
                full[name] = summarize_values(joined, with_p10=True)
            finally:
                joined.close()
        keep = name == "interactivity"
        values[name] = {k: v for k, v in full[name].items() if keep or k != "p10"}
    steady = None if window is None else _steady_of(folds, window, concurrency)
    values["steady_state"] = _steady_json(folds, steady, window, fetch)

    # a fold without marks: every value exact, its interval the value itself
    def sides(name: str) -> list[list[Saved]]:
        return [
            [f.dist[name] for f in folds],
            [(f.lows or f.dist)[name] for f in folds],
            [(f.highs or f.dist)[name] for f in folds],
        ]

    intervals: dict[str, tuple[Joined, Joined, Joined]] = {}
    for name in DISTRIBUTIONS:
        if name == "itl_per_token" and sides(name) == sides("itl"):
            intervals[name] = intervals["itl"]  # the same files: judged once (`judge`)
        else:
            stamped, lows, highs = (Joined(parts) for parts in sides(name))
            intervals[name] = (stamped, lows, highs)
    try:
        judge(
            values,
            intervals,
            sum(f.slack_chunks for f in folds),
            max((f.slack_max_ns for f in folds), default=0),
            stamped=full,
        )
    finally:
        for trio in intervals.values():
            for j in trio:
                j.close()
    return PointMetrics(values=values)


__all__ = ["ROW", "Checks", "Fold", "Folded", "checks_of", "point_metrics_of"]
