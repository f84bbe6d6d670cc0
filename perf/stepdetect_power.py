"""The regression detector on synthetic nightly histories: false alerts on pure noise, and the
power to find injected steps of known size under known noise.

Each history is `n` nightly values of one series, `1000 * exp(e_t)` with e_t independent noise
on the log scale — normal, or Laplace (the heavier tail the noise model assumes) with the same
standard deviation — and, for the step histories, a multiplicative step from run `at` on.
`ixci.results.stepdetect.detect` runs with the default rule (the default alert policy), exactly as
publish runs it on each series of the results branch.

  false alert   any confirmed step in the bad direction (a regression publish would report)
                in a pure-noise history (in either direction: `any step`)
  found         a confirmed step in the step's direction within 2 runs of where it was injected

Not a test (tests/collect/test_regress.py holds a fixed-seed version of both claims); prints
the tables. Seeds are fixed, so the figures are reproducible.

    python perf/stepdetect_power.py [--histories 500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ixci.results.regress import AlertPolicy
from ixci.results.stepdetect import detect, detectable_drop

RULE = AlertPolicy.from_json(None).rule  # the defaults publish uses without an alerts block


def history(rng: np.random.Generator, n: int, sd: float, kind: str) -> np.ndarray:
    # Laplace with the same standard deviation: scale b = sd / sqrt 2
    e = rng.normal(0.0, sd, n) if kind == "normal" else rng.laplace(0.0, sd / np.sqrt(2.0), n)
    out: np.ndarray = np.exp(e) * 1000.0
    return out


def false_alerts(histories: int, n: int, sd: float, kind: str, seed: int) -> tuple[float, float]:
    """(share with a regression alert, share with any step) over pure-noise histories."""
    rng = np.random.default_rng(seed)
    bad = any_step = 0
    for _ in range(histories):
        steps = detect(history(rng, n, sd, kind), RULE)[0]
        any_step += bool(steps)
        bad += any(st.shift < 0 for st in steps)
    return bad / histories, any_step / histories


def power(
    histories: int, n: int, at: int, sd: float, size: float, kind: str, seed: int
) -> tuple[float, float]:
    """(share found near `at` in the right direction, median estimated relative size)."""
    rng = np.random.default_rng(seed)
    found, sizes = 0, []
    for _ in range(histories):
        y = history(rng, n, sd, kind)
        y[at:] *= 1.0 + size
        hits = [st for st in detect(y, RULE)[0]
                if abs(st.at - at) <= 2 and np.sign(st.shift) == np.sign(size)]  # fmt: skip
        if hits:
            found += 1
            sizes.append(hits[0].relative)
    return found / histories, float(np.median(sizes)) if sizes else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--histories", type=int, default=500, help="histories per cell")
    args = ap.parse_args()
    h = args.histories
    print(f"rule: z {RULE.z}, min step {RULE.min_step:.0%}, windows {RULE.min_before}+/"
          f"{RULE.min_after}+ runs (up to {RULE.window}), penalty {RULE.beta} s ln n; "
          f"{h} histories per cell")  # fmt: skip
    print("\npure noise: share of histories with a regression alert (with any step)")
    print("| noise | sd | 30 runs | 60 runs | 120 runs |\n|---|---|---|---|---|")
    for kind in ("normal", "laplace"):
        for sd in (0.02, 0.05, 0.10):
            cells = [false_alerts(h, n, sd, kind, seed=1000 + n) for n in (30, 60, 120)]
            print(f"| {kind} | {sd:.0%} | "
                  + " | ".join(f"{a:.1%} ({b:.1%})" for a, b in cells) + " |")  # fmt: skip
    print("\nsteps: share found (median estimated size), 60 runs, step at run 40 (20 after it)")
    sizes = (-0.05, -0.10, -0.20, -0.30, 0.10)
    print("| noise | sd | stated (95 %) | " + " | ".join(f"{s:+.0%}" for s in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for kind in ("normal", "laplace"):
        for sd in (0.02, 0.05, 0.10):
            cells = [power(h, 60, 40, sd, s, kind, seed=2000) for s in sizes]
            stated = detectable_drop(sd, RULE, n_before=RULE.window, n_after=RULE.window)
            print(f"| {kind} | {sd:.0%} | -{stated:.1%} | "
                  + " | ".join(f"{p:.0%} ({m:+.1%})" for p, m in cells) + " |")  # fmt: skip
    print("\nsteps near the end: share found, 60 runs, -10 % / -20 %, normal noise")
    print("| sd | runs after the step | stated (95 %) | -10 % | -20 % |\n|---|---|---|---|---|")
    for sd in (0.02, 0.05):
        for after in (3, 5, 7):
            near = [power(h, 60, 60 - after, sd, s, "normal", seed=3000)[0] for s in (-0.1, -0.2)]
            stated = detectable_drop(sd, RULE, n_before=RULE.window, n_after=after)
            print(f"| {sd:.0%} | {after} | -{stated:.1%} | {near[0]:.0%} | {near[1]:.0%} |")
    print("\nat the stated size: share found, 60 runs, step at run 40, 1.0 / 1.1 / 1.2 x the drop")
    print("| noise | sd | stated | 1.0x | 1.1x | 1.2x |\n|---|---|---|---|---|---|")
    for kind in ("normal", "laplace"):
        for sd in (0.02, 0.05, 0.10):
            stated = detectable_drop(sd, RULE, n_before=RULE.window, n_after=RULE.window)
            at = [power(h, 60, 40, sd, -k * stated, kind, seed=4000)[0] for k in (1.0, 1.1, 1.2)]
            print(
                f"| {kind} | {sd:.0%} | -{stated:.1%} | "
                + " | ".join(f"{f:.0%}" for f in at)
                + " |"
            )


if __name__ == "__main__":
    main()
