"""Print how long `ixci validate` takes on the whole shipped catalog (target: < 1 s).

Not a test: timings on shared CI machines are noisy. Measures the in-process validation
(median of several runs) and one cold `ixci validate` process (interpreter start included).

    python perf/validate_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from ixci.catalog.catalog import load_catalog

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    catalog = None
    for _ in range(args.runs):
        start = time.perf_counter()
        catalog = load_catalog(REPO)
        times.append(time.perf_counter() - start)
    assert catalog is not None
    start = time.perf_counter()
    proc = subprocess.run(["ixci", "validate", "--root", str(REPO), "-q"], cwd=REPO, check=False)
    cold = time.perf_counter() - start
    files = len(catalog.files)
    print(f"catalog: {files} files, {len(catalog.recipes)} recipes")
    print(
        f"load_catalog (in process): median {statistics.median(times):.3f} s, min {min(times):.3f} s over {args.runs} runs"
    )
    print(f"`ixci validate` process (cold, exit {proc.returncode}): {cold:.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
