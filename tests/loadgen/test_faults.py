"""The client against a real stub-server process: fault injection, retry, classification,
dialect switches, open loop, several workers, the CLI."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ixci.cli import cli
from ixci.errors import UsageError
from ixci.loadgen import PointConfig, get_dialect, run_point
from ixci.loadgen.dialect import Endpoint

pytestmark = pytest.mark.timeout(120)

FAST = ["--ttft-ms", "5", "--itl-ms", "1"]


def cfg(url: str, **kw: object) -> PointConfig:
    base: dict[str, object] = dict(
        url=url,
        model="stub",
        isl=16,
        osl=8,
        concurrency=4,
        num_requests=20,
        warmup_requests=0,
        workers=1,
    )
    base.update(kw)
    return PointConfig(**base)  # type: ignore[arg-type]


def lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(x) for x in fh]


def test_drop_before_first_byte_is_retried_once_on_a_fresh_connection(
    stub: Callable, tmp_path: Path
) -> None:
    s = stub(*FAST, "--fault", "drop", "--fault-every", "3")
    # one slot: the server sees 1, 2, 3 (dropped), 3's retry, …: a retry is never a 3rd request
    r = run_point(
        cfg(s.url, concurrency=1),
        dialect=get_dialect("vllm"),
        requests_path=tmp_path / "r.jsonl.gz",
    )
    m = r.metrics.to_json()
    assert (m["completed"], m["failed"], m["errors"]) == (20, 0, {})
    recs = lines(tmp_path / "r.jsonl.gz")
    retried = sum(x["retried"] for x in recs)
    assert len(recs) == 20 and retried == (20 + retried) // 3  # every 3rd request the server saw
    assert all(x["output_tokens"] == 8 for x in recs)


def test_retry_happens_once_only(stub: Callable) -> None:
    s = stub(*FAST, "--fault", "drop", "--fault-every", "1")  # every attempt is dropped
    r = run_point(cfg(s.url, concurrency=1, num_requests=3), dialect=get_dialect("vllm"))
    assert r.metrics["errors"] == {"connect": 3}


def test_keepalive_drops_like_llamacpp_are_retried(stub: Callable) -> None:
    s = stub(*FAST, "--fault", "keepalive", "--fault-every", "2")
    r = run_point(cfg(s.url, concurrency=2, num_requests=16), dialect=get_dialect("vllm"))
    assert r.metrics["completed"] == 16 and r.metrics["failed"] == 0


@pytest.mark.parametrize(
    ("fault", "kind", "extra"),
    [
        ("cut", "truncated", []),
        ("http500", "http_status", []),
        ("error-event", "server_error", []),
        ("slow", "timeout", ["--slow-s", "5"]),
    ],
)
def test_failures_are_classified(stub: Callable, fault: str, kind: str, extra: list[str]) -> None:
    s = stub(*FAST, "--fault", fault, "--fault-every", "4", *extra)
    r = run_point(cfg(s.url, request_timeout_s=1.0), dialect=get_dialect("vllm"))
    m = r.metrics.to_json()
    assert m["errors"] == {kind: m["failed"]} and 4 <= m["failed"] <= 6
    assert m["completed"] + m["failed"] == 20
    assert not r.valid and any("error rate" in x for x in r.invalid_reasons)


def test_unreachable_server_is_a_connect_failure(free_port: int) -> None:
    r = run_point(
        cfg(f"http://127.0.0.1:{free_port}", num_requests=3, concurrency=1),
        dialect=get_dialect("openai"),
    )
    assert r.metrics["errors"] == {"connect": 3} and not r.valid


def test_transformers_dialect_no_done_no_usage_strict_fields(stub: Callable) -> None:
    s = stub(*FAST, "--no-done", "--no-usage", "--reject-unknown", "--sse-crlf")
    r = run_point(cfg(s.url, endpoint=Endpoint.CHAT), dialect=get_dialect("transformers"))
    m = r.metrics.to_json()
    assert m["completed"] == 20 and m["token_count_source"] == "chunks"
    assert m["total_output_tokens"] == 20 * 8
    # the same strict server answers 422 to a dialect that sends ignore_eos/min_tokens
    bad = run_point(cfg(s.url, num_requests=4), dialect=get_dialect("vllm"))
    assert bad.metrics["errors"] == {"http_status": 4}


def test_open_loop_and_several_workers(stub: Callable) -> None:
    s = stub(*FAST)
    r = run_point(
        cfg(s.url, concurrency=None, request_rate=200.0, num_requests=40),
        dialect=get_dialect("sglang"),
    )
    assert r.metrics["completed"] == 40 and r.metrics["steady_state"]["duration_s"] > 0
    r2 = run_point(
        cfg(s.url, concurrency=8, num_requests=40, workers=2, warmup_requests=4),
        dialect=get_dialect("vllm"),
    )
    assert r2.metrics["completed"] == 40 and r2.client.workers == 2
    assert r2.metrics["total_output_tokens"] == 40 * 8


def test_more_workers_than_slots_and_async_api(stub: Callable) -> None:
    import asyncio

    from ixci.loadgen import run_point_async

    s = stub(*FAST)
    r = run_point(
        cfg(s.url, concurrency=2, num_requests=10, workers=4), dialect=get_dialect("vllm")
    )
    assert r.metrics["completed"] == 10 and r.client.workers == 2
    r2 = asyncio.run(run_point_async(cfg(s.url, num_requests=6), dialect=get_dialect("vllm")))
    assert r2.metrics["completed"] == 6 and r2.client.workers == 1


def test_duration_bound_and_minimum_sample(stub: Callable) -> None:
    s = stub("--ttft-ms", "5", "--itl-ms", "2")
    r = run_point(
        cfg(s.url, num_requests=None, duration_s=0.5, min_requests=30, concurrency=2),
        dialect=get_dialect("vllm"),
    )
    assert r.metrics["completed"] >= 30 and r.metrics["duration_s"] >= 0.45


def test_server_tokenize_endpoint_and_prompt_check(stub: Callable) -> None:
    s = stub(*FAST)
    r = run_point(cfg(s.url, isl=24, shared_prefix_tokens=8), dialect=get_dialect("llamacpp"))
    d = r.dataset
    assert d.tokenizer_source == "server" and d.prompt_tokens_offset == 0
    assert d.prompt_tokens_checked == 20 and d.prompt_tokens_mismatched == 0


def test_cli_writes_result_and_requests(stub: Callable, tmp_path: Path) -> None:
    s = stub(*FAST)
    out, reqs = tmp_path / "result.json", tmp_path / "requests.jsonl.gz"
    res = CliRunner().invoke(
        cli,
        [
            "loadgen",
            "--url",
            s.url,
            "--model",
            "stub",
            "--isl",
            "16",
            "--osl",
            "8",
            "--concurrency",
            "4",
            "--num-requests",
            "12",
            "--dialect",
            "vllm",
            "--slo-ttft",
            "10",
            "--output",
            str(out),
            "--requests-out",
            str(reqs),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["metrics"]["completed"] == 12 and doc["metrics"]["goodput"] > 0
    assert set(doc["client"]) >= {"cpu_percent", "loop_lag_p99_s", "saturated", "workers"}
    assert doc["dataset"]["tokenizer_source"] == "approximation"
    assert len(lines(reqs)) == 12 + 4  # measured + one warm-up per slot
    bad = CliRunner().invoke(
        cli, ["loadgen", "--url", "ftp://x", "--model", "m", "--isl", "1", "--osl", "1"]
    )
    assert isinstance(bad.exception, UsageError) and bad.exception.hint == "use http://HOST:PORT"
