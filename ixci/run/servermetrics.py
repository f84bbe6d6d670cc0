"""The engine's own Prometheus metrics, sampled in the background during each point.

What a point records (`server_metrics` in the artifact, schemas/result.schema.json):
- gauges (queue depth, running requests, KV-cache usage, the engine's hit-rate gauge):
  min / mean / max / last over the samples taken during the point;
- counters (prompt, generation and cached tokens, prefix-cache queries, preemptions): first,
  last and their delta over the point (a baseline sample is taken just before the point
  starts and a final one just after it ends, so the delta covers the whole point);
- the prefix-cache hit rate of the point, derived as the adapter's `MetricsMap.hit_rate` says;
- speculative-decoding series (`spec_*`: draft rounds, draft and accepted tokens, the engine's
  acceptance gauges) where the engine drafts; `ixci.run.specdec` turns them into the point's
  acceptance;
- for each ixci name the engine's own series it came from, the sample counts and every kind of
  scrape failure met (never more than `MAX_ERRORS` distinct messages).

The server's answer is untrusted input: a response is read to at most `MAX_BYTES` and within
`timeout_s` (a slow drip is cut off), at most `MAX_LINES` lines are parsed, only the series the
adapter names are kept, non-finite values are dropped. A failed scrape is counted and
described, never raised: server metrics never fail a point.

The parser is a bounded reader of the Prometheus text format (one `name{labels} value
[timestamp]` sample per line) rather than `prometheus_client.parser`: ixci needs a handful of
counters and gauges, and that parser builds every family of an unbounded response with no
limit on size or time.
"""

from __future__ import annotations

import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ixci.engines.base import MetricsMap, ServeSpec

GAUGES = ("queue_depth", "running", "kv_cache_usage", "prefix_cache_hit_rate",
          "spec_accept_rate", "spec_accept_length")  # fmt: skip
COUNTERS = ("prefix_cache_hits", "prefix_cache_queries", "preemptions", "prompt_tokens",
            "generation_tokens", "spec_drafts", "spec_draft_tokens",
            "spec_accepted_tokens")  # fmt: skip
# fractions and per-step lengths are averaged over the engine's series (data-parallel ranks);
# counts are summed
FRACTIONS = frozenset({"kv_cache_usage", "prefix_cache_hit_rate", "spec_accept_rate",
                       "spec_accept_length"})  # fmt: skip
UNITS = {
    "queue_depth": "requests", "running": "requests", "kv_cache_usage": "fraction",
    "prefix_cache_hit_rate": "fraction", "prefix_cache_hits": "tokens",
    "prefix_cache_queries": "tokens", "preemptions": "requests", "prompt_tokens": "tokens",
    "generation_tokens": "tokens", "spec_accept_rate": "fraction",
    "spec_accept_length": "tokens per step", "spec_drafts": "draft rounds",
    "spec_draft_tokens": "tokens", "spec_accepted_tokens": "tokens",
}  # fmt: skip
SPEC_PREFIX = "spec_"  # the speculative-decoding series (ixci.run.specdec reads them)
INTERVAL_S = 1.0
TIMEOUT_S = 2.0
MAX_BYTES = 4 * 1024 * 1024
MAX_LINES = 100_000
PARSE_BUDGET_S = 0.5
MAX_ERRORS = 5
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class ScrapeError(Exception):
    """One scrape that produced no sample (kept as a message in the record, never raised)."""


def request(method: str, url: str, *, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES,
            clock: Callable[[], float] = time.monotonic) -> tuple[int, bytes]:  # fmt: skip
    """One HTTP request with an empty body → (status, body); status 0 when the server does not
    answer. `ScrapeError` for a body over `max_bytes` or an answer that takes longer than
    `timeout_s` in total (a server dripping a byte at a time is cut off)."""
    req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status), _read(resp, timeout_s, max_bytes, clock)
    except urllib.error.HTTPError as exc:
        return int(exc.code), _read(exc, timeout_s, max_bytes, clock)
    except (OSError, ValueError):
        return 0, b""


