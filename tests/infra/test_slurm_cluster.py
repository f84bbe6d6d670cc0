"""The local Slurm cluster from .ci/slurm-up: three nodes, fake GPUs as GRES, real steps."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import SlurmCluster


def _srun(cluster: SlurmCluster, *args: str) -> list[str]:
    argv = ["srun", "-p", cluster.partition, "--time=2", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split("\n")[:-1])


@pytest.mark.slurm
def test_three_nodes_each_run_a_step(slurm_cluster: SlurmCluster) -> None:
    assert slurm_cluster.nodes == ("n1", "n2", "n3")
    assert slurm_cluster.gpus_per_node == 2
    out = _srun(slurm_cluster, "-N3", "--ntasks-per-node=1", "printenv", "SLURMD_NODENAME")
    assert out == ["n1", "n2", "n3"]


@pytest.mark.slurm
def test_gres_gpus_are_bound_to_steps(slurm_cluster: SlurmCluster) -> None:
    one = _srun(slurm_cluster, "-N1", "--gres=gpu:1", "printenv", "CUDA_VISIBLE_DEVICES")
    assert one == ["0"]
    two = _srun(slurm_cluster, "-N1", "--gres=gpu:fake:2", "printenv", "CUDA_VISIBLE_DEVICES")
    assert two == ["0,1"]
    proc = subprocess.run(
        ["srun", "-p", slurm_cluster.partition, "-N1", "--gres=gpu:3", "--immediate=5", "true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0  # more GPUs than a node has: refused, never hangs
