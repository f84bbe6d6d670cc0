"""GPU-hour budgets for every event, and draft pull requests (zero jobs, reason "draft").

A scheduled run rotates within its budget; any other event treats the budget as a ceiling:
a selection over it is refused with the figure (exit 4, nothing planned) unless `--rotate`
asks for the rotation. Run on the repository's real catalog, through the real entry point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ixci.catalog.catalog import load_catalog
from ixci.plan import plan, selection
from tests.catalog.conftest import REPO, run_ixci
from tests.plan.test_pull_request import commit, repo  # noqa: F401  (the fixture)

SMALL = Path(__file__).resolve().parent.parent / "data" / "plan" / "catalog"


def test_dispatch_over_budget_is_refused_with_the_figure() -> None:
    total = sum(j.estimate.total_gpu_hours for j in plan.expand(load_catalog(REPO)))
    result = run_ixci(
        [
            "plan",
            "--catalog",
            str(REPO),
            "--event",
            "workflow_dispatch",
            "--budget-gpu-hours",
            "5",
            "--format",
            "json",
        ]
    )
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and '"jobs"' not in result.output
    figure = re.search(
        r"the selection is (\d+) jobs, ([\d,.]+) GPU-h estimated, over the budget "
        r"of 5 GPU-h; nothing was planned",
        result.output,
    )
    assert figure, result.output
    assert int(figure.group(1)) == len(plan.expand(load_catalog(REPO))) > 100
    assert float(figure.group(2).replace(",", "")) == round(total, 1)
    assert "--only/--exclude" in result.output and "largest shares: sku=" in result.output
    assert "--rotate" in result.output


def test_dispatch_within_budget_plans_and_filters_count_before_the_budget() -> None:
    args = [
        "plan",
        "--catalog",
        str(REPO),
        "--event",
        "workflow_dispatch",
        "--only",
        "sku=cpu",
        "--format",
        "json",
    ]
    doc = json.loads(run_ixci(args).output)
    cost = doc["summary"]["gpu_hours"]
    assert doc["jobs"] and 0 < cost < 5
    result = run_ixci([*args, "--budget-gpu-hours", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["gpu_hours"] == cost
    too_small = run_ixci([*args, "--budget-gpu-hours", str(cost / 2)])
    assert too_small.exit_code == 4 and f"{len(doc['jobs'])} jobs" in too_small.output


def test_dispatch_rotation_only_when_asked(tmp_path: Path) -> None:
    jobs = plan.expand(load_catalog(REPO))
    newest = max(jobs, key=lambda j: j.id)
    history = {"jobs": {j.id: {"last_measured": "2026-11-01"} for j in jobs if j.id != newest.id}}
    (tmp_path / "index.json").write_text(json.dumps(history))
    result = run_ixci(
        [
            "plan",
            "--catalog",
            str(REPO),
            "--event",
            "workflow_dispatch",
            "--budget-gpu-hours",
            "5",
            "--rotate",
            "--history",
            str(tmp_path / "index.json"),
            "--format",
            "json",
        ]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert 0 < doc["summary"]["gpu_hours"] <= 5 and 0 < len(doc["jobs"]) < len(jobs)
    reasons = {j["id"]: j["selected_because"] for j in doc["jobs"]}
    assert all(
        r[0].startswith("workflow_dispatch: rotation within 5 GPU-h") for r in reasons.values()
    )
    if newest.estimate.total_gpu_hours <= 5:  # never measured: first in the rotation
        assert "never measured" in reasons[newest.id][0]


def test_schedule_budget_still_rotates() -> None:
    result = run_ixci(
        [
            "plan",
            "--catalog",
            str(REPO),
            "--event",
            "schedule",
            "--budget-gpu-hours",
            "5",
            "--format",
            "json",
        ]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert 0 < doc["summary"]["gpu_hours"] <= 5 and doc["jobs"]


def test_pull_request_over_budget_is_refused(repo: tuple[Path, str]) -> None:  # noqa: F811
    root, base = repo
    path = root / "matrix" / "recipes" / "dsr1-fp8-mi355x-vllm.yaml"
    path.write_text(path.read_text().replace("max-model-len: 10240", "max-model-len: 12288"))
    head = commit(root)
    args = [
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
    ]
    assert run_ixci(args).exit_code == 0
    refused = run_ixci([*args, "--budget-gpu-hours", "0.01"])
    assert refused.exit_code == 4, refused.output
    assert "pull_request: the selection is 2 jobs" in refused.output


def test_draft_pull_request_plans_nothing_with_the_reason(tmp_path: Path) -> None:
    # no --base/--head: the gate calls it without looking at the diff
    result = run_ixci(
        ["plan", "--catalog", str(SMALL), "--event", "pull_request", "--draft", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["jobs"] == [] and doc["summary"]["jobs"] == 0
    assert any(note.startswith("draft:") for note in doc["notes"])
    out = tmp_path / "out"
    github = run_ixci(
        [
            "plan",
            "--catalog",
            str(SMALL),
            "--event",
            "pull_request",
            "--draft",
            "--format",
            "github",
        ],
        env={"GITHUB_OUTPUT": str(out)},
    )
    assert github.exit_code == 0, github.output
    assert "shards<<" in out.read_text() and "\n[]\n" in out.read_text()
    assert "pull_request: 0 jobs" in github.output


def test_option_combinations_are_usage_errors() -> None:
    cases = [
        (["--event", "schedule", "--draft"], "--draft applies to --event pull_request"),
        (["--event", "workflow_dispatch", "--rotate"], "--rotate needs --budget-gpu-hours"),
        (["--event", "schedule", "--rotate", "--budget-gpu-hours", "3"], "--rotate applies to"),
        (["--event", "pull_request"], "needs --base SHA and --head SHA (or --draft)"),
        (["--event", "schedule", "--budget-gpu-hours", "nan"], "nan is not a number of GPU-hours"),
        (["--event", "workflow_dispatch", "--budget-gpu-hours", "inf"], "inf is not a number"),
    ]
    for args, message in cases:
        result = run_ixci(["plan", "--catalog", str(SMALL), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_the_workflow_dispatch_input_reaches_the_ceiling() -> None:
    # `ixci gha plan-args` turns the dispatch inputs into the planner's argv (sweep.yml's plan job)
    from ixci.github import gha

    args = gha.plan_args("workflow_dispatch", {"inputs": {"only": "", "budget-gpu-hours": "5"}})
    assert args == ["--event", "workflow_dispatch", "--budget-gpu-hours", "5"]
    result = run_ixci(["plan", "--catalog", str(REPO), *args, "--format", "json"])
    assert result.exit_code == 4 and "over the budget of 5 GPU-h" in result.output


def test_pull_request_versions_are_read_through_the_bounded_loader() -> None:
    # the base/head texts of a changed shared file were parsed with yaml.safe_load: a 100k-deep
    # head raised RecursionError (an internal error) and a cycle could not be compared
    base = "skus:\n  h100: {vendor: nvidia}\n"
    for head in (
        "skus:\n  h100: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "skus:\n  h100: &a [*a]\n",
        "skus:\n  h100: {vendor: nvidia}\n  x: .nan\n",
    ):
        assert selection.changed_keys(base, head, "skus") == {"h100", "*"}
    change = selection.Change(
        path="benchmarks/scenarios/8k1k.yaml", base_text="name: 8k1k\n", head_text="name: &n [*n]\n"
    )
    assert selection._scenario_names(change) == {"8k1k"}
