"""The one definition of every per-request and per-point metric (see docs/loadgen.md).

Implements ``shared/reference/metrics.md`` exactly. Bump `METRICS_VERSION` whenever a formula
changes; every result carries it. Units are declared once, in `METRICS`; stored values are in
base units (seconds, tokens, tokens/s, requests/s, 1/s).

Per request (successful measured requests only):
  TTFT = first content chunk - t_send; E2EL = last content chunk - t_send;
  TPOT = (E2EL - TTFT) / (out - 1) for out > 1; ITL = gaps between consecutive content chunks
  (chunk level) and each gap divided by the tokens of the chunk that closes it (token level);
  interactivity = 1 / TPOT. A request retried before its first byte keeps the send time of its
  first attempt: its TTFT and E2EL include the failed attempt (what its user waited).
Per point: mean, population std, median, p90, p95, p99, p99.9 (linear interpolation) over the
per-request values (per chunk gap for ITL); interactivity also p10. Window T = first measured
send -> last measured response completed (a request the client gave up on — timeout, cut —
did not complete, so it never stretches T).

Version history: 2 — ITL per token divides each gap by the tokens of that chunk (1: by the
request's average tokens per chunk); T ends at the last completed response (1: at the last
end of any measured request, a timed-out one included); TTFT of a retried request counts from
its first attempt (1: from the retry).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

METRICS_VERSION = 2

NS = 1e-9  # seconds per nanosecond


class Unit(enum.StrEnum):
    SECONDS = "s"
    TOKENS = "tokens"
    TOKENS_PER_S = "tokens/s"
    REQUESTS_PER_S = "requests/s"
    REQUESTS = "requests"
    RATIO = "ratio"
    LABEL = "label"


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """Unit, direction and meaning of one metric, declared once."""

    unit: Unit
    higher_is_better: bool | None
    description: str


METRICS: Mapping[str, MetricSpec] = {
    "completed": MetricSpec(
        unit=Unit.REQUESTS, higher_is_better=True, description="successful measured requests"
    ),
    "failed": MetricSpec(
        unit=Unit.REQUESTS, higher_is_better=False, description="failed measured requests"
    ),
    "retries": MetricSpec(
        unit=Unit.REQUESTS,
        higher_is_better=False,
        description="measured requests retried after their first attempt failed before any byte",
    ),
    "retry_rate": MetricSpec(
        unit=Unit.RATIO, higher_is_better=False, description="retries / measured requests"
    ),
    "error_rate": MetricSpec(
        unit=Unit.RATIO, higher_is_better=False, description="failed / (completed + failed)"
    ),
    "duration_s": MetricSpec(
        unit=Unit.SECONDS,
        higher_is_better=None,
        description="window T: first measured send to last measured response completed",
    ),
    "total_input_tokens": MetricSpec(
        unit=Unit.TOKENS,
        higher_is_better=None,
        description="sum of server-reported prompt tokens (requested length where none)",
    ),
    "total_output_tokens": MetricSpec(
        unit=Unit.TOKENS,
        higher_is_better=None,
        description="sum of server-reported completion tokens (content chunks where none)",
    ),
    "token_count_source": MetricSpec(
        unit=Unit.LABEL, higher_is_better=None, description="usage | chunks | mixed"
    ),
    "request_throughput": MetricSpec(
        unit=Unit.REQUESTS_PER_S, higher_is_better=True, description="completed / T"
    ),
    "input_throughput": MetricSpec(
        unit=Unit.TOKENS_PER_S, higher_is_better=True, description="sum(in) / T"
    ),
    "output_throughput": MetricSpec(
        unit=Unit.TOKENS_PER_S, higher_is_better=True, description="sum(out) / T"
    ),
    "total_token_throughput": MetricSpec(
        unit=Unit.TOKENS_PER_S, higher_is_better=True, description="(sum(in) + sum(out)) / T"
    ),
    "goodput": MetricSpec(
        unit=Unit.REQUESTS_PER_S,
        higher_is_better=True,
        description="completed requests meeting every SLO / T",
    ),
    "ttft": MetricSpec(
        unit=Unit.SECONDS, higher_is_better=False, description="first content chunk - t_send"
    ),
    "tpot": MetricSpec(
        unit=Unit.SECONDS, higher_is_better=False, description="(E2EL - TTFT) / (out - 1), out > 1"
    ),
    "itl": MetricSpec(
        unit=Unit.SECONDS,
        higher_is_better=False,
        description="gap between consecutive content chunks",
    ),
    "itl_per_token": MetricSpec(
        unit=Unit.SECONDS,
        higher_is_better=False,
        description="chunk gap / tokens in the chunk closing it",
    ),
    "e2el": MetricSpec(
        unit=Unit.SECONDS, higher_is_better=False, description="last content chunk - t_send"
    ),
    "interactivity": MetricSpec(
        unit=Unit.TOKENS_PER_S, higher_is_better=True, description="1 / TPOT per request"
    ),
}

DISTRIBUTIONS = ("ttft", "tpot", "itl", "itl_per_token", "e2el", "interactivity")
PERCENTILES: Mapping[str, float] = {
    "median": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p99_9": 99.9,
}


class ErrorKind(enum.StrEnum):
    """Why a request failed (closed set; `errors` in the metrics counts these)."""

    CONNECT = "connect"  # could not connect / connection refused or reset before a byte
    HTTP_STATUS = "http_status"  # non-2xx status
    TIMEOUT = "timeout"  # no completion within the request timeout
    TRUNCATED = "truncated"  # the stream stopped before its end (connection lost mid-stream)
    SERVER_ERROR = "server_error"  # the server sent an error event inside the stream
    PROTOCOL = (
        "protocol"  # a response that breaks HTTP/SSE/JSON or a size limit (the server's fault)
    )
    CUT = "cut"  # still in flight when max_duration ran out: the client cut it
    NO_CONTENT = "no_content"  # the stream completed without any generated content


class TokenSource(enum.StrEnum):
    USAGE = "usage"
    CHUNKS = "chunks"


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestRecord:
    """One request as measured (times: `time.perf_counter_ns`, shared by all workers).

    `chunk_times_ns` holds the arrival time of every chunk carrying generated content;
    `output_tokens` is the server's `usage.completion_tokens` (or the chunk count when
    `token_source` is CHUNKS). `chunk_tokens` gives the tokens of each chunk when known and not
    all one (empty: `output_tokens / chunks` each). `chunk_slack_runs` lists (first chunk, end
    chunk, ns): the chunks first..end-1 may be stamped up to ns late (several server writes read
    at once, see `ixci.loadgen.timing`). `t_send_ns` is the first attempt's send time; `t_retry_ns` the
    retry's, when the first attempt failed before any byte.
    """

    index: int
    worker: int
    warmup: bool
    t_send_ns: int
    t_end_ns: int
    ok: bool
    chunk_times_ns: tuple[int, ...] = ()
    output_tokens: int = 0
    prompt_tokens: int | None = None
    requested_input_tokens: int = 0
    requested_output_tokens: int = 0
    token_source: TokenSource = TokenSource.USAGE
    error_kind: ErrorKind | None = None
    error: str | None = None
    http_status: int | None = None
    retried: bool = False
    t_retry_ns: int | None = None
    chunk_tokens: tuple[int, ...] = ()
    chunk_slack_runs: tuple[tuple[int, int, int], ...] = ()
    draft_tokens: int | None = None  # speculative decoding, where the server reports it per request
    draft_accepted: int | None = None

    @property
    def ttft_s(self) -> float | None:
        return (self.chunk_times_ns[0] - self.t_send_ns) * NS if self.chunk_times_ns else None

    @property
    def e2el_s(self) -> float | None:
        return (self.chunk_times_ns[-1] - self.t_send_ns) * NS if self.chunk_times_ns else None

    @property
    def tpot_s(self) -> float | None:
        ttft, e2el = self.ttft_s, self.e2el_s
        if ttft is None or e2el is None or self.output_tokens <= 1:
            return None
        return (e2el - ttft) / (self.output_tokens - 1)

    def itl_s(self) -> list[float]:
        t = self.chunk_times_ns
        return [(t[i] - t[i - 1]) * NS for i in range(1, len(t))]

    def tokens_per_chunk(self) -> list[float]:
        """Tokens of each content chunk: `chunk_tokens`, else the average out / chunks."""
        n = len(self.chunk_times_ns)
        if self.chunk_tokens and len(self.chunk_tokens) == n:
            return [float(k) for k in self.chunk_tokens]
        return [self.output_tokens / n] * n if n else []

    def itl_per_token_s(self) -> list[float]:
        """Each chunk gap divided by the tokens of the chunk that closes it (metrics.md)."""
        if len(self.chunk_times_ns) < 2 or self.output_tokens <= 0:
            return []
        tokens = self.tokens_per_chunk()
        return [gap / k for gap, k in zip(self.itl_s(), tokens[1:], strict=True) if k > 0]

    def to_json(self) -> dict[str, Any]:
        """The `requests.jsonl.gz` line (seconds relative to t_send; absolute times in ns).

        `chunk_dt_ns` is the audit trail: the arrival of each content chunk as deltas (ns) —
        the first from `t_send_ns`, each next from the one before — so every metric can be
        recomputed from the file (`record_from_json`, `ixci loadgen --recompute`).
        """
        return self._doc(_deltas(self.t_send_ns, self.chunk_times_ns).tolist())

    def to_line(self) -> bytes:
        """`orjson.dumps(self.to_json())` plus a newline, byte for byte: the `requests.jsonl.gz`
        line (and the spill file's), with the deltas serialized from their array."""
        doc = self._doc(_deltas(self.t_send_ns, self.chunk_times_ns))
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)

    def _doc(self, deltas: list[int] | np.ndarray) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "index": self.index,
            "worker": self.worker,
            "warmup": self.warmup,
            "ok": self.ok,
            "t_send_ns": self.t_send_ns,
            "t_end_ns": self.t_end_ns,
            "ttft_s": self.ttft_s,
            "e2el_s": self.e2el_s,
            "tpot_s": self.tpot_s,
            "chunks": len(self.chunk_times_ns),
            "output_tokens": self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            "requested_input_tokens": self.requested_input_tokens,
            "requested_output_tokens": self.requested_output_tokens,
            "token_source": str(self.token_source),
            "error_kind": None if self.error_kind is None else str(self.error_kind),
            "error": self.error,
            "http_status": self.http_status,
            "retried": self.retried,
            "chunk_dt_ns": deltas,
        }
        if self.t_retry_ns is not None:
            doc["t_retry_ns"] = self.t_retry_ns
        if self.chunk_tokens:
            doc["chunk_tokens"] = list(self.chunk_tokens)
        if self.chunk_slack_runs:
            doc["chunk_slack_runs"] = [list(x) for x in self.chunk_slack_runs]
        if self.draft_tokens is not None:
            doc["draft_tokens"], doc["draft_accepted"] = self.draft_tokens, self.draft_accepted
        return doc


