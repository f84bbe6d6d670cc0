"""The one choke point for running external commands (argv lists only, never a shell).

Every call is echoed to the logger; a failure raises `CommandFailed` carrying argv, return
code, stdout and stderr. Long-running children (servers) are started with `spawn`, which puts
them in their own process group so cleanup can signal the whole tree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from ixci.errors import CommandFailed

log = logging.getLogger("ixci.cmd")


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, str):  # a shell string would be a security hole
        raise TypeError("argv must be a list of strings, not a shell string")
    out = [str(a) for a in argv]
    if not out:
        raise ValueError("empty argv")
    return out


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to completion and capture its output as text."""
    args = _check_argv(argv)
    log.debug("+ %s", " ".join(args))
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            input=input,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(args, 127, "", str(exc)) from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise CommandFailed(args, 124, out, err + f"\ntimed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = subprocess.STDOUT,
    stdin: IO[bytes] | int | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new process group (session) and return the handle."""
    args = _check_argv(argv)
    log.debug("+ (background) %s", " ".join(args))
    try:
        return subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(args, 127, "", str(exc)) from exc


def terminate_group(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> int | None:
    """SIGTERM the process group of `proc`, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # stray children of a dead leader
        return proc.returncode
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=grace)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def which(name: str) -> str | None:
    """Locate an executable on PATH (no shell)."""
    from shutil import which as _which

    return _which(name)
