"""`ixci cleanup`: remove what a killed job of this runner left on its host — and nothing else.

A job normally removes everything it started (`runner.JobRun._cleanup`, also on cancellation).
When `run-job` itself was killed (SIGKILL after the runner's grace, a host crash, an OOM kill),
the next job on that host runs this first. It finds only things that carry ixci's marks *and*
this runner's owner scope (`runtimes.state.owner_scope` of RUNNER_NAME), so two runners on one
host never reap each other:

* containers (docker and podman) labelled `ixci.managed=true` and `ixci.owner=<owner>`;
* process groups recorded in the state directory by the `process` runtime and the load driver,
  checked by pid + start time + boot id (`runtimes.state.GroupRecord.members`);
* Slurm jobs of this user named `ixci-…` whose comment carries `ixci.owner=<owner>`.

Everything else — unlabelled containers, processes never recorded, other users' or other
runners' Slurm jobs — is left alone, and so is anything whose run-job is still alive on this
host (label/record `ixci.parent`, a pid + start time + boot token): that job is running, not
left over. `dry_run` lists what would be removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ixci import cmd
from ixci.errors import CommandFailed
from ixci.runtimes import state
from ixci.runtimes.slurm import JOB_NAME_PREFIX

CONTAINER_ENGINES = ("docker", "podman")


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """One thing to remove: its kind (container/group/slurm/record), id and a description."""

    kind: str
    ident: str
    detail: str
    engine: str = ""  # docker | podman for containers
    record: Path | None = None  # the state record of a process group

    def line(self) -> str:
        """One line for the log."""
        return f"{self.kind} {self.ident}: {self.detail}"


@dataclass(frozen=True, kw_only=True)
class CleanupOptions:
    """Whose leftovers to look for, where, and how long a group gets between TERM and KILL."""

    owner: str
    state_dir: Path
    env: Mapping[str, str]
    engines: Sequence[str] = CONTAINER_ENGINES
    slurm: bool = True
    grace_s: float = 5.0


def find(opts: CleanupOptions) -> tuple[list[Leftover], list[str]]:
    """Everything of `opts.owner` left on this host, and notes on what could not be checked."""
    found: list[Leftover] = []
    notes: list[str] = []
    for engine in opts.engines:
        found += _containers(engine, opts, notes)
    found += _groups(opts, notes)
    if opts.slurm:
        found += _slurm_jobs(opts, notes)
    return found, notes


def remove(items: Sequence[Leftover], opts: CleanupOptions) -> list[str]:
    """Remove `items`; returns one message per item that could not be removed."""
    failures: list[str] = []
    for item in items:
        try:
            _remove(item, opts)
        except (CommandFailed, OSError) as exc:
            failures.append(f"{item.line()}: {exc}")
    return failures


def _remove(item: Leftover, opts: CleanupOptions) -> None:
    if item.kind == "container":
        cmd.run([item.engine, "rm", "-f", item.ident], env=opts.env, timeout=120)
    elif item.kind == "slurm":
        cmd.run(["scancel", item.ident], env=opts.env, timeout=60)
    elif item.kind == "group":
        _kill_group(int(item.ident), opts.grace_s)
    if item.record is not None:
        state.forget_group(item.record)


# ----------------------------------------------------------------------------- containers


def _listing(argv: list[str], what: str, opts: CleanupOptions, notes: list[str]) -> list[str]:
    """The output lines of a listing command; none (and a note) when it cannot run here."""
    try:
        return cmd.run(argv, env=opts.env, timeout=60).stdout.splitlines()
    except CommandFailed as exc:
        notes.append(f"{what}: not checked ({exc.message.splitlines()[-1]})")
        return []


def _containers(engine: str, opts: CleanupOptions, notes: list[str]) -> list[Leftover]:
    argv = [engine, "ps", "-a", "--filter", "label=ixci.managed=true",
            "--filter", f"label=ixci.owner={opts.owner}", "--format", "{{.ID}} {{.Names}}"]  # fmt: skip
    lines = _listing(argv, engine, opts, notes)
    out = []
    for line in lines:
        ident, _, name = line.strip().partition(" ")
        if not ident:
            continue
        if state.token_alive(_container_parent(engine, ident, opts)):
            notes.append(f"{engine} container {name}: its run-job is still running; left alone")
            continue
        out.append(Leftover(kind="container", ident=ident, detail=f"{engine} container {name}",
                            engine=engine))  # fmt: skip
    return out


def _container_parent(engine: str, ident: str, opts: CleanupOptions) -> str:
    argv = [engine, "inspect", "--format", '{{index .Config.Labels "ixci.parent"}}', ident]
    res = cmd.run(argv, env=opts.env, timeout=60, check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


# ----------------------------------------------------------------------------- process groups


def _groups(opts: CleanupOptions, notes: list[str]) -> list[Leftover]:
    out = []
    for path, rec in state.read_groups(opts.state_dir, opts.owner):
        if rec is not None and rec.running:
            notes.append(f"group {rec.pid} ({rec.what} of job {rec.job}): its run-job is still "
                         "running; left alone")  # fmt: skip
            continue
        members = rec.members() if rec is not None else []
        if rec is None or not members:
            out.append(Leftover(kind="record", ident=path.name, detail="stale record (nothing "
                                "of it runs any more)", record=path))  # fmt: skip
            continue
        detail = f"{rec.what} of job {rec.job} run {rec.run} (pids {', '.join(map(str, members))})"
        out.append(Leftover(kind="group", ident=str(rec.pid), detail=detail, record=path))
    return out


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the group, SIGKILL what is left after `grace_s` seconds."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and state.group_members(pgid):
        time.sleep(0.1)
    if state.group_members(pgid):
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# ----------------------------------------------------------------------------- Slurm


def _slurm_jobs(opts: CleanupOptions, notes: list[str]) -> list[Leftover]:
    argv = ["squeue", "--me", "--noheader", "--format", "%i|%j|%k"]
    lines = _listing(argv, "slurm", opts, notes)
    out = []
    for line in lines:
        ident, _, rest = line.strip().partition("|")
        name, _, comment = rest.partition("|")
        labels = dict(kv.split("=", 1) for kv in comment.split(",") if "=" in kv)
        ours = (
            name.startswith(JOB_NAME_PREFIX)
            and labels.get("ixci.managed") == "true"
            and labels.get("ixci.owner") == opts.owner
        )
        if ours and state.token_alive(labels.get("ixci.parent", "")):
            notes.append(f"Slurm job {ident}: its run-job is still running; left alone")
        elif ours and ident.replace("_", "").isdigit():
            detail = f"Slurm job {name} (run {labels.get('ixci.run', '?')})"
            out.append(Leftover(kind="slurm", ident=ident, detail=detail))
    return out
