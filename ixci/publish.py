"""The results branch: append-only run folders, derived files rebuilt from them, safe pushes.

The only git user in ixci (through `ixci.cmd`, argv lists). Layout: contracts.md §4.

Publishing a run: check out the remote branch tip in a private working clone, add
`runs/YYYY/MM/DD/<run-id>/` (never touching an existing run folder unless it is identical),
regenerate every derived file from *all* run folders (so derived files always equal a fresh
rebuild, whatever order runs arrive in), commit, push. A push that loses a race (non-fast-
forward) starts over from the new tip: fetch, re-add the run, regenerate over the union,
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from ixci import cmd, ids
from ixci.aggregate import Economics, columns_for, dump_columnar, tidy_table
from ixci.collect import Collection, dump_json
from ixci.curves import planned_points, select_latest, shrinks_of
from ixci.errors import (
    STORAGE_ERRNOS,
    CommandFailed,
    PublishError,
    RemoteLocked,
    StorageError,
    UnsafeValue,
    storage_error,
)
from ixci.regress import AlertPolicy, regressions_document
from ixci.runfolder import run_files, run_folder, run_meta, stage_attempt, stage_run

__all__ = [  # the run-folder API lives in ixci.runfolder; these names stay importable here
    "PublishResult",
    "build_derived",
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

DERIVED_FILES = ("index.json", "data/points.json", "data/latest.json", "regressions.json")
HISTORY_DIR = "data/history"
ECONOMICS_FILE = "economics.json"  # prices used for $ columns (an input, written by publish)
ALERTS_FILE = "alerts.json"  # the alert policy used for regressions.json (an input, likewise)
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
    shrinks: tuple[dict[str, Any], ...] = ()  # curves this run would have narrowed (ixci.curves)
    regressions: dict[str, Any] | None = None  # the branch's regressions.json after publishing
    config_names: dict[str, str] | None = None  # config_id → job name, for reports


# --- derived files ------------------------------------------------------------------------


def _load_runs(tree: Path) -> list[dict[str, Any]]:
    runs = []
    for meta_path in sorted(tree.glob("runs/*/*/*/*/run.json")):
        folder = meta_path.parent
        meta = orjson.loads(meta_path.read_bytes())
        cov_path = folder / "coverage.json"
        cov = orjson.loads(cov_path.read_bytes()) if cov_path.is_file() else {}
        docs = [orjson.loads(p.read_bytes()) for p in sorted((folder / "results").glob("*.json"))]
        runs.append(
            {
                "meta": meta,
                "path": folder.relative_to(tree).as_posix(),
                "coverage": cov,
                "docs": docs,
            }
        )
    runs.sort(key=lambda r: (str(r["meta"].get("date")), str(r["meta"]["run_id"])))
    return runs


def _economics(tree: Path) -> Economics:
    path = tree / ECONOMICS_FILE
    return Economics.from_json(orjson.loads(path.read_bytes()) if path.is_file() else None)


def _config_entries(
    df: pd.DataFrame, book: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[dict[str, Any]]:
    ident = [
        "config_id",
        "model",
        "sku",
        "framework",
        "precision",
        "runner",
        "tp",
        "ep",
        "pp",
        "dcp",
        "dp_attention",
        "gpus",
        "disaggregated",
        "spec_decoding",
    ]
    firsts = df.drop_duplicates("config_id")[ident].sort_values("config_id")
    entries = []
    for rec in firsts.to_dict(orient="records"):
        cfg = str(rec["config_id"])
        curves = [
            {"scenario": s, **{k: x for k, x in v.items() if k != "shrinks"}}
            for (c, s), v in sorted(book.items())
            if c == cfg
        ]
        entries.append({**{str(k): _plain(v) for k, v in rec.items()}, "curves": curves})
    return entries


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def build_derived(tree: Path) -> dict[str, bytes]:
    """Every derived file (path → bytes) as a pure function of `runs/`, `economics.json` and
    `alerts.json`."""
    return derive(tree)[0]


def derive(tree: Path) -> tuple[dict[str, bytes], dict[tuple[str, str], dict[str, Any]]]:
    """`build_derived`'s files and the curve bookkeeping of `ixci.curves.select_latest`."""
    runs = _load_runs(tree)
    econ = _economics(tree)
    docs = [d for r in runs for d in r["docs"]]
    df = tidy_table(docs, econ)
    order = [str(r["meta"]["run_id"]) for r in runs]
    latest, book = select_latest(df, order, planned_points(docs)) if len(df) else (df, {})
    partial_runs = {r for v in book.values() for r in v["partial_runs"]}
    out: dict[str, bytes] = {
        "data/points.json": dump_columnar(df),
        "data/latest.json": dump_columnar(latest[df.columns] if len(latest) else df.iloc[0:0]),
    }
    for cfg, rows in df.groupby("config_id", sort=True):
        out[f"{HISTORY_DIR}/{cfg}.json"] = dump_columnar(rows)
    index = {
        "index_version": 1,
        "columns": columns_for(econ.tiers),
        "schema_versions": {
            "result": sorted({v for r in runs for v in r["meta"].get("schema_versions", [])})
        },
        "counts": {
            "runs": len(runs),
            "rows": len(df),
            "configs": int(df["config_id"].nunique()) if len(df) else 0,
        },
        "runs": [_run_entry(r, partial_runs) for r in runs],
        "configs": _config_entries(df, book) if len(df) else [],
        "jobs": _job_history(runs),
    }
    out["index.json"] = dump_json(index).encode()
    alerts = regressions_document(df, runs, order, _alert_policy(tree))
    out["regressions.json"] = dump_json(alerts).encode()
    return out, book


