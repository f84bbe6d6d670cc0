"""Steps in one noisy nightly series: an L1 piecewise-constant fit with a penalty, then a
baseline/target window test of every step it proposes.

Noise model (stated once, used everywhere): a series is one metric of one point of one
configuration, one value per run, oldest first. On the log scale, `x_t = mu_t + e_t`:

* `mu_t` is piecewise constant — it steps when something changed (image, driver, runner);
* `e_t` are independent, symmetric and heavy-tailed (Laplace-like: a GPU's throughput at one
  point can swing by 2x between minutes), with one unknown scale per series. The scale is
  estimated robustly from successive differences, `s = 1.4826 * MAD(diff(x)) / sqrt(2)`,
  which a few steps barely move, and never taken below a floor (a series of identical values
  would otherwise make every wiggle significant).

Working on logs makes a step a *relative* change (an image that costs 10 % is the same step at
every concurrency). The fit follows asv's step detection (`asv/step_detect.py`): minimise
`sum |x_t - mu_t| + gamma * (number of steps)`, L1 because the noise is Laplace (the fit is
then the maximum-likelihood one and an outlier night cannot create a step on its own). Here it
is solved by binary segmentation (split where the L1 cost drops most, while the drop exceeds
`gamma = beta * s * ln n`), exact enough for candidate steps. Every candidate is then judged
the way PyTorch's HUD judges a regression, on windows: a *baseline* window (up to `window`
runs before the step, inside the segment before it) against a *target* window (up to
`window` runs after it). The step is the difference of the window medians; its standard error
uses the series' noise scale, `se = 1.2533 * s * sqrt(1/n_base + 1/n_target)` (the median's
efficiency under normal noise; conservative under Laplace noise). A step counts when
`|step / se| >= z` and `|exp(step) - 1| >= min_step`, with at least `min_before` and
`min_after` runs in its windows (a single bad night is never a regression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAD_TO_SIGMA = 1.4826
MEDIAN_SE = 1.2533  # sqrt(pi / 2): standard error of a median in units of sigma / sqrt(n)
CI95 = 1.959964
Z95 = 1.644854  # one-sided 95 % quantile of the normal distribution

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class StepRule:
    """The detector's knobs (defaults: `ixci.results.regress.DEFAULT_POLICY`)."""

    beta: float = 2.0  # penalty per step, in units of s * ln(n)
    z: float = 4.0  # |step| / se needed to call a step
    min_step: float = 0.05  # smallest relative step worth an alert
    min_before: int = 4
    min_after: int = 3
    window: int = 7
    noise_floor: float = 0.005  # smallest noise scale assumed (log units ~ relative)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One confirmed step between positions `at - 1` and `at` of the series (log units)."""

    at: int
    shift: float  # median(target) - median(baseline), log scale
    se: float
    z: float
    base_from: int  # first index of the baseline window
    base_level: float  # median of the baseline window (log scale)
    target_level: float
    n_base: int
    n_target: int

    @property
    def relative(self) -> float:
        """The step as a relative change (exp(shift) - 1)."""
        return math.expm1(self.shift)

    def relative_ci95(self) -> tuple[float, float]:
        """The 95 % interval of the relative step."""
        return (math.expm1(self.shift - CI95 * self.se), math.expm1(self.shift + CI95 * self.se))


def noise_scale(x: FloatArray, floor: float) -> float:
    """Robust noise scale of a series (log units): MAD of successive differences / sqrt(2)."""
    if len(x) < 3:
        return floor
    d = np.diff(x)
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(MAD_TO_SIGMA * mad / math.sqrt(2.0), floor)


