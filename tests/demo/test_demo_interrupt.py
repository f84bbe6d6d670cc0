"""Ctrl-C during `ixci demo` stops the running `run-job` (which stops its llama-server and load
generator) and leaves nothing running; the interrupted job's artifact says `cancelled`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]


def _own_processes(workdir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(workdir) in text:
            found.append(f"{proc.name}: {text[:200]}")
    return found


def _first_point_done(artifacts: Path) -> dict[str, object] | None:
    for path in artifacts.glob("*/*/result.json"):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if any(p["status"] != "not_run" for p in doc["points"]):
            return dict(doc)
    return None


def test_ctrl_c_mid_job_stops_everything(tmp_path: Path, llama_server_bin: Path) -> None:
    workdir = tmp_path / "wd"
    proc = subprocess.Popen(
        [*IXCI, "demo", "--workdir", str(workdir), "--catalog", str(ROOT), "--run-id", "ctrl-c"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    doc = None
    while doc is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        doc = _first_point_done(workdir / "artifacts")
    assert doc is not None, "no point finished in time"
    assert any("llama-server" in p for p in _own_processes(workdir))  # the server is up
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out
    assert "aborted" in out and "Traceback" not in out
    assert _own_processes(workdir) == []
    job_id = doc["job"]["id"]  # type: ignore[index]
    final = json.loads((workdir / "artifacts" / "ctrl-c" / job_id / "result.json").read_text())
    assert final["status"] in {"failed", "partial"} and final["failure_class"] == "cancelled"
    assert any(p["status"] == "ok" for p in final["points"])  # finished points were kept
    assert not (workdir / "results.git").exists()  # nothing was published
