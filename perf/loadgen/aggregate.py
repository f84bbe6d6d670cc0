#!/usr/bin/env python3
"""End-of-point aggregation time of `ixci loadgen` over spilled records, side by side.

Not a test: writes the spill file of a saturated point (N requests of 1,024 chunks, 7 of every
8 chunks stamped late as on a busy client, as `perf/loadgen/memory.py` runs make them) and
times each end-of-point stage — the point's metrics (with the timing bounds), the one-pass
checks, the requests file — with this checkout's ixci and with each `--compare` source tree
(e.g. an export of an older commit), interleaved, in one run. Prints seconds per stage, the
aggregation rate in tokens/s and the ratio to this checkout.

    python perf/loadgen/aggregate.py --requests 3000 --compare /tmp/ixci-before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNKS = 1024

WRITE = """
import sys
import numpy as np
import orjson
from ixci.loadgen.metrics import RequestRecord
rng = np.random.default_rng(1)
# lines in the older `chunk_slack_ns` form ([chunk, ns] per late chunk), which every tree reads:
# one read of 7 late chunks in every 8, as a busy client's reads give them
with open(sys.argv[1], "wb") as spill:
    for i in range(int(sys.argv[2])):
        send = 10**9 + i * 2_000_000
        times = send + np.cumsum(rng.integers(1000, 400_000, CHUNKS))
        doc = orjson.loads(RequestRecord(index=i, worker=0, warmup=False, t_send_ns=send,
                                         t_end_ns=int(times[-1]) + 10, ok=True,
                                         chunk_times_ns=tuple(times.tolist()), output_tokens=CHUNKS,
                                         prompt_tokens=128, requested_input_tokens=128,
                                         requested_output_tokens=CHUNKS).to_line())
        late = [int(x) for x in rng.integers(1, 100_000, CHUNKS // 8)]
        doc["chunk_slack_ns"] = [[j, late[j // 8]] for j in range(CHUNKS) if j % 8 != 7]
        spill.write(orjson.dumps(doc) + b"\\n")
""".replace("CHUNKS", str(CHUNKS))

TIME = """
import json, sys, time
from pathlib import Path
from ixci.loadgen import run
from ixci.loadgen.spill import iter_spilled, write_spilled_requests
paths = [Path(sys.argv[1])]
records = lambda: iter_spilled(paths)
t = {}
try:
    from ixci.loadgen.fold import Fold, checks_of, point_metrics_of
except ImportError:  # before the workers folded their records: everything after the load
    from ixci.loadgen.metrics import draft_totals, point_metrics_from
    t0 = time.perf_counter(); point_metrics_from(records, concurrency=256); t["metrics"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if hasattr(run, "_one_pass_checks"):
        run._one_pass_checks(records())
    else:  # before the checks shared one pass
        run._prompt_check(records()); draft_totals(records())
    t["checks"] = time.perf_counter() - t0
else:
    import tempfile
    from ixci.loadgen.spill import read_spilled
    t0 = time.perf_counter(); decoded = list(records()); t_decode = time.perf_counter() - t0
    fold = Fold(Path(tempfile.mkdtemp()))
    t0 = time.perf_counter()
    for i, r in enumerate(decoded):
        fold.add(r, i)  # in a run: by each worker, as the record finishes (not after the load)
    done = fold.finish(); t["fold_in_worker"] = time.perf_counter() - t0
    del decoded
    offsets = []
    with open(paths[0], "rb") as fh:
        off = 0
        for line in fh:
            offsets.append(off); off += len(line)
    fetch = lambda wanted: [read_spilled(paths[p], [offsets[ref]])[0] for p, ref in wanted]
    t0 = time.perf_counter(); point_metrics_of([done], fetch, concurrency=256); t["metrics"] = time.perf_counter() - t0
    t0 = time.perf_counter(); checks_of([done]); t["checks"] = time.perf_counter() - t0
t0 = time.perf_counter(); write_spilled_requests(Path(sys.argv[2]), paths); t["requests_file"] = time.perf_counter() - t0
print(json.dumps(t))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--compare", nargs="*", default=[], metavar="SRC")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ixci-agg-"))
    spill = work / "worker-0.jsonl"
    this = str(HERE.parent.parent)
    subprocess.run([sys.executable, "-c", WRITE, str(spill), str(a.requests)], check=True, cwd=work,
                   env={**os.environ, "PYTHONPATH": this})  # fmt: skip
    tokens = a.requests * CHUNKS
    best: dict[str, dict[str, float]] = {}
    for _ in range(a.repeats):
        for tree in [this, *a.compare]:
            out = subprocess.run([sys.executable, "-c", TIME, str(spill), str(work / "r.jsonl.gz")],
                                 check=True, capture_output=True, text=True, cwd=work,
                                 env={**os.environ, "PYTHONPATH": tree}).stdout  # fmt: skip
            t = json.loads(out)
            # after the load stopped; the fold runs in the workers while they measure
            t["total"] = sum(v for k, v in t.items() if k != "fold_in_worker")
            prev = best.get(tree)
            best[tree] = t if prev is None or t["total"] < prev["total"] else prev
    base = best[this]["total"]
    for tree, t in best.items():
        name = "this checkout" if tree == this else tree
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total")
        print(
            f"{name}: {t['total']:.2f} s after the load ({stages}); "
            f"{tokens / t['total'] / 1e3:.0f} k tok/s; "
            f"{t['total'] / base:.2f}x this checkout's time"
        )


if __name__ == "__main__":
    main()
