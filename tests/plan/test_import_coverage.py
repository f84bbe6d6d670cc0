"""`ixci import inferencex` against this repository's own catalog: coverage, validity, one job
per distinct launch, speculative tokens from the incumbent's launch scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ixci.catalog.catalog import load_catalog
from ixci.engines import adapter_for
from ixci.engines.resolve import Checkpoint, engine_job
from ixci.importer import import_inferencex, load_target
from ixci.importer.coverage import AGENTIC_PENDING, coverage
from ixci.importer.spec import spec_table
from ixci.plan import plan
from ixci.runtimes.base import LaunchContext
from ixci.runtimes.slurm import SlurmOptions, render_batch_script

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "plan"
SOURCE = [DATA / "inferencex" / "nvidia-master.yaml", DATA / "inferencex" / "amd-master.yaml"]
DOC = REPO / "docs" / "inferencex-coverage.md"


def _raw() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in SOURCE:
        out.update(yaml.safe_load(path.read_text()))
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ixcov")
    for part in ("matrix", "benchmarks"):
        shutil.copytree(REPO / part, root / part)
    shutil.rmtree(root / "matrix" / "recipes")
    (root / "matrix" / "canary.yaml").write_text("canary: [dsr1-fp8-mi300x-sglang]\n")
    proc = subprocess.run(
        [
            "ixci",
            "import",
            "inferencex",
            *map(str, SOURCE),
            "--catalog",
            str(root),
            "--out",
            str(root / "matrix" / "recipes"),
            "--coverage",
            str(root / "coverage.md"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return root, proc.stdout


def test_coverage_counts_match_the_data_files(imported: tuple[Path, str]) -> None:
    root, out = imported
    raw = _raw()
    agentic = {k for k, v in raw.items() if set(v["scenarios"]) == {"agentic-coding"}}
    recipes = {p.stem for p in (root / "matrix" / "recipes").glob("*.yaml")}
    non_agentic = len(raw) - len(agentic)
    done = len(recipes - agentic)
    assert (
        f"coverage: {len(recipes)} of {len(raw)} entries converted; {done} of {non_agentic} "
        f"non-agentic" in out
    )
    assert done / non_agentic >= 0.9  # 128 of 133 at the incumbent's commit 843c6254
    table = (root / "coverage.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(raw)  # every entry has a row: a recipe or a reason
    assert all(re.search(r"\| `[^`]+\.yaml` \||\| — \| \S", r) for r in rows)
    pending = [r for r in rows if AGENTIC_PENDING in r]
    has_profile = (root / "benchmarks" / "scenarios" / "agentic-coding.yaml").is_file()
    # with the sessions profile the agentic entries convert or carry their own reason
    assert len(pending) == (0 if has_profile else len(agentic - recipes))
    if has_profile:
        assert agentic & recipes, "the agentic-coding entries map onto the sessions profile"
        assert len(recipes) / len(raw) >= 0.9  # the whole catalog: 189 of 208 at 843c6254


def test_docs_table_is_the_current_import(imported: tuple[Path, str]) -> None:
    root, _ = imported
    doc_rows = [r for r in DOC.read_text().splitlines() if r.startswith("| `")]
    new_rows = [r for r in (root / "coverage.md").read_text().splitlines() if r.startswith("| `")]
    assert doc_rows == new_rows, "regenerate docs/inferencex-coverage.md (docs/importing.md)"


def test_every_recipe_validates_and_plans_one_job_per_launch(imported: tuple[Path, str]) -> None:
    root, _ = imported
    catalog = load_catalog(root)  # full validation: schemas + cross-file checks
    # single-node, fixed-length launches (the agentic ones: tests/plan/test_importer_agentic.py)
    jobs = [
        j
        for j in plan.expand(catalog)
        if not j.topology.disaggregated
        and j.topology.nodes == 1
        and all(p.scenario != "agentic-coding" for p in j.points)
    ]
    skip = ("id", "name", "points", "estimate", "recipe", "recipes", "selected_because")
    launches = {
        plan.canonical_json({k: v for k, v in j.to_dict().items() if k not in skip}) for j in jobs
    }
    assert len(launches) == len(jobs)
    # the incumbent's distinct single-node launches of the converted entries: its server
    # settings without the concurrency, split where its script picks the MTP draft length by
    # concurrency (those are different servers there too)
    raw = _raw()
    converted = {p.stem for p in (root / "matrix" / "recipes").glob("*.yaml")}
    expected = set()
    for name in converted:
        entry = raw[name]
        if entry["multinode"]:
            continue
        for kind, blocks in entry["scenarios"].items():
            if kind == "agentic-coding":
                continue
            for block in blocks:
                for ss in block["search-space"]:
                    server = {k: v for k, v in ss.items() if not k.startswith("conc-")}
                    script = spec_table().script_for(entry, kind)
                    arms = {None}
                    if ss.get("spec-decoding", "none") != "none" and script is not None:
                        arms = {
                            script.tokens(
                                dp_attn=bool(ss.get("dp-attn")), isl=block.get("isl", 0), conc=c
                            )
                            for c in _concs(ss)
                        }
                    for arm in arms:
                        expected.add(
                            json.dumps(
                                [name, block.get("isl"), block.get("osl"), server, arm and arm[0]],
                                sort_keys=True,
                            )
                        )
    assert len(jobs) == len(expected)


def test_every_imported_job_launches_on_its_planned_nodes(imported: tuple[Path, str]) -> None:
    """Each planned job of the imported catalog gets a ServeSpec from its engine adapter (no
    refusal: Dynamo MTP, multi-node vLLM, ...) and a Slurm batch script allocating exactly
    the plan's nodes (an aggregated TP-8 launch on 4-GPU GB200 nodes spans two)."""
    root, _ = imported
    catalog = load_catalog(root)
    ckpt = Checkpoint(path="/models/m", tokenizer=None, size_gb=1.0)
    ctx = LaunchContext(job_id="j-0", run_id="golden", workdir=Path("/tmp"))
    dynamo_mtp = 0
    for job in plan.expand(catalog):
        data = job.to_dict()
        ejob = engine_job(data, checkpoint=ckpt, served_name="m", device="cuda",
                          files_dir="/tmp/ixci-files", image=data["image"])  # fmt: skip
        spec = adapter_for(catalog.engines[data["framework"]].adapter)(ejob)
        script = render_batch_script(spec, ctx, logs=Path("/tmp/logs"), pyxis=True,
                                     opts=SlurmOptions())  # fmt: skip
        assert f"#SBATCH --nodes={data['topology']['nodes']}\n" in script, data["name"]
        dynamo_mtp += data["framework"].startswith("dynamo") and bool(data["spec_decoding"])
    assert dynamo_mtp >= 200  # 223 Dynamo MTP/EAGLE launches at the incumbent's 843c6254


