"""The `process` runtime: run each component as a local process (no container).

Each component gets its own process group (session) so stop can signal the whole tree, and
its own slice of GPUs through CUDA/HIP_VISIBLE_DEVICES. All components append to one log file.
Each component runs under the supervisor (`runtimes/supervise.py`), so `kill -9` of run-job
still ends the engine (it would otherwise keep its port and GPUs), and each group is recorded
in the state directory (`runtimes.state`) until it is stopped, for `ixci cleanup`.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ixci import cmd
from ixci.engines.base import Component, ServeSpec
from ixci.errors import PreflightFailed, ServerStartFailed
from ixci.runtimes import state
from ixci.runtimes.base import (
    ImageInfo,
    LaunchContext,
    assign_gpus,
    supervised,
    visible_devices_env,
)


def component_env(ctx: LaunchContext, comp: Component, devices: tuple[int, ...]) -> dict[str, str]:
    """Host env + the device selection + the component's env (the component wins)."""
    env = dict(ctx.host_env)
    env.update(visible_devices_env(ctx.vendor, devices))
    env.update(comp.env)
    return env


def _which(name: str, env: Mapping[str, str]) -> str | None:
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    from shutil import which

    return which(name, path=env.get("PATH"))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessDeployment:
    """Local processes of one ServeSpec; implements `runtimes.base.Deployment`."""

    def __init__(self, procs: list[tuple[Component, Any]], log_path: Path, log: IO[bytes]) -> None:
        self._procs = procs
        self._log_path = log_path
        self._log = log
        self._stopped = False
        self.records: list[Path | None] = []

    @property
    def argv(self) -> tuple[str, ...]:
        """The client-facing component's argv."""
        return tuple(self._procs[0][0].argv)

    @property
    def pids(self) -> list[int]:
        """Process (and process group) ids of the components."""
        return [int(p.pid) for _, p in self._procs]

    def poll(self) -> int | None:
        """Exit code of the first component that died, else None."""
        for _, proc in self._procs:
            rc = proc.poll()
            if rc is not None:
                return int(rc)
        return None

    def log_tail(self, lines: int = 40) -> str:
        """Last `lines` lines of the shared log."""
        return log_tail(self._log_path, lines)

    def stop(self, *, grace_s: float = 10.0) -> None:
        """SIGTERM each process group (reverse start order), SIGKILL after `grace_s`."""
        for _, proc in reversed(self._procs):
            cmd.terminate_group(proc, grace=grace_s)
        for record in self.records:
            state.forget_group(record)
        if not self._stopped:
            self._stopped = True
            self._log.close()

    def client_host(self) -> None:
        """None: every component runs on this host (`places_components` is False)."""
        return None

    def leftovers(self) -> list[str]:
        """Process groups of this deployment that still have a live member."""
        return [f"pgid:{pid}" for pid in self.pids if _group_alive(pid)]


def log_tail(path: Path, lines: int = 40, *, max_bytes: int = 65536) -> str:
    """The last `lines` lines of a (possibly large, possibly binary) log file."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class ProcessRuntime:
    """Runs components as host processes. `kind = "process"`."""

    kind = "process"
    places_components = False  # every component on this host
    host_binaries = True  # the engine is a program of this host

    def dry_run(self, spec: ServeSpec, ctx: LaunchContext) -> str:
        """The commands `launch` would start, with their added environment."""
        out = []
        for comp, devices in zip(
            spec.components, assign_gpus(spec.components, ctx.gpu_indices), strict=True
        ):
            env = {**visible_devices_env(ctx.vendor, devices), **comp.env}
            prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
            out.append(f"# {comp.name}\n{prefix + ' ' if prefix else ''}{shlex.join(comp.argv)}")
        for name in sorted(spec.files):
            out.append(f"# file {spec.files_dir}/{name}\n{spec.files[name]}")
        return "\n".join(out)

    def preflight(self, spec: ServeSpec, ctx: LaunchContext) -> ImageInfo:
        """Every component's executable must be on PATH; GPUs must suffice."""
        for comp in spec.components:
            if _which(comp.argv[0], ctx.host_env) is None:
                raise PreflightFailed(
                    f"`{comp.argv[0]}` (component {comp.name}) is not on PATH",
                    hint="install the engine on the runner or use a container runtime",
                )
        try:
            assign_gpus(spec.components, ctx.gpu_indices)
        except ValueError as exc:
            raise PreflightFailed(str(exc)) from exc
        notes = (f"process runtime: image {spec.image} not used",) if spec.image else ()
        return ImageInfo(image=None, digest=None, notes=notes)

    def launch(self, spec: ServeSpec, ctx: LaunchContext, *, log_path: Path) -> ProcessDeployment:
        """Start every component now; raise `ServerStartFailed` if one cannot be executed."""
        write_files(spec)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        procs: list[tuple[Component, Any]] = []
        deployment = ProcessDeployment(procs, log_path, log)
        try:
            for comp, devices in zip(
                spec.components, assign_gpus(spec.components, ctx.gpu_indices), strict=True
            ):
                log.write(
                    f"# ixci: {time.strftime('%H:%M:%S')} start {comp.name}: {shlex.join(comp.argv)}\n".encode()
                )
                log.flush()
                proc = cmd.spawn(
                    supervised(comp.argv),
                    env=component_env(ctx, comp, devices),
                    stdout=log,
                    cwd=ctx.workdir,
                )
                procs.append((comp, proc))
                deployment.records.append(
                    state.record_group(ctx.state_dir, pid=proc.pid, owner=ctx.owner,
                                       job=ctx.job_id, run=ctx.run_id, what=f"server {comp.name}")
                )  # fmt: skip
        except Exception as exc:
            deployment.stop(grace_s=2.0)
            raise ServerStartFailed(f"could not start the server: {exc}") from exc
        return deployment


def write_files(spec: ServeSpec) -> None:
    """Write the spec's config files into `spec.files_dir` (created if needed)."""
    if not spec.files or spec.files_dir is None:
        return
    folder = Path(spec.files_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in spec.files.items():
        (folder / name).write_text(text)
