"""The `docker` and `podman` runtimes: each component in its own container.

argv lists only. Every container gets `--network host` (the server's port on the host
loopback), `--ipc host` (NCCL/torch shared memory), the model cache and the spec's files
folder mounted at the same paths, a unique name `ixci-<job>-<run>-a<attempt>-<component>` and
labels `ixci.job/run/attempt/managed/owner` (`ixci cleanup` removes a killed job's containers by
them). GPUs: NVIDIA `--gpus device=0,1` (docker) or CDI
`--device nvidia.com/gpu=0` (podman); AMD `--device /dev/kfd --device /dev/dri --group-add
video` with HIP_VISIBLE_DEVICES. Containers are not `--rm`, so a crashed server's exit code and
log survive until `stop`, which removes exactly this deployment's containers by name.
Each container's log follower (`docker logs -f`) runs under the supervisor
(`runtimes/supervise.py`): when run-job dies, even by SIGKILL, it runs `docker rm -f NAME`.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import IO, Any

from ixci import cmd
from ixci.engines.base import Component, ServeSpec
from ixci.errors import CommandFailed, ImageFailed, PreflightFailed, ServerStartFailed
from ixci.runtimes.base import (
    ImageInfo,
    LaunchContext,
    assign_gpus,
    container_name,
    labels,
    supervised,
    visible_devices_env,
)
from ixci.runtimes.process import log_tail, write_files


def gpu_flags(engine: str, vendor: str, devices: tuple[int, ...]) -> list[str]:
    """Device flags for one container."""
    if vendor == "nvidia" and devices:
        ids = ",".join(str(d) for d in devices)
        if engine == "podman":
            return [f for d in devices for f in ("--device", f"nvidia.com/gpu={d}")]
        # docker parses --gpus as CSV: a device list must be quoted inside the value
        # (`--gpus '"device=0,1"'` in a shell), else "1" is read as a second field.
        return ["--gpus", f'"device={ids}"' if len(devices) > 1 else f"device={ids}"]
    if vendor == "amd" and devices:
        return [
            "--device",
            "/dev/kfd",
            "--device",
            "/dev/dri",
            "--group-add",
            "video",
            "--security-opt",
            "seccomp=unconfined",
        ]
    return []


def run_argv(
    engine: str, spec: ServeSpec, ctx: LaunchContext, comp: Component, devices: tuple[int, ...]
) -> list[str]:
    """The full `docker run -d ...` argv of one component."""
    argv = [
        engine,
        "run",
        "-d",
        "--name",
        container_name(ctx, comp),
        "--network",
        "host",
        "--ipc",
        "host",
    ]
    for key, value in labels(ctx).items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--label", f"ixci.component={comp.name}"]
    argv += gpu_flags(engine, ctx.vendor, devices)
    for mount in mounts(spec, ctx):
        argv += ["-v", mount]
    env = {**visible_devices_env(ctx.vendor, devices), **comp.env}
    if ctx.vendor == "nvidia" and engine == "docker":
        env.pop("CUDA_VISIBLE_DEVICES", None)  # --gpus already renumbers the devices from 0
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    assert spec.image, "container runtimes need an image"
    return [*argv, spec.image, *comp.argv]


def mounts(spec: ServeSpec, ctx: LaunchContext) -> list[str]:
    """Bind mounts (same path inside): model cache, files folder, extra mounts, and the model's
    own folder (read-only) unless one of the others already covers it."""
    paths = [
        p for p in (ctx.model_cache, spec.files_dir if spec.files else None, *spec.mounts) if p
    ]
    out = list(dict.fromkeys(f"{p}:{p}" for p in paths))
    model = Path(spec.model_path)
    if model.is_absolute() and model.exists():
        folder = model if model.is_dir() else model.parent
        if not any(folder == Path(p) or Path(p) in folder.parents for p in paths):
            out.append(f"{folder}:{folder}:ro")
    return out


class ContainerDeployment:
    """The containers of one ServeSpec; implements `runtimes.base.Deployment`."""

    def __init__(self, engine: str, names: list[str], argv0: list[str], log_path: Path) -> None:
        self.engine = engine
        self.names = names
        self._argv = tuple(argv0)
        self.log_path = log_path
        self._followers: list[tuple[Any, IO[bytes]]] = []
        self._stopped = False

    @property
    def argv(self) -> tuple[str, ...]:
        """The `docker run` argv of the client-facing container."""
        return self._argv

    def follow_logs(self) -> None:
        """Stream every container's output into the shared log (`docker logs -f`)."""
        for name in self.names:
            out = self.log_path.open("ab")
            argv = supervised(
                [self.engine, "logs", "-f", name], orphan=[self.engine, "rm", "-f", name]
            )
            self._followers.append((cmd.spawn(argv, stdout=out), out))

    def poll(self) -> int | None:
        """Exit code of the first container that stopped, else None."""
        for name in self.names:
            res = cmd.run(
                [self.engine, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name],
                check=False,
                timeout=30,
            )
            parts = res.stdout.split()
            if res.returncode != 0:
                return -1  # vanished
            if parts and parts[0] == "false":
                return int(parts[1]) if len(parts) > 1 else -1
        return None

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the containers' log."""
        return log_tail(self.log_path, lines)

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop (SIGTERM, SIGKILL after grace) and remove exactly this deployment's containers."""
        for name in reversed(self.names):
            cmd.run(
                [self.engine, "stop", "-t", str(int(grace_s)), name],
                check=False,
                timeout=grace_s + 60,
            )
            cmd.run([self.engine, "rm", "-f", name], check=False, timeout=60)
        for proc, out in self._followers:
            cmd.terminate_group(proc, grace=2.0)
            out.close()
        self._followers = []
        self._stopped = True

    def client_host(self) -> None:
        """None: every component runs on this host (`places_components` is False)."""
        return None

    def leftovers(self) -> list[str]:
        """This deployment's containers that still exist."""
        res = cmd.run([self.engine, "ps", "-a", "--format", "{{.Names}}"], check=False, timeout=30)
        existing = set(res.stdout.split())
        return [n for n in self.names if n in existing]


