"""What the runner asks of one point (`PointConfig`) and what it gets back (`PointResult`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ixci.errors import UsageError
from ixci.loadgen.dialect import Endpoint
from ixci.loadgen.metrics import METRICS_VERSION, PointMetrics, Slo

# Size limits on what a server may send (docs/loadgen.md, "Limits", says why these values).
RESPONSE_BASE_BYTES = 1 << 20  # per response: head, role/finish/usage events, an error body …
RESPONSE_BYTES_PER_TOKEN = 16 << 10  # … plus this per requested output token
MAX_LINE_BYTES = 4 << 20  # one SSE line (one event: every engine sends an event as one line)
MAX_UNPARSED_BYTES = 64 << 20  # per worker: past this backlog it parses before it sends more
# the fastest the kernel slews CLOCK_REALTIME against CLOCK_MONOTONIC (adjtimex: 500 ppm)
CLOCK_SLEW_MAX = 500e-6
_MIN_LIMIT_BYTES = 1024
# The default request timeout (docs/loadgen.md, "Timeouts"): far beyond any healthy server —
# a minute of queueing, 1 ms per prompt token (1k tok/s prefill), 250 ms per output token
# (4 tok/s decode) for the longest request of the point — yet minutes, not the 10 a fixed
# default took for a short request to a server that never answers.
TIMEOUT_BASE_S = 60.0
TIMEOUT_S_PER_INPUT_TOKEN = 0.001
TIMEOUT_S_PER_OUTPUT_TOKEN = 0.25


class TokenizerSource(enum.StrEnum):
    """Where the prompt token counts come from (recorded in every result)."""

    TOKENIZERS = "tokenizers"  # Hugging Face `tokenizers` with the model's tokenizer.json: exact
    SERVER = "server"  # the server's tokenize/detokenize endpoints: exact
    APPROXIMATION = "approximation"  # one common English word ≈ one token: approximate


@dataclass(frozen=True, kw_only=True)
class PointConfig:
    """One point of a scenario on a warm server.

    url: server base URL ``http://HOST:PORT``. isl/osl: requested input/output tokens per request
    (lengths drawn uniformly from ``[L·(1−range_ratio), L·(1+range_ratio)]``).
    shared_prefix_tokens: tokens of one common prefix at the start of every prompt (part of isl).
    concurrency: closed-loop slots (None: open loop only, unbounded). request_rate: open-loop
    arrivals per second (None: closed loop); gamma-distributed gaps with shape `burstiness`
    (1.0 = Poisson). num_requests / duration_s: the measured phase ends at whichever is reached
    first, but not before min_requests and min_duration_s; never after max_duration_s.
    warmup_requests: requests sent first and not measured (None: one per slot).
    workers: client processes (None: automatic). request_timeout_s: per request, seconds (None:
    derived from the point's longest request, see `timeout_s`).
    kernel_stamps: stamp arrivals with the kernel's receive time (Linux; see ixci.loadgen.http);
    False stamps each read when the client takes it (for comparison).
    max_response_bytes: bytes one response may send (None: RESPONSE_BASE_BYTES +
    RESPONSE_BYTES_PER_TOKEN × the request's max tokens). max_line_bytes: the longest line.
    Past either the request fails with `protocol` and its connection is dropped.
    max_unparsed_bytes: the parsing backlog one worker may hold (responses received, not yet
    parsed); past it the worker parses before it sends more, so memory does not grow with the
    run's length when the client is saturated.
    max_duration_s bounds the whole point, warm-up included: nothing is sent after it and
    requests still in flight are cut (`cut`).
    """

    url: str
    model: str
    isl: int
    osl: int
    endpoint: Endpoint = Endpoint.COMPLETIONS
    concurrency: int | None = 1
    request_rate: float | None = None
    burstiness: float = 1.0
    num_requests: int | None = None
    duration_s: float | None = None
    warmup_requests: int | None = None
    min_requests: int = 0
    min_duration_s: float = 0.0
    max_duration_s: float | None = None
    range_ratio: float = 0.0
    shared_prefix_tokens: int = 0
    tokenizer: Path | None = None
    seed: int = 0
    workers: int | None = None
    slo: Slo = field(default_factory=Slo)
    error_threshold: float = 0.05
    request_timeout_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    kernel_stamps: bool = True
    max_response_bytes: int | None = None
    max_line_bytes: int = MAX_LINE_BYTES
    max_unparsed_bytes: int = MAX_UNPARSED_BYTES

    def __post_init__(self) -> None:
        problems = []
        if self.isl < 1 or self.osl < 1:
            problems.append("isl and osl must be >= 1")
        if self.concurrency is None and self.request_rate is None:
            problems.append("give a concurrency, a request rate, or both")
        if self.concurrency is not None and self.concurrency < 1:
            problems.append("concurrency must be >= 1")
        if self.request_rate is not None and self.request_rate <= 0:
            problems.append("request_rate must be > 0")
        if self.num_requests is None and self.duration_s is None:
            problems.append("bound the measured phase with num_requests and/or duration_s")
        if self.burstiness <= 0:
            problems.append("burstiness must be > 0")
        if not 0 <= self.range_ratio < 1:
            problems.append("range_ratio must be in [0, 1)")
        if not 0 <= self.shared_prefix_tokens < self.isl:
            problems.append("shared_prefix_tokens must be in [0, isl)")
        if self.max_line_bytes < _MIN_LIMIT_BYTES:
            problems.append(f"max_line_bytes must be >= {_MIN_LIMIT_BYTES}")
        if self.max_unparsed_bytes < _MIN_LIMIT_BYTES:
            problems.append(f"max_unparsed_bytes must be >= {_MIN_LIMIT_BYTES}")
        if self.max_response_bytes is not None and self.max_response_bytes < _MIN_LIMIT_BYTES:
            problems.append(f"max_response_bytes must be >= {_MIN_LIMIT_BYTES}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            problems.append("max_duration_s must be > 0")
        if self.request_timeout_s is not None and self.request_timeout_s <= 0:
            problems.append("request_timeout_s must be > 0")
        if problems:
            raise UsageError("invalid load-generator point: " + "; ".join(problems))

    @property
    def timeout_s(self) -> float:
        """The per-request timeout in seconds: `request_timeout_s`, else TIMEOUT_BASE_S plus
        per-token allowances for the longest prompt and answer of the point. (`max_duration_s`
        bounds requests in flight separately: they are cut when it runs out.)"""
        if self.request_timeout_s is not None:
            return self.request_timeout_s
        longest = 1.0 + self.range_ratio
        return (
            TIMEOUT_BASE_S
            + TIMEOUT_S_PER_INPUT_TOKEN * self.isl * longest
            + TIMEOUT_S_PER_OUTPUT_TOKEN * self.osl * longest
        )

    def response_limit(self, output_tokens: int) -> int:
        """Bytes the response to a request for `output_tokens` tokens may send."""
        if self.max_response_bytes is not None:
            return self.max_response_bytes
        return RESPONSE_BASE_BYTES + RESPONSE_BYTES_PER_TOKEN * output_tokens

    @property
    def warmup(self) -> int:
        """Warm-up requests actually sent (default: one per closed-loop slot)."""
        if self.warmup_requests is not None:
            return self.warmup_requests
        return self.concurrency if self.concurrency is not None else 0


@dataclass(frozen=True, kw_only=True)
class ClientHealth:
    """The client's own load during the measured phase.

    cpu_percent: the busiest worker's CPU time / wall time × 100 (100 = one core).
    loop_lag_p99_s: p99 of event-loop lateness over all workers (seconds).
    runqueue_wait_percent: time the busiest worker waited for a CPU (Linux schedstat), or None.
    saturated: the client, not the server, may have limited the result; `reasons` says why.
    receive_stamps: where arrival times came from — "kernel" (every read carried the kernel's
    receive time), "client" (none did: stamped when read), "mixed"; kernel_stamped_reads /
    reads count them. max_unparsed_bytes: the largest parsing backlog of one worker (bounded by
    its `max_unparsed_bytes`: past it the worker parses before it sends more).
    """

    cpu_percent: float
    loop_lag_p99_s: float
    saturated: bool
    workers: int
    runqueue_wait_percent: float | None = None
    reasons: tuple[str, ...] = ()
    reads: int = 0
    kernel_stamped_reads: int = 0
    max_unparsed_bytes: int = (
        0  # the most response bytes that waited for parsing at once (one worker)
    )
    unparsed_at_end: int = 0  # responses not yet parsed when the run ended (all workers)
    drain_s: float = 0.0  # the longest time a worker then spent parsing them (outside the window)
    stamp_age_max_s: float = 0.0  # the oldest kernel stamp when read (see `clock_residual_s`)

    @property
    def clock_residual_s(self) -> float:
        """The most a kernel stamp's conversion to perf_counter's clock may be off: its age
        at the read times the kernel's largest slew of CLOCK_REALTIME (`CLOCK_SLEW_MAX`). The
        measured rate between the clocks corrects most of it; a clock step inside one age is
        not seen (ages over 10 s are refused as steps)."""
        return self.stamp_age_max_s * CLOCK_SLEW_MAX

    @property
    def receive_stamps(self) -> str:
        if self.reads and self.kernel_stamped_reads == self.reads:
            return "kernel"
        return "mixed" if self.kernel_stamped_reads else "client"

    def to_json(self) -> dict[str, Any]:
        """The result artifact's `client` block (contracts.md §3) plus the detail fields."""
        return {
            "cpu_percent": self.cpu_percent,
            "loop_lag_p99_s": self.loop_lag_p99_s,
            "saturated": self.saturated,
            "workers": self.workers,
            "runqueue_wait_percent": self.runqueue_wait_percent,
            "saturation_reasons": list(self.reasons),
            "receive_stamps": self.receive_stamps,
            "reads": self.reads,
            "kernel_stamped_reads": self.kernel_stamped_reads,
            "max_unparsed_bytes": self.max_unparsed_bytes,
            "stamp_age_max_s": self.stamp_age_max_s,
            "clock_residual_s": self.clock_residual_s,
            "unparsed_at_end": self.unparsed_at_end,
            "drain_s": self.drain_s,
        }


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """Provenance of the prompts."""

    kind: str  # "random"
    tokenizer_source: TokenizerSource
    tokenizer: str | None  # file path or server URL
    seed: int
    prompts: int
    isl_mean: float
    osl_mean: float
    shared_prefix_tokens: int
    range_ratio: float
    prompt_tokens_checked: int = 0  # requests whose server-reported prompt tokens were compared
    prompt_tokens_offset: int | None = None  # most common (reported − requested)
    prompt_tokens_mismatched: int = 0  # requests whose offset differs from the common one

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, enum.Enum) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True, kw_only=True)
class PointResult:
    """Everything one point produced: metrics (base units), client health, dataset provenance."""

    metrics: PointMetrics
    client: ClientHealth
    dataset: DatasetInfo
    dialect: str
    valid: bool
    invalid_reasons: tuple[str, ...]
    started_at: str  # ISO-8601 UTC
    finished_at: str
    requests_written: int = 0
    metrics_version: int = METRICS_VERSION
    drafts: Mapping[str, int] | None = None  # `metrics.draft_totals` (speculative decoding)

    def to_json(self) -> dict[str, Any]:
        """JSON of the point: `metrics` has exactly the keys of contracts.md §3."""
        return {
            "metrics_version": self.metrics_version,
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dialect": self.dialect,
            "metrics": self.metrics.to_json(),
            "client": self.client.to_json(),
            "dataset": self.dataset.to_json(),
            **({"drafts": dict(self.drafts)} if self.drafts else {}),
        }
