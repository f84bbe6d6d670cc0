"""The results branch: append-only run folders, derived files rebuilt from them, safe pushes.

The only git user in ixci (through `ixci.cmd`, argv lists). Layout: contracts.md §4.

Publishing a run: check out the remote branch tip in a private working clone, add
`runs/YYYY/MM/DD/<run-id>/` (never touching an existing run folder unless it is identical),
update the derived files for that run (`ixci.results.derived.derive_run`: the run's month partition and
the small files; equal to a full rebuild from *all* run folders, whatever order runs arrive in,
which is what a branch in the older layout or with other prices gets), commit, push. A push that
loses a race (non-fast-forward) starts over from the new tip: fetch, re-add the run, update,
retry after an exponential backoff with full jitter. Publishing the same run again yields an
identical tree, so nothing is committed.

A curve (config × scenario) in `data/latest.json` is only replaced by a newer run whose valid
points cover at least the same (concurrency, request rate) set; a narrower newer run is listed
as partial in `index.json` and kept in the config's history, never truncating the curve.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ixci import cmd, ids
from ixci.errors import (
    STORAGE_ERRNOS,
    CommandFailed,
    PublishError,
    RemoteLocked,
    StorageError,
    UnsafeValue,
    storage_error,
)
from ixci.results.aggregate import Economics
from ixci.results.collect import Collection, dump_json
from ixci.results.curves import select_latest, shrinks_of
from ixci.results.derived import (
    ALERTS_FILE,
    DERIVED_FILES,
    ECONOMICS_FILE,
    build_derived,
    derive,
    derive_run,
    write_derived,
)
from ixci.results.regress import AlertPolicy
from ixci.results.runfolder import run_files, run_folder, run_meta, stage_attempt, stage_run

__all__ = [  # the run-folder and derived-file APIs live in ixci.results.runfolder and ixci.results.derived
    "ALERTS_FILE",
    "DERIVED_FILES",
    "ECONOMICS_FILE",
    "PublishResult",
    "build_derived",
    "derive",
    "publish",
    "rebuild",
    "run_files",
    "run_folder",
    "run_meta",
    "select_latest",
    "stage_run",
    "write_derived",
    "write_economics",
]

log = logging.getLogger("ixci.publish")

_RACE_MARKERS = (
    "non-fast-forward",
    "fetch first",
    "[rejected]",
    "stale info",
    "cannot lock ref",
    "failed to update ref",
    "reference already exists",
    "incorrect old value",
)
_GIT_IDENTITY = (
    "-c",
    "user.name=ixci publish",
    "-c",
    "user.email=ixci-publish@users.noreply.github.com",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
)


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    """What a publish did: `changed` false means the tree already held this run."""

    run_id: str
    run_path: str
    changed: bool
    pushed: bool
    attempts: int
    commit: str | None
    files: tuple[str, ...]
    shrinks: tuple[
        dict[str, Any], ...
    ] = ()  # curves this run would have narrowed (ixci.results.curves)
    regressions: dict[str, Any] | None = None  # the branch's regressions.json after publishing
    config_names: dict[str, str] | None = None  # config_id → job name, for reports


# --- derived files (ixci.results.derived) --------------------------------------------------------


def write_alerts(tree: Path, policy: AlertPolicy) -> None:
    """Record the catalog's alert policy in the tree (regressions.json is derived with it)."""
    (tree / ALERTS_FILE).write_text(dump_json(policy.to_json()), encoding="utf-8")


def rebuild(
    tree: Path, *, site: bool = True, run: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Regenerate the derived files and, with `site`, the site (if `ixci.site` is installed);
    return the curve bookkeeping (`ixci.results.curves.select_latest`).

    With `run` (a run folder just added or merged) only what that run changes is rewritten
    (`ixci.results.derived.derive_run`), else — or when the tree cannot be updated that way — every
    derived file is rebuilt from all run folders. Without `site`, a committed `site/` is
    removed: it would show older data than the branch holds (rebuild it with `ixci site build`).
    """
    update = derive_run(tree, run) if run is not None else None
    if update is not None:
        files, book = update
        write_derived(tree, files, full=False)
    else:
        files, book = derive(tree)
        write_derived(tree, files)
    if site:
        build_site_hook(tree)
    elif (tree / "site").exists():
        shutil.rmtree(tree / "site")
    return book


def build_site_hook(tree: Path) -> bool:
    """Build the static site into `tree/site`.

    The new site is built beside the old one and swapped in when complete, so a failure at any
    point keeps the previous `site/`. The data is what publish guarantees: a site that fails to
    build is logged and never blocks publishing results — except a full or read-only disk,
    which would fail the commit anyway and is reported as what it is.
    """
    from ixci.site.build import build_site_atomic

    try:
        build_site_atomic(tree, tree / "site")
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise
        log.warning("site build failed, keeping the previous site/: %s", exc)
        return False
    except Exception as exc:  # another component's failure must not lose the data
        log.warning("site build failed, keeping the previous site/: %s", exc)
        return False
    return True


def write_economics(tree: Path, econ: Economics) -> None:
    """Record the catalog's prices in the tree (only when the catalog gave any)."""
    if econ.usd_per_gpu_hour or econ.all_in_kw:
        (tree / ECONOMICS_FILE).write_text(dump_json(econ.to_json()), encoding="utf-8")


# --- git ----------------------------------------------------------------------------------


_GIT_STORAGE = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}


