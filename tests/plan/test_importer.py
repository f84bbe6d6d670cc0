"""`ixci import inferencex` on the incumbent's real master configs (a copy under tests/data)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ixci.catalog.catalog import load_catalog
from ixci.importer import Unmappable, _settings, import_inferencex, load_target
from ixci.plan import plan

DATA = Path(__file__).resolve().parent.parent / "data" / "plan"
SOURCE = [DATA / "inferencex" / "nvidia-master.yaml", DATA / "inferencex" / "amd-master.yaml"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ix") / "catalog"
    shutil.copytree(DATA / "inferencex-target", root)
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
            "--spec-tokens",
            "3",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return root, proc.stdout


def test_every_entry_is_converted_or_reported(imported: tuple[Path, str]) -> None:
    root, report = imported
    entries = sum(len(yaml.safe_load(p.read_text())) for p in SOURCE)
    recipes = sorted((root / "matrix" / "recipes").glob("*.yaml"))
    not_imported = {
        line.split(": ")[1].split(" ")[0]
        for line in report.splitlines()
        if line.startswith("  ") and ".yaml:" in line and "search-space[" not in line
    }
    assert len(recipes) + len(not_imported) == entries
    assert f"imported {len(recipes)} of {entries} InferenceX entries" in report
    # the incumbent's own counts, computed from its files
    assert "incumbent (fixed-seq-len): 690 single-node jobs from 151 distinct launches" in report
    assert "incumbent (all scenarios): 1172 single-node jobs from 235 distinct launches" in report
    assert "runner label cluster:h200-dgxc (multi-node) → h200-slurm" in report


def test_imported_catalog_validates_and_plans_one_server_per_launch(
    imported: tuple[Path, str],
) -> None:
    root, _ = imported
    catalog = load_catalog(root)  # full validation: schemas + cross-file checks
    jobs = plan.expand(catalog)
    single = [j for j in jobs if not j.topology["disaggregated"] and j.topology["nodes"] == 1]
    points = sum(len(j.points) for j in single)
    assert len(single) < points  # one warm server serves several concurrencies
    skip = ("id", "name", "points", "estimate", "recipe", "recipes", "selected_because")
    launches = {
        plan.canonical_json({k: v for k, v in j.to_dict().items() if k not in skip}) for j in single
    }
    assert len(launches) == len(single)  # exactly one job per distinct launch
    # dsr1-fp8-mi300x-sglang: tp8, conc 4..64 → one job with 5 points (the incumbent: 5 jobs)
    mi300 = [j for j in jobs if j.recipe.endswith("/dsr1-fp8-mi300x-sglang.yaml")]
    assert len(mi300) == 1 and [p.concurrency for p in mi300[0].points] == [4, 8, 16, 32, 64]


def test_structured_settings_and_reasons() -> None:
    target = load_target(DATA / "inferencex-target")
    converted, report = import_inferencex(SOURCE, target)  # no spec_tokens: MTP gaps reported
    by = {c.entry: c.recipe for c in converted}
    entry = by["dsr1-fp4-b200-dynamo-trt"]["search-space"][0]
    assert entry["spec-decoding"] == {"method": "mtp", "num-tokens": 3}  # from ..._mtp3.yaml
    assert entry["env"] == {
        "CONFIG_FILE": "recipes/trtllm/b200-fp4/8k1k/mtp/ctx1_gen1_dep8_batch8_eplb0_mtp3.yaml"
    }
    assert entry["disaggregated"]["router"] == {"name": "dynamo-router", "version": "0.8.1.post1"}
    assert entry["disaggregated"]["prefill"] == {
        "workers": 1,
        "tp": 4,
        "ep": 4,
        "dp-attention": True,
    }
    reasons = {s.reason for s in report.skipped}
    assert any("without a token count" in r for r in reasons)
    assert any("framework 'atom' has no engine" in r for r in reasons)
    assert any("agentic-coding" in r for r in reasons)
    assert by["dsr1-fp4-mi355x-sglang"]["checkpoint"] == "amd/DeepSeek-R1-0528-MXFP4-Preview"
    assert by["dsr1-fp4-mi355x-sglang"]["search-space"][0]["concurrency"] == {"start": 4, "end": 64}
    with pytest.raises(Unmappable, match="unsafe"):
        _settings(["CONFIG_FILE=a.yaml;rm"], "prefill")


def test_duplicate_keys_are_a_pointed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")
    proc = subprocess.run(
        [
            "ixci",
            "import",
            "inferencex",
            str(bad),
            "--catalog",
            str(DATA / "inferencex-target"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert "bad.yaml:2" in proc.stderr and "Traceback" not in proc.stderr
