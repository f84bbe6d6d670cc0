"""The metric table (ixci/metric_table.py) is the one declaration of each metric column.

Every numeric column the tidy table can hold (single-turn, multi-turn and server-metrics
points, priced) has an entry; the site's units, the alerts' directions and the generated
docs/metrics-table.md come from it; the alerts schema enumerates exactly its alertable
metrics; its directions agree with the load generator's own metric specs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ixci import metric_table as mt
from ixci.errors import InvalidInput
from ixci.loadgen.metrics import METRICS as METRIC_SPECS
from ixci.results.aggregate import Economics, tidy_table
from ixci.results.regress import DIRECTIONS, AlertPolicy
from ixci.site.data import UNITS

REPO = Path(__file__).resolve().parents[2]
# columns that identify a deployment (tp…) or hold text (numeric only when all null): not metrics
NOT_METRICS = frozenset(
    {"tp", "ep", "pp", "dcp", "ttft_by_context", "server_prefix_cache_hit_basis"}
)


def _documents() -> list[dict]:
    """Real artifacts: a GPU single-turn run, and one of each kind the site tests draw."""
    docs = [json.loads((REPO / "tests/data/gpu" / f).read_text())
            for f in ("llamacpp-f16-h100-result.json", "transformers-h100-result.json")]  # fmt: skip
    multi = json.loads(json.dumps(docs[0]))
    point = multi["points"][0]
    point["sessions"] = {"ttft_cold": {"median": 0.1}, "ttft_warm": {"median": 0.05},
                         "prefix_cache_hit_rate": 0.8, "session_e2e": {"median": 3.0},
                         "e2e_normalized_interactivity": {"p50": 30.0, "p90": 20.0},
                         "interactivity_per_token": {"p10": 25.0}}  # fmt: skip
    multi["run"]["run_id"] = "sessions"
    return [*docs, multi]


def test_every_numeric_column_of_the_tidy_table_has_one_entry() -> None:
    econ = Economics(usd_per_gpu_hour={"h100": {"spot": 2.0}}, all_in_kw={"h100": 1.4})
    df = tidy_table(_documents(), econ)
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c]) and c not in NOT_METRICS]  # fmt: skip
    assert (
        "goodput" in numeric
        and "usd_per_mtok_spot" in numeric
        and "e2e_norm_interactivity_p90" in numeric
    )
    missing = [c for c in numeric if mt.metric(c) is None]
    assert not missing, f"declare these in ixci/metric_table.py: {missing}"
    names = [m.name for m in mt.METRICS]
    assert len(names) == len(set(names))


def test_the_site_units_and_the_alert_directions_come_from_the_table() -> None:
    assert {m.name: m.unit for m in mt.METRICS} == UNITS
    assert {m.name: m.better for m in mt.METRICS if m.alertable} == DIRECTIONS
    assert set(DIRECTIONS.values()) <= {mt.HIGHER, mt.LOWER}
    # the alerts schema names no metric: which ones may be watched is the table's to say
    schema = json.loads((REPO / "schemas/alerts.schema.json").read_text())
    metrics = schema["properties"]["regression"]["properties"]["metrics"]
    assert "enum" not in json.dumps(metrics["items"])
    assert set(metrics["default"]) <= set(DIRECTIONS)


def test_an_alert_on_a_metric_the_table_does_not_mark_alertable_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        AlertPolicy.from_json({"regression": {"metrics": ["tput_per_gpu", "goodput"]}}, file="a")
    assert "a:1:1: regression.metrics[1]: 'goodput' is not an alertable metric" in str(
        info.value.render()
    )
    assert AlertPolicy.from_json({"regression": {"metrics": ["ttft_p99_s"]}}).metrics == (
        "ttft_p99_s",
    )


def test_directions_agree_with_the_load_generators_metric_specs() -> None:
    pairs = {"ttft_mean_s": "ttft", "ttft_p99_s": "ttft", "tpot_mean_s": "tpot",
             "tpot_median_s": "tpot", "itl_p99_s": "itl", "e2el_mean_s": "e2el",
             "e2el_median_s": "e2el", "interactivity_median": "interactivity",
             "request_throughput": "request_throughput", "goodput": "goodput",
             "output_throughput": "output_throughput",
             "total_token_throughput": "total_token_throughput"}  # fmt: skip
    for column, spec in pairs.items():
        want = mt.HIGHER if METRIC_SPECS[spec].higher_is_better else mt.LOWER
        assert mt.BY_NAME[column].better == want, column


def test_the_metrics_doc_is_generated_from_the_table() -> None:
    doc = (REPO / "docs/metrics-table.md").read_text()
    assert doc == mt.markdown(), "run: python -m ixci.metric_table > docs/metrics-table.md"
    assert "| `goodput` | requests/s | higher |" in doc
    assert "| `usd_per_mtok_<tier>` | $/M tokens | lower |" in doc


def test_interval_ends_and_price_tiers_take_their_columns_entry() -> None:
    assert mt.metric("ttft_p99_s_lo") is mt.BY_NAME["ttft_p99_s"]
    assert mt.metric("usd_per_output_mtok_spot") is mt.PRICED[1]
    assert mt.metric("tp") is None and mt.metric("ttft_p99_s_mid") is None


def test_a_sourced_metric_reaches_the_table_and_the_site_from_its_entry_alone() -> None:
    """retry_rate was added as one entry (source metrics.retry_rate, view extra): the tidy
    table carries each point's value, after the established columns, and the site loads it."""
    from ixci.results.aggregate import BASE_COLUMNS
    from ixci.site.data import EXTRA_COLUMNS

    docs = _documents()[:2]
    df = tidy_table(docs)
    want = [p["metrics"]["retry_rate"] for d in docs for p in d["points"]]
    assert sorted(df["retry_rate"].tolist()) == sorted(want)
    assert "retry_rate" not in BASE_COLUMNS and "retry_rate" in EXTRA_COLUMNS
    assert list(df.columns).index("retry_rate") == len(BASE_COLUMNS)