def _git(work: Path, *args: str, check: bool = True) -> str:
    """Run git in the private work clone; return stdout (the environment is inherited).

    A git command that failed because the work clone's disk is full or not writable raises
    the same `OSError` a Python write would, so both become one `StorageError`.
    """
    try:
        return cmd.run(["git", *_GIT_IDENTITY, *args], cwd=work, check=check).stdout
    except CommandFailed as exc:
        text = (exc.stderr + exc.stdout).lower()
        remote = args[0] in {"push", "fetch", "ls-remote"}  # their errors may be the remote's
        for marker, code in _GIT_STORAGE.items():
            if marker in text and (not remote or (args[0] == "fetch" and code != errno.EACCES)):
                raise OSError(code, f"git {args[0]}: {os.strerror(code)}", str(work)) from exc
        raise


def _prepare(work: Path, repo: str) -> None:
    if not (work / ".git").is_dir():
        work.mkdir(parents=True, exist_ok=True)
        _git(work, "init", "-q")
        _git(work, "remote", "add", "origin", repo)
    else:
        _git(work, "remote", "set-url", "origin", repo)


def _checkout_tip(work: Path, branch: str) -> bool:
    """Reset the private clone to the remote branch tip; False when the branch does not exist."""
    heads = _git(work, "ls-remote", "--heads", "origin", branch).strip()
    if heads:
        _git(
            work,
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        )
        _git(work, "checkout", "-q", "-f", "-B", branch, f"refs/remotes/origin/{branch}")
    else:  # first publish: an orphan branch with an empty tree
        _git(work, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
        _git(work, "update-ref", "-d", f"refs/heads/{branch}", check=False)
        _git(work, "read-tree", "--empty")
    _git(work, "clean", "-q", "-f", "-d", "-x")
    return bool(heads)


def _commit(work: Path, message: str) -> tuple[str | None, tuple[str, ...]]:
    _git(work, "add", "-A", ".")
    changed = _git(work, "diff", "--cached", "--name-only").split()
    if not changed:
        return None, ()
    _git(work, "commit", "-q", "--no-verify", "-m", message)
    return _git(work, "rev-parse", "HEAD").strip(), tuple(sorted(changed))


def _push(work: Path, branch: str) -> str:
    """Push HEAD: "pushed", "race" (the remote moved on) or "locked" (its ref lock file exists);
    raise on anything else."""
    try:
        _git(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    except CommandFailed as exc:
        text = (exc.stderr + exc.stdout).lower()
        if ".lock" in text and "file exists" in text:
            return "locked"
        if "no space left on device" in text:
            raise StorageError(
                f"git push to {branch} failed: the remote's disk is full",
                hint="free space on the remote, then rerun `ixci publish` (it is idempotent)",
            ) from exc
        if any(marker in text for marker in _RACE_MARKERS):
            return "race"
        raise PublishError(f"git push to {branch} failed: {exc.render()}") from exc
    return "pushed"


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ixci-publish-") as tmp:
        yield Path(tmp) / "results"


def backoff_delay(
    attempt: int, rng: random.Random, *, base: float = 0.25, cap: float = 8.0
) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base·2^attempt)) seconds."""
    return rng.uniform(0.0, min(cap, base * 2**attempt))


def _run_date(col: Collection, run_id: str, date: str | None) -> str:
    """The run's date: `date` (checked), else the earliest `run.started_at` of its artifacts."""
    if date is not None:
        ids.calendar_date(date, what="--date")
        return date
    stamps = sorted(str(a.document["run"]["started_at"]) for a in col.accepted)
    if not stamps:
        raise PublishError(
            f"run {run_id}: no valid artifact to date the run", hint="pass --date YYYY-MM-DD"
        )
    ids.calendar_date(stamps[0][:10], what="run.started_at (date part)")
    return stamps[0]


def _result(run_id: str, folder: str, attempt: int, commit: str | None, files: tuple[str, ...],
            *, pushed: bool, report: Mapping[str, Any]) -> PublishResult:  # fmt: skip
    return PublishResult(
        run_id=run_id,
        run_path=folder,
        changed=commit is not None,
        pushed=pushed,
        attempts=attempt,
        commit=commit,
        files=files,
        **report,
    )


def _config_name(entry: Mapping[str, Any]) -> str:
    keys = ("model", "precision", "sku", "framework")
    return " ".join(str(entry.get(k)) for k in keys) + f" tp{entry.get('tp')}"


