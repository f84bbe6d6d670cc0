#!/usr/bin/env python3
"""Memory and sustained speed of `ixci loadgen` over saturated runs of growing length.

Not a test: prints, for each length, the client's peak RSS, its largest parsing backlog, the
drain after the window, the window and sustained (all parsing counted) output tok/s, and the
peak RSS per million tokens. The parsing backlog must stay under its cap whatever the length,
and the finished request records go to disk as they come (`ixci.loadgen.spill`), so the peak
RSS must stay flat as the run grows.

`--compare SRC…` runs the same lengths, interleaved, with the ixci of other source trees (e.g.
an export of an older commit) for a side-by-side figure from one run.

    python perf/loadgen/memory.py --seconds 10 40 --concurrency 256 --server-cpu 0 --client-cpu 1
    python perf/loadgen/memory.py --seconds 20 80 --compare /tmp/ixci-before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 40.0])
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--osl", type=int, default=1024)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--stub-procs", type=int, default=1)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="SRC",
        help="other ixci source trees to run the same lengths with (on PYTHONPATH)",
    )
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ixci-mem-"))
    cc = shutil.which(os.environ.get("CC", "cc")) or sys.exit(
        "needs a C compiler (cc) for the stub"
    )
    subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(work / "stub"), str(HERE / "stub.c"), "-lm"], check=True
    )
    stub = subprocess.Popen(
        [
            "taskset",
            "-c",
            a.server_cpu,
            str(work / "stub"),
            "--port",
            "0",
            "--ttft-ms",
            "0",
            "--itl-ms",
            "0",
            "--events-per-write",
            "8",
            "--procs",
            str(a.stub_procs),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stub.stdout is not None
    url = f"http://127.0.0.1:{int(stub.stdout.readline().split()[1])}"
    rows = []
    trees: list[str | None] = [None, *a.compare]
    try:
        for seconds, tree in ((s, t) for s in a.seconds for t in trees):
            out = work / f"run-{seconds}-{trees.index(tree)}.json"
            env = {
                **os.environ,
                "PYTHONPATH": tree or str(HERE.parent.parent),
            }  # None: this checkout
            argv = [
                "taskset",
                "-c",
                a.client_cpu,
                sys.executable,
                "-c",
                "import sys; from ixci.cli import main; sys.exit(main())",
                "loadgen",
                "--url",
                url,
                "--model",
                "stub",
                "--isl",
                "128",
                "--osl",
                str(a.osl),
                "--concurrency",
                str(a.concurrency),
                "--duration",
                str(seconds),
                "--warmup-requests",
                "0",
                "--workers",
                str(a.workers),
                "--dialect",
                "vllm",
                "--output",
                str(out),
            ]
            t0 = time.perf_counter()
            # cwd: `python -c` puts the working directory first on sys.path, before PYTHONPATH: run
            # from a checkout, every tree would import that checkout's ixci
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=work
            )
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            doc = json.loads(out.read_text())
            m, c = doc["metrics"], doc["client"]
            tokens = m["total_output_tokens"]
            row = {
                "ixci": tree or "this",
                "seconds": seconds,
                "rc": os.waitstatus_to_exitcode(status),
                "tokens": tokens,
                "peak_rss_mib": ru.ru_maxrss / 1024,
                "rss_mib_per_mtok": ru.ru_maxrss / 1024 / (tokens / 1e6),
                "window_tok_s": m["output_throughput"],
                # a client without these fields (an older ixci) reports None: its drain went unmeasured
                "sustained_tok_s": tokens / (m["duration_s"] + c["drain_s"])
                if "drain_s" in c
                else None,
                "whole_process_tok_s": tokens / wall,
                "drain_s": c.get("drain_s"),
                "unparsed_at_end": c.get("unparsed_at_end"),
                "max_unparsed_mib": c["max_unparsed_bytes"] / 2**20
                if "max_unparsed_bytes" in c
                else None,
                "client_cpu_percent": c["cpu_percent"],
                "load_1min": os.getloadavg()[0],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stub.terminate()
        stub.wait()
    for tree in trees:
        mine = [r for r in rows if r["ixci"] == (tree or "this")]
        if len(mine) < 2:
            continue
        first, last = mine[0], mine[-1]
        print(
            f"\n{tree or 'this checkout'}: {last['seconds']:.0f} s vs {first['seconds']:.0f} s: tokens ×{last['tokens'] / first['tokens']:.2f}, "
            f"peak RSS ×{last['peak_rss_mib'] / first['peak_rss_mib']:.2f}, RSS per M tokens "
            f"{first['rss_mib_per_mtok']:.1f} → {last['rss_mib_per_mtok']:.1f} MiB, whole-process/window "
            f"{first['whole_process_tok_s'] / first['window_tok_s']:.2f} → "
            f"{last['whole_process_tok_s'] / last['window_tok_s']:.2f}"
        )


if __name__ == "__main__":
    main()
