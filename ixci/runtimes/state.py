"""What a job leaves on its host, recorded so a later `ixci cleanup` can find it after `kill -9`.

Containers and Slurm jobs carry ixci's labels (`runtimes.base.labels`): the runtime itself is
the record. Host processes cannot carry labels, so the `process` runtime and the load driver
write one small JSON file per process group they start into the state directory
(`$XDG_STATE_HOME/ixci/groups`, else `~/.local/state/ixci/groups`) and remove it when they
stop the group. A record holds the group leader's pid *and its start time* (field 22 of
`/proc/<pid>/stat`, clock ticks since boot) and the boot id: a pid reused by an unrelated
process after a reboot or wrap-around has another start time or boot id and is never signalled.
When the leader is gone but members of its group remain (same boot), the group id cannot have
been reused meanwhile (the kernel keeps a pid number while a group uses it), so those members are
the job's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OWNER_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def owner_scope(value: str | None) -> str:
    """The owner label of this runner (`RUNNER_NAME`), made safe for labels, Slurm comments and
    file names: characters outside A-Z a-z 0-9 . _ - become `-`, at most 64; `local` when unset.
    Two runners on one host have different names, so neither reaps the other's leftovers."""
    text = OWNER_UNSAFE.sub("-", value or "").strip("-.")[:64]
    return text or "local"


def state_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/ixci`, else `$HOME/.local/state/ixci` (XDG base directory spec)."""
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or "/tmp") / ".local" / "state")
    return Path(base) / "ixci"


def boot_id() -> str:
    """This boot's id (`/proc/sys/kernel/random/boot_id`; empty where unavailable)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    return stat[stat.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Pids of live processes whose process group is `pgid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                out.append(int(entry.name))
    return sorted(out)


def process_token(pid: int) -> str:
    """`pid.starttime.boot` naming one process of this boot (e.g. the run-job that started a
    container), safe in labels; "" when `pid` is gone."""
    started = start_time(pid)
    return f"{pid}.{started}.{boot_id()[:8]}" if started is not None else ""


def token_alive(token: str) -> bool:
    """True when the process a `process_token` names still runs on this host (same pid, same
    start time, same boot). A job whose run-job is alive is not a leftover: it is running."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return False
    return parts[2] == boot_id()[:8] and start_time(int(parts[0])) == int(parts[1])


def start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (None: no such process)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True, kw_only=True)
class GroupRecord:
    """One process group started by ixci: leader pid (= pgid), its start time, and whose."""

    pid: int
    started: int
    owner: str
    job: str
    run: str
    what: str  # e.g. "server llama-server", "load generator"
    boot: str = ""
    parent: str = ""  # process_token of the run-job that started the group

    @property
    def running(self) -> bool:
        """True while the run-job that started the group is alive (not a leftover)."""
        return token_alive(self.parent)

    def members(self) -> list[int]:
        """Live processes of this job's group, [] when none or when the ids were reused:
        the leader must have its recorded start time, or be gone with members left in the
        group during the same boot."""
        if self.boot != boot_id():
            return []
        started = start_time(self.pid)
        if started is not None and started != self.started:
            return []  # the pid now belongs to another process
        return group_members(self.pid)

    def to_json(self) -> str:
        """The record as one JSON object."""
        return json.dumps(self.__dict__, sort_keys=True)


def _groups(root: Path) -> Path:
    return root / "groups"


def record_group(
    root: Path | None, *, pid: int, owner: str, job: str, run: str, what: str
) -> Path | None:
    """Write the record of the group led by `pid`, started by this process (its run-job, named in
    the record so cleanup leaves running jobs alone); its path, or None when `root` is None,
    `pid` is gone or the folder cannot be written."""
    started = start_time(pid)
    if root is None or started is None:
        return None
    folder = _groups(root)
    rec = GroupRecord(pid=pid, started=started, owner=owner, job=job, run=run, what=what,
                      boot=boot_id(), parent=process_token(os.getpid()))  # fmt: skip
    path = folder / f"{owner}.{pid}.{started}.json"
    tmp = path.with_suffix(".tmp")
    try:  # best effort: an unwritable state folder must not stop the job (the supervisor still
        # ends the group with run-job; only a later `ixci cleanup` could not find it)
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(rec.to_json())
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def forget_group(path: Path | None) -> None:
    """Remove a record written by `record_group` (its group was stopped)."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def read_groups(root: Path, owner: str) -> list[tuple[Path, GroupRecord | None]]:
    """Every record of `owner` under `root` (None for an unreadable/malformed one)."""
    out: list[tuple[Path, GroupRecord | None]] = []
    folder = _groups(root)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob(f"{owner}.*.json")):
        try:
            data = json.loads(path.read_text())
            keys = ("pid", "started", "owner", "job", "run", "what", "boot")
            rec = GroupRecord(**{k: data[k] for k in keys}, parent=str(data.get("parent", "")))
            ok = isinstance(rec.pid, int) and isinstance(rec.started, int) and rec.pid > 1
        except (OSError, ValueError, KeyError, TypeError):
            rec, ok = None, False
        out.append((path, rec if ok and rec is not None and rec.owner == owner else None))
    return out
