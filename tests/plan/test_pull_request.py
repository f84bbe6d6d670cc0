"""Selection for a pull request, against a real git repository with two commits."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ixci.cli import cli

CATALOG = Path(__file__).resolve().parent.parent / "data" / "plan" / "catalog"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture()
def repo(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "repo"
    shutil.copytree(CATALOG, root)
    (root / "ixci" / "loadgen").mkdir(parents=True)
    (root / "ixci" / "loadgen" / "worker.py").write_text("x = 1\n")
    (root / "README.md").write_text("hello\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return root, git(root, "rev-parse", "HEAD").strip()


def commit(root: Path) -> str:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "change")
    return git(root, "rev-parse", "HEAD").strip()


def plan_pr(root: Path, base: str, head: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--catalog",
            str(root),
            "--event",
            "pull_request",
            "--base",
            base,
            "--head",
            head,
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert isinstance(doc, dict)
    return doc


def test_one_recipe_changed_selects_only_its_jobs(repo: tuple[Path, str]) -> None:
    root, base = repo
    path = root / "matrix" / "recipes" / "dsr1-fp8-mi355x-vllm.yaml"
    path.write_text(path.read_text().replace("max-model-len: 10240", "max-model-len: 12288"))
    (root / "README.md").write_text("changed\n")
    head = commit(root)
    doc = plan_pr(root, base, head)
    jobs = doc["jobs"]
    assert isinstance(jobs, list)
    assert {j["recipe"] for j in jobs} == {"matrix/recipes/dsr1-fp8-mi355x-vllm.yaml"}
    assert len(jobs) == 2
    assert all(
        j["selected_because"] == ["pull_request: matrix/recipes/dsr1-fp8-mi355x-vllm.yaml changed"]
        for j in jobs
    )
    assert doc["notes"] == ["README.md: not a benchmark input (no job selected)"]


def test_shared_entry_change_selects_every_user(repo: tuple[Path, str]) -> None:
    root, base = repo
    runners = root / "matrix" / "runners.yaml"
    runners.write_text(runners.read_text().replace("image-pull-s: 180", "image-pull-s: 200"))
    scenario = root / "benchmarks" / "scenarios" / "smoke.yaml"
    scenario.write_text(scenario.read_text().replace("min-requests: 8", "min-requests: 9"))
    head = commit(root)
    jobs = plan_pr(root, base, head)["jobs"]
    assert isinstance(jobs, list)
    got = {j["name"]: j["selected_because"] for j in jobs}
    assert set(got) == {
        "dsr1 fp8 h200 sglang tp8",
        "dsr1 fp8 h200 sglang tp8 mtp",
        "dsr1 fp8 h200 sglang tp8-ep8-dpa",
        "tiny q8_0 cpu llamacpp tp1",
    }
    assert got["tiny q8_0 cpu llamacpp tp1"] == [
        "pull_request: benchmarks/scenarios/smoke.yaml: scenario 'smoke' changed"
    ]
    assert got["dsr1 fp8 h200 sglang tp8"] == [
        "pull_request: matrix/runners.yaml: runner 'h200-docker' changed"
    ]


def test_ixci_measuring_code_selects_the_canary(repo: tuple[Path, str]) -> None:
    root, base = repo
    (root / "ixci" / "loadgen" / "worker.py").write_text("x = 2\n")
    head = commit(root)
    jobs = plan_pr(root, base, head)["jobs"]
    assert isinstance(jobs, list)
    assert [j["recipe"] for j in jobs] == ["matrix/recipes/tiny-cpu-llamacpp.yaml"]
    assert jobs[0]["selected_because"] == [
        "pull_request: ixci/loadgen/worker.py changed (canary set)"
    ]


def test_explain_table_and_bad_base(repo: tuple[Path, str]) -> None:
    root, base = repo
    models = root / "matrix" / "models.yaml"
    models.write_text(models.read_text().replace("layers: 2", "layers: 3"))
    head = commit(root)
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--catalog",
            str(root),
            "--event",
            "pull_request",
            "--base",
            base,
            "--head",
            head,
            "--explain",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "because pull_request: matrix/models.yaml: model 'tiny-llama' changed" in result.output
    assert "1 jobs, 3 points" in result.output
    proc = subprocess.run(
        [
            "ixci",
            "plan",
            "--catalog",
            str(root),
            "--event",
            "pull_request",
            "--base",
            "0" * 40,
            "--head",
            head,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 5 and "git diff" in proc.stderr and "Traceback" not in proc.stderr
