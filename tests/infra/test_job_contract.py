"""The plan file's types (`ixci.job`): exact round trips, the schema, and who reads topology.

* `to_dict(from_dict(d)) == d` for every job of the golden plan and of the repository
  catalog's plans (schedule and workflow_dispatch);
* `schemas/plan.schema.json` accepts every planned job and plan;
* no module outside `ixci/job.py` reads the topology by string key: an `ast` scan for
  subscripts and `.get` calls with a topology key literal (a line that reads the same key of
  something else says so with a `# not-topology: WHAT` comment).
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ixci.catalog.catalog import load_catalog
from ixci.errors import InvalidInput
from ixci.job import Job, Plan, Topology, load_plan
from ixci.plan import plan as planner
from ixci.plan import selection
from ixci.schemas import validate_instance

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ixci"
GOLDEN = REPO / "tests" / "data" / "plan" / "golden-schedule.json"


@cache
def _live(event: str) -> dict[str, Any]:
    catalog = load_catalog(REPO)
    jobs = planner.expand(catalog, event)
    chosen = (
        selection.select_schedule(jobs)
        if event == "schedule"
        else selection.select_dispatch(jobs, [], [])
    )
    doc: dict[str, Any] = json.loads(planner.make_plan(catalog, event, chosen).to_json())
    return doc


def _plans() -> list[tuple[str, dict[str, Any]]]:
    golden = json.loads(GOLDEN.read_text())
    return [("golden", golden), ("schedule", _live("schedule")),
            ("workflow_dispatch", _live("workflow_dispatch"))]  # fmt: skip


@pytest.mark.parametrize("name", ["golden", "schedule", "workflow_dispatch"])
def test_every_planned_job_round_trips_exactly(name: str) -> None:
    doc = dict(_plans())[name]
    assert doc["jobs"]
    for job in doc["jobs"]:
        assert Job.from_dict(job).to_dict() == job, job["id"]
    again = Plan.from_dict(doc).to_dict()
    # the summary is derived (sums of unrounded estimates), everything else is read back
    assert {k: v for k, v in again.items() if k != "summary"} == {
        k: v for k, v in doc.items() if k != "summary"
    }


@pytest.mark.parametrize("name", ["golden", "schedule", "workflow_dispatch"])
def test_the_plan_schema_accepts_every_plan(name: str) -> None:
    doc = dict(_plans())[name]
    assert validate_instance("plan", doc) == []


def test_a_damaged_plan_names_the_file_and_the_field(tmp_path: Path) -> None:
    doc = json.loads(GOLDEN.read_text())
    doc["jobs"][1]["topology"]["tp"] = "eight"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput) as info:
        load_plan(path)
    assert info.value.exit_code == 3
    assert f"{path}:1:1: jobs[1].topology.tp: expected an integer" in info.value.render()
    path.write_text("{")
    with pytest.raises(InvalidInput, match="cannot read the plan"):
        load_plan(path)


def test_absent_parallelism_reads_as_its_default() -> None:
    topo = Topology.from_dict({"tp": 2, "gpus": 2})
    assert (topo.ep, topo.pp, topo.dp, topo.nodes, topo.disaggregated) == (1, 1, 1, 1, False)


# ---------------------------------------------------------------------------- string-key reads

_DISAGGREGATED = json.loads(GOLDEN.read_text())["jobs"][0]["topology"]
# the topology's keys (a disaggregated one has them all) and a pool's own ones
TOPOLOGY_KEYS = frozenset(Topology.from_dict(_DISAGGREGATED).to_dict()) | {
    "workers",
    "nodes_per_worker",
}

EXEMPT = {
    # the (de)serialisation itself
    "ixci/job.py": "the plan's types: the one place that knows the keys",
    # catalog YAML, not the plan file: kebab-case recipe/runner mappings before typing
    "ixci/catalog/catalog_build.py": "reads recipe YAML (`d['tp']`, `dis['router']`) into the typed catalog",
    "ixci/catalog/catalog_checks.py": "reads runners.yaml (`runner['nodes']`), not a plan",
    # foreign formats owned by the importer (InferenceX configs → recipes), not the plan file
    "ixci/importer/": "reads InferenceX configs into recipes (and is edited by its owners)",
    # columns of the aggregated results table (a flat row per point), not the job's topology
    "ixci/results/compare.py": "reads aggregated result rows (`r['tp']`)",
    "ixci/results/aggregate.py": "reads tidy-table columns (`df['gpus']`); the jobs through `Topology`",
    "ixci/results/publish.py": "reads index entries (`entry.get('tp')`)",
    "ixci/results/export.py": "reads tidy-table rows (`r['tp']`); the jobs through `Topology.from_dict`",
}

PENDING: dict[str, int] = {
    # not migrated yet: result.json's embedded job read as a dict (ratchet: may only shrink).
    # Empty: aggregate.py, result_checks.py and collect.py read it through `ixci.job.Topology`.
}
MARKER = "# not-topology:"


def string_key_reads(path: Path) -> list[tuple[int, str]]:
    """(line, key) of every `x[KEY]` and `x.get(KEY, ...)` with a topology key literal, but on
    a line marked `# not-topology: WHAT` (the same key of another object, e.g. telemetry)."""
    text = path.read_text()
    marked = {i for i, line in enumerate(text.splitlines(), 1) if MARKER in line}
    out = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if isinstance(key, str) and key in TOPOLOGY_KEYS and node.lineno not in marked:
            out.append((node.lineno, key))
    return sorted(out)


def _reads() -> dict[str, list[tuple[int, str]]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in EXEMPT):
            continue
        if hits := string_key_reads(path):
            found[rel] = hits
    return found


def test_no_string_key_topology_reads_outside_job_py() -> None:
    found = _reads()
    new = {f: hits for f, hits in found.items() if f not in PENDING}
    assert new == {}, "read the typed job (ixci.job.Topology) instead"
    grown = {f: len(found[f]) for f in PENDING if len(found.get(f, [])) > PENDING[f]}
    assert grown == {}, "a pending module gained string-key topology reads"


def test_the_scan_finds_a_string_key_read(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text("def f(job):\n    return job['topology'].get('gpus', 0) + job['tp']\n")
    assert string_key_reads(src) == [(2, "gpus"), (2, "tp")]
    src.write_text("def f(tele):\n    return tele['gpus']  # not-topology: telemetry\n")
    assert string_key_reads(src) == []


def test_marked_lines_are_few_and_say_what_they_read() -> None:
    marked = {
        (path.relative_to(REPO).as_posix(), line.split(MARKER, 1)[1].strip())
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if MARKER in line
    }
    assert marked == {("ixci/results/result_checks.py", "telemetry")}


def test_a_points_repeats_is_bounded_as_the_intervals_are() -> None:
    from ixci import job
    from ixci.results import intervals

    assert job.MAX_REPEATS == intervals.MAX_REPEATS
    doc = json.loads(GOLDEN.read_text())
    doc["jobs"][0]["points"][0]["repeats"] = intervals.MAX_REPEATS + 1
    with pytest.raises(ValueError, match=r"repeats 21 is not an integer in 1\.\.20"):
        Plan.from_dict(doc)
