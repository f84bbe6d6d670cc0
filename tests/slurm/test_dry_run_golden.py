"""`ixci run-job --dry-run` on the Slurm runtime prints the full batch script and container
commands; golden files pin them for the seeded GB200 NVL72 Dynamo+TRT-LLM (with and without
MTP), Dynamo+vLLM (workers over two nodes) and MI355X SGLang+MoRI disaggregated recipes, and for
the local llama.cpp 1P+2D deployment.

Regenerate after an intended change: IXCI_UPDATE_GOLDEN=1 python -m pytest tests/slurm -k golden
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ixci.engines.modelgen import TinyModel
from ixci.runtimes.base import LaunchContext
from ixci.runtimes.slurm import SlurmOptions, render_batch_script
from tests.conftest import REPO
from tests.slurm.specs import disagg_spec

GOLDEN = REPO / "tests" / "data" / "slurm"
UPDATE = os.environ.get("IXCI_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing and has been written; review it")
    assert text == path.read_text(), f"{name} changed; IXCI_UPDATE_GOLDEN=1 to accept"


def _ixci(*args: str) -> str:
    proc = subprocess.run(["ixci", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def plan() -> dict[str, object]:
    return json.loads(_ixci("plan", "--event", "schedule", "--format", "json"))


# (recipe, MTP job?, golden): the first disaggregated job of the recipe (with or without
# speculative decoding); the vLLM one has workers spanning two GB200 nodes each.
DRY_RUNS = [
    ("dsr1-fp8-gb200-dynamo-trt", False, "dsr1-fp8-gb200-dynamo-trt"),
    ("dsr1-fp8-mi355x-sglang-disagg", False, "dsr1-fp8-mi355x-sglang-disagg"),
    ("dsr1-fp8-gb200-dynamo-trt", True, "dsr1-fp8-gb200-dynamo-trt-mtp"),
    ("dsv4-fp4-gb200-dynamo-vllm", False, "dsv4-fp4-gb200-dynamo-vllm"),
]


@pytest.mark.parametrize(("recipe", "mtp", "golden"), DRY_RUNS)
def test_dry_run_golden(plan: dict[str, object], recipe: str, mtp: bool, golden: str) -> None:
    jobs = [j for j in plan["jobs"]  # type: ignore[attr-defined]
            if j["recipe"].endswith(f"/{recipe}.yaml") and j["topology"]["disaggregated"]
            and bool(j["spec_decoding"]) == mtp]  # fmt: skip
    assert jobs, f"no disaggregated job for {recipe} in the plan"
    out = _ixci("run-job", jobs[0]["id"], "--dry-run", "--run-id", "golden",
                "--model-cache", "/models")  # fmt: skip
    assert "#SBATCH --nodes=" in out and "srun " in out and "--container-image=" in out
    _check(f"{golden}.dry-run.txt", out)


def test_local_disaggregated_script_golden(tiny_gguf: TinyModel) -> None:
    spec = disagg_spec("/usr/local/bin/llama-server", tiny_gguf, 30000)
    ctx = LaunchContext(job_id="j-golden", run_id="golden", workdir=Path("/work"))
    script = render_batch_script(spec, ctx, logs=Path("/logs"), pyxis=False, opts=SlurmOptions())
    script = script.replace(str(tiny_gguf.gguf), "/models/model.gguf")
    # the router starts only after the three workers' health checks
    assert script.index("wait_healthy decode-1") < script.index("--job-name router")
    _check("local-1p2d.sbatch", script)
