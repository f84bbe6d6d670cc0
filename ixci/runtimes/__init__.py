"""Runtimes: one module per way to run a `ServeSpec`, one registry (catalog `RuntimeKind` → class)."""

from __future__ import annotations

from ixci.errors import InvalidJob, PreflightFailed
from ixci.runtimes.base import Runtime

KINDS = ("process", "docker", "podman", "slurm-enroot")


def get_runtime(kind: str) -> Runtime:
    """The runtime for a runner's `runtime:` value; `InvalidJob` for an unknown kind."""
    if kind == "process":
        from ixci.runtimes.process import ProcessRuntime

        return ProcessRuntime()
    if kind in ("docker", "podman"):
        from ixci.runtimes.docker import ContainerRuntime

        return ContainerRuntime(kind)
    if kind in ("slurm", "slurm-enroot"):
        import importlib

        try:
            slurm = importlib.import_module("ixci.runtimes.slurm")  # owned by infra
        except ModuleNotFoundError as exc:
            raise PreflightFailed(
                f"the {kind} runtime is not available in this ixci ({exc})"
            ) from exc
        runtime: Runtime = slurm.SlurmRuntime()
        return runtime
    raise InvalidJob(f"unknown runtime {kind!r}", hint=f"known: {', '.join(KINDS)}")
