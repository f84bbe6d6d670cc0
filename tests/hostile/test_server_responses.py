"""Hostile server responses: each is classified, none raises, hangs or grows memory.

Every case runs the real `ixci loadgen` CLI (one worker, in its own process so its peak RSS is
its own) against `tests/loadgen/hostile_server.py`, a real process that answers every request
with exactly one injected fault. Each row names the fault and the error kind it must be
counted as; the client must exit normally with no traceback, within a bounded wall time (the
point's --max-duration plus start-up), and its peak RSS may exceed a well-behaved run's by
no more than `RSS_SLACK_MB` even when the server sends 100 MB or never stops.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parents[1] / "loadgen" / "hostile_server.py"
MAX_DURATION_S = 4.0
WALL_LIMIT_S = MAX_DURATION_S + 25.0  # start-up (imports) on a busy machine + the bounded margin
RSS_SLACK_MB = 48  # the caps for OSL 8: 1 MiB + 128 KiB per response, two in flight
REQUESTS = 4
ADDRESS_SPACE = 4 << 30  # a regression must fail the test, not exhaust the machine's memory

# Prints the client's peak RSS at exit (the CLI exits through sys.exit, so atexit runs).
CLIENT = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from ixci.cli import main\n"
    "main()\n"
)

# (server mode, error kind every request must be counted as)
CASES = [
    ("endless-stream", "protocol"),  # never ends: the response limit cuts it
    ("long-line", "protocol"),  # 100 MB in one SSE line, no framing
    ("long-line-chunked", "protocol"),  # 100 MB in one SSE line, over many chunks
    ("many-empty-events", "protocol"),  # endless tiny events that carry nothing
    ("endless-head", "protocol"),  # headers that never end
    ("huge-content-length", "protocol"),  # Content-Length far over the limit
    ("bad-content-length", "protocol"),  # Content-Length: abc
    ("negative-content-length", "protocol"),  # Content-Length: -5
    ("conflicting-content-length", "protocol"),  # two different Content-Length values
    ("bad-status-line", "protocol"),  # HTTP/1.1 2x0
    ("bad-chunk-size", "protocol"),  # chunk size "zz"
    ("negative-chunk-size", "protocol"),  # chunk size "-5" (int(x, 16) accepts it)
    ("endless-chunk-size-line", "protocol"),  # a chunk-size line that never ends
    ("invalid-utf8", "protocol"),  # content that is not UTF-8
    ("garbage-sse", "protocol"),  # binary noise with no `data:` field
    ("non-json-200", "protocol"),  # a 200 HTML page instead of an event stream
    ("data-not-json", "protocol"),  # `data: {not json`
    ("usage-negative", "protocol"),  # completion_tokens -5
    ("usage-huge", "protocol"),  # completion_tokens 1e30 (a float to any JSON parser)
    ("usage-impossible", "protocol"),  # completion_tokens 1,000,000 for max_tokens 8
    ("usage-string", "protocol"),  # completion_tokens "8"
    ("trickle", "cut"),  # one byte every 50 ms, forever: cut at --max-duration
    ("silent", "cut"),  # accepts the request, never answers: cut at --max-duration
]


def _server(mode: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(HOSTILE), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _client(url: str, out: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run `ixci loadgen` against `url`: (process, wall seconds, peak RSS in MB)."""
    argv = [sys.executable, "-c", CLIENT, "loadgen", "--url", url, "--model", "m", "--isl", "8",
            "--osl", "8", "--concurrency", "2", "--num-requests", str(REQUESTS), "--warmup-requests", "0",
            "--workers", "1", "--max-duration", str(MAX_DURATION_S), "--request-timeout", "120",
            "--output", str(out)]  # fmt: skip
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=WALL_LIMIT_S + 30,
            check=False,
            preexec_fn=_cap_memory,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the client hung: still running after {exc.timeout:.0f} s")
    wall = time.monotonic() - t0
    rss = [int(x.split()[1]) for x in proc.stderr.splitlines() if x.startswith("MAXRSS_KB")]
    return proc, wall, (rss[0] / 1024 if rss else float("inf"))


@pytest.fixture(scope="module")
def baseline_rss_mb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[float]:
    """Peak RSS of the same client run against a well-behaved server."""
    server, url = _server("ok")
    try:
        proc, _, rss = _client(url, tmp_path_factory.mktemp("ok") / "r.json")
        assert proc.returncode == 0, proc.stderr
        yield rss
    finally:
        server.kill()
        server.wait()


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("mode", "kind"), CASES, ids=[c[0] for c in CASES])
def test_hostile_response_is_classified(
    mode: str, kind: str, baseline_rss_mb: float, tmp_path: Path
) -> None:
    server, url = _server(mode)
    try:
        proc, wall, rss = _client(url, tmp_path / "r.json")
    finally:
        server.kill()
        server.wait()
    assert "Traceback" not in proc.stderr, proc.stderr
    # no request completed: the point failed (exit 16, docs/loadgen.md), its result still written
    assert proc.returncode == 16, proc.stderr
    metrics = json.loads((tmp_path / "r.json").read_text())["metrics"]
    # "cut" cases: the requests sent before --max-duration, unfinished samples (not failures of
    # the server: error rate 0, the point invalid for its sample); all others: every request
    expected = 2 if kind == "cut" else REQUESTS
    assert metrics["completed"] == 0 and metrics["errors"] == {kind: expected}, metrics["errors"]
    assert metrics["failed"] == (0 if kind == "cut" else REQUESTS)
    assert wall < WALL_LIMIT_S, f"took {wall:.1f} s"
    assert rss < baseline_rss_mb + RSS_SLACK_MB, (
        f"peak RSS {rss:.0f} MB vs {baseline_rss_mb:.0f} MB well-behaved"
    )