def _deltas(start: int, times: Sequence[int]) -> np.ndarray:
    arr = np.asarray(times, dtype=np.int64)
    return np.diff(arr, prepend=np.int64(start)) if arr.size else arr


def record_from_json(doc: Mapping[str, Any]) -> RequestRecord:
    """The `RequestRecord` of one `requests.jsonl.gz` line (`RequestRecord.to_json`'s inverse).

    `KeyError`/`ValueError`/`TypeError` on a line that is not one (the caller names the line).
    """
    send = int(doc["t_send_ns"])
    times = np.cumsum(np.asarray([send, *doc.get("chunk_dt_ns", [])], dtype=np.int64))[1:]
    kind = doc.get("error_kind")
    retry = doc.get("t_retry_ns")
    return RequestRecord(
        index=int(doc["index"]),
        worker=int(doc["worker"]),
        warmup=bool(doc["warmup"]),
        t_send_ns=send,
        t_end_ns=int(doc["t_end_ns"]),
        ok=bool(doc["ok"]),
        chunk_times_ns=tuple(times.tolist()),
        output_tokens=int(doc["output_tokens"]),
        prompt_tokens=doc.get("prompt_tokens"),
        requested_input_tokens=int(doc["requested_input_tokens"]),
        requested_output_tokens=int(doc["requested_output_tokens"]),
        token_source=TokenSource(doc["token_source"]),
        error_kind=None if kind is None else ErrorKind(kind),
        error=doc.get("error"),
        http_status=doc.get("http_status"),
        retried=bool(doc.get("retried", False)),
        t_retry_ns=None if retry is None else int(retry),
        chunk_tokens=tuple(int(k) for k in doc.get("chunk_tokens", ())),
        chunk_slack_runs=_slack_runs(doc),
        draft_tokens=_count_or_none(doc.get("draft_tokens")),
        draft_accepted=_count_or_none(doc.get("draft_accepted")),
    )


