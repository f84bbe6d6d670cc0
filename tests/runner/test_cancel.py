"""Cancelling `ixci run-job` the way the GitHub runner does, and killing it outright.

GitHub's documented cancellation sequence (docs.github.com, "Workflow cancellation
reference"): SIGINT to the step's process; if it has not exited after 7500 ms, SIGTERM; after
2500 ms more, the process tree is killed. `RunnerCancel` replays exactly that against a real
`ixci run-job` process (the workflow step `exec`s it), mid-point on the real llama-server, with
the process runtime and in docker, and records which signals were needed.

Each test checks: exit code 18 and class `cancelled`; the finished point kept (valid, with
metrics) in result.json; the running point marked cancelled; no engine process (by port and
pid), no container (by label), no process-group record left; and that the job exited before
the runner's SIGTERM (within `runner.STOP_BUDGET_S` of SIGINT).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ixci.results import result as artifact
from ixci.run.runner import STOP_BUDGET_S

ROOT = Path(__file__).resolve().parents[2]
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]
SIGINT_TO_SIGTERM_S = 7.5
SIGTERM_TO_KILL_S = 2.5

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@dataclass
class RunnerCancel:
    """The runner's sequence: SIGINT, SIGTERM after 7.5 s, SIGKILL after 2.5 s more."""

    sent: list[str] = field(default_factory=list)
    exit_after_s: float = 0.0

    def __call__(self, proc: subprocess.Popen[str]) -> int:
        t0 = time.monotonic()
        for sig, wait in ((signal.SIGINT, SIGINT_TO_SIGTERM_S), (signal.SIGTERM, SIGTERM_TO_KILL_S),
                          (signal.SIGKILL, 30.0)):  # fmt: skip
            self.sent.append(sig.name)
            proc.send_signal(sig)
            try:
                rc = proc.wait(timeout=wait)
                self.exit_after_s = time.monotonic() - t0
                print(f"run-job exited {self.exit_after_s:.2f} s after SIGINT ({self.sent})")
                return rc
            except subprocess.TimeoutExpired:
                continue
        raise AssertionError("run-job survived SIGKILL")


SLOW = "local-slow"


def _slow_catalog(tmp_path: Path) -> Path:
    """A copy of the catalog with scenario `local-slow`: local-short with enough requests that a
    point runs for minutes, so a signal reliably lands mid-point on the real server."""
    import shutil

    root = tmp_path / "catalog"
    for part in ("matrix", "benchmarks", "schemas"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, root / part)
    text = (ROOT / "benchmarks" / "scenarios" / "local-short.yaml").read_text()
    text = text.replace("name: local-short", f"name: {SLOW}")
    text = text.replace("min-requests: 8", "min-requests: 5000")
    (root / "benchmarks" / "scenarios" / f"{SLOW}.yaml").write_text(text)
    return root


def _job(runner: str) -> dict[str, Any]:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(ROOT), "--event", "workflow_dispatch", "--format", "json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    jobs = [j for j in json.loads(out.stdout)["jobs"]
            if j["runner"] == runner and j["model"] == "tiny-llama" and len(j["points"]) >= 2]  # fmt: skip
    if not jobs:
        pytest.fail(f"the catalog has no tiny-llama job with >= 2 points on {runner}")
    return min(jobs, key=lambda j: (len(j["points"]), j["id"]))


STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_strays() -> Any:
    """Whatever a failing test left running (run-job and everything under it) is killed."""
    yield
    while STARTED:
        proc = STARTED.pop()
        for pid in [proc.pid, *_descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Job:
    job: dict[str, Any]
    out: Path
    port: int
    run_id: str
    owner: str
    state: Path
    proc: subprocess.Popen[str]

    @property
    def folder(self) -> Path:
        return self.out / self.job["id"]

    def doc(self) -> dict[str, Any]:
        return artifact.load(self.folder / "result.json")


def _start(
    tmp_path: Path, job: dict[str, Any], port: int, *extra: str, path: str | None = None
) -> Job:
    """run-job on `job` with its second point made slow (scenario `local-slow`, via --plan)."""
    root = _slow_catalog(tmp_path)
    points = [dict(p) for p in job["points"]]
    points[1]["scenario"] = SLOW
    job = {**job, "points": points}
    (tmp_path / "plan.json").write_text(json.dumps({"event": "workflow_dispatch", "jobs": [job]}))
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    owner = f"t-cancel-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    env = {**os.environ, "RUNNER_NAME": owner, "XDG_STATE_HOME": str(state)}
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    out = tmp_path / "out"
    argv = [*IXCI, "run-job", job["id"], "--catalog", str(root), "--plan", str(tmp_path / "plan.json"), "--output", str(out),
            "--port", str(port), "--model-cache", str(tmp_path / "models"), "--run-id", run_id, *extra]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    STARTED.append(proc)
    return Job(
        job=job, out=out, port=port, run_id=run_id, owner=owner, state=state / "ixci", proc=proc
    )


def _wait_mid_second_point(job: Job, timeout: float = 200) -> None:
    """Until point 1 is finished and point 2's load generator has been started."""
    second = job.job["points"][1]["id"]
    deadline = time.monotonic() + timeout
    path = job.folder / "result.json"
    while time.monotonic() < deadline:
        assert job.proc.poll() is None, job.proc.communicate()[0]
        started = (job.folder / ".points" / f"{second}.json").exists()
        if started and json.loads(path.read_text())["points"][0]["status"] == "ok":
            time.sleep(3.0)  # the client is sending requests (the point lasts minutes)
            return
        time.sleep(0.05)
    raise AssertionError("the job never reached its second point")


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if marker in cmdline and int(entry.name) != os.getpid() and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def _containers(run_id: str) -> list[str]:
    res = subprocess.run(["docker", "ps", "-a", "--filter", f"label=ixci.run={run_id}", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return res.stdout.split()


def _records(job: Job) -> list[str]:
    folder = job.state / "groups"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _assert_cancelled(job: Job, rc: int, log: str) -> None:
    assert rc == 18, log
    assert "received SIGINT" in log, log
    doc = job.doc()
    assert doc["status"] == "partial" and doc["failure_class"] == "cancelled", doc[
        "failure_message"
    ]
    first, second = doc["points"][0], doc["points"][1]
    assert first["status"] == "ok" and first["valid"] and first["metrics"]["completed"] > 0
    assert second["status"] == "failed" and second["failure_class"] == "cancelled"
    assert "cancelled by SIGINT" in second["invalid_reasons"][0]


def _assert_nothing_left(job: Job) -> None:
    assert _pids_with(f"--port {job.port}") == [], "an engine process was left behind"
    assert _pids_with(str(job.folder / ".points")) == [], "a load generator was left behind"
    assert _records(job) == [], "a process-group record was left behind"


def test_runner_cancel_mid_point_process_runtime(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    job = _start(tmp_path, _job("cpu-docker"), free_port, "--runtime", "process")
    _wait_mid_second_point(job)
    cancel = RunnerCancel()
    rc = cancel(job.proc)
    log = job.proc.communicate()[0]
    _assert_cancelled(job, rc, log)
    assert cancel.sent == ["SIGINT"], f"needed {cancel.sent}: exit took {cancel.exit_after_s:.1f} s"
    assert cancel.exit_after_s <= STOP_BUDGET_S, cancel.exit_after_s
    _assert_nothing_left(job)


def test_second_signal_does_not_abort_cleanup(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    """SIGINT, then SIGTERM and SIGINT again while run-job is stopping the engine: cleanup still
    completes. The engine is the real llama-server behind a wrapper that takes 1.5 s to stop
    (as large engines do), so the later signals land while run-job is inside its cleanup."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "llama-server"
    wrapper.write_text(
        f'#!/bin/bash\n"{llama_server_bin}" "$@" &\npid=$!\n'
        "trap 'sleep 1.5; kill -TERM $pid 2>/dev/null; wait $pid; exit 143' TERM INT\n"
        "wait $pid\n"
    )
    wrapper.chmod(0o755)
    job = _start(tmp_path, _job("cpu-docker"), free_port, "--runtime", "process", path=str(bindir))
    _wait_mid_second_point(job)
    t0 = time.monotonic()
    job.proc.send_signal(signal.SIGINT)
    assert job.proc.stdout is not None
    first = job.proc.stdout.readline()  # run-job has started stopping
    assert "received SIGINT" in first, first
    time.sleep(0.5)
    for sig in (signal.SIGTERM, signal.SIGINT):
        assert job.proc.poll() is None, "run-job stopped faster than the engine can"
        job.proc.send_signal(sig)
        time.sleep(0.1)
    rc, log = job.proc.wait(timeout=30), first + job.proc.communicate()[0]
    assert time.monotonic() - t0 <= STOP_BUDGET_S
    _assert_cancelled(job, rc, log)
    assert "already stopping" in log, log
    _assert_nothing_left(job)


def test_kill_9_takes_engine_and_client_with_it(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    job = _start(tmp_path, _job("cpu-docker"), free_port, "--runtime", "process")
    _wait_mid_second_point(job)
    engines = _pids_with(f"--port {job.port}")
    clients = _pids_with(str(job.folder / ".points"))
    assert engines and clients
    records = _records(job)
    job.proc.kill()
    job.proc.wait()
    deadline = time.monotonic() + 10
    while (_pids_with(f"--port {job.port}") or _pids_with(str(job.folder / ".points"))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert _pids_with(f"--port {job.port}") == [], "llama-server outlived kill -9 of run-job"
    assert _pids_with(str(job.folder / ".points")) == [], "the client outlived kill -9"
    assert len(records) == 2  # the engine's group and the client's group were recorded
    import socket

    with socket.socket() as sock:  # nothing listens on the port any more (TIME_WAIT is fine)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", job.port))
        sock.listen()
    # the records stay (run-job could not remove them); cleanup finds nothing alive and tidies
    from click.testing import CliRunner

    from ixci.cli import cli

    res = CliRunner().invoke(cli, ["cleanup", "--owner", job.owner, "--state-dir", str(job.state),
                                   "--only", "process"])  # fmt: skip
    assert res.exit_code == 0 and res.output.count("stale record") == 2, res.output
    assert _records(job) == []


@pytest.mark.docker
def test_runner_cancel_mid_point_docker(
    tmp_path: Path, llama_server_bin: Path, docker_available: str, free_port: int
) -> None:
    spec = _job("cpu-docker")
    job = _start(tmp_path, spec, free_port)
    _wait_mid_second_point(job)
    assert _containers(job.run_id), "no container was running"
    cancel = RunnerCancel()
    rc = cancel(job.proc)
    log = job.proc.communicate()[0]
    _assert_cancelled(job, rc, log)
    assert cancel.sent == ["SIGINT"], f"needed {cancel.sent}: exit took {cancel.exit_after_s:.1f} s"
    assert cancel.exit_after_s <= STOP_BUDGET_S, cancel.exit_after_s
    assert _containers(job.run_id) == [], "the engine container was left behind"
    _assert_nothing_left(job)


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


@pytest.mark.docker
@pytest.mark.parametrize("tree", [False, True], ids=["kill-9", "kill-9-tree"])
def test_kill_9_in_docker_leaves_no_container(
    tmp_path: Path, llama_server_bin: Path, docker_available: str, free_port: int, tree: bool
) -> None:
    """kill -9 of run-job: the supervisor of the log follower removes the container. When the
    whole process tree is killed too (the runner's last resort), `ixci cleanup` removes it."""
    job = _start(tmp_path, _job("cpu-docker"), free_port)
    _wait_mid_second_point(job)
    assert _containers(job.run_id)
    victims = [job.proc.pid, *(_descendants(job.proc.pid) if tree else [])]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    job.proc.wait()
    deadline = time.monotonic() + 20
    while _containers(job.run_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _containers(job.run_id)
    if not tree:
        assert left == [], "the container outlived kill -9 of run-job"
        return
    assert left, "expected the container to survive a kill of the whole tree"
    from click.testing import CliRunner

    from ixci.cli import cli

    res = CliRunner().invoke(cli, ["cleanup", "--owner", job.owner, "--state-dir", str(job.state)])
    assert res.exit_code == 0, res.output
    assert _containers(job.run_id) == [], res.output
    assert _pids_with(f"--port {job.port}") == []
