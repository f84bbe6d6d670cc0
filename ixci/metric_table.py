"""The metric table: every measured or derived column of the tidy table, declared once.

Each `Metric` gives the column's unit, which direction is better, a short label, its
definition, where the tidy table reads it from a result point (`source`), and which view of the
site shows it (`view`). What needs them reads them from here: the aggregation
(`ixci.results.aggregate` fills every sourced column and appends new ones after the established
columns), the site's units, column lists and labels (`ixci.site.data`), the regression alerts'
directions and the metrics they may watch (`ixci.results.regress`, `ixci validate`), the CSV
headers, and the column reference in docs/metrics-table.md, which
`python -m ixci.metric_table` writes and a test keeps current. Adding a metric the artifact
already carries is one entry here (and the regenerated doc); a derived one adds its formula in
`ixci.results.aggregate.add_derived`.

Columns that identify a point (run, job, model, SKU, topology, scenario, status flags) are not
metrics and are not listed; a column's 95 % interval ends `<name>_lo`/`_hi` take its entry.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

HIGHER, LOWER, NEITHER = 1, -1, 0


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str  # the tidy-table column
    unit: str
    better: int  # HIGHER, LOWER or NEITHER (a load setting, a count, a bound)
    label: str
    definition: str
    alertable: bool = False  # may be watched by the regression alerts (schemas/alerts)
    # where the tidy table reads it: a dotted path in one point of result.json (`telemetry.`
    # paths only when the point's power telemetry is valid); None: computed by the aggregation
    source: str | None = None
    view: str | None = None  # on the site: CORE (the first chart), EXTRA (loaded later), None


CORE, EXTRA = "core", "extra"


def _m(name: str, unit: str, better: int, label: str, definition: str, **kw: Any) -> Metric:
    return Metric(name=name, unit=unit, better=better, label=label, definition=definition, **kw)


METRICS: tuple[Metric, ...] = (
    # the load (settings of the point, not results)
    _m("isl", "tokens", NEITHER, "ISL", "requested input length per request"),
    _m("osl", "tokens", NEITHER, "OSL", "requested output length per request"),
    _m("gpus", "GPUs", NEITHER, "GPUs", "GPUs of the deployment (G)"),
    _m("prefill_gpus", "GPUs", NEITHER, "prefill GPUs", "GPUs of the prefill pool"),
    _m("decode_gpus", "GPUs", NEITHER, "decode GPUs", "GPUs of the decode pool"),
    _m("concurrency", "requests", NEITHER, "concurrency", "requests in flight (closed loop)"),
    _m("request_rate", "requests/s", NEITHER, "request rate", "arrival rate (open loop)"),
    # latency, per request, over the measured requests
    _m("ttft_mean_s", "s", LOWER, "TTFT mean", "first content chunk − send, mean", source="metrics.ttft.mean"),
    _m("ttft_p99_s", "s", LOWER, "TTFT p99", "first content chunk − send, 99th percentile",
       alertable=True, source="metrics.ttft.p99", view=EXTRA),
    _m("tpot_mean_s", "s", LOWER, "TPOT mean", "(E2E latency − TTFT) / (output tokens − 1), mean", source="metrics.tpot.mean"),
    _m("tpot_median_s", "s", LOWER, "TPOT median",
       "(E2E latency − TTFT) / (output tokens − 1), median", alertable=True, source="metrics.tpot.median", view=EXTRA),
    _m("itl_p99_s", "s", LOWER, "ITL p99",
       "gap between content chunks ÷ the later chunk's tokens, 99th percentile", source="metrics.itl.p99"),
    _m("e2el_mean_s", "s", LOWER, "E2E latency mean", "last byte − send, mean", source="metrics.e2el.mean"),
    _m("e2el_median_s", "s", LOWER, "E2E latency median", "last byte − send, median",
       alertable=True, source="metrics.e2el.median", view=CORE),
    _m("interactivity_median", "tok/s/user", HIGHER, "interactivity",
       "1 / TPOT per request, median", alertable=True, source="metrics.interactivity.median", view=CORE),
    _m("interactivity_mean", "tok/s/user", HIGHER, "interactivity mean",
       "1 / TPOT per request, mean", source="metrics.interactivity.mean"),
    # throughput, over the measured window T (first measured send → last response)
    _m("request_throughput", "requests/s", HIGHER, "requests/s", "completed requests / T", source="metrics.request_throughput"),
    _m("goodput", "requests/s", HIGHER, "goodput",
       "completed requests meeting every SLO the scenario declares / T", source="metrics.goodput"),
    _m("retry_rate", "fraction of requests", LOWER, "retry rate",
       "requests retried before their first byte / requests (a server dropping connections)",
       source="metrics.retry_rate", view=EXTRA),
    _m("output_throughput", "tok/s", HIGHER, "output tok/s", "output tokens / T", source="metrics.output_throughput"),
    _m("input_throughput", "tok/s", HIGHER, "input tok/s", "input tokens / T", source="metrics.input_throughput"),
    _m("total_token_throughput", "tok/s", HIGHER, "tok/s", "(input + output tokens) / T", source="metrics.total_token_throughput"),
    _m("tput_per_gpu", "tok/s/GPU", HIGHER, "tok/s/GPU", "total_token_throughput / G",
       alertable=True, view=CORE),
    _m("output_tput_per_gpu", "tok/s/GPU", HIGHER, "output tok/s/GPU",
       "output_throughput / G", alertable=True, view=CORE),
    _m("input_tput_per_gpu", "tok/s/GPU", HIGHER, "input tok/s/GPU", "input_throughput / G"),
    _m("input_tput_per_prefill_gpu", "tok/s/GPU", HIGHER, "input tok/s per prefill GPU",
       "input_throughput / prefill GPUs (disaggregated)"),
    _m("output_tput_per_decode_gpu", "tok/s/GPU", HIGHER, "output tok/s per decode GPU",
       "output_throughput / decode GPUs (disaggregated)"),
    _m("steady_output_tput_per_gpu", "tok/s/GPU", HIGHER, "steady output tok/s/GPU",
       "output tokens / G over the steady window only (every slot busy)", view=EXTRA),
    # energy (null unless power telemetry was valid)
    _m("energy_j", "J", LOWER, "energy", "GPU energy integrated over T", source="telemetry.energy_j"),
    _m("joules_per_output_token", "J/token", LOWER, "J per output token",
       "energy_j / output tokens", source="telemetry.joules_per_output_token", view=EXTRA),
    _m("joules_per_total_token", "J/token", LOWER, "J per token",
       "energy_j / (input + output tokens)", source="telemetry.joules_per_total_token", view=EXTRA),
    _m("avg_power_w_per_gpu", "W", NEITHER, "W per GPU", "energy_j / T / G", source="telemetry.avg_power_w_per_gpu"),
    _m("tokens_per_s_per_mw", "tok/s/MW", HIGHER, "tok/s per MW",
       "tput_per_gpu × 1000 / the SKU's all-in kW per GPU", view=EXTRA),
    # the physical limit (docs/roofline.md)
    _m("roofline_output_tput_per_gpu", "tok/s/GPU", NEITHER, "roofline",
       "upper bound of output tok/s/GPU at this load (HBM bandwidth, peak FLOP/s)", source="roofline.bound_output_tps_per_gpu", view=CORE),
    _m("roofline_interactivity", "tok/s/user", NEITHER, "roofline interactivity",
       "1 / the bound's shortest decode step", view=CORE),
    _m("roofline_fraction", "fraction of the bound", HIGHER, "% of roofline",
       "measured ÷ bound, over the window named by roofline_window", source="roofline.fraction", view=EXTRA),
    # speculative decoding, as the engine measured it over the point
    _m("spec_acceptance_rate", "fraction of draft tokens", HIGHER, "acceptance rate",
       "accepted draft tokens / proposed draft tokens", source="speculative.acceptance_rate", view=EXTRA),
    _m("spec_mean_accepted_length", "tokens per verification step", HIGHER,
       "mean accepted length", "tokens emitted per verification step", source="speculative.mean_accepted_length", view=EXTRA),
    # repeats (docs/repeats.md)
    _m("repeats", "repeats", NEITHER, "repeats", "valid repeats behind the row's values"),
    # multi-turn points (docs/agentic.md)
    _m("ttft_cold_median_s", "s", LOWER, "TTFT cold", "TTFT of first turns, median", view=EXTRA),
    _m("ttft_warm_median_s", "s", LOWER, "TTFT warm", "TTFT of later turns, median", view=EXTRA),
    _m("prefix_cache_hit_rate", "fraction", HIGHER, "prefix hit rate",
       "Σ cached_tokens / Σ prompt tokens of the turns that report them", view=EXTRA),
    _m("session_e2e_median_s", "s", LOWER, "session E2E", "last response − first send of a session whose turns all succeeded, median", view=EXTRA),
    _m("e2e_norm_interactivity_p50", "tok/s/user", HIGHER, "E2E-normalised interactivity p50",
       "1 / P50 over requests of (E2E latency ÷ output tokens) (InferenceX's)", view=EXTRA),
    _m("e2e_norm_interactivity_p90", "tok/s/user", HIGHER, "E2E-normalised interactivity p90",
       "1 / P90 over requests of (E2E latency ÷ output tokens) (InferenceX's)", view=CORE),
    _m("interactivity_per_token_p10", "tok/s/user", HIGHER, "interactivity p10",
       "1 / TPOT per request, 10th percentile", view=EXTRA),
    # the engine's own metrics during the point (docs/servermetrics.md)
    _m("server_queue_depth_mean", "requests", LOWER, "queue depth mean", "waiting requests, mean of scrapes", view=EXTRA),
    _m("server_queue_depth_max", "requests", LOWER, "queue depth max", "waiting requests, max of scrapes", view=EXTRA),
    _m("server_running_mean", "requests", NEITHER, "running mean", "running requests, mean of scrapes", view=EXTRA),
    _m("server_running_max", "requests", NEITHER, "running max", "running requests, max of scrapes", view=EXTRA),
    _m("server_kv_cache_usage_mean", "fraction", NEITHER, "KV cache use mean",
       "KV-cache blocks in use, mean of scrapes", view=EXTRA),
    _m("server_kv_cache_usage_max", "fraction", NEITHER, "KV cache use max",
       "KV-cache blocks in use, max of scrapes", view=EXTRA),
    _m("server_prefix_cache_hit_rate", "fraction", HIGHER, "server prefix hit rate",
       "prefix-cache hits / queries over the point, as the engine counts them", view=EXTRA),
    _m("server_preemptions", "requests", LOWER, "preemptions", "preempted requests during the point", view=EXTRA),
    _m("server_metrics_samples", "scrapes", NEITHER, "scrapes", "metrics scrapes that answered", view=EXTRA),
    _m("server_metrics_failed", "scrapes", LOWER, "failed scrapes", "metrics scrapes that failed", view=EXTRA),
)  # fmt: skip

BY_NAME = {m.name: m for m in METRICS}
PRICED = (  # one column per price tier of the catalog: `<prefix><tier>`
    _m("usd_per_mtok_", "$/M tokens", LOWER, "$ per M tokens",
       "$/GPU-hour / (tok/s/GPU × 3600 / 1e6), per price tier"),
    _m("usd_per_output_mtok_", "$/M output tokens", LOWER, "$ per M output tokens",
       "$/GPU-hour / (output tok/s/GPU × 3600 / 1e6), per price tier"),
)  # fmt: skip


def metric(column: str) -> Metric | None:
    """The entry of a tidy-table column: its own, its interval's, or its price tier's."""
    if column in BY_NAME:
        return BY_NAME[column]
    for end in ("_lo", "_hi"):
        if column.endswith(end) and column[: -len(end)] in BY_NAME:
            return BY_NAME[column[: -len(end)]]
    return next((p for p in PRICED if column.startswith(p.name)), None)


SOURCED: tuple[Metric, ...] = tuple(m for m in METRICS if m.source)


def on_site(view: str) -> tuple[str, ...]:
    """The metric columns the site shows in `view` (CORE or EXTRA), in table order."""
    return tuple(m.name for m in METRICS if m.view == view)


def units() -> dict[str, str]:
    return {m.name: m.unit for m in METRICS}


def not_alertable(names: object) -> list[tuple[int, str]]:
    """(position, name) of each entry of an alert policy's `metrics` list that the table does
    not mark alertable (`ixci validate` and the alert policy's reader both ask this)."""
    known = directions()
    items = names if isinstance(names, list) else []
    return [(i, str(name)) for i, name in enumerate(items) if name not in known]


def directions() -> dict[str, int]:
    """+1 higher is better, −1 lower is better, for the metrics the alerts may watch."""
    return {m.name: m.better for m in METRICS if m.alertable}


def markdown() -> str:
    """docs/metrics-table.md."""
    arrow = {HIGHER: "higher", LOWER: "lower", NEITHER: "—"}
    lines = [
        "# Metric columns of the tidy table",
        "",
        "Written by `python -m ixci.metric_table > docs/metrics-table.md` from `ixci/metric_table.py`,",
        "the one declaration of each metric; `tests/infra/test_metric_table.py` keeps it current.",
        "T is the measured window (first measured send → last response), G the deployment's GPUs.",
        "Each column's 95 % interval ends `<column>_lo`/`_hi` (docs/repeats.md) share its row.",
        "",
        "| column | unit | better | label | definition |",
        "|---|---|---|---|---|",
    ]
    for m in (*METRICS, *PRICED):
        name = f"{m.name}<tier>" if m in PRICED else m.name
        alert = " (alertable)" if m.alertable else ""
        lines.append(
            f"| `{name}` | {m.unit} | {arrow[m.better]}{alert} | {m.label} | {m.definition} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
