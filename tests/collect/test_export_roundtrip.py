"""Round trip: a run of an imported recipe exports rows the incumbent's ingest accepts.

The contract below is recorded (field names, types, units; no code of the incumbent's) from:

- the producer, InferenceX `utils/process_result.py` at commit 843c6254: its base dict, its
  single-node dict (`is_multinode: false`, `tp`, `pp`, `dcp_size`, `pcp_size`, `ep`,
  `dp_attention` as the string "true"/"false"), its multi-node dict (`is_multinode: true`,
  `prefill_*`/`decode_*` per role, `num_prefill_gpu`/`num_decode_gpu`; a multi-node aggregated
  launch is one prefill pool with `decode_tp`/`decode_ep`/`decode_num_workers`/`num_decode_gpu`
  0), and the latency keys it derives from the benchmark's `*_ms` fields (÷ 1000: seconds) and
  `*tpot*` (→ `*_intvty` = 1 / that TPOT statistic, 1/s); `utils/aggregate_power.py` at the
  same commit: `power_metric_schema_version` 2 and `power_valid` 0/1 on every row.
- the ingest, InferenceX-app `packages/db/src/etl/benchmark-mapper.ts` at 00f37ac0 with
  `topology.ts` at 01668b87, `normalizers.ts` at 14da4753 and
  `packages/constants/src/metric-keys.ts` at 05049dfe: rows need a resolvable
  `infmax_model_prefix`, `hw` whose first `-` segment is a GPU key, positive integer `isl`,
  `osl`, `conc` (isl/osl are dropped only for `scenario_type: agentic…` rows); `is_multinode`
  and `disagg` are booleans (or "true"/"false"); a row with `prefill_tp` is read per role (v2),
  else from `tp`/`ep`/`dp_attention`; `num_decode_gpu` 0 marks an absent decode role; every
  other numeric field is stored as a metric, those outside `METRIC_KEYS` with a warning.
  Latencies are seconds, throughput tokens/s per GPU, interactivity 1/s.

The ingest itself (TypeScript + Postgres) was run on these rows outside this repository: see
docs/importing.md, "Round trip".
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from ixci.cli import cli
from ixci.results.aggregate import tidy_table, to_columnar
from tests.collect.factory import make_job, make_result

REPO = Path(__file__).resolve().parents[2]
JOBS = json.loads((REPO / "tests" / "data" / "export" / "imported-jobs.json").read_text())["jobs"]

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
ROLE = ("tp", "pp", "dcp_size", "pcp_size", "ep", "dp_attention", "num_workers")
MULTI_NODE = {
    "is_multinode",
    *(f"{role}_{k}" for role in ("prefill", "decode") for k in ROLE),
    "num_prefill_gpu",
    "num_decode_gpu",
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
POWER = {"power_metric_schema_version", "power_valid"}
# benchmark-mapper.ts NON_METRIC_KEYS that ixci writes (config and routing, not metrics)
NON_METRIC = BASE | {"is_multinode", "tp", "ep", "dp_attention", "num_prefill_gpu"}
NON_METRIC |= {"num_decode_gpu"} | {f"{r}_{k}" for r in ("prefill", "decode") for k in ROLE[4:]}
NON_METRIC |= {"prefill_tp", "decode_tp"}
# metric-keys.ts METRIC_KEYS that ixci writes; `pp` is the producer's own single-node field,
# which the ingest stores with a warning just the same
STATS = ("mean", "median", "std", "p90", "p99", "p99.9")
METRIC = {f"{s}_{m}" for s in STATS for m in ("ttft", "tpot", "itl", "e2el", "intvty")}
METRIC |= {"tput_per_gpu", "output_tput_per_gpu", "input_tput_per_gpu", "dcp_size", "pcp_size"}
METRIC |= {f"{r}_{k}" for r in ("prefill", "decode") for k in ("pp", "dcp_size", "pcp_size")}
METRIC |= POWER | {"avg_power_w", "total_gpu_energy_j"}
METRIC |= {"joules_per_output_token", "joules_per_total_token", "pp"}
INTEGERS = {"conc", "isl", "osl", "tp", "pp", "dcp_size", "pcp_size", "ep", "num_prefill_gpu"}
INTEGERS |= {"num_decode_gpu", "power_valid", "power_metric_schema_version"}
INTEGERS |= {f"{r}_{k}" for r in ("prefill", "decode") for k in ROLE if k != "dp_attention"}


def check_row(row: dict[str, Any]) -> None:
    """The recorded contract: names per shape, types, and numeric fields the ingest knows."""
    shape = MULTI_NODE if row["is_multinode"] else SINGLE_NODE
    need = BASE | shape | LATENCY | POWER
    assert set(row) >= need, sorted(need - set(row))
    other = SINGLE_NODE - MULTI_NODE if row["is_multinode"] else MULTI_NODE - SINGLE_NODE
    assert not set(row) & other, sorted(set(row) & other)  # one shape, as the producer writes
    assert isinstance(row["is_multinode"], bool) and isinstance(row["disagg"], bool)
    assert row["hw"].split("-")[0] == row["hw"] and row["hw"].islower()
    for key, value in row.items():
        if key in INTEGERS:
            assert isinstance(value, int) and not isinstance(value, bool), (key, value)
        if key.endswith("dp_attention"):
            assert value in ("true", "false"), (key, value)
        if key not in NON_METRIC and isinstance(value, int | float):
            assert key in METRIC, f"{key}: a metric the incumbent's ingest does not know"
            assert math.isfinite(value) and value >= 0, (key, value)
    assert row["conc"] > 0 and row["isl"] > 0 and row["osl"] > 0
    assert row["power_metric_schema_version"] == 2 and row["power_valid"] in (0, 1)


def export(root: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    out = CliRunner().invoke(cli, ["export", str(root), "--catalog", str(REPO), *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout), out.stderr


def results_tree(tmp_path: Path, *docs: dict[str, Any]) -> Path:
    (tmp_path / "results").mkdir()
    for i, doc in enumerate(docs):
        (tmp_path / "results" / f"r{i}.json").write_bytes(orjson.dumps(doc))
    return tmp_path


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
    rows, _ = export(results_tree(tmp_path, doc))
    assert len(rows) == 2
    row = rows[0]
    check_row(row)
    assert row["is_multinode"] is False and row["disagg"] is False and row["pcp_size"] == 1
    # the incumbent's identifiers, not ixci's catalog keys
    assert row["infmax_model_prefix"] == "dsr1" and row["framework"] == "trt"
    assert row["hw"] == "b200" and row["conc"] == 4 and row["dp_attention"] in ("true", "false")
    # units: seconds and tokens/s per GPU, as the incumbent stores them
    metrics = doc["points"][0]["metrics"]
    assert abs(row["mean_ttft"] - metrics["ttft"]["mean"]) < 1e-9  # seconds, unscaled
    assert abs(row["median_ttft"] - metrics["ttft"]["median"]) < 1e-9
    assert abs(row["p99.9_itl"] - metrics["itl"]["p99_9"]) < 1e-9
    assert abs(row["mean_intvty"] - 1.0 / row["mean_tpot"]) < 1e-6
    assert abs(row["p90_intvty"] - 1.0 / metrics["tpot"]["p90"]) < 1e-6  # 1/p90 TPOT: slow tail
    assert "std_intvty" not in row  # 1/std TPOT is no interactivity
    assert row["tput_per_gpu"] > 0 and row["recipe_fingerprint"] == job["id"]
    assert row["power_valid"] == 1 and row["avg_power_w"] == pytest.approx(500.0)


# Expected role fields, read off each imported job's topology the way the producer's workflow
# sets its PREFILL_*/DECODE_* inputs (multi-node aggregated: all GPUs prefill, decode 0).
EXPECTED: dict[str, dict[str, Any]] = {
    "multi_node_aggregated": {
        "infmax_model_prefix": "dsv4",
        "framework": "dynamo-vllm",
        "disagg": False,
        "is_multinode": True,  # TP 8 on 4-GPU GB200 nodes: two nodes
        "prefill_tp": 8,
        "prefill_ep": 1,
        "prefill_pp": 1,
        "prefill_pcp_size": 1,
        "prefill_dp_attention": "false",
        "prefill_num_workers": 1,
        "decode_tp": 0,
        "decode_ep": 0,
        "decode_num_workers": 0,
        "num_prefill_gpu": 8,
        "num_decode_gpu": 0,
    },
    "disaggregated": {
        "infmax_model_prefix": "dsr1",
        "framework": "dynamo-trt",
        "disagg": True,
        "is_multinode": True,
        "prefill_tp": 4,
        "prefill_ep": 4,
        "prefill_dp_attention": "true",
        "prefill_num_workers": 1,
        "decode_tp": 8,
        "decode_ep": 8,
        "decode_dp_attention": "true",
        "decode_num_workers": 1,
        "num_prefill_gpu": 4,
        "num_decode_gpu": 8,
    },
    "disaggregated_pcp": {
        "infmax_model_prefix": "glm5.2",
        "disagg": True,
        "is_multinode": True,
        "prefill_tp": 1,
        "prefill_pcp_size": 8,  # the pool's --prefill-context-parallel-size
        "prefill_num_workers": 2,
        "decode_tp": 8,
        "decode_pcp_size": 1,
        "decode_dp_attention": "true",
        "decode_num_workers": 2,
        "num_prefill_gpu": 2,
        "num_decode_gpu": 16,
    },
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_multi_node_rows_are_the_incumbents_multi_node_rows(tmp_path: Path, case: str) -> None:
    job = copy.deepcopy(JOBS[case])
    doc = make_result(job)
    rows, notes = export(results_tree(tmp_path, doc))
    assert len(rows) == len(job["points"]) and notes == ""
    topo = job["topology"]
    for row, point in zip(rows, doc["points"], strict=True):
        check_row(row)
        assert {k: row[k] for k in EXPECTED[case]} == EXPECTED[case]
        m = point["metrics"]
        assert row["conc"] == point["concurrency"] and row["isl"] == 8192
        assert row["tput_per_gpu"] == pytest.approx(m["total_token_throughput"] / topo["gpus"])
        if topo["disaggregated"]:  # output per decode GPU, input per prefill GPU
            out_gpus, in_gpus = topo["decode"]["gpus"], topo["prefill"]["gpus"]
        else:  # no decode GPUs: output over all of them, input over the prefill (all) GPUs
            out_gpus = in_gpus = topo["gpus"]
        assert row["output_tput_per_gpu"] == pytest.approx(m["output_throughput"] / out_gpus)
        assert row["input_tput_per_gpu"] == pytest.approx(m["input_throughput"] / in_gpus)
        assert row["p99_ttft"] == pytest.approx(m["ttft"]["p99"])  # seconds


def test_multi_turn_points_are_left_out_with_a_reason(tmp_path: Path) -> None:
    job = copy.deepcopy(JOBS["agentic"])
    doc = make_result(job)
    for p in doc["points"]:  # the required keys of a sessions block (result.schema.json)
        p["sessions"] = {
            "sessions_metrics_version": 1,
            "ttft_by_turn": {},
            "ttft_by_context": {},
            "e2e_normalized_interactivity": {"p50": 40.0, "p90": 12.0},
        }
    other = make_result(make_job(model="deepseek-r1", sku="b200", tp=8, concurrencies=(4,)))
    rows, notes = export(results_tree(tmp_path, doc, other))
    assert [r["recipe_fingerprint"] for r in rows] == [other["job"]["id"]]
    assert f"{job['name']}: multi-turn (sessions) point left out" in notes
    assert "(2 points)" in notes


def test_power_of_part_of_a_multi_node_launch_is_withheld(tmp_path: Path) -> None:
    doc = make_result(copy.deepcopy(JOBS["multi_node_aggregated"]))
    for p in doc["points"]:  # energy of the head node's 4 of 8 GPUs only
        p["telemetry"]["gpus"] = 4
    rows, notes = export(results_tree(tmp_path, doc))
    assert all(r["power_valid"] == 0 and "joules_per_output_token" not in r for r in rows)
    assert "power withheld: telemetry of 4 of 8 GPUs" in notes


def test_points_json_takes_nodes_from_the_catalogs_runner(tmp_path: Path) -> None:
    """A points.json has no node count or pools: the runner's GPUs per node give the first,
    and a disaggregated row says what it lacks."""
    docs = [make_result(copy.deepcopy(JOBS[k])) for k in ("multi_node_aggregated", "disaggregated")]
    table = tmp_path / "points.json"
    table.write_text(json.dumps(to_columnar(tidy_table(docs))))
    rows, notes = export(table)
    agg = [r for r in rows if not r["disagg"]]
    [dis] = [r for r in rows if r["disagg"]]
    assert len(agg) == 2
    for row in agg:
        check_row(row)
    assert all(r["is_multinode"] and r["num_decode_gpu"] == 0 for r in agg)
    assert agg[0]["prefill_tp"] == 8 and agg[0]["num_prefill_gpu"] == 8
    assert dis["is_multinode"] and (dis["num_prefill_gpu"], dis["num_decode_gpu"]) == (4, 8)
    assert "prefill_tp" not in dis and "pools unknown" in notes