def _prefix_l1(x: FloatArray) -> FloatArray:
    """`out[k]` = sum |x[:k+1] - median(x[:k+1])| for every k (O(n^2) memory, n <= a few 100).

    Row k of a lower-triangular matrix holds x[:k+1] (the rest +inf, sorted last); its median is
    the mean of the two middle values of the sorted row, as `np.median` takes it (a plain sort
    is ~10× faster than `np.nanmedian`'s masked arrays, with the same values).
    """
    n = len(x)
    tri = np.tril(np.ones((n, n), dtype=bool))
    srt = np.sort(np.where(tri, x[None, :], np.inf), axis=1)
    rows, count = np.arange(n), np.arange(1, n + 1)
    med = (srt[rows, (count - 1) // 2] + srt[rows, count // 2]) / 2.0
    dev = np.where(tri, np.abs(x[None, :] - med[:, None]), 0.0)
    return np.asarray(dev.sum(axis=1), dtype=np.float64)


def best_split(x: FloatArray, min_size: int) -> tuple[int, float]:
    """(k, gain): the split x[:k] | x[k:] that lowers the L1 cost most; (0, 0.0) if none."""
    n = len(x)
    if n < 2 * min_size:
        return 0, 0.0
    pre = _prefix_l1(x)
    suf = _prefix_l1(x[::-1])[::-1]  # suf[k] = cost of x[k:]
    ks = np.arange(min_size, n - min_size + 1)
    gains = pre[-1] - pre[ks - 1] - suf[ks]
    i = int(np.argmax(gains))
    return int(ks[i]), float(gains[i])


def segment(x: FloatArray, penalty: float, min_size: int = 2) -> list[int]:
    """Segment starts (0 first) of the penalised L1 piecewise-constant fit (binary segmentation)."""
    starts = {0}
    todo = [(0, len(x))]
    while todo:
        a, b = todo.pop()
        k, gain = best_split(x[a:b], min_size)
        if k and gain > penalty:
            starts.add(a + k)
            todo += [(a, a + k), (a + k, b)]
    return sorted(starts)


def window_test(x: FloatArray, lo: int, at: int, hi: int, s: float, rule: StepRule) -> Step | None:
    """The baseline x[max(lo, at-window):at] against the target x[at:min(hi, at+window)]."""
    base = x[max(lo, at - rule.window) : at]
    target = x[at : min(hi, at + rule.window)]
    if len(base) < rule.min_before or len(target) < rule.min_after:
        return None
    b, t = float(np.median(base)), float(np.median(target))
    se = MEDIAN_SE * s * math.sqrt(1.0 / len(base) + 1.0 / len(target))
    return Step(
        at=at, shift=t - b, se=se, z=(t - b) / se, base_from=max(lo, at - rule.window),
        base_level=b, target_level=t, n_base=len(base), n_target=len(target),
    )  # fmt: skip


def significant(step: Step, rule: StepRule) -> bool:
    """Whether a step passes both the noise test and the size threshold (either direction)."""
    return abs(step.z) >= rule.z and abs(step.relative) >= rule.min_step


def detectable_drop(s: float, rule: StepRule, *, n_before: int, n_after: int) -> float:
    """The stated power: the relative drop the window test finds with ≥ 95 % probability when
    the series' noise scale is `s` (log units) and its windows hold `n_before`/`n_after` runs —
    a shift of (z + 1.645) standard errors, and never less than `min_step`. A smaller step may
    still be found (the fit usually sees more than one window); a larger one is missed less
    than one time in twenty."""
    se = MEDIAN_SE * s * math.sqrt(1.0 / n_before + 1.0 / n_after)
    return max(-math.expm1(-(rule.z + Z95) * se), rule.min_step)


def detect(values: FloatArray, rule: StepRule) -> tuple[list[Step], list[int], float]:
    """Confirmed steps of a positive series (either direction), the fit's segment starts and
    the noise scale. `values` must be > 0 (they are logged)."""
    x = np.log(np.asarray(values, dtype=np.float64))
    s = noise_scale(x, rule.noise_floor)
    if len(x) < rule.min_before + rule.min_after:
        return [], [0], s
    starts = segment(x, rule.beta * s * math.log(len(x)))
    bounds = [*starts, len(x)]
    steps = []
    for i in range(1, len(starts)):
        step = window_test(x, bounds[i - 1], bounds[i], bounds[i + 1], s, rule)
        if step is not None and significant(step, rule):
            steps.append(step)
    return steps, starts, s
