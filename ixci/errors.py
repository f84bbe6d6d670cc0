"""One exception tree for every expected failure; each class carries its exit code.

`cli.main` catches `IxciError`, prints its message (no traceback unless --debug) and
exits with `exit_code`. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


class IxciError(Exception):
    """Base of all expected failures. Raise a subclass: each has its own exit code, and 1 is
    kept for internal errors (tests/infra/test_layers.py checks both)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


INTERNAL_EXIT = 1  # an unexpected exception: a bug in ixci


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One pointed problem in an input file."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidInput(IxciError):
    """A catalog, profile, plan or artifact that fails validation (all problems at once)."""

    exit_code = 3

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        self.problems = problems
        text = message or "\n".join(p.render() for p in problems)
        super().__init__(text)


class UnsafeValue(IxciError):
    """An untrusted value (run id, job id, date, file name) that may not become a path or ref."""

    exit_code = 3


class UsageError(IxciError):
    """Bad command-line options that click could not catch."""

    exit_code = 2


class PlanError(IxciError):
    """The plan cannot be produced or dispatched (e.g. shard capacity exceeded)."""

    exit_code = 4


class CommandFailed(IxciError):
    """An external command failed; carries argv, return code and output."""

    exit_code = 5

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip().splitlines()[-10:]
        super().__init__(
            f"command failed (exit {returncode}): {' '.join(argv)}"
            + ("\n" + "\n".join(tail) if tail else "")
        )


class CollectError(IxciError):
    """Collecting or aggregating artifacts failed as a whole."""

    exit_code = 6


class PublishError(IxciError):
    """Publishing to the results branch failed (after retries)."""

    exit_code = 7


class RemoteLocked(PublishError):
    """The remote branch's ref lock stayed in place over several tries (a stale lock file)."""


class StorageError(IxciError):
    """A file could not be written: the disk is full, or the folder is read-only or not ours."""

    exit_code = 9


_STORAGE_HINTS = {
    errno.ENOSPC: "free space on that file system (or point the output elsewhere), then rerun",
    errno.EDQUOT: "the disk quota is used up: free space, then rerun",
    errno.EROFS: "the file system is mounted read-only: choose a writable folder",
    errno.EACCES: "the folder is not writable by this user: choose a writable folder",
    errno.EPERM: "the folder is not writable by this user: choose a writable folder",
}
STORAGE_ERRNOS = frozenset(_STORAGE_HINTS)


def storage_error(exc: OSError, what: str) -> IxciError:
    """The pointed error for an `OSError` raised while writing `what`: a `StorageError`, with
    the fix when the disk or the folder is at fault (never exit 1, which means a bug)."""
    where = f"{exc.filename}: " if exc.filename else ""
    message = f"cannot write {what}: {where}{exc.strerror or exc}"
    return StorageError(message, hint=_STORAGE_HINTS.get(exc.errno or 0))


class InstallError(IxciError):
    """ixci's installation lacks a file or package it needs (reinstall fixes it)."""

    exit_code = 21


class GitHubError(IxciError):
    """A GitHub API call failed."""

    exit_code = 8


# --- run-job failure taxonomy: each class is one exit code and one `failure_class` value ---


class JobFailure(IxciError):
    """A benchmark job failed; `failure_class` is written into result.json."""

    failure_class = "internal"
    exit_code = 19
    infrastructure = False  # only infrastructure failures are retried by --retries


class InvalidJob(JobFailure):
    failure_class = "invalid_job"
    exit_code = 10


class PreflightFailed(JobFailure):
    failure_class = "preflight"
    exit_code = 11
    infrastructure = True


class ImageFailed(JobFailure):
    failure_class = "image"
    exit_code = 12
    infrastructure = True


class ServerStartFailed(JobFailure):
    failure_class = "server_start"
    exit_code = 13


class NotReady(JobFailure):
    failure_class = "not_ready"
    exit_code = 14
    infrastructure = True


class ServerCrashed(JobFailure):
    failure_class = "crash"
    exit_code = 15


class ErrorRateExceeded(JobFailure):
    failure_class = "error_rate"
    exit_code = 16


class TelemetryInvalid(JobFailure):
    failure_class = "telemetry"
    exit_code = 17


class Cancelled(JobFailure):
    failure_class = "cancelled"
    exit_code = 18


FAILURE_CLASSES: tuple[type[JobFailure], ...] = (
    InvalidJob,
    PreflightFailed,
    ImageFailed,
    ServerStartFailed,
    NotReady,
    ServerCrashed,
    ErrorRateExceeded,
    TelemetryInvalid,
    Cancelled,
    JobFailure,
)
