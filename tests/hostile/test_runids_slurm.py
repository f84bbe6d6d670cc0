"""Hostile run ids, job ids, output folders, plan values and Slurm settings reaching `run-job`.

One table: each case is the argv and environment given to the real `ixci` entry point (through
`ixci.cli.main`, exit-code mapping included) and its expected outcome — a clean error (exit
code and the words of the message) or a safe rendering (exit 0 and the hostile value shown
only quoted/sanitised). Every case also checks: no traceback and no "internal error", and no
file written outside its root (the payloads try to `touch` a marker beside the root and to
write through `..`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ixci.cli import main

REPO = Path(__file__).resolve().parents[2]
SLURM_JOB = "j-17aaae420c27"  # the catalog's cpu-slurm job (local llama.cpp 1P+2D)
DOCKER_JOB = "j-c462a70a3601"  # the catalog's cpu-docker job
MARK = "{root}/../PWNED"


@dataclass(frozen=True)
class Case:
    id: str
    args: Sequence[str]
    exit: int
    says: str
    env: dict[str, str] = field(default_factory=dict)
    # (job id, changed fields): that job of the catalog, altered, written to {root}/plan.json
    # and passed with --plan
    plan: tuple[str, dict[str, object]] | None = None


def _plan_with(job_id: str, **changes: object) -> tuple[str, dict[str, object]]:
    return job_id, changes


CASES = [
    Case("run-id-command-substitution", [SLURM_JOB, "--dry-run", "--run-id", f"$(touch {MARK})"], 3, "not a safe run id"),
    Case("run-id-newline-sbatch-injection", [SLURM_JOB, "--dry-run", "--run-id", "1\n#SBATCH --wrap=id\ntouch x"], 3, "not a safe run id"),
    Case("run-id-traversal", [SLURM_JOB, "--dry-run", "--run-id", "../../etc"], 3, "not a safe run id"),
    Case("run-id-empty", [SLURM_JOB, "--dry-run", "--run-id", ""], 3, "not a safe run id"),
    Case("run-id-option-like", [SLURM_JOB, "--dry-run", "--run-id=-rf"], 3, "not a safe run id"),
    Case("run-id-too-long", [SLURM_JOB, "--dry-run", "--run-id", "9" * 65], 3, "not a safe run id"),
    Case("github-run-id-env", [SLURM_JOB, "--dry-run"], 3, "GITHUB_RUN_ID", env={"GITHUB_RUN_ID": "1;touch x"}),
    Case("job-id-traversal", ["../../j-17aaae420c27", "--dry-run"], 3, "not a job id"),
    Case("job-id-newline", [SLURM_JOB + "\ntouch x", "--dry-run"], 3, "not a job id"),
    Case("output-newline-in-sbatch-line", [SLURM_JOB, "--dry-run", "--run-id", "r1", "--output", "{root}/a\ntouch {root}/../PWNED\n#"], 11, "#SBATCH line cannot carry"),
    Case("output-space-in-sbatch-line", [SLURM_JOB, "--dry-run", "--run-id", "r1", "--output", "{root}/my results"], 11, "#SBATCH line cannot carry"),
    Case("slurm-partition-newline", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 11, "--partition", env={"IXCI_SLURM_PARTITION": "gpu\ntouch x"}),
    Case("slurm-account-quote", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 11, "--account", env={"IXCI_SLURM_ACCOUNT": "a'$(id)'"}),
    Case("slurm-time-injection", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 11, "IXCI_SLURM_TIME", env={"IXCI_SLURM_TIME": "04:00:00\n#SBATCH --x"}),
    Case("slurm-health-timeout-not-a-number", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 11, "IXCI_SLURM_HEALTH_TIMEOUT", env={"IXCI_SLURM_HEALTH_TIMEOUT": "1800; touch x"}),
    Case("runner-name-sanitised-into-owner-label", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 0, "ixci.owner=a-b--touch-x", env={"RUNNER_NAME": "a b$(touch x)"}),
    Case("plan-point-id-traversal", [SLURM_JOB, "--dry-run", "--run-id", "r1"], 3, "point id",
         plan=_plan_with(SLURM_JOB, points=[{"id": "../../../PWNED", "scenario": "local-short", "isl": 64,
                                             "osl": 32, "concurrency": 1, "request_rate": None}])),
    Case("plan-image-quoted-in-docker-argv", [DOCKER_JOB, "--dry-run", "--run-id", "r1"], 0, "'localhost/x:1$(touch x)'",
         plan=_plan_with(DOCKER_JOB, image="localhost/x:1$(touch x)")),
]  # fmt: skip


def _ixci(args: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    command = click.Command("ixci-under-test", callback=lambda: main(["run-job", *args]))
    res = CliRunner().invoke(command, [], env=env, catch_exceptions=False)
    return res.exit_code, res.output


def _altered_plan(job_id: str, changes: dict[str, object]) -> dict[str, object]:
    """A plan of the catalog's job `job_id` with hostile `changes` (as an altered plan has)."""
    from ixci.catalog.catalog import load_catalog
    from ixci.job import Plan
    from ixci.plan.plan import find_job

    job = find_job(load_catalog(REPO), job_id, "workflow_dispatch")
    doc = Plan(event="workflow_dispatch", catalog_sha="", jobs=(job,)).to_dict()
    doc["jobs"][0].update(changes)
    return doc


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_run_job_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.chdir(REPO)  # --catalog defaults to the repository
    args = [a.replace("{root}", str(root)) for a in case.args]
    if case.plan is not None:
        (root / "plan.json").write_text(json.dumps(_altered_plan(*case.plan)))
        args += ["--plan", str(root / "plan.json")]
    if "--output" not in " ".join(args):
        args += ["--output", str(root / "out")]
    env = {"GITHUB_RUN_ID": "", "RUNNER_NAME": "", "XDG_STATE_HOME": str(root / "state"),
           "IXCI_MODEL_CACHE": str(root / "models"), **case.env}  # fmt: skip
    before = sorted(p.name for p in tmp_path.iterdir())
    code, output = _ixci(args, env)
    assert code == case.exit, output
    assert case.says in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    if code:
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and output.count("\n") <= 5, output  # one clean message
    assert sorted(p.name for p in tmp_path.iterdir()) == before, (
        "a file was written beside the root"
    )
    assert not (tmp_path / "PWNED").exists() and not Path("/PWNED").exists()
