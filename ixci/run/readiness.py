"""Is the server up and really generating? HTTP probes, the readiness wait, the engine's
version, and where a runtime placed the client-facing component.

Readiness is a real one-token completion in the engine's dialect, not a health endpoint: an
engine can answer `/health` long before it can generate. Every wait is bounded and returns at
once on cancellation (`ixci.run.cancel`); a server that exits meanwhile fails with its log tail.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace

from ixci import cmd
from ixci.engines.base import ServeSpec
from ixci.errors import Cancelled, CommandFailed, JobFailure, NotReady, ServerStartFailed
from ixci.loadgen.dialect import Endpoint, request_body
from ixci.run.cancel import interruptible
from ixci.run.cancel import reason as _reason
from ixci.runtimes.base import Deployment


def http_get(url: str | urllib.request.Request, *, timeout: float) -> tuple[int, bytes]:
    """GET `url` (or send the request `url`) → (status, body); status 0 when the server cannot
    be reached."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read() or b""
    except (OSError, ValueError):
        return 0, b""


def one_token(spec: ServeSpec, *, timeout: float) -> tuple[int, bytes]:
    """A real one-token streaming completion in the engine's dialect → (status, body)."""
    endpoint = spec.dialect.endpoint_for(Endpoint.COMPLETIONS)
    body = request_body(
        spec.dialect, endpoint=endpoint, model=spec.model_name, prompt="Hello", max_tokens=1
    )
    req = urllib.request.Request(
        spec.base_url + spec.dialect.path(endpoint),
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return http_get(req, timeout=timeout)


def server_exited(dep: Deployment, what: str, cls: type[JobFailure]) -> JobFailure:
    rc = dep.poll()
    return cls(f"server {what} (exit code {rc}); last log lines:\n{dep.log_tail(25)}")


def wait_ready(
    dep: Deployment, spec: ServeSpec, *, timeout_s: float, cancel: threading.Event
) -> float:
    """Health endpoint, then a real one-token completion; seconds taken.

    Raises `ServerStartFailed` at once if the server dies, `NotReady` after `timeout_s`,
    `Cancelled` if cancelled.
    """
    with interruptible(cancel):
        return _wait_ready(dep, spec, timeout_s=timeout_s, cancel=cancel)


def _wait_ready(
    dep: Deployment, spec: ServeSpec, *, timeout_s: float, cancel: threading.Event
) -> float:
    start = time.monotonic()
    deadline = start + timeout_s
    healthy = False
    last = ""
    while time.monotonic() < deadline:
        if cancel.is_set():
            raise Cancelled(f"{_reason(cancel)} while waiting for the server to become ready")
        if dep.poll() is not None:
            raise server_exited(dep, "exited before becoming ready", ServerStartFailed)
        if not healthy:
            status, _ = http_get(spec.base_url + spec.health_path, timeout=5)
            healthy = status == 200
            last = f"health {spec.health_path} → {status or 'no answer'}"
        if healthy:
            status, body = one_token(spec, timeout=max(5.0, min(60.0, deadline - time.monotonic())))
            if (status == 200 and b"data:" in body) or (status == 200 and b"choices" in body):
                return time.monotonic() - start
            last = f"one-token completion → {status or 'no answer'} {body[:200]!r}"
        cancel.wait(0.5)
    raise NotReady(
        f"server not ready after {timeout_s:.0f} s ({last}); last log lines:\n{dep.log_tail(25)}",
        hint="raise the timeout only if the model really needs longer to load",
    )


def engine_version(spec: ServeSpec, host_binaries: bool, host_env: Mapping[str, str]) -> str | None:
    """The version the server reports (version endpoint), else its binary's when the runtime
    runs the engine's binaries on this host (`Runtime.host_binaries`)."""
    if spec.version_path:
        status, body = http_get(spec.base_url + spec.version_path, timeout=10)
        if status == 200:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                for key in ("version", "build_info", "server_version"):
                    if data.get(key):
                        return str(data[key])
    if spec.version_argv and host_binaries:
        try:
            out = cmd.run(spec.version_argv, env=dict(host_env), timeout=60, check=False)
        except CommandFailed:
            return None
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0].strip() if text else None
    return None


def placed_serve(
    dep: Deployment,
    spec: ServeSpec,
    *,
    places_components: bool,
    timeout_s: float,
    cancel: threading.Event,
) -> ServeSpec:
    """`spec` with the host where the runtime placed the client-facing component.

    A runtime that places components on other machines (Slurm) reports it through the
    deployment's `client_host()` (None while the job is pending); for one that runs every
    component on this host (`places_components` False) `spec` is returned as is. Raises like
    `wait_ready` meanwhile.
    """
    if not places_components:
        return spec
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cancel.is_set():
            raise Cancelled(f"{_reason(cancel)} while waiting for the deployment to be placed")
        host = dep.client_host()
        if host:
            return replace(spec, host=str(host))
        if dep.poll() is not None:
            raise server_exited(dep, "exited before it was placed", ServerStartFailed)
        cancel.wait(0.5)
    raise NotReady(f"deployment not placed on nodes after {timeout_s:.0f} s (still queued?)")
