"""The incumbent's `agentic-coding` entries import onto ixci's sessions workload, with their KV
offload turned into engine arguments capped by the runner's host DRAM (ixci/importer/agentic.py)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from ixci.catalog.catalog import load_catalog
from ixci.importer import Unmappable, import_inferencex, load_target, write_recipes
from ixci.importer.agentic import offload, offload_args
from ixci.plan import plan

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
    cap = math.floor(
        0.95 * dram[vllm["runner"]] / 1024
    )  # dram-utilization 0.95 of the runner's DRAM
    assert vllm["search-space"][0]["engine-args"] == {
        "kv-offloading-backend": "native",
        "kv-offloading-size": cap,
    }

    sglang = agentic["dsv4-fp4-b200-sglang-agentic-hicache-mtp"].recipe["search-space"]
    assert "engine-args" not in sglang[0]  # kv-offloading: none
    per_rank = (
        math.floor(
            0.80 * dram[agentic["dsv4-fp4-b200-sglang-agentic-hicache-mtp"].recipe["runner"]] / 1024
        )
        // 8
    )
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


@pytest.mark.parametrize(
    ("block", "ss", "framework", "dram", "reason"),
    [
        (
            {"dram-utilization": 1.5},
            {"kv-offloading": "dram", "kv-offload-backend": {"name": "hicache"}},
            "sglang",
            1024,
            "dram-utilization 1.5 is not a fraction",
        ),
        (
            {"dram-utilization": 0.5},
            {"kv-offloading": "dram", "kv-offload-backend": {"name": "hicache"}},
            "sglang",
            None,
            "no cpu-dram-mib",
        ),
        (
            {"dram-utilization": 0.5},
            {"kv-offloading": "disk"},
            "vllm",
            1024,
            "kv-offloading='disk'",
        ),
        (
            {"dram-utilization": 0.5},
            {"kv-offloading": "dram", "kv-offload-backend": {"name": "lmcache"}},
            "vllm",
            1024,
            "kv-offload-backend 'lmcache' on 'vllm'",
        ),
        (
            {},
            {"kv-offloading": "none", "kv-offload-backend": {"name": "hicache"}},
            "sglang",
            1024,
            "kv-offload-backend given with kv-offloading: none",
        ),
    ],
)
def test_offload_that_cannot_be_mapped_is_reported(
    block: dict, ss: dict, framework: str, dram: int | None, reason: str
) -> None:
    with pytest.raises(Unmappable, match=reason):
        offload_args(
            "agentic-coding", block, {"tp": 8, **ss}, framework=framework, gpus=8, cpu_dram_mib=dram
        )


def test_other_scenario_kinds_pass_through() -> None:
    ss = {"tp": 4, "kv-offloading": "dram"}
    assert offload_args("fixed-seq-len", {}, ss, framework="vllm", gpus=4, cpu_dram_mib=None) == (
        ss,
        {},
    )


def test_multi_node_aggregated_routers_and_offloads_map_onto_real_flags(target: Path) -> None:
    catalog = load_target(target)
    converted, report = import_inferencex(SOURCE, catalog)  # counts from the incumbent's files only
    by = {c.entry: c for c in converted}
    dram = {k: r.cpu_dram_mib for k, r in catalog.runners.items()}
    text = report.render()

    # disagg: false with the worker as a prefill pool (decode.num-worker 0) → one aggregated
    # server spanning nodes (GB200: 4 GPUs per node), checked against the staged recipe
    agg = by["dsv4-fp4-gb200-dynamo-vllm-agentic-mtp-agg"]
    first = agg.recipe["search-space"][0]
    assert (first["tp"], first["nodes"]) == (8, 2) and "disaggregated" not in first
    assert first["spec-decoding"] == {"method": "mtp", "num-tokens": 2}  # num_speculative_tokens: 2
    assert (
        first["env"]["CONFIG_FILE"]
        == "recipes/vllm/deepseek-v4/agentic/agg-gb200-tp8-mtp-agentic.yaml"
    )
    assert any(
        "aggregated worker of 8 GPUs: https://github.com/SemiAnalysisAI/InferenceX/blob/"
        "843c6254ff69/benchmarks/multi_node/srt-slurm-recipes/vllm/deepseek-v4/agentic/"
        "agg-gb200-tp8-mtp-agentic.yaml#L" in f
        for f in agg.facts
    )
    # the same server listed twice with concurrency [1] and [4]: one launch, both points
    twice = by["dsv4-fp4-gb300-dynamo-vllm-agentic-mtp-agg"].recipe["search-space"]
    assert [(e["tp"], e["concurrency"]) for e in twice] == [(8, [1, 4]), (4, [1, 2, 4, 6, 8])]
    pp = by["kimik3-fp4-b200-dynamo-vllm-agentic"].recipe["search-space"][0]
    assert (pp["tp"], pp["pp"], pp["nodes"]) == (8, 2, 2)
    # what has no counterpart is reported: DP copies of a TP worker in one server, a tp that
    # disagrees with the GPUs the incumbent's recipe launches
    assert "kimik3-fp4-h200-vllm-agentic" not in by
    assert (
        "kimik3-fp4-h200-vllm-agentic search-space[0]: aggregated entry with prefill.num-worker 2"
        in text
    )
    assert "agg-gb200-dep16-throughput-agentic.yaml runs 1 worker(s) of 16 GPUs" in text

    # a disaggregated Dynamo entry without a router: the Dynamo build its staged recipe installs
    b300 = by["dsv4-fp4-b300-dynamo-sglang"]
    assert {e["disaggregated"]["router"]["version"] for e in b300.recipe["search-space"]} == {
        "41882ae9b07232eed4850fb1daf8c958abb2556a"
    }
    assert any(
        f.startswith("router dynamo-router 41882ae9b072")
        and "disagg-b300-1p1d-tp4-tp4.yaml#L9" in f
        for f in b300.facts
    )

    # TensorRT-LLM native offload: kv_cache_config.host_cache_size in bytes per rank
    trt = by["minimaxm3-fp4-b200-trtllm-agentic-mtp"].recipe
    cap_gib = math.floor(0.8 * dram[trt["runner"]] / 1024)
    assert [(e["tp"], e["engine-args"]) for e in trt["search-space"]] == [
        (tp, {"kv_cache_config": {"host_cache_size": cap_gib * 1024**3 // tp}}) for tp in (4, 8)
    ]
    # the script runs an EAGLE-3 draft head (decoding_type: Eagle3, max_draft_len: 3), not MTP
    assert {tuple(e["spec-decoding"].items()) for e in trt["search-space"]} == {
        (("method", "eagle3"), ("num-tokens", 3), ("draft-model", "Inferact/MiniMax-M3-EAGLE3-GQA"))
    }
    assert "minimaxm3_fp4_b200_trt_mtp.sh line 129" in trt["source"]

    # disaggregated: the host tier goes to the prefill workers, sized per rank as the staged
    # Dynamo TensorRT-LLM recipe sizes it (180 GiB = dram-utilization 0.21429 × 840 GiB)
    agentx = by["dsv4-fp4-gb300-dynamo-trt-agentx"]
    pools = agentx.recipe["search-space"][0]["disaggregated"]
    assert pools["prefill"]["engine-args"] == {"kv_cache_config": {"host_cache_size": 193273528320}}
    assert (
        "engine-args" not in pools["decode"]
        and "engine-args" not in agentx.recipe["search-space"][0]
    )
    assert any(
        f.startswith("host_cache_size 193273528320: https://") and "c4-b1-mtp.yaml#L74" in f
        for f in agentx.facts
    )

    # ATOM + LMCache: the connector and LMCache's environment, its cap per rank
    atom = by["glm5.2-fp4-mi355x-atom-agentic-mtp"].recipe["search-space"][0]
    assert atom["engine-args"] == {
        "kv-transfer-config": {"kv_connector": "lmcache_offload", "kv_role": "offload"}
    }
    cap = math.floor(0.14 * dram[by["glm5.2-fp4-mi355x-atom-agentic-mtp"].recipe["runner"]] / 1024)
    assert atom["env"] == {
        "LMCACHE_CHUNK_SIZE": 256,
        "LMCACHE_LOCAL_CPU": "True",
        "LMCACHE_MAX_LOCAL_CPU_SIZE": cap // 4,
        "PYTHONHASHSEED": "0",
    }

    # Mooncake needs processes no adapter starts; a launch wider than its runner pool is refused
    assert "kv-offload-backend 'mooncake' on 'dynamo-vllm' needs a mooncake_master process" in text
    assert (
        "qwen3.5-fp4-gb300-dynamo-trt search-space[6]: needs 19 nodes (ixci gives each worker "
        "nodes of its own) but runner gb300-nvl72 spans at most 18"
    ) in text

    write_recipes(converted, target / "matrix" / "recipes")
    full = load_catalog(target)  # the new mappings pass the catalog's schemas and checks
    written = (target / "matrix" / "recipes" / "dsv4-fp4-b300-dynamo-sglang.yaml").read_text()
    assert "# router dynamo-router 41882ae9b07232eed4850fb1daf8c958abb2556a: https://" in written
    jobs = [
        j
        for j in plan.expand(full)
        if j.recipe.endswith("/dsv4-fp4-gb200-dynamo-vllm-agentic-mtp-agg.yaml")
    ]
    assert [j.topology["nodes"] for j in jobs] == [2, 2]


@pytest.mark.parametrize(
    ("framework", "backend", "args", "env"),
    [
        ("trtllm", "native", {"kv_cache_config": {"host_cache_size": 100 * 1024**3 // 4}}, {}),
        ("dynamo-trt", "native", {"kv_cache_config": {"host_cache_size": 100 * 1024**3 // 4}}, {}),
        (
            "atom",
            "lmcache",
            {"kv-transfer-config": {"kv_connector": "lmcache_offload", "kv_role": "offload"}},
            {
                "LMCACHE_CHUNK_SIZE": 256,
                "LMCACHE_LOCAL_CPU": "True",
                "LMCACHE_MAX_LOCAL_CPU_SIZE": 25,
                "PYTHONHASHSEED": "0",
            },
        ),
    ],
)
def test_offload_backends_become_engine_flags_and_env(
    framework: str, backend: str, args: dict, env: dict
) -> None:
    ss = {"tp": 4, "kv-offloading": "dram", "kv-offload-backend": {"name": backend}}
    rest, got_args, got_env = offload(
        "agentic-coding",
        {"dram-utilization": 0.5},
        ss,
        framework=framework,
        gpus=4,
        cpu_dram_mib=200 * 1024,
    )
    assert (rest, got_args, got_env) == ({"tp": 4}, args, env)


def test_mooncake_is_reported_with_why() -> None:
    ss = {
        "tp": 8,
        "kv-offloading": "dram",
        "kv-offload-backend": {"name": "mooncake", "version": "0.3.11"},
    }
    with pytest.raises(Unmappable, match="mooncake_master"):
        offload(
            "agentic-coding",
            {"dram-utilization": 0.5},
            ss,
            framework="vllm",
            gpus=8,
            cpu_dram_mib=1024,
        )
