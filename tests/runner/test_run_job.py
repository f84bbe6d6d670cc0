"""`ixci run-job` end to end on real processes: the real llama-server (process and docker
runtimes) and fault injection through tests/runner/fault_server.py in front of it.

Each test runs `ixci run-job` as a real subprocess (real exit codes, real signals) on the
repository's catalog, then checks the artifact against the schema, the failure class and
exit code, that finished points were kept, and that no process or container was left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ixci.results import result as artifact

ROOT = Path(__file__).resolve().parents[2]
FAULT = Path(__file__).with_name("fault_server.py")
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


def _plan() -> list[dict[str, Any]]:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(ROOT), "--event", "workflow_dispatch", "--format", "json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return list(json.loads(out.stdout)["jobs"])


@pytest.fixture(scope="module")
def two_point_job() -> str:
    """The tiny llama.cpp job with the fewest points (>= 2): fast enough for fault tests."""
    jobs = [
        j
        for j in _plan()
        if j["framework"] == "llamacpp" and j["model"] == "tiny-llama" and len(j["points"]) >= 2
    ]
    return str(min(jobs, key=lambda j: (len(j["points"]), j["id"]))["id"])


def _bin_dir(tmp_path: Path, real: Path, mode: str | None, after: int = 0) -> Path:
    """A PATH folder whose `llama-server` is the real one, or the fault front in `mode`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "llama-server"
    if mode is None:
        exe.symlink_to(real)
    else:
        exe.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{FAULT}" {mode} {after} "{real}" -- "$@"\n'
        )
        exe.chmod(0o755)
    return folder


