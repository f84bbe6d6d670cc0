"""The docker runtime for real: `ixci run-job` on the catalog's cpu-docker job runs llama-server
in the locally built image (no registry), records the image digest, and removes its container."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ixci.results import result as artifact

ROOT = Path(__file__).resolve().parents[2]
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def _docker_job() -> tuple[dict, dict]:
    """The workflow_dispatch plan and its smallest cpu-docker job."""
    out = subprocess.run(
        [*IXCI, "plan", "--catalog", str(ROOT), "--event", "workflow_dispatch", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(out.stdout)
    jobs = [j for j in plan["jobs"] if j["runner"] == "cpu-docker"]
    if not jobs:
        pytest.skip("the catalog has no cpu-docker job")
    return plan, min(jobs, key=lambda j: len(j["points"]))


def _containers(docker: str, run_id: str) -> list[str]:
    res = subprocess.run(
        [docker, "ps", "-a", "--filter", f"label=ixci.run={run_id}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.split()


def _image_present(docker: str, image: str) -> bool:
    return subprocess.run([docker, "image", "inspect", image], capture_output=True).returncode == 0


def test_docker_job_end_to_end(tmp_path: Path, docker_available: str, free_port: int) -> None:
    _, job = _docker_job()
    if not _image_present(docker_available, job["image"]):
        pytest.fail(f"image {job['image']} is not built on this host (the infra setup builds it)")
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            *IXCI,
            "run-job",
            job["id"],
            "--catalog",
            str(ROOT),
            "--output",
            str(out),
            "--port",
            str(free_port),
            "--model-cache",
            str(tmp_path / "models"),
            "--run-id",
            run_id,
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = artifact.load(out / job["id"] / "result.json")
    prov = doc["provenance"]
    assert prov["runtime"] == "docker" and prov["image"] == job["image"]
    assert prov["image_digest"].startswith("sha256:")
    assert (
        prov["server_argv"][:3] == ["docker", "run", "-d"]
        and f"ixci.run={run_id}" in prov["server_argv"]
    )
    assert doc["status"] == "ok" and all(p["valid"] for p in doc["points"])
    assert _containers(docker_available, run_id) == []


def test_missing_image_is_class_image(
    tmp_path: Path, docker_available: str, free_port: int
) -> None:
    plan, job = _docker_job()
    plan = {**plan, "jobs": [{**job, "image": "localhost/ixci/does-not-exist:0"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.run(
        [
            *IXCI,
            "run-job",
            job["id"],
            "--plan",
            str(tmp_path / "plan.json"),
            "--catalog",
            str(ROOT),
            "--output",
            str(tmp_path / "out"),
            "--port",
            str(free_port),
            "--model-cache",
            str(tmp_path / "models"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 12, proc.stderr
    doc = artifact.load(tmp_path / "out" / job["id"] / "result.json")
    assert doc["failure_class"] == "image" and "not present" in doc["failure_message"]
