#!/usr/bin/env python3
"""Open-loop accuracy of `ixci loadgen --request-rate`: how late each request leaves against its
schedule (the MLPerf Server-scenario discipline), and TTFT/ITL against the stub's truth.

Not a test: a measurement that prints a table. The C stub (`stub.c`, accuracy settings: truth
TTFT 100 ms, one token every 20 ms, OSL 64) runs pinned to --server-cpu, the client to
--client-cpu; for each rate the client sends Poisson arrivals for --duration seconds. Per rate:
the send lag (actual − scheduled send) p50 / p99 / max from the point's `metrics.open_loop`,
the client's CPU and saturation verdict, TTFT mean / p99 and ITL p99 error against the truth.
The target is a send-lag p99 ≤ 1 ms at every rate the client sustains.

  python perf/loadgen/openloop.py --rates 50 200 1000 --duration 20 --json-out openloop.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the side-by-side benchmark's stub, tokenizer and timing helpers)


def ixci_open_loop(url: str, rate: float, duration: float, out: Path, tok: Path) -> list[str]:
    """`ixci loadgen` in open loop at `rate` requests/s for `duration` seconds."""
    return [
        sys.executable, "-c", "import sys; from ixci.cli import main; sys.argv[0] = 'ixci'; main()",
        "loadgen", "--url", url, "--model", "stub", "--isl", "128", "--osl", "64",
        "--request-rate", str(rate), "--duration", str(duration), "--warmup-requests", "0",
        "--dialect", "vllm", "--tokenizer", str(tok / "tokenizer.json"), "--output", str(out),
    ]  # fmt: skip


def measure(url: str, rate: float, a: argparse.Namespace, work: Path, tok: Path) -> dict:
    """One rate: run the client, read its result and the stub's truth."""
    load = bench.wait_idle(a.idle_load, a.idle_wait)
    bench.http(url + "/reset", "POST")
    out = work / f"rate-{rate:g}.json"
    argv = ["taskset", "-c", a.client_cpu, *ixci_open_loop(url, rate, a.duration, out, tok)]
    wall, cpu, rc, rss = bench.run_timed(argv, out.with_suffix(".log"))
    truth = bench.http(url + "/truth")
    row: dict = {"rate": rate, "rc": rc, "load": round(load, 2), "wall_s": wall, "cpu_s": cpu,
                 "peak_rss_mib": rss}  # fmt: skip
    if rc != 0 or not out.exists():
        row["log"] = out.with_suffix(".log").read_text()[-800:]
        return row
    doc = json.loads(out.read_text())
    m, c = doc["metrics"], doc["client"]
    ol = m.get("open_loop") or {}
    tt, ti = truth["ttft"], truth["itl"]
    row.update(
        sends=ol.get("sends"),
        send_lag_p50_ms=ol.get("send_lag_p50_s", float("nan")) * 1e3,
        send_lag_p99_ms=ol.get("send_lag_p99_s", float("nan")) * 1e3,
        send_lag_max_ms=ol.get("send_lag_max_s", float("nan")) * 1e3,
        achieved_rate=m["completed"] / m["duration_s"] if m["duration_s"] else 0.0,
        completed=m["completed"],
        client_cpu_percent=c["cpu_percent"],
        client_saturated=c["saturated"],
        ttft_err_mean_ms=bench._err(m["ttft"]["mean"], tt["mean"]),
        ttft_err_p99_ms=bench._err(m["ttft"]["p99"], tt["p99"]),
        itl_err_p99_ms=bench._err(m["itl"]["p99"], ti["p99"]),
        tokens_exact=m["total_output_tokens"] == truth["tokens"],
    )
    return row


def report(rows: list[dict]) -> None:
    print("\n| rate (req/s) | sends | send lag p50 / p99 / max (ms) | completed / window (req/s) | client CPU % "
          "| saturated | TTFT err mean / p99 (ms) | ITL p99 err (ms) | tokens exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "log" in r:
            print(f"| {r['rate']:g} | failed (rc {r['rc']}) | | | | | | | |")
            continue
        print(
            f"| {r['rate']:g} | {r['sends']} | {r['send_lag_p50_ms']:.3f} / "
            f"{r['send_lag_p99_ms']:.3f} / {r['send_lag_max_ms']:.3f} | {r['achieved_rate']:.1f} "
            f"| {r['client_cpu_percent']:.0f} | {r['client_saturated']} | "
            f"{r['ttft_err_mean_ms']:+.3f} / {r['ttft_err_p99_ms']:+.3f} | "
            f"{r['itl_err_p99_ms']:+.3f} | {r['tokens_exact']} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[50.0, 200.0, 1000.0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--idle-load", type=float, default=1.0)
    p.add_argument("--idle-wait", type=float, default=60.0)
    p.add_argument("--json-out", type=Path)
    p.add_argument("--report", type=Path, metavar="JSON", help="only print a saved --json-out")
    a = p.parse_args()
    if a.report:
        report(json.loads(a.report.read_text()))
        return
    work = Path(tempfile.mkdtemp(prefix="ixci-openloop-"))
    tok = bench.make_tokenizer(work / "tokenizer")
    stub, url = bench.start_stub(a.server_cpu, bench.build_stub(work),
                                 ["--ttft-ms", "100", "--itl-ms", "20"])  # fmt: skip
    rows = []
    try:
        for rep in range(a.repeats):
            for rate in a.rates:
                row = measure(url, rate, a, work, tok) | {"repeat": rep}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "log"}), flush=True)
                if "log" in row:
                    print(row["log"], file=sys.stderr)
    finally:
        stub.terminate()
        stub.wait()
    report(rows)
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