def _start(job: str, out: Path, port: int, bindir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    argv = [*IXCI, "run-job", job, "--catalog", str(ROOT), "--output", str(out), "--port", str(port),
            "--runtime", "process", "--model-cache", str(out.parent / "models"), "--run-id", "test", *extra]  # fmt: skip
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _pids_with(marker: str) -> list[int]:
    """Live processes whose command line mentions `marker` (e.g. the unique port)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except (OSError, IndexError):
                continue
            # not `"pytest" not in cmdline`: the server's -m path is under pytest's tmp folder,
            # so that filter hid every server and made the check vacuous
            if marker in cmdline and int(entry.name) != os.getpid() and not zombie:
                found.append(int(entry.name))
    return found


def _load(out: Path, job: str) -> dict[str, Any]:
    doc = artifact.load(out / job / "result.json")  # schema-validated
    return doc


def _assert_clean(port: int) -> None:
    deadline = time.monotonic() + 10
    while _pids_with(f"--port {port}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _pids_with(f"--port {port}") == [], "a server process was left behind"


@pytest.fixture
def real_server(llama_server_bin: Path) -> Path:
    return llama_server_bin


def test_cpu_job_end_to_end(
    tmp_path: Path, real_server: Path, two_point_job: str, free_port: int
) -> None:
    out = tmp_path / "out"
    t0 = time.monotonic()
    rc, log = _finish(_start(two_point_job, out, free_port, _bin_dir(tmp_path, real_server, None)))
    assert rc == 0, log
    doc = _load(out, two_point_job)
    assert doc["status"] == "ok" and doc["failure_class"] is None
    assert all(p["status"] == "ok" and p["valid"] for p in doc["points"])
    assert all(
        p["metrics"]["completed"] >= 8 and p["metrics"]["output_throughput"] > 0
        for p in doc["points"]
    )
    assert all(
        not p["telemetry"]["power_valid"] and "cpu SKU" in p["telemetry"]["invalid_reasons"][0]
        for p in doc["points"]
    )
    # every point records its cache state (the scenario's default: keep) and the engine's metrics
    assert all(
        p["cache"]["action"] == "keep" and p["cache"]["status"] == "ok" for p in doc["points"]
    )
    assert all(p["server_metrics"]["series"]["generation_tokens"]["delta"] >= 8 * 32
               and p["server_metrics"]["failed_samples"] == 0 for p in doc["points"])  # fmt: skip
    prov = doc["provenance"]
    assert (
        prov["runtime"] == "process"
        and prov["server_argv"][0] == "llama-server"
        and prov["engine_version"]
    )
    assert (out / two_point_job / "server.log").stat().st_size > 0
    import gzip

    with gzip.open(out / two_point_job / "requests.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh]
    assert {r["point_id"] for r in records} == {p["id"] for p in doc["points"]}
    _assert_clean(free_port)
    assert time.monotonic() - t0 < 240


def test_engine_exits_at_start(
    tmp_path: Path, real_server: Path, two_point_job: str, free_port: int
) -> None:
    out = tmp_path / "out"
    rc, log = _finish(
        _start(two_point_job, out, free_port, _bin_dir(tmp_path, real_server, "exit-at-start")), 60
    )
    assert rc == 13, log
    doc = _load(out, two_point_job)
    assert doc["failure_class"] == "server_start" and doc["status"] == "failed"
    assert "exiting at start" in doc["failure_message"]
    assert all(p["status"] == "not_run" for p in doc["points"])
    _assert_clean(free_port)


def test_never_ready_times_out(
    tmp_path: Path, real_server: Path, two_point_job: str, free_port: int
) -> None:
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = _start(
        two_point_job,
        out,
        free_port,
        _bin_dir(tmp_path, real_server, "never-ready"),
        "--ready-timeout",
        "4",
    )
    rc, log = _finish(proc, 60)
    assert rc == 14, log
    assert time.monotonic() - t0 < 30
    doc = _load(out, two_point_job)
    assert doc["failure_class"] == "not_ready" and "not ready after 4 s" in doc["failure_message"]
    _assert_clean(free_port)


def test_not_ready_is_retried(
    tmp_path: Path, real_server: Path, two_point_job: str, free_port: int
) -> None:
    out = tmp_path / "out"
    proc = _start(two_point_job, out, free_port, _bin_dir(tmp_path, real_server, "never-ready"),
                  "--ready-timeout", "2", "--retries", "1")  # fmt: skip
    rc, log = _finish(proc, 60)
    assert rc == 14 and "attempt 1 failed (not_ready); retrying" in log, log
    assert _load(out, two_point_job)["run"]["attempt"] == 2
    _assert_clean(free_port)


def _requests_of_first_point(job: str) -> int:
    """Completion requests before the second point: 1 ready probe + warm-up + measured."""
    from ixci.catalog.catalog import load_catalog

    catalog = load_catalog(ROOT)
    plan_job = next(j for j in _plan() if j["id"] == job)
    first = plan_job["points"][0]
    sc = catalog.scenarios[first["scenario"]]
    return (
        1
        + sc.warmup_requests
        + max(sc.min_requests, sc.min_requests_per_concurrency * first["concurrency"])
    )


@pytest.mark.parametrize(("mode", "rc", "klass"), [("crash", 15, "crash"), ("hang", 15, "crash")])
def test_server_fails_in_second_point(tmp_path: Path, real_server: Path, two_point_job: str, free_port: int,
                                      mode: str, rc: int, klass: str) -> None:  # fmt: skip
    out = tmp_path / "out"
    after = _requests_of_first_point(two_point_job) + 3
    t0 = time.monotonic()
    got, log = _finish(
        _start(two_point_job, out, free_port, _bin_dir(tmp_path, real_server, mode, after)), 200
    )
    assert got == rc, log
    doc = _load(out, two_point_job)
    first, second = doc["points"][0], doc["points"][1]
    assert (
        first["status"] == "ok" and first["valid"] and first["metrics"]["completed"] > 0
    )  # kept and valid
    assert second["status"] == "failed" and second["failure_class"] == klass
    assert doc["status"] == "partial" and doc["failure_class"] == klass
    if mode == "hang":
        assert "stopped responding" in doc["failure_message"]
        assert time.monotonic() - t0 < 120  # 3 failed probes × 5 s, not the 120 s point limit
    _assert_clean(free_port)


def test_sigterm_mid_point(
    tmp_path: Path, real_server: Path, two_point_job: str, free_port: int
) -> None:
    out = tmp_path / "out"
    # a hang in point 2 keeps the runner inside that point until we signal it
    proc = _start(
        two_point_job,
        out,
        free_port,
        _bin_dir(tmp_path, real_server, "hang", _requests_of_first_point(two_point_job) + 2),
    )
    path = out / two_point_job / "result.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if path.exists() and json.loads(path.read_text())["points"][0]["status"] == "ok":
            break
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGTERM)
    t0 = time.monotonic()
    rc, log = _finish(proc, 60)
    assert rc == 18, log
    assert time.monotonic() - t0 < 30
    doc = _load(out, two_point_job)
    assert doc["failure_class"] == "cancelled" and doc["points"][0]["status"] == "ok"
    assert doc["points"][1]["failure_class"] == "cancelled"
    _assert_clean(free_port)
