"""A job runs only on its SKU: preflight compares what the vendor tool reports with the catalog.

Regression: run on an H200 with an H100 job id, run-job wrote `sku: h100` beside
`gpu_names: ["NVIDIA H200"]` and the artifact was accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ixci.errors import PreflightFailed
from ixci.run.telemetry import Gpu, check_sku, sku_name_problem

REPO = Path(__file__).resolve().parents[2]


def _gpu(name: str, total_mib: float | None = None, index: int = 0) -> Gpu:
    return Gpu(index=index, name=name, driver="580", util_percent=0, memory_used_mib=0,
               memory_total_mib=total_mib)  # fmt: skip


def test_an_h200_is_not_an_h100() -> None:
    with pytest.raises(PreflightFailed) as err:
        check_sku([_gpu("NVIDIA H200", 143771)], [0], sku="h100",
                  names=["NVIDIA H100 80GB HBM3"], memory_gb=80)  # fmt: skip
    assert "'NVIDIA H200'" in err.value.message and "h100" in err.value.message
    assert "gpu-names" in (err.value.hint or "")


def test_listed_names_match_ignoring_case_and_spaces() -> None:
    check_sku([_gpu("nvidia  H100 80GB hbm3", 81559)], [0], sku="h100",
              names=["NVIDIA H100 80GB HBM3"], memory_gb=80)  # fmt: skip


@pytest.mark.parametrize(
    ("reported", "sku", "ok"),
    [
        ("NVIDIA B300 SXM6 AC", "b300", True),
        ("AMD Instinct MI355X", "mi355x", True),
        ("NVIDIA GB200", "gb200", True),
        ("NVIDIA B200", "gb200", False),  # a B200 is not a GB200 (word match, not substring)
        ("NVIDIA GB200", "b200", False),
        ("AMD Instinct MI300X", "mi325x", False),
    ],
)
def test_without_names_the_sku_key_must_be_a_word_of_the_name(
    reported: str, sku: str, ok: bool
) -> None:
    assert (sku_name_problem(reported, sku=sku, names=()) is None) is ok


def test_memory_tells_variants_with_the_same_name_word_apart() -> None:
    # an H100 NVL (94 GB) is not an H100 SXM (80 GB), although both names say "H100"
    with pytest.raises(PreflightFailed, match=r"93\.6 GiB"):
        check_sku([_gpu("NVIDIA H100 NVL", 95830)], [0], sku="h100", names=(), memory_gb=80)
    check_sku([_gpu("NVIDIA H200", 143771)], [0], sku="h200", names=(), memory_gb=141)


def test_only_the_job_gpus_are_checked() -> None:
    gpus = [_gpu("NVIDIA H200", index=0), _gpu("NVIDIA H100 80GB HBM3", index=1)]
    check_sku(gpus, [1], sku="h100", names=["NVIDIA H100 80GB HBM3"], memory_gb=80)


STAND_IN = """#!/bin/sh
# stand-in nvidia-smi: one idle H200
case "$*" in
  *query-compute-apps*) exit 0 ;;
  *query-gpu=index,name*) echo "0, NVIDIA H200, 580.159.04, 0, 0, GPU-0000, 143771" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""

RECIPE = """description: tiny llama.cpp job on an h100 host (SKU check test)
model: tiny-sku
sku: h100
framework: llamacpp
precision: fp32
runner: h100-process
image: localhost/ixci/llama-server:b11434
scenarios: [gpu-short]
search-space:
  - concurrency: [1]
"""

MODEL = """  tiny-sku:
    id: ixci/tiny-sku
    prefix: tinysku
    description: tiny random llama for the SKU check test
    total-params-b: 0.001
    active-params-b: 0.001
    layers: 2
    hidden-size: 64
    attention-heads: 4
    kv-heads: 2
    head-dim: 16
    vocab-size: 1024
    context-length: 4096
    checkpoints:
      fp32: local:tiny-sku.gguf
    source: ixci (generated)
"""


def _ixci(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from ixci.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)  # fmt: skip


def test_run_job_on_the_wrong_sku_fails_preflight_and_writes_no_mislabelled_points(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "docs" / "examples" / "catalog", catalog)
    (catalog / "matrix" / "recipes" / "tinysku-fp32-h100-llamacpp.yaml").write_text(RECIPE)
    with (catalog / "matrix" / "models.yaml").open("a") as fh:
        fh.write(MODEL)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(STAND_IN)
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GITHUB_ACTIONS", None)
    plan = _ixci("plan", "--catalog", str(catalog), "--event", "workflow_dispatch", "--only",
                 "model=tiny-sku", "--format", "json", env=env, cwd=tmp_path)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    (job,) = json.loads(plan.stdout)["jobs"]
    out = tmp_path / "out"
    proc = _ixci("run-job", job["id"], "--catalog", str(catalog), "--output", str(out),
                 "--model-cache", str(tmp_path / "models"), "--run-id", "sku-test",
                 env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 11, proc.stdout + proc.stderr  # PreflightFailed
    assert "are not SKU h100" in proc.stderr and "'NVIDIA H200'" in proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads((out / job["id"] / "result.json").read_text())
    assert result["failure_class"] == "preflight"
    assert not any(p.get("status") == "ok" for p in result.get("points", []))


def _example_plan(tmp_path: Path) -> dict[str, object]:
    proc = _ixci("plan", "--catalog", str(REPO / "docs" / "examples" / "catalog"), "--event",
                 "workflow_dispatch", "--only", "framework=llamacpp,precision=fp16,sku=h200", "--format",
                 "json", env=dict(os.environ), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan: dict[str, object] = json.loads(proc.stdout)
    return plan


def test_collect_rejects_an_artifact_whose_gpus_are_not_its_sku(tmp_path: Path) -> None:
    """The real H200 artifact is accepted for its h200 job; the same artifact claiming an H100
    for that h200 job is rejected as `sku_mismatch` (and the other way round is what preflight
    stops)."""
    from ixci.job import Plan
    from ixci.results.collect import collect

    plan = _example_plan(tmp_path)
    assert plan["sku_gpu_names"] == {"h200": ["NVIDIA H200"]}
    real = json.loads((REPO / "tests" / "data" / "gpu" / "llamacpp-h200-result.json").read_text())
    good, forged = tmp_path / "good", tmp_path / "forged"
    for folder, names in ((good, ["NVIDIA H200"]), (forged, ["NVIDIA H100 80GB HBM3"])):
        folder.mkdir()
        doc = json.loads(json.dumps(real))
        doc["provenance"]["gpu_names"] = names
        (folder / "result.json").write_text(json.dumps(doc))
    ok = collect([good], plan=Plan.from_dict(plan))
    assert [a.job_id for a in ok.accepted] == [real["job"]["id"]]
    bad = collect([forged], plan=Plan.from_dict(plan))
    assert not bad.accepted
    (skip,) = bad.skipped
    assert skip.category == "sku_mismatch"
    assert "'NVIDIA H100 80GB HBM3'" in skip.reasons[0] and "h200" in skip.reasons[0]
