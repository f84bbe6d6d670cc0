"""The incumbent's `agentic-coding` entries import onto ixci's sessions workload, with their KV
offload turned into engine arguments capped by the runner's host DRAM (ixci/importer/agentic.py)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from ixci import plan
from ixci.catalog import load_catalog
from ixci.importer import Unmappable, import_inferencex, load_target, write_recipes
from ixci.importer.agentic import offload_args

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "plan" / "inferencex"
SOURCE = [DATA / "nvidia-master.yaml", DATA / "amd-master.yaml"]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's catalog (runners with cpu-dram-mib, the agentic-coding profile) with only
    its canary recipes."""
    root = tmp_path_factory.mktemp("agentic") / "catalog"
    shutil.copytree(ROOT / "matrix", root / "matrix")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    canary = set(yaml.safe_load((root / "matrix" / "canary.yaml").read_text())["canary"])
    for recipe in (root / "matrix" / "recipes").glob("*.yaml"):
        if recipe.stem not in canary:  # keep only what canary.yaml names; import the rest
            recipe.unlink()
    return root


def test_agentic_entries_import_validate_and_plan_one_server_per_launch(target: Path) -> None:
    catalog = load_target(target)
    converted, report = import_inferencex(SOURCE, catalog, spec_tokens=3)
    agentic = {c.entry: c for c in converted if c.recipe["scenarios"] == ["agentic-coding"]}
    assert len(agentic) >= 10, report.render()
    dram = {k: r.cpu_dram_mib for k, r in catalog.runners.items()}

    vllm = agentic["dsv4-fp4-b200-vllm-agentic-mtp"].recipe
    cap = math.floor(0.95 * dram[vllm["runner"]] / 1024)  # dram-utilization 0.95 of the runner's DRAM
    assert vllm["search-space"][0]["engine-args"] == {"kv-offloading-backend": "native", "kv-offloading-size": cap}

    sglang = agentic["dsv4-fp4-b200-sglang-agentic-hicache-mtp"].recipe["search-space"]
    assert "engine-args" not in sglang[0]  # kv-offloading: none
    per_rank = math.floor(0.80 * dram[agentic["dsv4-fp4-b200-sglang-agentic-hicache-mtp"].recipe["runner"]] / 1024) // 8
    assert sglang[1]["engine-args"] == {"enable-hierarchical-cache": True, "hicache-size": per_rank}
    # what cannot be mapped is reported with file:line and the reason, never guessed
    text = report.render()
    assert "dsv4-fp4-b200-sglang-agentic-hicache-mtp search-space[2]: a router" in text

    write_recipes(converted, target / "matrix" / "recipes")
    full = load_catalog(target)  # schemas + cross-file checks on the written recipes
    jobs = [j for j in plan.expand(full) if any(p.scenario == "agentic-coding" for p in j.points)]
    per_recipe: dict[str, list[plan.Job]] = {}
    for j in jobs:
        per_recipe.setdefault(j.recipe, []).append(j)
    entry = full.scenarios["agentic-coding"]
    assert entry.workload is not None and entry.workload.trace == "synthetic"
    dsv = per_recipe["matrix/recipes/dsv4-fp4-b200-vllm-agentic-mtp.yaml"]
    # one search-space entry = one launch = one job holding every concurrency of it (its second
    # entry has a router in front: reported above, not imported)
    assert [[p.concurrency for p in j.points] for j in dsv] == [[1, 4, 8, 14]]
    assert len({j.id for j in jobs}) == len(jobs)


@pytest.mark.parametrize(("block", "ss", "framework", "dram", "reason"), [
    ({"dram-utilization": 1.5}, {"kv-offloading": "dram", "kv-offload-backend": {"name": "hicache"}}, "sglang",
     1024, "dram-utilization 1.5 is not a fraction"),
    ({"dram-utilization": 0.5}, {"kv-offloading": "dram", "kv-offload-backend": {"name": "hicache"}}, "sglang",
     None, "no cpu-dram-mib"),
    ({"dram-utilization": 0.5}, {"kv-offloading": "disk"}, "vllm", 1024, "kv-offloading='disk'"),
    ({"dram-utilization": 0.5}, {"kv-offloading": "dram", "kv-offload-backend": {"name": "lmcache"}}, "vllm",
     1024, "kv-offload-backend 'lmcache' on 'vllm'"),
    ({}, {"kv-offloading": "none", "kv-offload-backend": {"name": "hicache"}}, "sglang", 1024,
     "kv-offload-backend given with kv-offloading: none"),
])
def test_offload_that_cannot_be_mapped_is_reported(block: dict, ss: dict, framework: str, dram: int | None,
                                                   reason: str) -> None:
    with pytest.raises(Unmappable, match=reason):
        offload_args("agentic-coding", block, {"tp": 8, **ss}, framework=framework, gpus=8, cpu_dram_mib=dram)


def test_other_scenario_kinds_pass_through() -> None:
    ss = {"tp": 4, "kv-offloading": "dram"}
    assert offload_args("fixed-seq-len", {}, ss, framework="vllm", gpus=4, cpu_dram_mib=None) == (ss, {})
