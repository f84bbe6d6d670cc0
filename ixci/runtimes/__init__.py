"""Runtimes: one module per way to run a `ServeSpec`, one registry (a runner's `runtime` → class).

A new runtime is one module with a class that satisfies `ixci.runtimes.base.Runtime` (every
member required; mypy checks the registry's values against it) and one line in `RUNTIMES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, partial

from ixci.errors import InvalidJob
from ixci.runtimes import docker, process, slurm
from ixci.runtimes.base import Runtime

RUNTIMES: Mapping[str, Callable[[], Runtime]] = {
    "process": process.ProcessRuntime,
    "docker": partial(docker.ContainerRuntime, "docker"),
    "podman": partial(docker.ContainerRuntime, "podman"),
    "slurm-enroot": slurm.SlurmRuntime,
}
KINDS = tuple(RUNTIMES)


@cache
def multi_node_kinds() -> tuple[str, ...]:
    """The kinds that place components on several nodes themselves (`places_components`)."""
    return tuple(k for k, make in RUNTIMES.items() if make().places_components)


def get_runtime(kind: str) -> Runtime:
    """The runtime for a runner's `runtime:` value; `InvalidJob` for an unknown kind."""
    try:
        factory = RUNTIMES[kind]
    except KeyError:
        raise InvalidJob(f"unknown runtime {kind!r}", hint=f"known: {', '.join(KINDS)}") from None
    return factory()