def _read(resp: Any, timeout_s: float, max_bytes: int, clock: Callable[[], float]) -> bytes:
    deadline = clock() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while chunk := resp.read1(65536):  # read1: what has arrived, so the deadline is checked
        size += len(chunk)
        if size > max_bytes:
            raise ScrapeError(f"response over {max_bytes} bytes")
        if clock() > deadline:
            raise ScrapeError(f"response took over {timeout_s:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(url: str, *, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES,
          clock: Callable[[], float] = time.monotonic) -> bytes:  # fmt: skip
    """GET `url` → its 200 body; `ScrapeError` otherwise (see `request`)."""
    try:
        status, body = request("GET", url, timeout_s=timeout_s, max_bytes=max_bytes, clock=clock)
    except OSError as exc:  # the connection broke mid-body
        raise ScrapeError(f"no answer ({type(exc).__name__})") from None
    if status != 200:
        raise ScrapeError(f"HTTP {status}" if status else "no answer")
    return body


def parse(body: bytes, wanted: frozenset[str], *, max_lines: int = MAX_LINES,
          budget_s: float = PARSE_BUDGET_S,
          clock: Callable[[], float] = time.monotonic) -> dict[str, list[float]]:  # fmt: skip
    """Prometheus text → {series name: values of its samples (one per label set)} for the
    names in `wanted`. `ScrapeError` past `max_lines` lines or `budget_s` seconds; malformed
    lines and non-finite values are skipped."""
    deadline = clock() + budget_s
    out: dict[str, list[float]] = {}
    text = body.decode("utf-8", errors="replace")
    for count, line in enumerate(text.splitlines()):
        if count >= max_lines:
            raise ScrapeError(f"response over {max_lines} lines")
        if count % 1000 == 0 and clock() > deadline:
            raise ScrapeError(f"parsing took over {budget_s:g} s")
        sample = _sample(line, wanted)
        if sample is not None:
            out.setdefault(sample[0], []).append(sample[1])
    return out


def _sample(line: str, wanted: frozenset[str]) -> tuple[str, float] | None:
    match = _NAME.match(line)
    if match is None:  # comments, blank lines, garbage
        return None
    name = match.group(0)
    if name not in wanted:
        return None
    rest = line[match.end() :]
    if rest.startswith("{"):
        close = rest.rfind("}")
        if close < 0:
            return None
        rest = rest[close + 1 :]
    fields = rest.split()
    try:
        value = float(fields[0]) if fields else math.nan
    except ValueError:
        return None
    return (name, value) if math.isfinite(value) else None