def _concs(ss: dict) -> list[int]:
    if ss.get("conc-list"):
        return list(ss["conc-list"])
    c, out = ss["conc-start"], [ss["conc-start"]]
    while c < ss["conc-end"]:
        c = min(c * 2, ss["conc-end"])
        out.append(c)
    return out


def test_spec_tokens_come_from_the_launch_script_with_provenance() -> None:
    converted, _ = import_inferencex(SOURCE, load_target(REPO))
    by = {c.entry: c.recipe for c in converted}
    # sglang script: --speculative-num-steps 2 (SPECULATIVE_NUM_STEPS=2, line 70)
    dsr1 = by["dsr1-fp4-b200-sglang-mtp"]
    assert {e["spec-decoding"]["num-tokens"] for e in dsr1["search-space"]} == {2}
    assert "dsr1_fp4_b200_mtp.sh line 70" in dsr1["source"]
    assert "843c6254ff69" in dsr1["source"]
    # TensorRT-LLM DeepSeek-V4: 2 draft tokens at isl >= 4096 and conc >= 128, else 3
    trt = by["dsv4-fp4-b200-trt-mtp"]
    arms = {
        (e["spec-decoding"]["num-tokens"], tuple(e["concurrency"]))
        for e in trt["search-space"]
        if isinstance(e["concurrency"], list)
    }
    assert any(n == 2 and min(c) >= 128 for n, c in arms)
    # --spec-tokens overrides the script's count
    over, _ = import_inferencex(SOURCE, load_target(REPO), spec_tokens=5)
    assert {
        e["spec-decoding"]["num-tokens"]
        for c in over
        if c.entry == "dsr1-fp4-b200-sglang-mtp"
        for e in c.recipe["search-space"]
    } == {5}


def test_multi_node_counts_come_from_the_staged_srt_slurm_recipe() -> None:
    converted, _ = import_inferencex(SOURCE, load_target(REPO))
    found = next(c for c in converted if c.entry == "dsv4-fp4-gb200-dynamo-sglang-mtp")
    tokens = {e["spec-decoding"]["num-tokens"] for e in found.recipe["search-space"]}
    assert tokens == {3}  # speculative-num-steps: 3 in each staged disagg-gb200-*-mtp.yaml
    assert len(found.provenance) == 8
    assert all(
        "srt-slurm-recipes/sglang/deepseek-v4/8k1k/disagg-gb200-" in u for u in found.provenance
    )
    assert "read from 8 files" in found.recipe["source"] and len(found.recipe["source"]) <= 400


def test_refused_frameworks_say_why() -> None:
    _, report = import_inferencex(SOURCE, load_target(REPO))
    rows = {r.entry: r for r in coverage(report).rows}
    assert "Kubernetes" in rows["dsv4-fp4-gb200-llmd-vllm"].reason
    assert "TileRT" in rows["glm5.1-fp8-b200-tilert"].reason
    assert "disaggregated ATOM" in rows["dsv4-fp4-mi355x-atom-disagg"].reason
    assert rows["dsr1-fp8-mi355x-atom"].recipe == "dsr1-fp8-mi355x-atom.yaml"