def _slack_runs(doc: Mapping[str, Any]) -> tuple[tuple[int, int, int], ...]:
    """`chunk_slack_runs`; a file written before them names each chunk (`chunk_slack_ns`)."""
    if "chunk_slack_runs" in doc:
        return tuple((int(a), int(b), int(ns)) for a, b, ns in doc["chunk_slack_runs"])
    runs: list[tuple[int, int, int]] = []
    for i, ns in doc.get("chunk_slack_ns", ()):
        i, ns = int(i), int(ns)
        if runs and runs[-1][1] == i and runs[-1][2] == ns:  # the next chunk of the same read
            runs[-1] = (runs[-1][0], i + 1, ns)
        else:
            runs.append((i, i + 1, ns))
    return tuple(runs)


def _count_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, kw_only=True)
class Slo:
    """Service-level objectives for goodput (seconds; None = not declared)."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2el_s: float | None = None

    def met_by(self, r: RequestRecord) -> bool:
        checks = ((self.ttft_s, r.ttft_s), (self.tpot_s, r.tpot_s), (self.e2el_s, r.e2el_s))
        return all(limit is None or (v is not None and v <= limit) for limit, v in checks)


@dataclass(frozen=True, kw_only=True)
class Window:
    start_ns: int
    end_ns: int

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * NS


def summarize(
    values: Sequence[float] | np.ndarray, *, with_p10: bool = False
) -> dict[str, float | None]:
    """mean, population std, and linear-interpolation percentiles; None for an empty input."""
    keys = ["mean", "std", *PERCENTILES] + (["p10"] if with_p10 else [])
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return dict.fromkeys(keys, None)
    out: dict[str, float | None] = {"mean": float(arr.mean()), "std": float(arr.std(ddof=0))}
    qs = list(PERCENTILES.values()) + ([10.0] if with_p10 else [])
    names = list(PERCENTILES) + (["p10"] if with_p10 else [])
    for name, q in zip(names, np.percentile(arr, qs, method="linear"), strict=True):
        out[name] = float(q)
    return out


# the client gave up on these: their end is the client's deadline, not a response completing
GAVE_UP = (ErrorKind.TIMEOUT, ErrorKind.CUT)


def measured_window(records: Iterable[RequestRecord]) -> Window | None:
    """First measured send to last measured response completed (None without measured requests).

    A request the client gave up on (timeout, cut) ends nowhere: it never stretches the window
    (when every request was given up on, the window is empty)."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        return None
    start = min(r.t_send_ns for r in measured)
    ends = [r.t_end_ns for r in measured if r.error_kind not in GAVE_UP]
    return Window(start_ns=start, end_ns=max(ends) if ends else start)


