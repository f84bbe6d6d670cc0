"""Fixtures for the load-generator tests: the stub server as a real process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUB = REPO / "perf" / "loadgen" / "stub_server.py"
HOSTILE = Path(__file__).with_name("hostile_server.py")


class Stub:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"


def start_stub(args: list[str], *, prefix: list[str] | None = None) -> Stub:
    """Start the stub server (optionally under `prefix`, e.g. taskset) and wait for READY."""
    proc = subprocess.Popen(
        [*(prefix or []), sys.executable, str(STUB), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY "):
            return Stub(proc, int(line.split()[1]))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"stub server did not start: {proc.stdout.read() if proc.stdout else ''}")


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    """`stub(*args)` starts a stub server; all are stopped at the end of the test."""
    started: list[Stub] = []

    def make(*args: str, prefix: list[str] | None = None) -> Stub:
        s = start_stub(list(args), prefix=prefix)
        started.append(s)
        return s

    yield make
    for s in started:
        s.proc.terminate()
        try:
            s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            s.proc.kill()


@pytest.fixture
def hostile() -> Iterator[Callable[..., str]]:
    """`hostile(mode, *args)` starts hostile_server.py and returns its URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str, *args: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(HOSTILE), mode, *args], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        return f"http://127.0.0.1:{int(line.split()[1])}"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
