"""The two clocks of a kernel receive stamp: CLOCK_REALTIME (the stamp) and perf_counter's
CLOCK_MONOTONIC (every other time in the load generator), and the rate between them."""

from __future__ import annotations

from time import perf_counter_ns, time_ns


class RealtimeRate:
    """How fast CLOCK_REALTIME runs against perf_counter's CLOCK_MONOTONIC: `ratio` is realtime
    seconds per monotonic second, measured over the span since an anchor (at least
    `min_span_ns`, re-anchored every `max_span_ns`); 1.0 until then. A jump outside ±1 % is a
    clock step, not a rate: the anchor restarts there."""

    def __init__(self, *, min_span_ns: int = 50_000_000, max_span_ns: int = 60_000_000_000) -> None:
        self.min_span_ns, self.max_span_ns = min_span_ns, max_span_ns
        self._rt0, self._mono0 = time_ns(), perf_counter_ns()
        self.ratio = 1.0

    def update(self, rt: int, mono: int) -> float:
        span = mono - self._mono0
        if span >= self.min_span_ns:
            ratio = (rt - self._rt0) / span
            if 0.99 <= ratio <= 1.01:
                self.ratio = ratio
            else:  # stepped
                self._rt0, self._mono0, self.ratio = rt, mono, 1.0
        if span >= self.max_span_ns:
            self._rt0, self._mono0 = rt, mono
        return self.ratio
