"""`client_saturated` turns on when the client is starved: pinned with taskset to a core that a
busy process keeps occupied (the stub server gets the other core)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_starved_client_is_flagged_saturated(stub: Callable, tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        pytest.skip("needs two CPUs and taskset (util-linux)")
    server_cpu, client_cpu = str(cpus[0]), str(cpus[1])
    s = stub("--ttft-ms", "2", "--itl-ms", "1", prefix=["taskset", "-c", server_cpu])
    # a bounded busy process sharing the client's core (ends by itself after 20 s)
    hog = subprocess.Popen(
        [
            "taskset",
            "-c",
            client_cpu,
            sys.executable,
            "-c",
            "import time\nt=time.time()+20\nwhile time.time()<t: pass",
        ]
    )
    try:
        out = tmp_path / "result.json"
        proc = subprocess.run(
            [
                "taskset",
                "-c",
                client_cpu,
                str(shutil.which("ixci")),
                "loadgen",
                "--url",
                s.url,
                "--model",
                "stub",
                "--isl",
                "16",
                "--osl",
                "64",
                "--concurrency",
                "32",
                "--duration",
                "3",
                "--workers",
                "1",
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        hog.kill()
        hog.wait()
    assert proc.returncode == 0, proc.stderr
    client = json.loads(out.read_text())["client"]
    assert client["saturated"] is True, client
    assert client["saturation_reasons"]
    assert "CLIENT SATURATED" in proc.stderr
