"""A tiny supervisor that ties a child process group to the life of `ixci run-job`.

    python supervise.py PARENT_PID GRACE_S ORPHAN_JSON -- ARGV...

Run by path (not `-m`), so it imports nothing from ixci and starts in milliseconds. It is the
leader of its own process group (`cmd.spawn` starts a new session) and:

* asks the kernel for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`, set here, in a
  single-threaded process: `preexec_fn` would be unsafe in `run-job`, which has threads), and
  exits at once if the parent is already gone (the pid it was given is no longer its parent);
* starts ARGV in the same process group (`posix_spawnp`, no shell) and exits with its exit code
  (128 + signal when it was killed), so the runner still sees crashes as before;
* on SIGTERM/SIGINT/SIGHUP while the parent lives (the runner's own stop signals the whole
  group): waits for the child; when the parent is gone (`kill -9` of run-job): SIGTERMs the
  group, SIGKILLs it after GRACE_S, and runs the ORPHAN_JSON command (an argv list, `[]` for
  none; e.g. `docker rm -f NAME`) so nothing of the job outlives it.

The parent-death signal fires when the *thread* that spawned the supervisor exits: the
runner spawns from its main thread, which lives as long as run-job does.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
EXIT_PARENT_GONE = 125


def _pdeathsig(sig: int) -> None:
    """Ask the kernel to send `sig` when the parent thread dies (Linux; no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal number."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _reap_group(grace_s: float, orphan: list[str]) -> None:
    """SIGTERM our group (except ourselves), SIGKILL it after `grace_s`, run the orphan command."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group signal reaches us too
    pgid = os.getpgrp()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _children_alive():
        time.sleep(0.1)
    if orphan:
        try:
            pid = os.posix_spawnp(orphan[0], orphan, dict(os.environ))
            os.waitpid(pid, 0)
        except OSError:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # ends us too: nothing of the group survives


def _children_alive() -> bool:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True if pid == 0 else _children_alive()


def main(argv: list[str]) -> int:
    """Supervise `argv` after `--`; see the module docstring for the contract."""
    parent, grace_s, orphan = int(argv[1]), float(argv[2]), list(json.loads(argv[3]))
    command = argv[argv.index("--") + 1 :]
    state = {"stopping": False}

    def on_signal(_signum: int, _frame: object) -> None:
        if os.getppid() != parent:
            _reap_group(grace_s, orphan)
            os._exit(EXIT_PARENT_GONE)
        state["stopping"] = True  # the runner's own stop: the child got the same signal

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    _pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return EXIT_PARENT_GONE
    try:
        child = os.posix_spawnp(command[0], command, dict(os.environ))
    except OSError as exc:
        print(f"ixci: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
        return 127
    while True:
        try:
            _, status = os.waitpid(child, 0)
            return _exit_code(status)
        except ChildProcessError:
            return 1
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv))
