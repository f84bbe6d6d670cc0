"""`ixci loadgen`: measure one point against a running OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import orjson

from ixci.errors import ErrorRateExceeded, UsageError
from ixci.loadgen.config import MAX_LINE_BYTES, PointConfig, PointResult
from ixci.loadgen.dialect import DIALECTS, Endpoint, get_dialect
from ixci.loadgen.metrics import Slo
from ixci.loadgen.run import run_point


@click.command("loadgen")
@click.option("--url", help="Server base URL, http://HOST:PORT (required unless --recompute).")
@click.option("--model", help="Model name sent in each request (required unless --recompute).")
@click.option(
    "--isl",
    type=click.IntRange(min=1),
    help="Input tokens per request (required unless --recompute).",
)
@click.option(
    "--osl",
    type=click.IntRange(min=1),
    help="Output tokens per request (required unless --recompute).",
)
@click.option("--concurrency", type=click.IntRange(min=1), help="Closed-loop concurrency.")
@click.option(
    "--request-rate", type=click.FloatRange(min=0, min_open=True), help="Open-loop requests/s."
)
@click.option(
    "--burstiness",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Gamma shape of arrival gaps (1 = Poisson).",
)
@click.option("--num-requests", type=click.IntRange(min=1), help="Measured requests.")
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Measured seconds.",
)
@click.option(
    "--min-requests", type=click.IntRange(min=0), default=0, help="Minimum measured sample."
)
@click.option("--min-duration", "min_duration_s", type=click.FloatRange(min=0), default=0.0)
@click.option("--max-duration", "max_duration_s", type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--warmup-requests",
    type=click.IntRange(min=0),
    help="Unmeasured first requests (default: one per slot).",
)
@click.option(
    "--endpoint",
    type=click.Choice([e.value for e in Endpoint]),
    default="completions",
    show_default=True,
)
@click.option(
    "--dialect",
    type=click.Choice(sorted(DIALECTS)),
    default="openai",
    show_default=True,
    help="The engine's request dialect.",
)
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, path_type=Path),
    help="tokenizer.json (or its folder) for exact prompt lengths.",
)
@click.option(
    "--range-ratio", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True
)
@click.option("--shared-prefix", "shared_prefix_tokens", type=click.IntRange(min=0), default=0)
@click.option(
    "--workers", type=click.IntRange(min=1), help="Client processes (default: automatic)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--slo-ttft", type=click.FloatRange(min=0, min_open=True), help="Goodput SLO on TTFT, seconds."
)
@click.option(
    "--slo-tpot", type=click.FloatRange(min=0, min_open=True), help="Goodput SLO on TPOT, seconds."
)
@click.option(
    "--slo-e2el", type=click.FloatRange(min=0, min_open=True), help="Goodput SLO on E2EL, seconds."
)
@click.option("--error-threshold", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option(
    "--request-timeout",
    "request_timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Per request, seconds (default: derived from --isl/--osl, never past --max-duration).",
)
@click.option(
    "--max-response-bytes",
    type=click.IntRange(min=1024),
    help="Bytes one response may send (default: 1 MiB + 16 KiB per requested output token).",
)
@click.option(
    "--max-line-bytes",
    type=click.IntRange(min=1024),
    default=MAX_LINE_BYTES,
    show_default=True,
    help="The longest line a response may send.",
)
@click.option(
    "--fresh-connections", is_flag=True, help="Connect per request (overrides the dialect)."
)
@click.option(
    "--client-stamps",
    is_flag=True,
    help="Stamp arrivals when the client reads them, not with the kernel's receive time (for comparison).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the result JSON here."
)
@click.option(
    "--requests-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write per-request records (gzip JSON lines), e.g. requests.jsonl.gz.",
)
@click.option(
    "--recompute",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Measure nothing: recompute the metrics of DIR/result.json from DIR/requests.jsonl.gz and compare.",
)
def loadgen(**opts: Any) -> None:
    """Measure one point (closed loop at --concurrency and/or open loop at --request-rate)
    against a running OpenAI-compatible server and print or write its metrics (seconds).

    Exit codes: 0 the point was measured (see `valid`); 16 the point failed — no request
    completed or the error rate is over --error-threshold (the result is written first);
    with --recompute, 20 when a stored metric differs from the recomputed one."""
    if opts["recompute"] is not None:
        _recompute(opts["recompute"])
        return
    config = _point_config(opts)
    chosen = get_dialect(opts["dialect"])
    if opts["fresh_connections"]:
        chosen = chosen.with_overrides(fresh_connection=True)
    result = run_point(config, dialect=chosen, requests_path=opts["requests_out"])
    _report(config, result, opts["output"])


# options passed to PointConfig under their own name (click has checked their types)
_AS_IS = (
    "request_rate", "burstiness", "duration_s", "warmup_requests", "min_requests",
    "min_duration_s", "max_duration_s", "range_ratio", "shared_prefix_tokens", "tokenizer",
    "seed", "workers", "error_threshold", "request_timeout_s", "max_response_bytes",
    "max_line_bytes",
)  # fmt: skip


def _point_config(opts: Mapping[str, Any]) -> PointConfig:
    """The command's options as a `PointConfig`, with the defaults that depend on others: one
    slot when neither a concurrency nor a rate is given, max(10 × slots, 100) requests when
    neither a count nor a duration is."""
    url, model, isl, osl = _required(opts["url"], opts["model"], opts["isl"], opts["osl"])
    concurrency, num_requests = opts["concurrency"], opts["num_requests"]
    if concurrency is None and opts["request_rate"] is None:
        concurrency = 1
    if num_requests is None and opts["duration_s"] is None:
        num_requests = max(10 * (concurrency or 1), 100)
    return PointConfig(
        url=url, model=model, isl=isl, osl=osl, endpoint=Endpoint(opts["endpoint"]),
        concurrency=concurrency, num_requests=num_requests,
        slo=Slo(ttft_s=opts["slo_ttft"], tpot_s=opts["slo_tpot"], e2el_s=opts["slo_e2el"]),
        kernel_stamps=not opts["client_stamps"], **{k: opts[k] for k in _AS_IS},
    )  # fmt: skip


def _required(
    url: str | None, model: str | None, isl: int | None, osl: int | None
) -> tuple[str, str, int, int]:
    """The options a measurement needs; `UsageError` naming those missing."""
    missing = [
        f"--{n}"
        for n, v in (("url", url), ("model", model), ("isl", isl), ("osl", osl))
        if v is None
    ]
    if missing or url is None or model is None or isl is None or osl is None:
        raise UsageError(
            f"missing option(s) {', '.join(missing)}",
            hint="give --url, --model, --isl and --osl to measure, or --recompute DIR to audit a result",
        )
    return url, model, isl, osl


def _report(config: PointConfig, result: PointResult, output: Path | None) -> None:
    """Write the result JSON to `output` (or print it), print the one-line summary on stderr,
    and raise `ErrorRateExceeded` when the point failed."""
    doc = {"kind": "ixci.loadgen", "config": _config_json(config), **result.to_json()}
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(text + b"\n")
    else:
        click.echo(text.decode())
    click.echo(_summary(result.to_json()), err=True)
    m = result.metrics
    if m["completed"] == 0 or m["error_rate"] > config.error_threshold:
        raise ErrorRateExceeded(
            f"the point failed: {m['completed']} requests completed, {m['failed']} failed "
            f"(error rate {m['error_rate']:.1%}, threshold {config.error_threshold:.1%}; kinds {m['errors']})",
            hint="the result was written; see its errors and the per-request records",
        )


def _recompute(folder: Path) -> None:
    from ixci.loadgen.audit import RecordsMismatch, recompute_folder
    from ixci.results.result import REQUESTS_FILE, RESULT_FILE

    audits = recompute_folder(folder / RESULT_FILE, folder / REQUESTS_FILE)
    bad = 0
    for a in audits:
        note = f" (not from records: {', '.join(a.skipped)})" if a.skipped else ""
        click.echo(f"{a.point}: {a.compared - len(a.mismatches)}/{a.compared} metrics match{note}")
        for path, stored, fresh in a.mismatches:
            click.echo(f"  {path}: stored {stored!r}, recomputed {fresh!r}")
        bad += len(a.mismatches)
    if bad:
        raise RecordsMismatch(
            f"{bad} stored metrics differ from those recomputed from {folder / REQUESTS_FILE}"
        )


def _config_json(c: PointConfig) -> dict[str, object]:
    return {
        "url": c.url,
        "model": c.model,
        "isl": c.isl,
        "osl": c.osl,
        "endpoint": str(c.endpoint),
        "concurrency": c.concurrency,
        "request_rate": c.request_rate,
        "burstiness": c.burstiness,
        "num_requests": c.num_requests,
        "duration_s": c.duration_s,
        "warmup_requests": c.warmup,
        "range_ratio": c.range_ratio,
        "shared_prefix_tokens": c.shared_prefix_tokens,
        "seed": c.seed,
        "max_duration_s": c.max_duration_s,
        "request_timeout_s": c.request_timeout_s,
        "max_response_bytes": c.max_response_bytes,
        "max_line_bytes": c.max_line_bytes,
        "request_timeout_effective_s": c.timeout_s,
        "slo": {"ttft_s": c.slo.ttft_s, "tpot_s": c.slo.tpot_s, "e2el_s": c.slo.e2el_s},
    }


def _summary(doc: dict[str, object]) -> str:
    m = doc["metrics"]
    c = doc["client"]
    assert isinstance(m, dict) and isinstance(c, dict)
    ttft, itl = m["ttft"], m["itl"]
    line = (
        f"{m['completed']} ok, {m['failed']} failed in {m['duration_s']:.2f} s · "
        f"{m['output_throughput']:.1f} out tok/s · "
    )
    if ttft["mean"] is not None:
        line += f"TTFT mean {ttft['mean'] * 1e3:.1f} ms p99 {ttft['p99'] * 1e3:.1f} ms · "
    if itl["p99"] is not None:
        line += f"ITL p99 {itl['p99'] * 1e3:.1f} ms · "
    if m.get("retries"):
        line += f"{m['retries']} retried · "
    ol = m.get("open_loop")
    if isinstance(ol, dict):
        line += f"send lag p99 {ol['send_lag_p99_s'] * 1e3:.2f} ms · "
    line += f"client CPU {c['cpu_percent']:.0f}%"
    withheld = (m.get("timing") or {}).get("invalid") or {}
    if withheld:
        line += " · WITHHELD (stamps possibly coalesced): " + ", ".join(sorted(withheld))
    if c["saturated"]:
        line += " · CLIENT SATURATED: " + "; ".join(c["saturation_reasons"])
    if not doc["valid"]:
        line += " · INVALID: " + "; ".join(doc["invalid_reasons"])  # type: ignore[arg-type]
    return line
