"""Publish under hostile conditions: crafted dates, a full or read-only disk, a failing site
build, a stale remote ref lock. Real git (a bare repository in tmp_path); a real full and a
real read-only file system where this machine lets the test mount a tmpfs (root), and an
`OSError(ENOSPC)` injected at the write choke point everywhere."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ixci.results.runfolder
from collect.factory import make_job, make_result
from collect.test_publish import artifacts, checkout, git
from ixci.errors import PublishError, RemoteLocked, StorageError
from ixci.results.collect import collect
from ixci.results.publish import publish


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(path))
    return path


def run_ixci(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ixci", *argv], capture_output=True, text=True, cwd=cwd, timeout=300)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str, read_only: bool = False) -> Iterator[Path]:
    """Mount a small tmpfs at `path` (skips where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# --- crafted values that become paths ------------------------------------------------------


@pytest.mark.parametrize(
    "started_at",
    [
        "..-..-..T00:00:00Z",
        "../../../../tmp/x",
        "2026-11-28/../../../x",
        "..-..-..",
        "0000-00-00T00:00:00Z",
    ],
)
def test_a_crafted_started_at_never_writes_outside_the_clone(
    tmp_path: Path, remote: Path, started_at: str
) -> None:
    run_id = f"crafted-{uuid.uuid4().hex[:8]}"
    doc = make_result(make_job(), run_id=run_id)
    doc["run"]["started_at"] = started_at
    src = artifacts(tmp_path / "a", [doc])
    watch = tmp_path.parent
    before = {p.name for p in watch.iterdir()}
    proc = run_ixci("publish", str(src), "--repo", str(remote), "--run-id", run_id, "--no-site",
                "--workdir", str(tmp_path / "w"), "--catalog", str(tmp_path))  # fmt: skip
    assert proc.returncode == 7, proc.stdout + proc.stderr  # nothing valid to publish
    assert "no valid artifact" in proc.stderr and "Traceback" not in proc.stderr
    assert "pushed" not in proc.stdout and "nothing to do" not in proc.stdout
    assert {p.name for p in watch.iterdir()} == before
    assert not list(tmp_path.rglob(run_id))
    assert git("for-each-ref", cwd=remote).strip() == ""


def test_a_crafted_date_is_refused_even_without_format_checks(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The date that becomes a path is checked by itself, not only by the schema's optional
    `date-time` format checker (absent from an install without rfc3339-validator)."""
    import jsonschema

    import ixci.results.collect

    bare = jsonschema.Draft202012Validator(ixci.results.collect.result_schema())  # no format checks
    monkeypatch.setattr(ixci.results.collect, "_validator", lambda: bare)
    doc = make_result(make_job(), run_id="crafted-nf")
    doc["run"]["started_at"] = "..-..-..T00:00:00Z"
    col = collect([artifacts(tmp_path / "a", [doc])])
    assert col.accepted == () and col.skipped[0].category in {"unsafe_value", "schema"}
    before = {p.name for p in tmp_path.parent.iterdir()}
    with pytest.raises(PublishError, match="no valid artifact"):
        publish(col, repo=str(remote), run_id="crafted-nf", workdir=tmp_path / "w", site=False)
    assert {p.name for p in tmp_path.parent.iterdir()} == before
    assert not list(tmp_path.parent.glob("crafted-nf"))


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--date", "../../x"), ("--date", "2026-13-01"), ("--date", "2026-11-28/../.."),
     ("--run-id", "../x"), ("--run-id", "a/b"), ("--run-id", "x\ny"), ("--branch", "a..b")],
)  # fmt: skip
def test_unsafe_options_are_refused(tmp_path: Path, remote: Path, flag: str, value: str) -> None:
    src = artifacts(tmp_path / "a", [make_result(make_job(), run_id="5")])
    argv = {"--run-id": "5", "--date": None, "--branch": None} | {flag: value}
    extra = [x for k, v in argv.items() if v is not None for x in (k, v)]
    proc = run_ixci("publish", str(src), "--repo", str(remote), "--no-site", *extra,
                "--catalog", str(tmp_path))  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert git("for-each-ref", cwd=remote).strip() == ""


# --- disk full, read-only ------------------------------------------------------------------


def test_disk_full_injected_at_the_write_choke_point(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    col = collect([artifacts(tmp_path / "a", [make_result(make_job(), run_id="61")])])

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "w" / "x"))

    monkeypatch.setattr(ixci.results.runfolder, "_write_folder", full)
    with pytest.raises(StorageError, match="No space left on device") as info:
        publish(col, repo=str(remote), run_id="61", workdir=tmp_path / "w", site=False)
    assert info.value.exit_code == 9 and "free space" in (info.value.hint or "")
    assert git("for-each-ref", cwd=remote).strip() == ""


def test_disk_full_on_a_real_small_file_system(tmp_path: Path, remote: Path) -> None:
    jobs = [make_job(name=f"j{i}", tp=1, concurrencies=tuple(range(1, 30))) for i in range(12)]
    src = artifacts(tmp_path / "a", [make_result(j, run_id="62") for j in jobs])
    with tmpfs(tmp_path / "small", size="400k") as small:
        proc = run_ixci("publish", str(src), "--repo", str(remote), "--run-id", "62", "--no-site",
                    "--workdir", str(small / "w"), "--catalog", str(tmp_path))  # fmt: skip
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert "No space left on device" in proc.stderr and "a bug in ixci" not in proc.stderr
    assert git("for-each-ref", cwd=remote).strip() == ""


def test_read_only_output_and_workdir(tmp_path: Path, remote: Path) -> None:
    src = artifacts(tmp_path / "a", [make_result(make_job(), run_id="63")])
    assert run_ixci("collect", str(src), "--out", str(tmp_path / "collected")).returncode == 0
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as ro:
        col = run_ixci("collect", str(src), "--out", str(ro / "out"))
        pub = run_ixci("publish", str(src), "--repo", str(remote), "--run-id", "63", "--no-site",
                   "--workdir", str(ro / "w"), "--catalog", str(tmp_path))  # fmt: skip
        agg = run_ixci("aggregate", str(tmp_path / "collected"), "--out", str(ro / "t"),
                       "--catalog", str(tmp_path))  # fmt: skip
        exp = run_ixci("export", str(tmp_path / "collected"), "--out", str(ro / "x.json"),
                       "--catalog", str(tmp_path))  # fmt: skip
    for proc in (col, pub, agg, exp):
        assert proc.returncode == 9, proc.stderr
        assert "Read-only file system" in proc.stderr and "read-only" in proc.stderr
        assert "a bug in ixci" not in proc.stderr


# --- the site --------------------------------------------------------------------------------


def _publish_site(tmp_path: Path, remote: Path, run_id: str, *, site: bool = True):
    src = artifacts(tmp_path / run_id, [make_result(make_job(), run_id=run_id)])
    return publish(collect([src], run_id=run_id), repo=str(remote), run_id=run_id,
                   workdir=tmp_path / f"w-{run_id}", site=site)  # fmt: skip


def _fail_in_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import ixci.site.build

    def half_then_fail(folder: Path, results: object) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "partial.js").write_text("half")
        raise OSError(errno.EIO, "simulated failure half-way through the site")

    monkeypatch.setattr(ixci.site.build, "_write_runs", half_then_fail)


def _fail_in_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    def copy_half(src: Path, dest: Path, *_: object, **__: object) -> None:
        Path(dest).mkdir(parents=True)
        (Path(dest) / "index.html").write_text("half")
        raise OSError(errno.EIO, "simulated failure half-way through copying the site")

    monkeypatch.setattr(shutil, "copytree", copy_half)


def _fail_in_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.rename

    def rename(self: Path, target: Path) -> Path:  # the new site cannot be moved in
        if self.name.startswith(".site.new-"):
            raise OSError(errno.EIO, "simulated failure while swapping the site in")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)


@pytest.mark.parametrize("fail", [_fail_in_build, _fail_in_copy, _fail_in_swap])
def test_a_failing_site_step_keeps_the_old_site(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch, fail: Any
) -> None:
    """Wherever the site step fails, site/ is a whole site: the old one, or (when the failing
    step is one the build does not use) the whole new one — never half, never none."""
    _publish_site(tmp_path, remote, "71")
    old = checkout(remote, tmp_path / "c1") / "site"
    old_files = {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()}
    assert (old / "index.html").is_file() and len(old_files) > 5
    fail(monkeypatch)
    res = _publish_site(tmp_path, remote, "72")
    assert res.pushed  # the data is published
    tree = checkout(remote, tmp_path / "c2")
    new = {
        p.relative_to(tree / "site"): p.read_bytes()
        for p in (tree / "site").rglob("*")
        if p.is_file()
    }
    whole_new = (
        new[Path("index.html")] == old_files[Path("index.html")]
        and Path("partial.js") not in new
        and b'"72"' in new[Path("data/site.json")]
    )
    assert new == old_files or (fail is _fail_in_copy and whole_new)
    assert not [p for p in (tmp_path / "w-72").iterdir() if p.name.startswith(".site")]
    assert "72" in json.dumps(json.loads((tree / "index.json").read_text())["runs"])


def test_no_site_removes_a_stale_site(tmp_path: Path, remote: Path) -> None:
    _publish_site(tmp_path, remote, "73")
    assert (checkout(remote, tmp_path / "c1") / "site" / "index.html").is_file()
    _publish_site(tmp_path, remote, "74", site=False)
    tree = checkout(remote, tmp_path / "c2")
    assert not (tree / "site").exists()
    assert (tree / "index.json").is_file()


# --- a stale ref lock on the remote ------------------------------------------------------------


def test_a_stale_remote_lock_is_reported_not_retried_forever(tmp_path: Path, remote: Path) -> None:
    _publish_site(tmp_path, remote, "81", site=False)
    (remote / "refs" / "heads" / "results.lock").write_text("")
    sleeps: list[float] = []
    src = artifacts(tmp_path / "b", [make_result(make_job(name="b"), run_id="82")])
    with pytest.raises(RemoteLocked) as info:
        publish(collect([src]), repo=str(remote), run_id="82", workdir=tmp_path / "w2",
                site=False, sleep=sleeps.append)  # fmt: skip
    assert "refs/heads/results.lock" in info.value.message
    assert "remove refs/heads/results.lock" in (info.value.hint or "")
    assert len(sleeps) == 7  # 8 tries, not 40
    (remote / "refs" / "heads" / "results.lock").unlink()
    res = publish(collect([src]), repo=str(remote), run_id="82", workdir=tmp_path / "w2",
                  site=False, sleep=sleeps.append)  # fmt: skip
    assert res.pushed


def test_no_success_is_reported_without_the_run_on_the_branch(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If staging ever wrote nothing (the old crafted-date bug wrote outside the clone), the
    empty commit must not be reported as "already published"."""
    import ixci.results.publish

    col = collect([artifacts(tmp_path / "a", [make_result(make_job(), run_id="91")])])
    ghost = ixci.results.runfolder.Staged(folder="runs/2026/11/28/91", changed=True)
    monkeypatch.setattr(ixci.results.publish, "stage_attempt", lambda *a, **k: ghost)
    with pytest.raises(PublishError, match="nothing was staged"):
        publish(col, repo=str(remote), run_id="91", workdir=tmp_path / "w", site=False)
    assert git("for-each-ref", cwd=remote).strip() == ""