def steady_window(records: Sequence[RequestRecord], *, concurrency: int | None) -> Window | None:
    """From when in-flight requests first reach `concurrency` to when they first drop below it
    after the last request was sent; clipped to the measured window. Open loop (concurrency
    None): from the first to the last measured send."""
    measured = measured_window(records)
    if measured is None:
        return None
    sends = np.asarray([r.t_send_ns for r in records], dtype=np.int64)
    ends = np.asarray([r.t_end_ns for r in records], dtype=np.int64)
    warm = np.asarray([r.warmup for r in records], dtype=bool)
    return _steady(sends, ends, warm, measured, concurrency)


def _steady(
    sends: np.ndarray, ends: np.ndarray, warm: np.ndarray, measured: Window, concurrency: int | None
) -> Window | None:
    """`steady_window` from every record's send and end times (ns) and warm-up flags."""
    if concurrency is None:
        ms = sends[~warm]
        return Window(start_ns=int(ms.min()), end_ns=int(ms.max()))
    # events (time, +1 send / -1 end) in (time, delta) order, as sorted tuples would be: one
    # sorted key per event, 2·time + 1 for a send (an end sorts first at an equal time)
    keys = np.concatenate([sends * 2 + 1, ends * 2])
    keys.sort()
    return sweep([keys], int(sends.max()), measured, concurrency)


