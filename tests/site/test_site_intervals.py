"""The site payload carries interval columns only where points have intervals."""

from __future__ import annotations

from pathlib import Path

from site_results_tree import write_large_tree, write_tree

from ixci.site.data import CORE_INTERVALS, encode_extra, encode_points
from ixci.site.load import load_results


def test_intervals_travel_with_repeated_points(tmp_path: Path) -> None:
    results = load_results(write_tree(tmp_path / "results"))
    core, extra = encode_points(results)["columns"], encode_extra(results)["columns"]
    assert set(CORE_INTERVALS) <= set(core)
    lo, value, hi = (core[c] for c in ("tput_per_gpu_lo", "tput_per_gpu", "tput_per_gpu_hi"))
    shown = [k for k, v in enumerate(lo) if v is not None]
    assert shown and all(lo[k] < value[k] < hi[k] for k in shown)
    assert max(v for v in extra["repeats"] if v is not None) == 3


def test_results_without_repeats_pay_nothing_for_intervals(tmp_path: Path) -> None:
    results = load_results(write_large_tree(tmp_path / "results", 300))
    core, extra = encode_points(results)["columns"], encode_extra(results)["columns"]
    assert not any(c.endswith(("_lo", "_hi")) for c in (*core, *extra))
    assert "repeats" not in extra
