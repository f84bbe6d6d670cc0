#!/usr/bin/env python3
"""How fast one core runs Python while other cores are busy (not a test).

The load generator's per-worker speed fell from about 1.1 M to 0.7 M tok/s between 2 and 4
workers on a 16-vCPU guest with no run-queue wait and no steal. Two causes the guest cannot see
directly: vCPUs that share a physical core (SMT siblings on the host) and a turbo frequency that
falls as more cores get busy. This times a fixed pure-Python loop on one CPU:

- alone (the baseline);
- with one spinner on each other CPU in turn (a sibling shows as a slowdown of ~1.3x or more);
- with spinners on the first k other CPUs, k growing (turbo shows as a slowdown growing with k).

    python perf/loadgen/cores.py --json-out cores.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SPIN = "while True: pass"


def _loop(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i & 7
    return time.perf_counter() - t0


def _timed(n: int, repeats: int) -> float:
    return statistics.median(_loop(n) for _ in range(repeats))


def _with_spinners(cpus: list[int], n: int, repeats: int) -> float:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in cpus]
    try:
        for p, cpu in zip(spinners, cpus, strict=True):
            os.sched_setaffinity(p.pid, {cpu})
        time.sleep(0.3)  # the spinners are running (and the cores' clocks have settled)
        return _timed(n, repeats)
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def _siblings(cpu: int) -> str | None:
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    return path.read_text().strip() if path.exists() else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", type=int, default=0, help="the CPU that runs the timed loop")
    p.add_argument("--loop", type=int, default=3_000_000, help="iterations of the timed loop")
    p.add_argument("--repeats", type=int, default=5, help="timed loops per case (median)")
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    others = [c for c in cpus if c != a.cpu]
    os.sched_setaffinity(0, {a.cpu})
    _timed(a.loop, 2)  # warm up
    base = _timed(a.loop, a.repeats)
    out: dict[str, object] = {
        "cpu": a.cpu,
        "cpus": len(cpus),
        "siblings_seen_by_guest": _siblings(a.cpu),
        "alone_s": base,
        "one_other_busy": {},
        "first_k_busy": {},
    }
    print(
        f"CPU {a.cpu} alone: {base * 1e3:.1f} ms (siblings seen: {out['siblings_seen_by_guest']})"
    )
    pairs: dict[str, float] = {}
    for c in others:
        pairs[str(c)] = _with_spinners([c], a.loop, a.repeats) / base
        print(f"  CPU {c:2} busy: x{pairs[str(c)]:.3f}")
    out["one_other_busy"] = pairs
    ks = sorted({k for k in (1, 2, 3, 4, 6, 8, 12, len(others)) if k <= len(others)})
    grow: dict[str, float] = {}
    for k in ks:
        grow[str(k)] = _with_spinners(others[:k], a.loop, a.repeats) / base
        print(f"  {k:2} other CPUs busy: x{grow[str(k)]:.3f}")
    out["first_k_busy"] = grow
    if a.json_out:
        a.json_out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
