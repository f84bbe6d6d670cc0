"""Every failure classified, against injected-fault servers (real processes): streams cut short
(no length or chunking, no `[DONE]`, short of an exact length), a server that never answers,
a point where every request fails (exit code 16), retries in the point metrics, and a
timed-out request that must not stretch the measured window."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ixci.loadgen import PointConfig, get_dialect, run_point
from ixci.loadgen.metrics import ErrorKind, RequestRecord, point_metrics

pytestmark = pytest.mark.timeout(120)

FAST = ["--ttft-ms", "5", "--itl-ms", "1"]
MS = 1_000_000


def cfg(url: str, **kw: object) -> PointConfig:
    base: dict[str, object] = dict(
        url=url,
        model="m",
        isl=8,
        osl=16,
        concurrency=2,
        num_requests=8,
        warmup_requests=0,
        workers=1,
        request_timeout_s=30.0,
    )
    base.update(kw)
    return PointConfig(**base)  # type: ignore[arg-type]


def ixci(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ixci")
    assert exe is not None
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("mode", ["until-close-short", "short-no-done"])
def test_a_stream_cut_short_without_its_end_marker_is_truncated(
    hostile: Callable, mode: str
) -> None:
    """5 of 16 tokens, then the connection closes (no length, no chunking) or the chunked body
    ends cleanly — without `data: [DONE]`, which the dialect promises. Was: counted as success."""
    r = run_point(cfg(hostile(mode, "--every", "2")), dialect=get_dialect("openai"))
    m = r.metrics.to_json()
    assert m["errors"] == {"truncated": 4} and m["completed"] == 4, m["errors"]
    assert m["total_output_tokens"] == 4 * 16  # the short answers are not counted as output


def test_short_of_an_exact_length_is_truncated(hostile: Callable, tmp_path: Path) -> None:
    """[DONE] and usage say 5 tokens; a dialect that asks for exactly 16 (ignore_eos) fails the
    request, one that lets the model stop early (openai) accepts it."""
    url = hostile("short-with-done", "--every", "2")
    exact = run_point(cfg(url), dialect=get_dialect("vllm"), requests_path=tmp_path / "r.jsonl.gz")
    assert exact.metrics["errors"] == {"truncated": 4}
    with gzip.open(tmp_path / "r.jsonl.gz", "rt") as fh:
        errors = {json.loads(x)["error"] for x in fh} - {None}
    assert errors == {"5 of the 16 tokens asked for exactly (ignore_eos)"}
    free = run_point(cfg(url), dialect=get_dialect("openai"))
    assert free.metrics["completed"] == 8 and free.metrics["failed"] == 0


def test_default_timeout_comes_from_the_scenario() -> None:
    c = cfg("http://127.0.0.1:1", request_timeout_s=None)
    assert c.timeout_s == pytest.approx(60 + 0.001 * 8 + 0.25 * 16)  # was a fixed 600 s
    assert cfg(
        "http://127.0.0.1:1", request_timeout_s=None, isl=8192, osl=1024, range_ratio=0.5
    ).timeout_s == pytest.approx(60 + 0.001 * 8192 * 1.5 + 0.25 * 1024 * 1.5)
    assert cfg("http://127.0.0.1:1", request_timeout_s=7.0).timeout_s == 7.0


def test_a_server_that_never_answers_ends_at_max_duration_with_exit_16(
    hostile: Callable, tmp_path: Path
) -> None:
    url = hostile("silent")
    out = tmp_path / "result.json"
    t0 = time.monotonic()
    proc = ixci(
        "loadgen",
        "--url",
        url,
        "--model",
        "m",
        "--isl",
        "8",
        "--osl",
        "16",
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--warmup-requests",
        "0",
        "--max-duration",
        "2",
        "--output",
        str(out),
    )
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 16, proc.stderr  # was 0
    assert "the point failed" in proc.stderr and "Traceback" not in proc.stderr
    doc = json.loads(out.read_text())  # written before the failure exit
    assert doc["metrics"]["completed"] == 0 and doc["metrics"]["errors"] == {"cut": 2}
    assert doc["config"]["request_timeout_effective_s"] == pytest.approx(
        64.008
    )  # bounded by the cut


def test_every_request_failing_exits_16_and_a_healthy_point_exits_0(
    stub: Callable, tmp_path: Path
) -> None:
    bad = stub(*FAST, "--fault", "http500", "--fault-every", "1")
    out = tmp_path / "bad.json"
    proc = ixci(
        "loadgen",
        "--url",
        bad.url,
        "--model",
        "stub",
        "--isl",
        "8",
        "--osl",
        "4",
        "--num-requests",
        "6",
        "--dialect",
        "vllm",
        "--output",
        str(out),
    )
    assert proc.returncode == 16, proc.stderr  # was 0 with 100 % failed
    assert json.loads(out.read_text())["metrics"]["errors"] == {"http_status": 6}
    good = stub(*FAST)
    ok = ixci(
        "loadgen",
        "--url",
        good.url,
        "--model",
        "stub",
        "--isl",
        "8",
        "--osl",
        "4",
        "--num-requests",
        "6",
        "--dialect",
        "vllm",
        "--output",
        str(tmp_path / "good.json"),
    )
    assert ok.returncode == 0, ok.stderr


def test_retries_are_in_the_point_metrics_and_ttft_counts_from_the_first_attempt(
    stub: Callable, tmp_path: Path
) -> None:
    s = stub(*FAST, "--fault", "drop", "--fault-every", "3")
    path = tmp_path / "r.jsonl.gz"
    r = run_point(
        cfg(s.url, isl=16, osl=8, concurrency=1, num_requests=20),
        dialect=get_dialect("vllm"),
        requests_path=path,
    )
    with gzip.open(path, "rt") as fh:
        recs = [json.loads(x) for x in fh]
    retried = [x for x in recs if x["retried"]]
    assert retried and r.metrics["retries"] == len(retried)  # was: only in the per-request file
    assert r.metrics["retry_rate"] == pytest.approx(len(retried) / 20)
    for x in retried:  # the first attempt's send; the retry's own send kept beside it
        assert x["t_retry_ns"] > x["t_send_ns"]
        assert x["ttft_s"] >= (x["t_retry_ns"] - x["t_send_ns"]) * 1e-9


def rec(i: int, send_ms: float, end_ms: float, *, kind: ErrorKind | None = None) -> RequestRecord:
    ok = kind is None
    return RequestRecord(
        index=i,
        worker=0,
        warmup=False,
        t_send_ns=int(send_ms * MS),
        t_end_ns=int(end_ms * MS),
        ok=ok,
        chunk_times_ns=(int((send_ms + 5) * MS), int(end_ms * MS)) if ok else (),
        output_tokens=2 if ok else 0,
        error_kind=kind,
    )


def test_a_timed_out_request_does_not_stretch_the_window() -> None:
    records = [
        rec(0, 0, 50),
        rec(1, 10, 80),
        rec(2, 20, 30_020, kind=ErrorKind.TIMEOUT),
        rec(3, 30, 40, kind=ErrorKind.HTTP_STATUS),
    ]
    m = point_metrics(records, concurrency=2).to_json()
    assert m["duration_s"] == pytest.approx(0.080)  # was 30.02 s: the timeout's end
    assert m["output_throughput"] == pytest.approx(4 / 0.080)
    cut = point_metrics([rec(0, 0, 9_000, kind=ErrorKind.CUT)], concurrency=1).to_json()
    assert cut["duration_s"] == 0.0 and cut["output_throughput"] == 0.0
