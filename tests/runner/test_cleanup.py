"""`ixci cleanup` and the supervisor, on real processes, real containers and real Slurm jobs.

Every test uses its own owner scope (a unique RUNNER_NAME) and its own state directory, and
creates, next to what cleanup must remove, things it must leave alone: an unrecorded process
group, another runner's group, a live process whose pid a stale record names, an unlabelled
container, another runner's container, a Slurm job not named by ixci, another runner's job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from ixci.cli import cli
from ixci.runtimes import state
from ixci.runtimes.base import supervised

pytestmark = pytest.mark.timeout(120)


def _alive(pid: int) -> bool:
    fields = (
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if Path(f"/proc/{pid}").exists()
        else []
    )
    return bool(fields) and fields[0] != "Z"


def _group(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def _wait_dead(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _cleanup(owner: str, state_dir: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        cli, ["cleanup", "--owner", owner, "--state-dir", str(state_dir), *extra]
    )
    return res.exit_code, res.output


@pytest.fixture
def owner() -> str:
    return f"t-cleanup-{uuid.uuid4().hex[:8]}"


DEAD_PARENT = f"999999.1.{state.boot_id()[:8]}"  # a run-job that no longer runs (pid > pid_max)


def _orphan(path: Path | None) -> None:
    """Make a record look written by a run-job that has since died."""
    assert path is not None
    path.write_text(json.dumps({**json.loads(path.read_text()), "parent": DEAD_PARENT}))


def test_cleanup_kills_only_recorded_groups_of_its_owner(tmp_path: Path, owner: str) -> None:
    ours = _group(["sleep", "300"])
    other_owner = _group(["sleep", "300"])
    unrecorded = _group(["sleep", "300"])
    reused = _group(["sleep", "300"])  # a live process a stale record names with another start time
    running = _group(["sleep", "300"])  # recorded by a run-job that is still alive (this test)
    procs = [ours, other_owner, unrecorded, reused, running]
    try:
        _orphan(state.record_group(tmp_path, pid=ours.pid, owner=owner, job="j-1", run="r",
                                   what="server x"))  # fmt: skip
        live = state.record_group(tmp_path, pid=running.pid, owner=owner, job="j-3", run="r",
                                  what="server z")  # fmt: skip
        state.record_group(tmp_path, pid=other_owner.pid, owner=owner + "-b", job="j-1", run="r",
                           what="server x")  # fmt: skip
        stale = state.record_group(tmp_path, pid=reused.pid, owner=owner, job="j-2", run="r",
                                   what="server y")  # fmt: skip
        assert stale is not None
        data = json.loads(stale.read_text())
        stale.write_text(
            json.dumps({**data, "started": data["started"] - 1, "parent": DEAD_PARENT})
        )
        (tmp_path / "groups" / f"{owner}.999.1.json").write_text("{not json")

        rc, out = _cleanup(owner, tmp_path, "--only", "process", "--dry-run")
        assert rc == 0, out
        assert f"would remove group {ours.pid}" in out and "2 stale" not in out
        assert all(_alive(p.pid) for p in procs), "a dry run removed something"

        rc, out = _cleanup(owner, tmp_path, "--only", "process", "--grace", "2")
        assert rc == 0, out
        assert _wait_dead(ours.pid), "the recorded group survived cleanup"
        assert _alive(other_owner.pid) and _alive(unrecorded.pid) and _alive(reused.pid)
        assert _alive(running.pid), "cleanup killed a job whose run-job is still running"
        assert live is not None and "still running; left alone" in out
        assert sorted(p.name for p in (tmp_path / "groups").iterdir()) == sorted([
            f"{owner}-b.{other_owner.pid}.{state.start_time(other_owner.pid)}.json", live.name
        ])  # fmt: skip
        assert f"removing group {ours.pid}" in out and out.count("stale record") == 2
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_supervisor_ends_the_group_when_its_parent_is_killed(tmp_path: Path) -> None:
    """kill -9 of the process that spawned a supervised group takes the whole group with it."""
    pidfile = tmp_path / "pids"
    child = " ".join(["sleep 300 & echo $! >", str(pidfile), "; wait"])
    parent_code = (
        "import subprocess, sys, time\n"
        "from ixci.runtimes.base import supervised\n"
        f"p = subprocess.Popen(supervised(['bash', '-c', {child!r}]), start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    supervisor = int(parent.stdout.readline())
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    assert _alive(supervisor) and _alive(grandchild)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _wait_dead(grandchild), "the supervised group outlived its killed parent"
    assert _wait_dead(supervisor)


def test_supervisor_relays_exit_code_and_normal_stop() -> None:
    proc = _group(supervised(["sh", "-c", "exit 7"]))
    assert proc.wait(timeout=20) == 7
    proc = _group(supervised(["sleep", "300"]))
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)  # the runner's stop: the whole group gets SIGTERM
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM


# ----------------------------------------------------------------------------- containers


def _image(engine: str) -> str:
    """A local image with `sleep` (the llama-server image the infra setup builds)."""
    res = subprocess.run([engine, "images", "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    names = [n for n in res.stdout.split() if "llama" in n and not n.endswith(":<none>")]
    if not names:
        pytest.fail(f"no llama-server image built for {engine} (the infra setup builds it)")
    return names[0]


def _run(engine: str, image: str, name: str, labels: dict[str, str]) -> None:
    argv = [engine, "run", "-d", "--name", name, "--entrypoint", "sleep"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    subprocess.run([*argv, image, "300"], check=True, capture_output=True)


def _exists(engine: str, name: str) -> bool:
    res = subprocess.run([engine, "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return name in res.stdout.split()


@pytest.mark.docker
@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_cleanup_removes_only_this_owners_labelled_containers(
    tmp_path: Path, owner: str, engine: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(f"{engine}_available")
    image = _image(engine)
    names = {k: f"{owner}-{k}" for k in ("ours", "other", "unlabelled", "unmanaged", "running")}
    try:
        _run(engine, image, names["ours"], {"ixci.managed": "true", "ixci.owner": owner,
                                            "ixci.parent": DEAD_PARENT})  # fmt: skip
        _run(engine, image, names["running"], {"ixci.managed": "true", "ixci.owner": owner,
                                               "ixci.parent": state.process_token(os.getpid())})  # fmt: skip
        _run(engine, image, names["other"], {"ixci.managed": "true", "ixci.owner": owner + "-b"})
        _run(engine, image, names["unlabelled"], {})
        _run(engine, image, names["unmanaged"], {"ixci.owner": owner})
        rc, out = _cleanup(owner, tmp_path, "--only", engine, "--dry-run")
        assert rc == 0 and f"{engine} container {names['ours']}" in out, out
        assert all(_exists(engine, n) for n in names.values())
        rc, out = _cleanup(owner, tmp_path, "--only", engine)
        assert rc == 0 and "1 removed" in out, out
        assert not _exists(engine, names["ours"])
        assert all(
            _exists(engine, names[k]) for k in ("other", "unlabelled", "unmanaged", "running")
        )
    finally:
        subprocess.run([engine, "rm", "-f", *names.values()], capture_output=True)


# ----------------------------------------------------------------------------- Slurm


def _sbatch(cluster: object, name: str, comment: str | None) -> str:
    argv = ["sbatch", "--parsable", "--job-name", name, "-p", "ixci", "--output", "/dev/null",
            "--wrap", "sleep 300"]  # fmt: skip
    if comment:
        argv.insert(1, f"--comment={comment}")
    return (
        subprocess.run(argv, capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(";")[0]
    )


def _queued(job: str) -> bool:
    res = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.strip() in {"PENDING", "RUNNING", "CONFIGURING"}


@pytest.mark.slurm
def test_cleanup_cancels_only_this_owners_ixci_slurm_jobs(
    tmp_path: Path, owner: str, slurm_cluster: object
) -> None:
    mark = f"ixci.managed=true,ixci.owner={owner}"
    jobs = {
        "ours": _sbatch(slurm_cluster, "ixci-j-000000000000", mark),
        "other": _sbatch(slurm_cluster, "ixci-j-000000000000", mark.replace(owner, owner + "-b")),
        "unnamed": _sbatch(slurm_cluster, f"{owner}-plain", mark),
        "unlabelled": _sbatch(slurm_cluster, "ixci-j-000000000000", None),
    }
    try:
        rc, out = _cleanup(owner, tmp_path, "--only", "slurm", "--dry-run")
        assert rc == 0 and f"slurm {jobs['ours']}:" in out, out
        assert all(_queued(j) for j in jobs.values())
        rc, out = _cleanup(owner, tmp_path, "--only", "slurm")
        assert rc == 0 and "1 removed" in out, out
        deadline = time.monotonic() + 30
        while _queued(jobs["ours"]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _queued(jobs["ours"])
        assert all(_queued(jobs[k]) for k in ("other", "unnamed", "unlabelled"))
    finally:
        subprocess.run(["scancel", *jobs.values()], capture_output=True)


def test_an_unwritable_state_folder_does_not_stop_the_job(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    proc = _group(["sleep", "30"])
    try:
        assert (
            state.record_group(blocker, pid=proc.pid, owner="o", job="j", run="r", what="x") is None
        )
    finally:
        proc.kill()
        proc.wait()


def test_owner_scope_is_safe_for_labels_and_names() -> None:
    assert state.owner_scope("gpu-runner 07") == "gpu-runner-07"
    assert state.owner_scope("$(touch x)\n") == "touch-x"
    assert state.owner_scope(None) == "local" and state.owner_scope("...") == "local"
    assert len(state.owner_scope("a" * 200)) == 64
