#!/usr/bin/env python3
"""Prompt building time of `ixci loadgen` (exact token counts with a tokenizer), this tree beside
another checkout's, interleaved, best of --repeats; optionally pinned to a CPU set.

Not a test: a measurement that prints ms per prompt and the ratio. The load generator builds
every prompt of a point in its main process before the first request; at ~1 ms a prompt that
is ~25 s of a 12-worker saturated point (perf/loadgen/README.md, the 16-core curve).

  python perf/loadgen/prompts.py --count 4000 --compare /path/to/other/checkout --cpus 0-3
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
REPO = HERE.parents[1]

CHILD = """
import json, sys, time
from pathlib import Path
from ixci.loadgen.dataset import HFCodec, build_prompts
codec = HFCodec(Path(sys.argv[1]))
count, isl = int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
ps = build_prompts(count=count, isl=isl, osl=64, range_ratio=0.0, shared_prefix_tokens=0,
                   seed=1, codec=codec)
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "inexact": ps.inexact, "first": ps.prompts[0].text[:40]}))
"""


def run(tree: Path, tok: Path, count: int, isl: int, cpus: str | None, work: Path) -> dict:
    """Build the prompts once with `tree`'s ixci, in a fresh interpreter started in `work`."""
    argv = [sys.executable, "-c", CHILD, str(tok), str(count), str(isl)]
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    rest = os.environ.get("PYTHONPATH")  # kept after the tree (e.g. carried dependencies)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), *([rest] if rest else [])])}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--isl", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpus", help="taskset CPU list for the builds (default: all)")
    p.add_argument("--compare", type=Path, help="another checkout's root, timed beside this one")
    a = p.parse_args()
    sys.path[:0] = [str(HERE), str(REPO)]
    import bench  # the bench tokenizer (2,048-token byte-level BPE, made locally)

    work = Path(tempfile.mkdtemp(prefix="ixci-prompts-"))
    tok = bench.make_tokenizer(work / "tokenizer") / "tokenizer.json"
    trees = {"this": REPO, **({"other": a.compare.resolve()} if a.compare else {})}
    best: dict[str, float] = {}
    for _ in range(a.repeats):
        for name, tree in trees.items():  # interleaved: this other this other ...
            r = run(tree, tok, a.count, a.isl, a.cpus, work)
            best[name] = min(best.get(name, float("inf")), r["s"])
            print(f"{name}: {r['s'] / a.count * 1e3:.3f} ms/prompt, inexact {r['inexact']}")
    print(f"\nbest of {a.repeats}, {a.count} prompts of {a.isl} tokens, CPUs {a.cpus or 'all'}:")
    for name, s in best.items():
        print(f"  {name}: {s / a.count * 1e3:.3f} ms/prompt")
    if "other" in best:
        print(f"  this / other time: {best['this'] / best['other']:.2f}")


if __name__ == "__main__":
    main()