def _report(
    work: Path, book: Mapping[tuple[str, str], Mapping[str, Any]], run_id: str
) -> dict[str, Any]:
    """What publish tells about the tree it built: shrunk curves, alerts, config names."""
    index = orjson.loads((work / "index.json").read_bytes())
    return {
        "shrinks": tuple(shrinks_of(book, run_id)),
        "regressions": orjson.loads((work / "regressions.json").read_bytes()),
        "config_names": {str(c["config_id"]): _config_name(c) for c in index.get("configs", [])},
    }


_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")


def _check_branch(branch: str) -> None:
    if not _BRANCH_RE.fullmatch(branch) or ".." in branch or branch.endswith((".lock", "/")):
        raise UnsafeValue(
            f"branch {branch[:80]!r} is not a plain branch name", hint="e.g. --branch results"
        )


def _on_branch(work: Path, folder: str) -> bool:
    """Whether HEAD's tree holds `folder`'s run.json (checked before anything is reported)."""
    head = _git(work, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()
    return bool(head) and bool(
        _git(work, "ls-tree", "--name-only", "HEAD", "--", f"{folder}/run.json").strip()
    )


def publish(
    col: Collection,
    *,
    repo: str,
    run_id: str,
    branch: str = "results",
    push: bool = True,
    workdir: Path | None = None,
    economics: Economics | None = None,
    alerts: AlertPolicy | None = None,
    date: str | None = None,
    site: bool = True,
    full: bool = False,
    run_attempt: int = 1,
    max_attempts: int = 40,
    lock_tries: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> PublishResult:
    """Publish a collected run to `branch` of `repo` (a path or URL git can push to).

    `date` (YYYY-MM-DD) places a new run folder; default: the earliest `run.started_at` of its
    artifacts. A run id already on the branch is merged as a re-run attempt
    (`ixci.results.runfolder`); `run_attempt` is the publishing attempt, recorded in run.json.
    Retries lost races up to `max_attempts` times; a remote ref lock that stays through
    `lock_tries` consecutive pushes is `RemoteLocked`; a full or read-only disk `StorageError`.
    With `push=False` the commit is made in the work clone only (a dry run). `alerts` (the
    catalog's policy) is recorded as alerts.json; regressions.json is derived with it.
    `full` rebuilds every derived file from all run folders instead of updating them.
    """
    ids.run_id(run_id)
    _check_branch(branch)
    when = _run_date(col, run_id, date)
    try:
        return _publish(
            col, repo=repo, run_id=run_id, branch=branch, push=push, workdir=workdir,
            economics=economics, alerts=alerts, when=when, site=site, full=full,
            run_attempt=run_attempt,
            max_attempts=max_attempts, lock_tries=lock_tries, sleep=sleep,
            rng=rng or random.Random(),
        )  # fmt: skip
    except OSError as exc:
        raise storage_error(exc, "the results branch's work clone") from exc


def _publish(col: Collection, *, repo: str, run_id: str, branch: str, push: bool,
             workdir: Path | None, economics: Economics | None, alerts: AlertPolicy | None,
             when: str, site: bool, full: bool,
             run_attempt: int, max_attempts: int, lock_tries: int,
             sleep: Callable[[float], None], rng: random.Random) -> PublishResult:  # fmt: skip
    locked = 0
    with _workdir(workdir) as work:
        _prepare(work, repo)
        for attempt in range(1, max_attempts + 1):
            _checkout_tip(work, branch)
            staged = stage_attempt(work, col, run_id, date=when, run_attempt=run_attempt)
            if economics is not None:
                write_economics(work, economics)
            if alerts is not None:
                write_alerts(work, alerts)
            book = rebuild(work, site=site, run=None if full else staged.folder)
            report = _report(work, book, run_id)
            commit, changed = _commit(work, f"results: publish run {run_id} ({staged.folder})")
            if not _on_branch(work, staged.folder):  # never report a run that is not there
                raise PublishError(f"run {run_id}: nothing was staged at {staged.folder}")
            if commit is None:
                return _result(
                    run_id, staged.folder, attempt, None, (), pushed=False, report=report
                )
            outcome = _push(work, branch) if push else "pushed"
            if outcome == "pushed":
                return _result(
                    run_id, staged.folder, attempt, commit, changed, pushed=push, report=report
                )
            locked = locked + 1 if outcome == "locked" else 0
            if locked >= lock_tries:
                raise RemoteLocked(
                    f"run {run_id}: the remote's ref lock for {branch} stayed in place through "
                    f"{locked} pushes (refs/heads/{branch}.lock exists on the remote)",
                    hint="a git process on the remote crashed and left the lock: if no push is "
                    f"running, remove refs/heads/{branch}.lock in the remote repository, then "
                    "rerun `ixci publish` (it is idempotent)",
                )
            delay = backoff_delay(attempt, rng)
            log.info("push of run %s: %s (attempt %d); retrying in %.2fs", run_id, outcome,
                     attempt, delay)  # fmt: skip
            sleep(delay)
    raise PublishError(
        f"run {run_id}: the {branch} branch kept moving; gave up after {max_attempts} attempts",
        hint="rerun `ixci publish` (it is idempotent)",
    )
