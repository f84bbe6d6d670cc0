"""The `Runtime` interface: one way to run a `ServeSpec` (docker, podman, slurm, process).

A runtime is chosen by the runner's catalog entry (`Runner.runtime`). The runner calls, in
order: `dry_run` (only with --dry-run) or `preflight` → `launch` → (readiness, points on the
returned `Deployment`) → `Deployment.stop` in a `finally`. A runtime removes only what it
created itself: containers carry ixci labels with the job and run id and a unique name; Slurm
jobs are scancel'ed by their own id; processes are killed by their own process group.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ixci import ids
from ixci.engines.base import Component, ServeSpec, frozen_env

SUPERVISOR = Path(__file__).with_name("supervise.py")


@dataclass(frozen=True, kw_only=True)
class LaunchContext:
    """Where and how to launch: injected by the runner (only cli reads the environment).

    `gpu_indices` are the host devices this job may use (empty for `cpu`); `host_env` is the
    environment a `process` runtime starts from (PATH, HOME, ...); `model_cache` is a host
    folder mounted into containers at the same path (None: none). `owner` scopes what this
    runner may clean up (`runtimes.state.owner_scope` of RUNNER_NAME); `state_dir` is where
    process groups are recorded for `ixci cleanup` (None: not recorded). The run id and job id
    are checked here too (`ixci.ids`), whoever builds the context: they reach labels, names and
    the Slurm batch script.
    """

    job_id: str
    run_id: str
    attempt: int = 1
    vendor: str = "cpu"  # nvidia | amd | cpu
    gpu_indices: tuple[int, ...] = ()
    workdir: Path = Path(".")
    model_cache: str | None = None
    host_env: Mapping[str, str] = field(default_factory=frozen_env)
    pull: bool = False  # pull a missing image (else: fail preflight with class `image`)
    owner: str = "local"
    state_dir: Path | None = None
    parent: str = ""  # runtimes.state.process_token of the run-job (label ixci.parent)

    def __post_init__(self) -> None:
        ids.run_id(self.run_id)
        ids.stem(self.job_id, what="job id")
        ids.stem(self.owner, what="owner (runner name)")


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """What preflight resolved: the image launched and its content digest (None: no image)."""

    image: str | None
    digest: str | None
    runtime_version: str | None = None
    notes: tuple[str, ...] = ()


class Deployment(Protocol):
    """A launched ServeSpec. All methods are safe to call at any time, repeatedly."""

    @property
    def argv(self) -> tuple[str, ...]:
        """The exact argv that started the client-facing server (runtime wrapper included)."""
        ...

    def poll(self) -> int | None:
        """None while every component runs; else the exit code of the first one that died."""
        ...

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server log(s)."""
        ...

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop every component (SIGTERM, SIGKILL after `grace_s` seconds) and remove what
        this deployment created. Idempotent; never touches anything it did not create."""
        ...

    def leftovers(self) -> list[str]:
        """Ids of this deployment's processes/containers/jobs that still exist (for checks)."""
        ...

    def client_host(self) -> str | None:
        """The address the client-facing component listens on, when the runtime placed it on
        another machine; None while it is not placed yet, and always None for a runtime that
        runs every component on this host (`Runtime.places_components` False)."""
        ...


class Runtime(Protocol):
    """One way to run servers."""

    kind: str  # docker | podman | slurm | process
    # True: the runtime puts components on nodes itself and resolves their {host:X} and
    # {node_rank} placeholders; False: every component on this host (the runner localizes)
    places_components: bool
    # True: the engine's binaries run on this host, so its `version_argv` can be run here
    host_binaries: bool

    def dry_run(self, spec: ServeSpec, ctx: LaunchContext) -> str:
        """Every command `preflight` + `launch` + `stop` would run (and any batch script),
        as text, without running anything."""
        ...

    def preflight(self, spec: ServeSpec, ctx: LaunchContext) -> ImageInfo:
        """Check the runtime is usable and the image present (or pull it if `ctx.pull`);
        resolve its digest. Raises `PreflightFailed` or `ImageFailed`."""
        ...

    def launch(self, spec: ServeSpec, ctx: LaunchContext, *, log_path: Path) -> Deployment:
        """Start every component; server output goes to `log_path`. Returns at once (the
        runner does readiness). Raises `ServerStartFailed` if nothing could be started."""
        ...


def assign_gpus(
    components: Sequence[Component], gpu_indices: Sequence[int]
) -> list[tuple[int, ...]]:
    """Give each component its consecutive slice of `gpu_indices` (components needing 0 get ()).

    Raises ValueError when the components need more devices than the job was given.
    """
    need = sum(c.gpus for c in components)
    if need > len(gpu_indices):
        raise ValueError(f"deployment needs {need} GPUs but only {len(gpu_indices)} are available")
    out: list[tuple[int, ...]] = []
    pos = 0
    for comp in components:
        out.append(tuple(gpu_indices[pos : pos + comp.gpus]))
        pos += comp.gpus
    return out


def visible_devices_env(vendor: str, devices: Sequence[int]) -> dict[str, str]:
    """Environment selecting `devices` for one process (CUDA/HIP visible devices)."""
    if vendor == "cpu" or not devices:
        return {"CUDA_VISIBLE_DEVICES": ""} if vendor == "nvidia" else {}
    joined = ",".join(str(d) for d in devices)
    if vendor == "amd":
        return {"HIP_VISIBLE_DEVICES": joined, "ROCR_VISIBLE_DEVICES": joined}
    return {"CUDA_VISIBLE_DEVICES": joined}


def container_name(ctx: LaunchContext, component: Component) -> str:
    """A unique, recognisable container name: ixci-<job>-<run>-a<attempt>-<component>."""
    safe_run = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in ctx.run_id)[:40]
    return f"ixci-{ctx.job_id}-{safe_run}-a{ctx.attempt}-{component.name}"


def labels(ctx: LaunchContext) -> dict[str, str]:
    """Labels put on every container ixci creates (cleanup filters on them)."""
    return {
        "ixci.job": ctx.job_id,
        "ixci.run": ctx.run_id,
        "ixci.attempt": str(ctx.attempt),
        "ixci.managed": "true",
        "ixci.owner": ctx.owner,
        **({"ixci.parent": ctx.parent} if ctx.parent else {}),
    }


def supervised(
    argv: Sequence[str], *, grace_s: float = 5.0, orphan: Sequence[str] = ()
) -> list[str]:
    """`argv` wrapped in the supervisor (`runtimes/supervise.py`), which ends the whole process
    group when this process dies, even by SIGKILL, and then runs `orphan` (an argv, e.g.
    `docker rm -f NAME`). Spawn the result with `cmd.spawn` from the main thread."""
    return [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), f"{grace_s:g}",
            json.dumps(list(orphan)), "--", *argv]  # fmt: skip
