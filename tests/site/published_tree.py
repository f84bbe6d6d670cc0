"""Results trees written by ixci's own publish path (collect → run folder → derived files), for
site tests that need what publish decides: the published curve of each configuration
(index.json `configs[].curves`) and regressions.json.

Artifacts come from tests/collect/factory.py; each run is staged as `ixci publish` stages it and
the derived files are rebuilt from the run folders (`ixci.results.publish.rebuild`), without git.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collect.factory import make_job, make_result

from ixci.results.collect import collect
from ixci.results.publish import rebuild
from ixci.results.runfolder import stage_attempt

TAG = "vllm/vllm-openai:nightly"


def stage(tree: Path, work: Path, run_id: str, date: str, docs: list[dict[str, Any]]) -> None:
    """Stage one run's artifacts into `tree` as publish does."""
    folder = work / run_id
    for doc in docs:
        sub = folder / f"result-{doc['job']['id']}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "result.json").write_text(json.dumps(doc))
    stage_attempt(tree, collect([folder], run_id=run_id), run_id, date=date, run_attempt=1)


def narrower_tree(root: Path) -> Path:
    """Two runs of two configurations of one model and scenario.

    h100 (c = 1, 2, 4, 8, 16): r1 measured c=1…8 (c=16 failed); r2 lost everything above c=2 —
    a narrower sweep of the same recipe: publish keeps r1. h200: r1 swept c=1…8, then the recipe
    changed to c=1, 2 and r2 measured exactly that: publish moves the curve to r2.
    """
    tree, work = root / "tree", root / "work"
    dense = make_job(name="dense", sku="h100", concurrencies=(1, 2, 4, 8, 16))
    old_recipe = make_job(name="recipe", sku="h200", concurrencies=(1, 2, 4, 8))
    new_recipe = make_job(name="recipe", sku="h200", concurrencies=(1, 2))
    stage(tree, work, "r1", "2026-11-01", [
        make_result(dense, run_id="r1", date="2026-11-01", statuses={4: "failed"}),
        make_result(old_recipe, run_id="r1", date="2026-11-01"),
    ])  # fmt: skip
    stage(tree, work, "r2", "2026-11-02", [
        make_result(dense, run_id="r2", date="2026-11-02", scale=1.1,
                    statuses=dict.fromkeys((2, 3, 4), "failed")),
        make_result(new_recipe, run_id="r2", date="2026-11-02", scale=1.1),
    ])  # fmt: skip
    rebuild(tree, site=False)
    return tree


def regression_tree(root: Path, nights: int = 13, bad_from: int = 8) -> Path:
    """`nights` nightly runs of two configurations that both get 20 % slower from night
    `bad_from` on: h100 with a new image tag (v0.11.0 → v0.12.0), h200 with its tag rebuilt
    (same tag, new digest). Run ids n00…, dates 2026-11-01…; noise ±1 %, deterministic."""
    tree, work = root / "tree", root / "work"
    for i in range(nights):
        bad = i >= bad_from
        tagged = make_job(name="tagged", sku="h100",
                          image="vllm/vllm-openai:v0.12.0" if bad else "vllm/vllm-openai:v0.11.0")  # fmt: skip
        rebuilt = make_job(name="rebuilt", sku="h200", image=TAG)
        run_id, date = f"n{i:02d}", f"2026-11-{i + 1:02d}"
        scale = (0.8 if bad else 1.0) * (1 + 0.01 * ((i * 7) % 3 - 1))
        docs = [
            make_result(job, run_id=run_id, date=date, scale=scale) for job in (tagged, rebuilt)
        ]
        docs[1]["provenance"]["image_digest"] = "sha256:" + ("22" if bad else "11") * 32
        stage(tree, work, run_id, date, docs)
    rebuild(tree, site=False)
    return tree
