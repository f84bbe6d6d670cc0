"""The incumbent's eval settings on import: its 8k1k launches (concurrency >= 16) get ixci's GSM8K
suite with the incumbent's minimum score for the model prefix; tasks ixci has no suite for are
reported; the imported recipes validate and their suite loads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ixci.catalog.catalog import load_catalog
from ixci.evals.tasks import load_suite
from ixci.importer import import_inferencex, load_target
from ixci.importer.evals import eval_settings, import_evals

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "plan"

ENTRY = """\
{name}:
  image: lmsysorg/sglang:v0.5.12-rocm700-mi30x
  model: deepseek-ai/DeepSeek-R1-0528
  model-prefix: dsr1
  runner: mi300x
  precision: fp8
  framework: sglang
  multinode: false
  scenarios:
    fixed-seq-len:
    - isl: {isl}
      osl: 1024
      search-space:
      - {{ tp: 8, {conc} }}
"""


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """The importer's test catalog plus ixci's real eval tasks."""
    root = tmp_path / "catalog"
    shutil.copytree(DATA / "inferencex-target", root)
    shutil.copytree(REPO / "benchmarks" / "evals", root / "benchmarks" / "evals")
    return root


def test_the_thresholds_table_is_the_incumbents() -> None:
    table = eval_settings()
    assert table.commit.startswith("843c6254")  # the commit of the imported configs
    assert table.threshold("dsr1", "gsm8k") == (0.91, "models.dsr1.gsm8k")
    assert table.threshold("qwen3.5", "gsm8k") == (0.94, "models.qwen3.5.gsm8k")
    assert table.threshold("no-such-prefix", "gsm8k") == (0.90, "default.gsm8k")
    assert table.threshold("dsr1", "no-such-task") is None
    assert (table.isl, table.osl, table.min_conc, table.selected) == (8192, 1024, 16, ("gsm8k",))


@pytest.mark.parametrize(
    ("entries", "scenario", "available", "want", "reason"),
    [
        ([{"scenarios": ["8k1k"], "concurrency": {"start": 4, "end": 64}}], "8k1k",
         frozenset({"gsm8k"}), {"tasks": ["gsm8k"], "gate": {"gsm8k": {"min-score": 0.91}}},
         "evaluates"),
        ([{"scenarios": ["8k1k"], "concurrency": [4, 8]}], "8k1k", frozenset({"gsm8k"}), None,
         "concurrency >= 16"),  # the incumbent skips launches below MIN_EVAL_CONC
        ([{"scenarios": ["1k1k"], "concurrency": [64]}], "8k1k", frozenset({"gsm8k"}), None,
         "no 8192/1024 launch"),
        ([{"scenarios": ["8k1k"], "concurrency": [64]}], None, frozenset({"gsm8k"}), None,
         "no 8192/1024 launch"),
        ([{"scenarios": ["8k1k"], "concurrency": [64]}], "8k1k", frozenset({"tool-call"}), None,
         "no ixci eval suite for gsm8k"),
    ],
)  # fmt: skip
def test_which_recipes_get_a_suite(entries: list[dict[str, object]], scenario: str | None,
                                   available: frozenset[str], want: object, reason: str) -> None:  # fmt: skip
    got = import_evals("dsr1", entries, scenario, available)
    assert got.evals == want
    assert reason in got.reason


def test_import_maps_the_incumbents_gate_onto_recipes_that_validate(
    target: Path, tmp_path: Path
) -> None:
    master = tmp_path / "master.yaml"
    master.write_text(ENTRY.format(name="dsr1-fp8-mi300x-sglang", isl=8192, conc="conc-start: 4, conc-end: 64")
                      + ENTRY.format(name="dsr1-fp8-mi300x-sglang-short", isl=1024, conc="conc-list: [4, 64]")
                      + ENTRY.format(name="dsr1-fp8-mi300x-sglang-low", isl=8192, conc="conc-list: [1, 8]"))  # fmt: skip
    out = target / "matrix" / "recipes"
    proc = subprocess.run(["ixci", "import", "inferencex", str(master), "--catalog", str(target),
                           "--out", str(out)], capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 recipes carry the incumbent's eval suite and quality gate (gsm8k" in proc.stdout
    assert (
        "gpqa_diamond_cot_n_shot, swebench_lite thresholds have no ixci eval suite" in proc.stdout
    )
    text = (out / "dsr1-fp8-mi300x-sglang.yaml").read_text()
    assert yaml.safe_load(text)["evals"] == {
        "tasks": ["gsm8k"],
        "gate": {"gsm8k": {"min-score": 0.91}},
    }
    assert "# evals: https://github.com/SemiAnalysisAI/InferenceX/blob/843c6254" in text
    assert "thresholds.yaml (models.dsr1.gsm8k)" in text
    for name in ("dsr1-fp8-mi300x-sglang-short", "dsr1-fp8-mi300x-sglang-low"):
        assert "evals" not in yaml.safe_load((out / f"{name}.yaml").read_text())
    catalog = load_catalog(target)  # the recipes validate against the schema, the suite loads
    plan = next(r for r in catalog.recipes if r.path.endswith("/dsr1-fp8-mi300x-sglang.yaml")).evals
    assert plan is not None and plan.gate[0].min_score == 0.91
    assert [t.name for t in load_suite(target, plan.tasks)] == ["gsm8k"]


def test_the_real_corpus_gets_gates_per_model_prefix(target: Path) -> None:
    source = DATA / "inferencex" / "amd-master.yaml"
    converted, _ = import_inferencex([source], load_target(target), spec_tokens=3)
    raw = yaml.safe_load(source.read_text())
    table = eval_settings()
    gated = [c for c in converted if "evals" in c.recipe]
    assert len({raw[c.entry]["model-prefix"] for c in gated}) >= 2
    for c in gated:
        want = table.threshold(raw[c.entry]["model-prefix"], "gsm8k")
        assert want is not None
        assert c.recipe["evals"]["gate"]["gsm8k"]["min-score"] == want[0], c.entry
