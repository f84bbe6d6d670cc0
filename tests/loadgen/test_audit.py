"""Auditable records: every chunk's arrival in requests.jsonl.gz (delta-encoded), the metrics
recomputed from the file match the stored ones (`ixci loadgen --recompute`), and the tokens of
each chunk behind ITL per token."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from ixci.cli import cli
from ixci.errors import UsageError
from ixci.loadgen.audit import RecordsMismatch, recompute_folder
from ixci.loadgen.http import Exchange
from ixci.loadgen.metrics import ErrorKind, RequestRecord, TokenSource, record_from_json
from ixci.loadgen.records import chunk_tokens
from ixci.loadgen.sse import parse_stream

pytestmark = pytest.mark.timeout(120)


def test_a_record_survives_its_json_line_exactly() -> None:
    r = RequestRecord(
        index=3,
        worker=1,
        warmup=False,
        t_send_ns=1_000_000_007,
        t_end_ns=1_090_000_000,
        ok=True,
        chunk_times_ns=(1_020_000_011, 1_020_000_011, 1_050_000_000),
        output_tokens=5,
        prompt_tokens=9,
        requested_input_tokens=8,
        requested_output_tokens=5,
        token_source=TokenSource.USAGE,
        retried=True,
        t_retry_ns=1_005_000_000,
        chunk_tokens=(1, 1, 3),
        chunk_slack_runs=((0, 1, 4000),),
    )
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["chunk_dt_ns"] == [
        20_000_004,
        0,
        29_999_989,
    ]  # first from t_send, then chunk to chunk
    assert record_from_json(doc) == r


def _measure(stub: Callable, folder: Path, *extra: str) -> None:
    s = stub("--ttft-ms", "5", "--itl-ms", "1")
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
            "12",
            "--concurrency",
            "4",
            "--num-requests",
            "16",
            "--dialect",
            "vllm",
            "--slo-ttft",
            "0.5",
            *extra,
            "--output",
            str(folder / "result.json"),
            "--requests-out",
            str(folder / "requests.jsonl.gz"),
        ],
    )
    assert res.exit_code == 0, res.output


def test_recompute_matches_the_stored_metrics_and_catches_a_change(
    stub: Callable, tmp_path: Path
) -> None:
    _measure(stub, tmp_path)
    audits = recompute_folder(tmp_path / "result.json", tmp_path / "requests.jsonl.gz")
    assert len(audits) == 1 and audits[0].mismatches == () and audits[0].compared >= 70
    ok = CliRunner().invoke(cli, ["loadgen", "--recompute", str(tmp_path)])
    assert ok.exit_code == 0 and " metrics match" in ok.output, ok.output
    # one request's last chunk 50 ms later in the file: E2EL and TPOT change, the audit names them
    with gzip.open(tmp_path / "requests.jsonl.gz", "rt") as fh:
        lines = [json.loads(x) for x in fh]
    measured = next(x for x in lines if not x["warmup"])
    measured["chunk_dt_ns"][-1] += 50_000_000
    with gzip.open(tmp_path / "requests.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(x) + "\n" for x in lines)
    bad = CliRunner().invoke(cli, ["loadgen", "--recompute", str(tmp_path)])
    assert isinstance(bad.exception, RecordsMismatch) and bad.exception.exit_code == 20
    # (under CPU contention a distribution may be withheld: then its bound in `timing` differs)
    assert "  e2el.mean: stored" in bad.output or "  timing.bounds_s.e2el" in bad.output, bad.output
    assert "ttft.mean" not in bad.output


def test_recompute_open_loop_point(stub: Callable, tmp_path: Path) -> None:
    _measure(stub, tmp_path, "--request-rate", "200")
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["metrics"]["open_loop"]["sends"] == 16 + 4  # warm-up (one per slot) included
    audit = recompute_folder(tmp_path / "result.json", tmp_path / "requests.jsonl.gz")[0]
    assert audit.mismatches == () and audit.skipped == ("open_loop",)


def test_recompute_names_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(
        json.dumps({"kind": "ixci.loadgen", "config": {}, "metrics": {}})
    )
    with gzip.open(tmp_path / "requests.jsonl.gz", "wt") as fh:
        fh.write('{"index": 1}\n')
    with pytest.raises(UsageError, match=r"requests.jsonl.gz:1: not a request record"):
        recompute_folder(tmp_path / "result.json", tmp_path / "requests.jsonl.gz")
    res = CliRunner().invoke(cli, ["loadgen", "--isl", "4"])
    assert (
        isinstance(res.exception, UsageError) and "--url, --model, --osl" in res.exception.message
    )


def test_tokens_of_each_chunk() -> None:
    assert chunk_tokens(4, [3, 9], [1, 4]) == (1, 3)  # cumulative usage on every chunk: exact
    assert chunk_tokens(6, [4, 4, 12], None) == (1, 1, 4)  # 3 extra tokens by text length
    assert chunk_tokens(5, [1, 1, 1, 1, 1], None) == (1, 1, 1, 1, 1)
    assert chunk_tokens(2, [4, 4, 4], None) == ()  # fewer tokens than chunks: the average


def test_weighing_a_stream_reads_each_chunks_text_and_usage() -> None:
    ex = Exchange()
    ev = b'data: {"choices":[{"index":0,"text":"%s"}],"usage":{"completion_tokens":%d}}\n\n'
    ex.blocks = [ev % (b"a", 1), ev % (b"bbbb", 4) + b"data: [DONE]\n\n"]
    ex.times = [10, 20]
    p = parse_stream(ex, weigh=True)
    assert p.chunk_times_ns == [10, 20] and p.chunk_chars == [1, 4] and p.chunk_usage == [1, 4]
    assert chunk_tokens(p.completion_tokens or 0, p.chunk_chars, p.chunk_usage) == (1, 3)


def test_record_line_is_its_json_and_old_slack_marks_still_read() -> None:
    """`to_line` (the spill and requests.jsonl.gz line, deltas serialized from their array) is
    byte for byte `orjson.dumps(to_json())`; a line written before slack runs (one
    `[chunk, ns]` mark per chunk) reads as runs: consecutive chunks with one slack as one."""
    ok = RequestRecord(
        index=3, worker=1, warmup=False, t_send_ns=10, t_end_ns=99, ok=True,
        chunk_times_ns=(20, 20, 31), output_tokens=3, chunk_slack_runs=((0, 2, 7),),
    )  # fmt: skip
    failed = RequestRecord(
        index=4, worker=0, warmup=True, t_send_ns=10, t_end_ns=11, ok=False,
        error_kind=ErrorKind.CONNECT, error="refused",
    )  # fmt: skip
    for r in (ok, failed):
        assert r.to_line() == orjson.dumps(r.to_json()) + b"\n"
        assert record_from_json(orjson.loads(r.to_line())) == r
    old = {**ok.to_json(), "chunk_slack_ns": [[0, 7], [1, 7]]}
    del old["chunk_slack_runs"]
    assert record_from_json(old) == ok  # one read's chunks, one slack: one run
    old["chunk_slack_ns"] = [[0, 7], [1, 7], [2, 9], [4, 9]]
    assert record_from_json(old).chunk_slack_runs == ((0, 2, 7), (2, 3, 9), (4, 5, 9))