@dataclass
class _Samples:
    """What the sampling thread collected (guarded by `lock`)."""

    values: list[dict[str, float]] = field(default_factory=list)  # ixci name → value, per sample
    raw: dict[str, str] = field(default_factory=dict)  # ixci name → the engine series used
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Scraper:
    """Samples one server's metrics every `interval_s` on a daemon thread between `start()` and
    `stop()`; `stop()` returns the point's record (`summary`)."""

    def __init__(self, url: str, mapping: MetricsMap, *, interval_s: float = INTERVAL_S,
                 timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.url, self.mapping = url, mapping
        self.interval_s, self.timeout_s, self.max_bytes, self.clock = (
            interval_s, timeout_s, max_bytes, clock)  # fmt: skip
        self.wanted = wanted_series(mapping)
        self.data = _Samples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Scraper:
        """Take the baseline sample now, then keep sampling in the background."""
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="ixci-server-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop sampling (waits at most one scrape timeout), take the final sample, summarize."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + PARSE_BUDGET_S + 1.0)
        self.sample()
        with self.data.lock:
            return summary(self.mapping, self.data, interval_s=self.interval_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """One scrape; its values, or its failure, go into `data`."""
        try:
            series = parse(fetch(self.url, timeout_s=self.timeout_s, max_bytes=self.max_bytes,
                                 clock=self.clock), self.wanted, clock=self.clock)  # fmt: skip
        except ScrapeError as exc:
            self._failed(str(exc))
            return
        values, raw = mapped(self.mapping, series)
        with self.data.lock:
            self.data.values.append(values)
            self.data.raw.update(raw)

    def _failed(self, message: str) -> None:
        with self.data.lock:
            self.data.failed += 1
            if message not in self.data.errors and len(self.data.errors) < MAX_ERRORS:
                self.data.errors.append(message)


def wanted_series(mapping: MetricsMap) -> frozenset[str]:
    """The engine series names to keep from a scrape (a counter is exposed as `name_total` by
    current Prometheus clients, as `name` by older ones)."""
    return frozenset(
        [n for names in mapping.gauges.values() for n in names]
        + [n + s for names in mapping.counters.values() for n in names for s in ("", "_total")]
    )


def mapped(
    mapping: MetricsMap, series: Mapping[str, list[float]]
) -> tuple[dict[str, float], dict[str, str]]:
    """One scrape's parsed series → ({ixci name: value}, {ixci name: engine series used})."""
    values: dict[str, float] = {}
    raw: dict[str, str] = {}
    for kind, suffixes in ((mapping.gauges, ("",)), (mapping.counters, ("_total", ""))):
        for name, candidates in kind.items():
            found = next((c + s for c in candidates for s in suffixes if c + s in series), None)
            if found is not None:
                vals = series[found]
                value = sum(vals) / len(vals) if name in FRACTIONS else sum(vals)
                if math.isfinite(value):  # huge finite values can still sum to inf
                    values[name], raw[name] = value, found
    return values, raw


def summary(mapping: MetricsMap, data: _Samples, *, interval_s: float) -> dict[str, Any]:
    """The point's `server_metrics` record from the collected samples (see the module doc)."""
    series: dict[str, dict[str, Any]] = {}
    for name in mapping.gauges:
        vals = [s[name] for s in data.values if name in s]
        if vals:
            series[name] = {"kind": "gauge", "raw": data.raw[name], "unit": UNITS[name],
                            "samples": len(vals), "min": min(vals), "max": max(vals),
                            "mean": sum(vals) / len(vals), "last": vals[-1]}  # fmt: skip
    for name in mapping.counters:
        vals = [s[name] for s in data.values if name in s]
        if vals:
            delta = vals[-1] - vals[0]
            series[name] = {"kind": "counter", "raw": data.raw[name], "unit": UNITS[name],
                            "samples": len(vals), "first": vals[0], "last": vals[-1],
                            "delta": delta if delta >= 0 else None}  # fmt: skip
    # speculative-decoding series exist only on a server that drafts: absent altogether is no
    # gap, absent in part is one
    drafting = any(n.startswith(SPEC_PREFIX) for n in series)
    mapped = [n for n in (*mapping.gauges, *mapping.counters)
              if drafting or not n.startswith(SPEC_PREFIX)]  # fmt: skip
    return {
        "supported": True,
        "endpoint": mapping.path,
        "interval_s": interval_s,
        "samples": len(data.values),
        "failed_samples": data.failed,
        "errors": list(data.errors),
        "series": series,
        "missing": [n for n in mapped if n not in series],
        "prefix_cache_hit_rate": hit_rate(mapping.hit_rate, series),
    }


def hit_rate(basis: str | None, series: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The point's prefix-cache hit rate (fraction of prompt tokens served from the cache) on
    `basis` (`MetricsMap.hit_rate`); value None when the series it needs are missing or idle."""

    def delta(name: str) -> float | None:
        entry = series.get(name) or {}
        return entry.get("delta") if entry.get("kind") == "counter" else None

    value: float | None = None
    hits = delta("prefix_cache_hits")
    if basis == "queries":
        queries = delta("prefix_cache_queries")
        value = hits / queries if hits is not None and queries else None
    elif basis == "uncached":
        uncached = delta("prompt_tokens")
        total = (hits or 0.0) + (uncached or 0.0)
        value = hits / total if hits is not None and uncached is not None and total else None
    elif basis == "gauge" and "prefix_cache_hit_rate" in series:
        value = series["prefix_cache_hit_rate"]["mean"]
    # the counters are the server's word: a rate outside [0, 1] is no rate
    return {"value": value if value is not None and 0.0 <= value <= 1.0 else None, "basis": basis}


def unsupported(reason: str) -> dict[str, Any]:
    """The record of a point whose engine publishes no Prometheus metrics."""
    return {"supported": False, "endpoint": None, "interval_s": None, "samples": 0,
            "failed_samples": 0, "errors": [reason], "series": {}, "missing": [],
            "prefix_cache_hit_rate": {"value": None, "basis": None}}  # fmt: skip


class PointMetrics:
    """The runner's handle: `begin()` before a point, `end()` → its record (always a record)."""

    def __init__(self, serve: ServeSpec, *, interval_s: float = INTERVAL_S,
                 timeout_s: float = TIMEOUT_S) -> None:  # fmt: skip
        self.serve, self.interval_s, self.timeout_s = serve, interval_s, timeout_s
        self.scraper: Scraper | None = None
        self.record: dict[str, Any] | None = None

    def begin(self) -> PointMetrics:
        """Start sampling (a no-op for an engine without metrics); returns self."""
        mapping = self.serve.metrics
        if mapping is not None:
            self.scraper = Scraper(self.serve.base_url + mapping.path, mapping,
                                   interval_s=self.interval_s, timeout_s=self.timeout_s).start()  # fmt: skip
        return self

    def end(self) -> dict[str, Any]:
        """Stop sampling and return the point's `server_metrics` record (the same record on
        every later call)."""
        if self.record is None:
            self.record = (
                self.scraper.stop()
                if self.scraper is not None
                else unsupported(f"engine {self.serve.engine} publishes no Prometheus metrics")
            )
        return self.record


SERVER_COLUMNS: tuple[str, ...] = (
    "server_queue_depth_mean", "server_queue_depth_max", "server_running_mean",
    "server_running_max", "server_kv_cache_usage_mean", "server_kv_cache_usage_max",
    "server_prefix_cache_hit_rate", "server_prefix_cache_hit_basis", "server_preemptions",
    "server_metrics_samples", "server_metrics_failed",
)  # fmt: skip
"""Tidy-table columns of a point's `server_metrics` record (present only when some point has
one): gauges' mean and max over the point (requests; KV-cache usage as a fraction), the
server-side prefix-cache hit rate and its basis, preemptions during the point (counter delta),
the scrapes that answered and those that failed. None where the engine does not publish it."""


def server_columns(record: Any) -> dict[str, Any]:
    """The SERVER_COLUMNS of one point's `server_metrics` record ({} for a point without one)."""
    if not isinstance(record, Mapping):
        return {}
    series = record.get("series")
    series = series if isinstance(series, Mapping) else {}

    def stat(name: str, key: str) -> float | None:
        entry = series.get(name)
        value = entry.get(key) if isinstance(entry, Mapping) else None
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    rate = record.get("prefix_cache_hit_rate")
    rate = rate if isinstance(rate, Mapping) else {}
    value = rate.get("value")
    samples, failed = record.get("samples"), record.get("failed_samples")
    values = (
        stat("queue_depth", "mean"), stat("queue_depth", "max"), stat("running", "mean"),
        stat("running", "max"), stat("kv_cache_usage", "mean"), stat("kv_cache_usage", "max"),
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None,
        rate.get("basis") if isinstance(rate.get("basis"), str) else None,
        stat("preemptions", "delta"),
        samples if isinstance(samples, int) and not isinstance(samples, bool) else None,
        failed if isinstance(failed, int) and not isinstance(failed, bool) else None,
    )  # fmt: skip
    return dict(zip(SERVER_COLUMNS, values, strict=True))