class ContainerRuntime:
    """docker or podman (`kind`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.places_components = False  # every container on this host
        self.host_binaries = False  # the engine is inside the image

    def dry_run(self, spec: ServeSpec, ctx: LaunchContext) -> str:
        """Every command preflight, launch and stop would run."""
        lines = [
            shlex.join([self.kind, "version", "--format", "{{.Server.Version}}"]),
            shlex.join([self.kind, "image", "inspect", str(spec.image)]),
        ]
        if ctx.pull:
            lines.append(shlex.join([self.kind, "pull", str(spec.image)]))
        for comp, devices in zip(
            spec.components, assign_gpus(spec.components, ctx.gpu_indices), strict=True
        ):
            lines.append(shlex.join(run_argv(self.kind, spec, ctx, comp, devices)))
        for comp in spec.components:
            name = container_name(ctx, comp)
            lines += [
                shlex.join([self.kind, "stop", "-t", "10", name]),
                shlex.join([self.kind, "rm", "-f", name]),
            ]
        for name in sorted(spec.files):
            lines.append(f"# file {spec.files_dir}/{name}\n{spec.files[name]}")
        return "\n".join(lines)

    def preflight(self, spec: ServeSpec, ctx: LaunchContext) -> ImageInfo:
        """The daemon answers; the image is present (pulled if allowed); its digest resolved."""
        if not spec.image:
            raise PreflightFailed(f"the {self.kind} runtime needs an image; the recipe has none")
        try:
            version = cmd.run(
                [self.kind, "version", "--format", "{{.Server.Version}}"], timeout=60
            ).stdout.strip()
        except CommandFailed as exc:
            raise PreflightFailed(
                f"{self.kind} is not usable: {exc.message}", hint=f"start the {self.kind} daemon"
            ) from exc
        info = self._inspect(spec.image)
        if info is None and ctx.pull:
            try:
                cmd.run([self.kind, "pull", spec.image], timeout=3600)
            except CommandFailed as exc:
                raise ImageFailed(f"cannot pull {spec.image}: {exc.message}") from exc
            info = self._inspect(spec.image)
        if info is None:
            raise ImageFailed(
                f"image {spec.image} is not present on this host",
                hint="pre-pull it on the runner or pass --pull",
            )
        return ImageInfo(image=spec.image, digest=info, runtime_version=f"{self.kind} {version}")

    def _inspect(self, image: str) -> str | None:
        res = cmd.run(
            [self.kind, "image", "inspect", "--format", "{{json .RepoDigests}}|{{.Id}}", image],
            check=False,
            timeout=60,
        )
        if res.returncode != 0:
            return None
        digests_json, _, image_id = res.stdout.strip().partition("|")
        try:
            digests = json.loads(digests_json) or []
        except ValueError:
            digests = []
        for ref in digests:  # a registry digest identifies the image anywhere
            if "@" in ref:
                return str(ref.split("@", 1)[1])
        return image_id.strip() or None  # a local build: its content-addressed image id

    def launch(self, spec: ServeSpec, ctx: LaunchContext, *, log_path: Path) -> ContainerDeployment:
        """Create and start every container; the logs are streamed into `log_path`."""
        write_files(spec)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        names = [container_name(ctx, c) for c in spec.components]
        argvs = [
            run_argv(self.kind, spec, ctx, c, d)
            for c, d in zip(
                spec.components, assign_gpus(spec.components, ctx.gpu_indices), strict=True
            )
        ]
        dep = ContainerDeployment(self.kind, [], argvs[0], log_path)
        with log_path.open("ab") as log:
            for name, argv in zip(names, argvs, strict=True):
                log.write(f"# ixci: {time.strftime('%H:%M:%S')} {shlex.join(argv)}\n".encode())
                try:
                    cmd.run(argv, timeout=300)
                except CommandFailed as exc:
                    dep.names.append(name)  # may exist in "created" state
                    dep.stop(grace_s=2.0)
                    raise ServerStartFailed(
                        f"{self.kind} run failed for {name}: {exc.message}"
                    ) from exc
                dep.names.append(name)
        dep.follow_logs()
        return dep
