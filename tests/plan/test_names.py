"""Job names label curves on the site, so every job of a plan has its own name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ixci.catalog.catalog import load_catalog
from ixci.plan.plan import expand

REPO = Path(__file__).resolve().parents[2]


def test_shipped_catalog_job_names_are_unique() -> None:
    jobs = expand(load_catalog(REPO))
    dupes = [name for name, n in Counter(j.name for j in jobs).items() if n > 1]
    assert not dupes, dupes


def test_jobs_differing_only_in_engine_args_are_named_by_the_difference() -> None:
    jobs = {j.recipe: j.name for j in expand(load_catalog(REPO))}
    np2 = jobs["matrix/recipes/tiny-fp16-cpu-llamacpp-np2.yaml"]
    np8 = jobs["matrix/recipes/tiny-fp16-cpu-llamacpp-np8.yaml"]
    assert np2.endswith("parallel=2") and np8.endswith("parallel=8"), (np2, np8)