def sweep(
    blocks: Iterable[np.ndarray], last_send: int, measured: Window, concurrency: int
) -> Window | None:
    """The closed-loop steady window from every event's key (2·time + 1 for a send, 2·time for
    an end), given as consecutive blocks of the sorted keys: one block at a time in memory."""
    held = 0  # requests in flight before the block
    start: int | None = None
    for keys in blocks:
        if not keys.size:
            continue
        inflight = np.cumsum((keys & 1).astype(np.int8) * np.int8(2) - np.int8(1), dtype=np.int64)
        inflight += held
        held = int(inflight[-1])
        after_first = 0
        if start is None:
            reached = np.flatnonzero(inflight >= concurrency)
            if not reached.size:
                continue
            first = int(reached[0])
            start, after_first = int(keys[first]) >> 1, first + 1
        after = np.flatnonzero(
            (keys[after_first:] >= 2 * last_send) & (inflight[after_first:] < concurrency)
        )
        if after.size:
            end = int(keys[after_first + int(after[0])]) >> 1
            lo, hi = max(start, measured.start_ns), min(end, measured.end_ns)
            return Window(start_ns=lo, end_ns=hi) if hi > lo else None
    return None


def _input_tokens(r: RequestRecord) -> int:
    return r.prompt_tokens if r.prompt_tokens is not None else r.requested_input_tokens


@dataclass(frozen=True, kw_only=True)
class PointMetrics:
    """The contract's point metrics (`to_json` gives exactly the keys of contracts.md §3)."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.values)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def point_metrics(
    records: Sequence[RequestRecord], *, concurrency: int | None, slo: Slo | None = None
) -> PointMetrics:
    """Aggregate the measured (non-warm-up) records of one point into the contract's metrics."""
    return point_metrics_from(lambda: records, concurrency=concurrency, slo=slo)


def point_metrics_from(
    records: Callable[[], Iterable[RequestRecord]],
    *,
    concurrency: int | None,
    slo: Slo | None = None,
) -> PointMetrics:
    """`point_metrics` over records read in passes (`records()` gives them, in the same order,
    each time): folded one at a time (`ixci.loadgen.fold`, as the workers do while they run),
    distribution values bounded by `spill.BLOCK` in memory (the rest on disk); a second pass
    reads only the records across the steady-state window's edges."""
    import tempfile
    from pathlib import Path

    from ixci.loadgen.fold import Fold, point_metrics_of  # it builds on this module's records

    def fetch(wanted: Sequence[tuple[int, int]]) -> list[RequestRecord]:
        at = {ref: k for k, (_, ref) in enumerate(wanted)}
        out: list[RequestRecord | None] = [None] * len(wanted)
        if at:
            for i, r in enumerate(records()):
                if i in at:
                    out[at[i]] = r
        assert all(r is not None for r in out), "records() gave fewer records the second time"
        return [r for r in out if r is not None]

    with tempfile.TemporaryDirectory(prefix="ixci-fold-") as folder:
        fold = Fold(Path(folder), slo)
        for i, r in enumerate(records()):
            fold.add(r, i)
        return point_metrics_of([fold.finish()], fetch, concurrency=concurrency)


def draft_totals(records: Iterable[RequestRecord]) -> dict[str, int] | None:
    """Speculative-decoding counts summed over the measured, completed requests that report
    them (llama.cpp's per-response `timings`): `{"draft_tokens", "accepted_tokens",
    "requests"}`; None when no request reported any (ixci.run.specdec turns it into rates)."""
    drafted = accepted = n = 0
    for r in records:
        if r.ok and not r.warmup and r.draft_tokens is not None:
            drafted += r.draft_tokens or 0
            accepted += r.draft_accepted or 0
            n += 1
    if not n:
        return None
    return {"draft_tokens": drafted, "accepted_tokens": accepted, "requests": n}
