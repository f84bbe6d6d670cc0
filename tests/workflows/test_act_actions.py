"""The local stand-ins for remote actions (tests/workflows/act/) behave as the real ones document.

These run the stand-ins' Python directly, the way their composite action.yml calls them (inputs
in INPUT_* variables), without act: fast checks that the act end-to-end test stands on faithful
parts — and that hostile artifact names and paths stay inside their folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.act import harness

SCRIPT = harness.TOOLS / "local_actions.py"


def _step(tmp_path: Path, command: str, **inputs: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_WORKSPACE": str(tmp_path / "ws"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_PATH": str(tmp_path / "path"),
        "RUNNER_TEMP": str(tmp_path / "temp"),
        "IXCI_ACT_ARTIFACTS": str(tmp_path / "store"),
        "GITHUB_REPOSITORY": "ixci-dev/ixci",
        "GITHUB_SHA": "0" * 40,
        "GITHUB_SERVER_URL": "https://github.com",
    }
    env.update({"INPUT_" + k.upper(): v for k, v in inputs.items()})
    (tmp_path / "ws").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(SCRIPT), command], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_upload_a_folder_then_download_by_name_and_by_pattern(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "out" / "j1").mkdir(parents=True)
    (ws / "out" / "j1" / "result.json").write_text("{}")
    (ws / "out" / "j1" / ".hidden").write_text("x")
    (ws / "plan.json").write_text("{}")
    assert _step(tmp_path, "upload-artifact", name="result-j1", path="out/j1/").returncode == 0
    assert _step(tmp_path, "upload-artifact", name="plan", path="plan.json").returncode == 0
    assert _files(tmp_path / "store" / "result-j1") == ["result.json"]  # dot-files left out

    assert _step(tmp_path, "download-artifact", name="plan", path="p").returncode == 0
    assert _files(ws / "p") == ["plan.json"]  # by name: straight into path
    assert _step(tmp_path, "download-artifact", pattern="result-*", path="a").returncode == 0
    assert _files(ws / "a") == ["result-j1/result.json"]  # by pattern: one folder each
    merged = _step(tmp_path, "download-artifact", pattern="*", path="m", merge_multiple="true")
    assert merged.returncode == 0 and _files(ws / "m") == ["plan.json", "result.json"]


def test_upload_of_an_existing_name_needs_overwrite(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("1")
    assert _step(tmp_path, "upload-artifact", name="x", path="a.txt").returncode == 0
    again = _step(tmp_path, "upload-artifact", name="x", path="a.txt")
    assert again.returncode == 1 and "(409) Conflict" in again.stdout
    (tmp_path / "ws" / "a.txt").write_text("2")
    assert (
        _step(tmp_path, "upload-artifact", name="x", path="a.txt", overwrite="true").returncode == 0
    )
    assert (tmp_path / "store" / "x" / "a.txt").read_text() == "2"


def test_no_files_warns_errors_or_ignores(tmp_path: Path) -> None:
    warn = _step(tmp_path, "upload-artifact", name="x", path="missing/")
    assert warn.returncode == 0 and "::warning::No files were found" in warn.stdout
    error = _step(tmp_path, "upload-artifact", name="x", path="missing/", if_no_files_found="error")
    assert error.returncode == 1 and "::error" in error.stdout
    assert not (tmp_path / "store" / "x").exists()
    none = _step(tmp_path, "download-artifact", pattern="result-*", path="artifacts")
    # as GitHub's: zero matches is not an error, and no folder is created
    assert none.returncode == 0 and not (tmp_path / "ws" / "artifacts").exists()
    missing = _step(tmp_path, "download-artifact", name="plan", path="plan")
    assert missing.returncode == 1 and "Artifact not found for name: plan" in missing.stdout


@pytest.mark.parametrize("name", ["../escape", "a/b", "a\\b", "x:y", "", "..", 'q"'])
def test_hostile_artifact_names_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "f").write_text("1")
    up = _step(tmp_path, "upload-artifact", name=name or "", path="f")
    if name == "":  # an empty input means the documented default name `artifact`
        assert up.returncode == 0 and (tmp_path / "store" / "artifact" / "f").is_file()
        return
    assert up.returncode == 1 and "is not valid" in up.stdout, up.stdout
    assert not (tmp_path / "escape").exists() and _files(tmp_path / "ws") == ["f"]


def test_download_path_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "f").write_text("1")
    assert _step(tmp_path, "upload-artifact", name="x", path="f").returncode == 0
    out = _step(tmp_path, "download-artifact", name="x", path="../outside")
    assert out.returncode == 1 and "leaves" in out.stdout
    assert not (tmp_path / "outside").exists()


def test_act_compat_drops_only_concurrency_queue() -> None:
    text = (
        "concurrency:\n  group: g\n  queue: max\njobs:\n  a:\n    concurrency:\n"
        "      group: p\n      queue: max # comment\n    env:\n      queue: keep\n"
    )
    out, removed = harness.act_compat(text)
    assert removed == ["line 3: queue: max", "line 8: queue: max # comment"]
    assert "queue: keep" in out and out.count("queue") == 1


@pytest.mark.parametrize(
    ("repository", "ref"),
    [
        ("ixci-dev/ixci", "--upload-pack=touch pwned"),
        ("ixci-dev/ixci", "main:refs/heads/x"),
        ("ixci-dev/ixci", "a/../../b"),
        ("../../etc", "main"),
        ("ixci-dev/..", "main"),
        ("../ixci", "main"),
        ("ixci-dev/ixci;id", "main"),
    ],
)
def test_checkout_refuses_option_like_refs_and_odd_repositories(
    tmp_path: Path, repository: str, ref: str
) -> None:
    out = _step(tmp_path, "checkout", repository=repository, ref=ref)
    assert out.returncode == 1 and "::error title=checkout::" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "ws" / "pwned").exists() and not (tmp_path / "ws" / ".git").exists()
