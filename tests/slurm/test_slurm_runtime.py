"""The Slurm runtime on the real local cluster (.ci/slurm-up): llama-server jobs, a worker
killed mid-run, a disaggregated 1 prefill + 2 decode deployment behind sglang-router."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ixci.engines.modelgen import TinyModel
from ixci.runtimes.base import LaunchContext
from ixci.runtimes.slurm import BATCH_SCRIPT, SlurmDeployment, SlurmRuntime
from tests.conftest import SlurmCluster
from tests.infra.llama import post, wait_healthy
from tests.slurm.specs import disagg_spec, free_port_block, llama_spec

pytestmark = [pytest.mark.slurm, pytest.mark.engine]


def _ctx(tmp_path: Path, job: str) -> LaunchContext:
    return LaunchContext(job_id=job, run_id="slurm-test", workdir=tmp_path,
                         host_env=dict(os.environ))  # fmt: skip


def _wait_http(base: str, dep: SlurmDeployment, log: Path, timeout: float = 90.0) -> None:
    class _Proc:  # wait_healthy polls a process-like object
        returncode: int | None = None

        def poll(self) -> int | None:
            self.returncode = dep.poll()
            return self.returncode

    wait_healthy(base, _Proc(), log, timeout=timeout)


def _steps(job_id: str) -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-s", "-j", job_id, "-o", "%i %j"],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    return {name: step for step, name in (ln.split() for ln in out.splitlines() if ln.strip())}


def test_llama_server_job_lifecycle(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, tiny_gguf: TinyModel,
    free_port: int, tmp_path: Path,
) -> None:  # fmt: skip
    spec = llama_spec(str(llama_server_bin), tiny_gguf, free_port)
    ctx = _ctx(tmp_path, "j-slurm-single")
    runtime = SlurmRuntime()
    info = runtime.preflight(spec, ctx)
    assert info.runtime_version and info.runtime_version.startswith("slurm")
    assert any("no pyxis" in n for n in info.notes)  # honest: the image is not used here
    log = tmp_path / "server.log"
    dep = runtime.launch(spec, ctx, log_path=log)
    try:
        _wait_http(spec.base_url, dep, log)
        out = post(
            spec.base_url + "/v1/completions",
            {"prompt": "x = ", "max_tokens": 4, "ignore_eos": True},
        )
        assert out["usage"]["completion_tokens"] == 4
        assert dep.poll() is None
        assert dep.leftovers() == [f"slurm:{dep.slurm_job_id}:RUNNING"]
        assert "--gres=gpu:1" in dep.argv and "--container-image" not in " ".join(dep.argv)
    finally:
        dep.stop(grace_s=5)
    assert dep.leftovers() == []
    dep.stop(grace_s=5)  # idempotent
    assert (tmp_path / BATCH_SCRIPT).read_text().startswith("#!/bin/bash\n#SBATCH")
    assert "listening on" in log.read_text()  # the step's log was collected


def test_killed_worker_ends_the_whole_allocation(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, sglang_router: None, tiny_gguf: TinyModel,
    tmp_path: Path,
) -> None:  # fmt: skip
    spec = disagg_spec(str(llama_server_bin), tiny_gguf, free_port_block(4))
    log = tmp_path / "server.log"
    dep = SlurmRuntime().launch(spec, _ctx(tmp_path, "j-slurm-kill"), log_path=log)
    try:
        _wait_http(spec.base_url, dep, log, timeout=120)
        victim = _steps(dep.slurm_job_id)["decode-1"]
        subprocess.run(["scancel", "--signal=KILL", victim], check=True)
        t0 = time.monotonic()
        while dep.poll() is None and time.monotonic() - t0 < 30:
            time.sleep(0.5)
        assert dep.poll() is not None, "a dead worker must end the deployment"
        assert "decode-1 exited" in dep.reason()
        deadline = time.monotonic() + 30
        while dep.leftovers() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert dep.leftovers() == [], "the whole allocation must be gone"
    finally:
        dep.stop(grace_s=5)


def test_disaggregated_one_prefill_two_decode_behind_sglang_router(
    slurm_cluster: SlurmCluster, llama_server_bin: Path, sglang_router: None, tiny_gguf: TinyModel,
    tmp_path: Path,
) -> None:  # fmt: skip
    spec = disagg_spec(str(llama_server_bin), tiny_gguf, free_port_block(4))
    log = tmp_path / "server.log"
    dep = SlurmRuntime().launch(spec, _ctx(tmp_path, "j-slurm-disagg"), log_path=log)
    try:
        _wait_http(spec.base_url, dep, log, timeout=120)
        steps = _steps(dep.slurm_job_id)
        assert set(steps) - {"batch"} == {"router", "prefill-0", "decode-0", "decode-1"}
        nodes = subprocess.run(["squeue", "-h", "-s", "-j", dep.slurm_job_id, "-o", "%j %N"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        placed = dict(line.split() for line in nodes.splitlines())
        assert [placed["prefill-0"], placed["decode-0"], placed["decode-1"]] == ["n1", "n2", "n3"]
        for _ in range(4):
            out = post(spec.base_url + "/v1/completions",
                       {"model": "tiny", "prompt": "def f():", "max_tokens": 3, "ignore_eos": True})  # fmt: skip
            assert out["usage"]["completion_tokens"] == 3
        batch = (tmp_path / "slurm-batch.log").read_text()
        # workers healthy before the router started
        assert batch.index("decode-1 healthy") < batch.index("start router")
    finally:
        dep.stop(grace_s=5)
    assert dep.leftovers() == []
    text = log.read_text()
    for name in ("router", "prefill-0", "decode-0", "decode-1"):
        assert f"slurm step log: {name}" in text


def test_multi_node_worker_gets_node_rank_and_head_address(
    slurm_cluster: SlurmCluster, free_port: int, tmp_path: Path
) -> None:
    """A worker spanning 2 nodes is one step with one task per node (1 fake GPU each); inside
    it {node_rank} is the node's index in the step and {host:w} the head node's address."""
    import sys

    from ixci.engines.base import Component, ServeSpec, host_of
    from ixci.loadgen.dialect import DIALECTS

    marks = tmp_path / "ranks.txt"
    worker = Component(name="w", role="decode", gpus=2, nodes=2, argv=(
        "sh", "-c", 'echo "rank=$0 head=$1" >>"$2"; exec sleep 600',
        "{node_rank}", host_of("w"), str(marks)))  # fmt: skip
    front = Component(name="front", role="frontend", port=free_port,
                      argv=(sys.executable, "-m", "http.server", str(free_port)))  # fmt: skip
    spec = ServeSpec(engine="test", image=None, components=(front, worker), host="127.0.0.1",
                     port=free_port, health_path="/", version_path=None, ready_timeout_s=60,
                     model_name="m", model_path="m", dialect=DIALECTS["openai"])  # fmt: skip
    dep = SlurmRuntime().launch(spec, _ctx(tmp_path, "j-slurm-2node"), log_path=tmp_path / "s.log")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            marks.exists() and marks.read_text().count("\n") >= 2
        ):
            time.sleep(0.5)
        ranks = sorted(marks.read_text().splitlines())
        assert ranks == ["rank=0 head=127.0.0.1", "rank=1 head=127.0.0.1"]
        nodes = subprocess.run(["squeue", "-h", "-s", "-j", dep.slurm_job_id, "-o", "%j %N"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert dict(line.split() for line in nodes.splitlines())["w"] == "n[1-2]"
        assert dep.client_host() == "127.0.0.1" and dep.nodes()["w"] == "127.0.0.1"
        assert "--gres=gpu:1" in (tmp_path / BATCH_SCRIPT).read_text()
    finally:
        dep.stop(grace_s=5)
    assert dep.leftovers() == []
