"""Round trip: a run of an imported recipe exports rows in the incumbent's result-row shape.

The required keys are those InferenceX's `utils/process_result.py` (commit 843c6254) writes
for a single-node result: its base dict, its single-node dict, and the latency keys it derives
from the benchmark's `*_ms` fields (divided by 1000: seconds) and `*tpot*` (→ `*intvty*`, 1/s).
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from ixci.cli import cli
from tests.collect.factory import make_job, make_result

REPO = Path(__file__).resolve().parents[2]
BASE = {
    "hw",
    "conc",
    "image",
    "model",
    "infmax_model_prefix",
    "framework",
    "precision",
    "spec_decoding",
    "disagg",
    "recipe_fingerprint",
    "isl",
    "osl",
}
SINGLE_NODE = {
    "is_multinode",
    "tp",
    "pp",
    "dcp_size",
    "pcp_size",
    "ep",
    "dp_attention",
    "tput_per_gpu",
    "output_tput_per_gpu",
    "input_tput_per_gpu",
}
LATENCY = {
    "mean_ttft",
    "p99_ttft",
    "mean_tpot",
    "median_tpot",
    "p99_itl",
    "mean_e2el",
    "median_e2el",
    "mean_intvty",
    "median_intvty",
}


def test_export_of_an_imported_recipe_run_has_the_incumbents_names_and_units(
    tmp_path: Path,
) -> None:
    # the job of the imported `dsr1-fp8-b200-trt` (framework trt → ixci engine trtllm)
    job = make_job(
        name="dsr1-fp8-b200-trt",
        model="deepseek-r1",
        sku="b200",
        framework="trtllm",
        tp=8,
        concurrencies=(4, 8),
        image="nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6",
    )
    doc = make_result(job)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_bytes(orjson.dumps(doc))
    out = CliRunner().invoke(cli, ["export", str(tmp_path), "--catalog", str(REPO)])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) == 2
    row = rows[0]
    assert set(row) >= BASE | SINGLE_NODE | LATENCY
    # the incumbent's identifiers, not ixci's catalog keys
    assert row["infmax_model_prefix"] == "dsr1" and row["framework"] == "trt"
    assert row["hw"] == "b200" and row["conc"] == 4 and row["dp_attention"] in ("true", "false")
    # units: seconds and tokens/s per GPU, as the incumbent stores them
    metrics = doc["points"][0]["metrics"]
    assert abs(row["mean_ttft"] - metrics["ttft"]["mean"]) < 1e-9  # seconds, unscaled
    assert abs(row["mean_intvty"] - 1.0 / row["mean_tpot"]) < 1e-6
    assert row["tput_per_gpu"] > 0 and row["recipe_fingerprint"] == job["id"]
