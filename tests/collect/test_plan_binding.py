"""Artifacts are bound to the plan: only scheduled jobs, each exactly as scheduled, get published."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collect.factory import make_job, make_plan, make_result, plan_json, planned
from collect.test_publish import checkout, git, points
from ixci.cli import cli
from ixci.errors import CollectError
from ixci.results.collect import collect
from ixci.results.publish import publish


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(path))
    return path


def _artifact(root: Path, doc: dict[str, Any], name: str | None = None) -> None:
    folder = root / (name or f"result-{doc['job']['id']}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(doc))


def _altered(job: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The plan's job with one field changed, keeping its id (what a hostile PR would upload)."""
    doc = make_result(copy.deepcopy(job))
    node = doc["job"]
    *head, last = path.split(".")
    for key in head:
        node = node[key]
    node[last] = value
    if path == "image":
        doc["provenance"]["image"] = value
    return doc


PLANNED = planned(make_job(name="planned", tp=2))
PINNED = planned(make_job(name="pinned", tp=1, image="vllm/vllm-openai@sha256:" + "ab" * 32))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sku", "b200"),
        ("model", "other-model"),
        ("framework", "sglang"),
        ("precision", "fp4"),
        ("image", "evil/vllm:latest"),
        ("runner", "b200-docker"),
        ("engine_args", {"max-num-seqs": 4}),
        ("topology.ep", 2),
        ("points", PLANNED["points"][:2]),
    ],
)
def test_an_altered_identity_is_rejected(tmp_path: Path, path: str, value: Any) -> None:
    _artifact(tmp_path, _altered(PLANNED, path, value))
    col = collect([tmp_path], plan=make_plan(PLANNED))
    assert col.accepted == ()
    assert [s.category for s in col.skipped] == ["plan_mismatch"]
    assert f"job.{path.split('.')[0]}" in col.skipped[0].reasons[0]
    assert col.coverage["jobs"][0]["state"] == "rejected"


def test_a_pinned_image_binds_the_recorded_digest(tmp_path: Path) -> None:
    doc = make_result(PINNED)
    doc["provenance"]["image_digest"] = "sha256:" + "cd" * 32
    _artifact(tmp_path, doc)
    col = collect([tmp_path], plan=make_plan(PINNED))
    assert [s.category for s in col.skipped] == ["plan_mismatch"]
    assert "pins the image" in col.skipped[0].reasons[0]
    ok = make_result(PINNED)  # the factory records the pinned digest
    ok["provenance"]["image_digest"] = "sha256:" + "ab" * 32
    _artifact(tmp_path / "b", ok)
    assert [a.job_id for a in collect([tmp_path / "b"], plan=make_plan(PINNED)).accepted] == [
        PINNED["id"]
    ]


def test_bookkeeping_fields_may_differ(tmp_path: Path) -> None:
    doc = make_result(PLANNED)
    doc["job"]["estimate"] = {"total_gpu_hours": 9}
    doc["job"]["selected_because"] = ["re-expanded by run-job"]
    _artifact(tmp_path, doc)
    assert len(collect([tmp_path], plan=make_plan(PLANNED)).accepted) == 1


def test_unplanned_jobs_are_rejected_and_not_published(tmp_path: Path, remote: Path) -> None:
    arts = tmp_path / "artifacts"
    _artifact(arts, make_result(PLANNED, run_id="31"))
    stranger = make_job(name="not-in-plan", tp=1)
    _artifact(arts, make_result(stranger, run_id="31"))
    _artifact(arts, make_result(stranger, run_id="31"), name="j-extra")  # a second way in
    plan = make_plan(PLANNED)
    col = collect([arts], plan=plan, run_id="31")
    assert [a.job_id for a in col.accepted] == [PLANNED["id"]]
    assert {s.category for s in col.skipped} == {"unplanned"}
    assert col.coverage["summary"]["unexpected"] == 2
    res = publish(col, repo=str(remote), run_id="31", workdir=tmp_path / "w", site=False)
    tree = checkout(remote, tmp_path / "c")
    assert {r["job_id"] for r in points(tree)} == {PLANNED["id"]}
    published = {p.stem for p in (tree / res.run_path / "results").glob("*.json")}
    assert published == {PLANNED["id"]}


