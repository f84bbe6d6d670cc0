"""The tidy table's server-metrics columns (docs/servermetrics.md): one row per point, taken from
the point's `server_metrics` record as `ixci.run.servermetrics.summary` writes it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ixci.engines import vllm
from ixci.results.aggregate import tidy_table
from ixci.run.servermetrics import SERVER_COLUMNS, _Samples, server_columns, summary, unsupported

ARTIFACT = (
    Path(__file__).resolve().parents[1] / "data" / "artifacts" / "j-19419ed0cfaa" / "result.json"
)


def _record() -> dict[str, Any]:
    data = _Samples(
        raw={n: c[0] for n, c in (*vllm.METRICS.gauges.items(), *vllm.METRICS.counters.items())}
    )
    for k, (queue, running, kv) in enumerate([(0, 0, 0.1), (6, 10, 0.5), (2, 12, 0.9)]):
        data.values.append({"queue_depth": queue, "running": running, "kv_cache_usage": kv,
                            "prefix_cache_hits": 100.0 * k, "prefix_cache_queries": 400.0 * k,
                            "preemptions": 3.0 * k})  # fmt: skip
    return summary(vllm.METRICS, data, interval_s=1.0)


def test_server_columns_of_a_record() -> None:
    row = server_columns(_record())
    assert list(row) == list(SERVER_COLUMNS)
    assert (
        row["server_queue_depth_mean"] == pytest.approx(8 / 3)
        and row["server_queue_depth_max"] == 6
    )
    assert row["server_running_max"] == 12 and row["server_kv_cache_usage_max"] == 0.9
    assert (
        row["server_prefix_cache_hit_rate"] == 0.25
        and row["server_prefix_cache_hit_basis"] == "queries"
    )
    assert row["server_preemptions"] == 6 and row["server_metrics_samples"] == 3
    assert row["server_metrics_failed"] == 0


def test_server_columns_of_an_engine_without_metrics_and_of_garbage() -> None:
    row = server_columns(unsupported("engine transformers publishes no Prometheus metrics"))
    assert row["server_metrics_samples"] == 0 and row["server_queue_depth_mean"] is None
    assert server_columns(None) == {} and server_columns("x") == {}
    odd = server_columns({"series": {"queue_depth": {"mean": True}}, "samples": "3",
                          "prefix_cache_hit_rate": {"value": "0.5", "basis": 7}})  # fmt: skip
    assert odd["server_queue_depth_mean"] is None and odd["server_metrics_samples"] is None
    assert (
        odd["server_prefix_cache_hit_rate"] is None and odd["server_prefix_cache_hit_basis"] is None
    )


def test_tidy_table_gets_server_columns_only_when_a_point_has_a_record() -> None:
    doc = json.loads(ARTIFACT.read_text())
    assert not set(SERVER_COLUMNS) & set(tidy_table([doc]).columns)  # older artifacts: same shape
    scraped = copy.deepcopy(doc)
    scraped["points"][0]["server_metrics"] = _record()
    table = tidy_table([scraped])
    assert list(table.columns[-len(SERVER_COLUMNS) :]) == list(SERVER_COLUMNS)
    row = table[table["point_id"] == scraped["points"][0]["id"]].iloc[0]
    assert row["server_preemptions"] == 6 and row["server_prefix_cache_hit_basis"] == "queries"
    other = table[table["point_id"] != scraped["points"][0]["id"]]
    assert other["server_metrics_samples"].isna().all()