def _alert_policy(tree: Path) -> AlertPolicy:
    path = tree / ALERTS_FILE
    if not path.is_file():
        return AlertPolicy()
    return AlertPolicy.from_json(orjson.loads(path.read_bytes()), file=ALERTS_FILE)


def write_alerts(tree: Path, policy: AlertPolicy) -> None:
    """Record the catalog's alert policy in the tree (regressions.json is derived with it)."""
    (tree / ALERTS_FILE).write_text(dump_json(policy.to_json()), encoding="utf-8")


def _job_history(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Job id → {last_measured, last_run}: the planner's rotation reads this (contracts.md §4)."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first, so the last write wins
        for doc in run["docs"]:
            out[str(doc["job"]["id"])] = {
                "last_measured": run["meta"].get("date"),
                "last_run": run["meta"]["run_id"],
            }
    return dict(sorted(out.items()))


def _run_entry(run: Mapping[str, Any], partial_runs: set[str]) -> dict[str, Any]:
    meta, summary = run["meta"], run["coverage"].get("summary", {})
    complete = bool(summary.get("complete"))
    return {
        "run_id": meta["run_id"],
        "date": meta.get("date"),
        "path": run["path"],
        "event": meta.get("event"),
        "repository": meta.get("repository"),
        "git_sha": meta.get("git_sha"),
        "status": "complete" if complete else "partial",
        "narrower_than_latest": meta["run_id"] in partial_runs,
        "coverage": summary,
    }


def write_derived(tree: Path, files: Mapping[str, bytes]) -> None:
    """Replace the derived files in `tree` with `files` (stale history files are removed)."""
    history = tree / HISTORY_DIR
    if history.is_dir():
        shutil.rmtree(history)
    for rel, data in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def rebuild(tree: Path, *, site: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
    """Regenerate all derived files and, with `site`, the site (if `ixci.site` is installed);
    return the curve bookkeeping (`ixci.curves.select_latest`).

    Without `site`, a committed `site/` is removed: it would show older data than the branch
    holds (rebuild it with `ixci site build`).
    """
    files, book = derive(tree)
    write_derived(tree, files)
    if site:
        build_site_hook(tree)
    elif (tree / "site").exists():
        shutil.rmtree(tree / "site")
    return book


def build_site_hook(tree: Path) -> bool:
    """Build the static site into `tree/site` when `ixci.site` is importable.

    The new site is built beside the old one and swapped in when complete, so a failure at any
    point keeps the previous `site/`. The data is what publish guarantees: a site that fails to
    build is logged and never blocks publishing results — except a full or read-only disk,
    which would fail the commit anyway and is reported as what it is.
    """
    try:
        from ixci.site.build import build_site_atomic
    except ImportError:
        return False
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


def _report(work: Path, book: Mapping[tuple[str, str], Mapping[str, Any]], run_id: str) -> dict[str, Any]:
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
    return bool(head) and bool(_git(work, "ls-tree", "--name-only", "HEAD", "--", f"{folder}/run.json").strip())


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
    run_attempt: int = 1,
    max_attempts: int = 40,
    lock_tries: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> PublishResult:
    """Publish a collected run to `branch` of `repo` (a path or URL git can push to).

    `date` (YYYY-MM-DD) places a new run folder; default: the earliest `run.started_at` of its
    artifacts. A run id already on the branch is merged as a re-run attempt
    (`ixci.runfolder`); `run_attempt` is the publishing attempt, recorded in run.json.
    Retries lost races up to `max_attempts` times; a remote ref lock that stays through
    `lock_tries` consecutive pushes is `RemoteLocked`; a full or read-only disk `StorageError`.
    With `push=False` the commit is made in the work clone only (a dry run). `alerts` (the
    catalog's policy) is recorded as alerts.json; regressions.json is derived with it.
    """
    ids.run_id(run_id)
    _check_branch(branch)
    when = _run_date(col, run_id, date)
    try:
        return _publish(
            col, repo=repo, run_id=run_id, branch=branch, push=push, workdir=workdir,
            economics=economics, alerts=alerts, when=when, site=site, run_attempt=run_attempt,
            max_attempts=max_attempts, lock_tries=lock_tries, sleep=sleep,
            rng=rng or random.Random(),
        )  # fmt: skip
    except OSError as exc:
        raise storage_error(exc, "the results branch's work clone") from exc


def _publish(col: Collection, *, repo: str, run_id: str, branch: str, push: bool,
             workdir: Path | None, economics: Economics | None, alerts: AlertPolicy | None,
             when: str, site: bool,
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
            book = rebuild(work, site=site)
            report = _report(work, book, run_id)
            commit, changed = _commit(work, f"results: publish run {run_id} ({staged.folder})")
            if not _on_branch(work, staged.folder):  # never report a run that is not there
                raise PublishError(f"run {run_id}: nothing was staged at {staged.folder}")
            if commit is None:
                return _result(run_id, staged.folder, attempt, None, (), pushed=False, report=report)
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