def test_cli_publish_applies_the_same_acceptance_as_strict_collect(
    tmp_path: Path, remote: Path
) -> None:
    """What `collect --strict` rejects is never published; the good part is."""
    arts = tmp_path / "artifacts"
    _artifact(arts, make_result(PLANNED, run_id="32"))
    _artifact(
        arts,
        _altered(PLANNED, "sku", "b200") | {"run": make_result(PLANNED, run_id="32")["run"]},
        "dup",
    )
    _artifact(arts, make_result(make_job(name="x"), run_id="32"))
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(PLANNED))
    strict = CliRunner().invoke(
        cli, ["collect", str(arts), "--plan", str(plan), "--out", str(tmp_path / "o"), "--strict"]
    )
    assert isinstance(strict.exception, CollectError)
    rejected = json.loads((tmp_path / "o" / "skipped.json").read_text())["skipped"]
    assert {r["category"] for r in rejected} == {"unplanned", "plan_mismatch"}
    argv = ["ixci", "publish", str(arts), "--repo", str(remote), "--run-id", "32",
            "--plan", str(plan), "--no-site", "--catalog", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tree = checkout(remote, tmp_path / "c")
    rows = points(tree)
    assert {r["job_id"] for r in rows} == {PLANNED["id"]}
    assert {r["sku"] for r in rows} == {"h100"}


def test_zero_job_plan_without_artifacts_is_green(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json())
    missing = tmp_path / "artifacts"  # download-artifact made no folder: nothing was uploaded
    res = CliRunner().invoke(
        cli,
        ["collect", str(missing), "--plan", str(plan), "--out", str(tmp_path / "o"), "--strict"],
    )
    assert res.exit_code == 0, res.output
    assert "nothing planned" in res.output
    cov = json.loads((tmp_path / "o" / "coverage.json").read_text())
    assert cov["summary"]["complete"] is True and cov["jobs"] == []
    cmp = CliRunner().invoke(
        cli,
        [
            "compare",
            "--baseline",
            str(tmp_path / "none"),
            "--candidate",
            str(missing),
            "--plan",
            str(plan),
        ],
    )
    assert cmp.exit_code == 0, cmp.output
    assert "Nothing planned" in cmp.output
    bare = CliRunner().invoke(
        cli, ["compare", "--baseline", str(tmp_path / "none"), "--candidate", str(missing)]
    )
    assert bare.exit_code == 0 and "No candidate artifacts" in bare.output


def test_missing_artifacts_with_planned_jobs_fail_strict(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(PLANNED))
    res = CliRunner().invoke(
        cli,
        [
            "collect",
            str(tmp_path / "artifacts"),
            "--plan",
            str(plan),
            "--out",
            str(tmp_path / "o"),
            "--strict",
        ],
    )
    assert isinstance(res.exception, CollectError)
    assert "1 of 1 job(s) not present" in res.exception.message


def test_compare_only_compares_planned_jobs_and_says_what_it_rejected(tmp_path: Path) -> None:
    arts = tmp_path / "artifacts"
    _artifact(arts, make_result(PLANNED))
    _artifact(arts, make_result(make_job(name="stranger", tp=1)))
    _artifact(arts, _altered(PLANNED, "sku", "b200"), "altered")
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json(PLANNED))
    res = CliRunner().invoke(
        cli,
        [
            "compare",
            "--baseline",
            str(tmp_path / "none"),
            "--candidate",
            str(arts),
            "--plan",
            str(plan),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "(3 candidate points not compared)" in res.output  # the planned job's points only
    assert (
        "2 candidate artifact(s) rejected and not compared** (1 plan_mismatch, 1 unplanned)"
        in res.output
    )
