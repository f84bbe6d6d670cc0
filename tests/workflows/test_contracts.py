"""Contract tests: the workflows call `ixci` the way `ixci` actually works.

- every `ixci …` line in a `run:` names a real command with options it has and a valid number
  of arguments (a command whose module has not landed yet is skipped, naming it);
- the plan job's outputs are exactly what the real planner writes, and the legs carry exactly
  the keys the bench jobs read from `matrix.*`;
- there is one bench job per shard, and `--max-shards` says how many;
- the artifacts written by run-job, uploaded as `result-<job id>` and downloaded by pattern are
  what `ixci collect` reads: a real collect over that layout finds every job.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from ixci.cli import cli

from . import ghexpr
from .simulate import EVENTS, ROOT, event_name_of, github_context, load_event, load_workflow

WORKFLOW_FILES = ("sweep.yml", "gate.yml", "ci.yml")
ARGS_SPLAT = "${args[@]}"


@dataclass(frozen=True)
class Invocation:
    workflow: str
    job: str
    step: str
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.workflow}:{self.job}:{self.step}: {' '.join(self.argv)}"


def _script_lines(script: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", script)
    return [
        ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]


def _segments(line: str) -> list[list[str]]:
    line = re.sub(r"\s\d*>&\d+", "", line)  # 2>&1
    line = re.sub(r"\s\d*>>?\s*(\"[^\"]*\"|\S+)", "", line)  # > file, >> file
    line = re.sub(r"\s<\s*(\"[^\"]*\"|\S+)", "", line)  # < file
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "||", "&&", ";", "&"):
            segments.append([])
        elif token == "exec" and not segments[-1]:
            continue  # `exec ixci …` is an ixci invocation
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def invocations() -> list[Invocation]:
    found = []
    for wf_file in WORKFLOW_FILES:
        wf = load_workflow(wf_file)
        for job_name, job in wf["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                for line in _script_lines(str(step.get("run", ""))):
                    for seg in _segments(line):
                        if seg[0] == "ixci":
                            found.append(
                                Invocation(wf_file, job_name, step.get("name", f"#{i}"), tuple(seg))
                            )
    return found


INVOCATIONS = invocations()


def resolve(argv: tuple[str, ...]) -> tuple[click.Command, list[str], str]:
    """The click command an argv names, the remaining tokens, and its full name."""
    command: click.Command = cli
    rest = list(argv[1:])
    name = "ixci"
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"`{name} {rest[0]}` is not a command"
        command, name, rest = sub, f"{name} {rest[0]}", rest[1:]
    return command, rest, name


def check_args(command: click.Command, name: str, tokens: list[str]) -> None:
    """Every option exists (taking a value or not, as written); the argument count fits."""
    options: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                options[opt] = param
    positional = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and token != "-":
            flag, _, inline = token.partition("=")
            assert flag in options, f"`{name}` has no option {flag} (it has {sorted(options)})"
            opt = options[flag]
            takes_value = not (opt.is_flag or opt.count)
            if takes_value and not inline:
                assert i + 1 < len(tokens), f"`{name} {flag}` needs a value"
                i += 1
            assert takes_value or not inline, f"`{name} {flag}` takes no value"
        else:
            positional += 1
        i += 1
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    required = sum(max(p.nargs, 1) for p in arguments if p.required)
    unlimited = any(p.nargs == -1 for p in arguments)
    most = sum(max(p.nargs, 0) for p in arguments)
    assert positional >= required, (
        f"`{name}` needs {required} argument(s), the workflow gives {positional}"
    )
    assert unlimited or positional <= most, (
        f"`{name}` takes {most} argument(s), the workflow gives {positional}"
    )
    missing = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option)
        and p.required
        and not any(o in tokens for o in p.opts)
        and not any(t.startswith(f"{o}=") for o in p.opts for t in tokens)
    ]
    assert not missing or ARGS_SPLAT in tokens, f"`{name}` requires {missing}"


def _plan_args(event_file: str, tmp_path: Path) -> list[str]:
    proc = _ixci(
        "gha", "plan-args", "--event-name", event_name_of(event_file),
        "--event-path", str(EVENTS / event_file), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _ixci(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    for key in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
        if key not in (env or {}):
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from ixci.cli import main; main(sys.argv[1:])", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


# ---- every invocation exists with those options ----


def test_the_workflows_call_ixci() -> None:
    names = {resolve(inv.argv)[2] for inv in INVOCATIONS}
    for expected in (
        "ixci validate",
        "ixci plan",
        "ixci run-job",
        "ixci collect",
        "ixci publish",
        "ixci compare",
        "ixci comment",
        "ixci gha plan-args",
        "ixci gha summary-results",
        "ixci gha annotate-changed-lines",
        "ixci gha gate",
        "ixci gha gate-status",
        "ixci cleanup",
    ):
        assert expected in names, f"{expected} is not called by any workflow"


@pytest.mark.parametrize("inv", [i for i in INVOCATIONS if ARGS_SPLAT not in i.argv], ids=str)
def test_invocation_matches_the_command(inv: Invocation) -> None:
    command, rest, name = resolve(inv.argv)
    check_args(command, name, rest)


@pytest.mark.parametrize("event_file", sorted(p.name for p in EVENTS.glob("*.json")))
@pytest.mark.parametrize("inv", [i for i in INVOCATIONS if ARGS_SPLAT in i.argv], ids=str)
def test_planner_invocations_with_each_event(
    inv: Invocation, event_file: str, tmp_path: Path
) -> None:
    """`ixci plan "${args[@]}" …` with the arguments `ixci gha plan-args` really prints."""
    args = _plan_args(event_file, tmp_path)
    argv = [a for tok in inv.argv for a in (args if tok == ARGS_SPLAT else [tok])]
    command, rest, name = resolve(tuple(argv))
    check_args(command, name, rest)
    event_opt = rest[rest.index("--event") + 1]
    choices = next(p for p in command.params if "--event" in getattr(p, "opts", ())).type
    if isinstance(choices, click.Choice):
        assert event_opt in choices.choices


@pytest.mark.parametrize(
    "event_file", ["schedule.json", "workflow_dispatch.json", "workflow_dispatch.defaults.json"]
)
def test_planner_runs_for_real_with_the_workflow_arguments(event_file: str, tmp_path: Path) -> None:
    """Dry run of the plan step on the shipped catalog: json, then github outputs."""
    resolve(("ixci", "plan"))
    args = _plan_args(event_file, tmp_path)
    plan = _ixci("plan", "--catalog", str(ROOT), *args, "--format", "json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert isinstance(json.loads(plan.stdout)["jobs"], list)


# ---- the plan's outputs are exactly what the workflow reads ----


def _github_outputs(tmp_path: Path, *plan_args: str) -> dict[str, str]:
    out = tmp_path / "github_output"
    out.write_text("")
    max_shards = _max_shards_in_workflow()
    proc = _ixci(
        "plan", "--catalog", str(ROOT), *plan_args, "--format", "github", "--max-shards", str(max_shards),
        cwd=tmp_path, env={"GITHUB_OUTPUT": str(out)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return _parse_github_output(out.read_text())


def _parse_github_output(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            key, delim = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delim:
                    break
                body.append(inner)
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _max_shards_in_workflow() -> int:
    plan_step = next(
        s for s in load_workflow("sweep.yml")["jobs"]["plan"]["steps"] if s.get("id") == "plan"
    )
    found = re.findall(r"--max-shards (\d+)", plan_step["run"])
    assert len(found) == 1, "the plan step must pass --max-shards once"
    return int(found[0])


def _bench_jobs() -> dict[str, dict[str, Any]]:
    jobs = load_workflow("sweep.yml")["jobs"]
    return {n: j for n, j in jobs.items() if re.fullmatch(r"bench-\d+", n)}


def _step_outputs_read_by_plan_job() -> dict[str, str]:
    """Job output name -> the `steps.plan.outputs.X` it forwards."""
    outputs = load_workflow("sweep.yml")["jobs"]["plan"]["outputs"]
    forwarded = {}
    for key, expr in outputs.items():
        m = re.fullmatch(r"\$\{\{\s*steps\.plan\.outputs\.([\w-]+)\s*\}\}", expr)
        assert m, f"plan output {key} must forward one step output: {expr}"
        forwarded[key] = m.group(1)
    return forwarded


def _needs_plan_outputs_read() -> set[str]:
    text = (ROOT / ".github" / "workflows" / "sweep.yml").read_text(encoding="utf-8")
    return set(re.findall(r"needs\.plan\.outputs\.([\w-]+)", text))


def _matrix_keys_read() -> set[str]:
    keys: set[str] = set()
    for job in _bench_jobs().values():
        keys |= set(re.findall(r"matrix\.([\w-]+)", json.dumps(job)))
    return keys


def test_one_bench_job_per_shard_and_max_shards_agrees() -> None:
    benches = _bench_jobs()
    n = _max_shards_in_workflow()
    assert sorted(benches) == [f"bench-{i}" for i in range(n)]
    normalised = set()
    for i, (name, job) in enumerate(sorted(benches.items())):
        assert job["needs"] == "plan"
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.plan.outputs.shard-{i}) }}}}"
        assert job["strategy"]["fail-fast"] is False
        assert f"'shard-{i}'" in job["if"], name
        normalised.add(json.dumps(job, sort_keys=True).replace(f"shard-{i}", "shard-N"))
    assert len(normalised) == 1, "bench jobs differ in more than their shard number"
    collect_needs = set(load_workflow("sweep.yml")["jobs"]["collect"]["needs"])
    assert set(benches) <= collect_needs


def test_the_workflow_forwards_and_reads_the_same_outputs() -> None:
    forwarded = _step_outputs_read_by_plan_job()
    assert _needs_plan_outputs_read() == set(forwarded)
    assert set(forwarded) == {"shards", *(f"shard-{i}" for i in range(_max_shards_in_workflow()))}
    assert all(k == v for k, v in forwarded.items())


@pytest.mark.parametrize("event_file", ["schedule.json", "workflow_dispatch.json"])
def test_planner_outputs_are_exactly_what_fromjson_reads(event_file: str, tmp_path: Path) -> None:
    resolve(("ixci", "plan"))
    values = _github_outputs(tmp_path, *_plan_args(event_file, tmp_path))
    read = set(_step_outputs_read_by_plan_job().values())
    written_shards = {k for k in values if k == "shards" or k.startswith("shard-")}
    assert written_shards == read, (
        f"planner writes {sorted(written_shards)}, sweep.yml reads {sorted(read)}"
    )
    names = json.loads(values["shards"])
    matrix_keys = _matrix_keys_read()
    ids = []
    for shard in sorted(k for k in values if k.startswith("shard-")):
        include = json.loads(values[shard])["include"]
        assert (shard in names) is bool(include), f"{shard}: listed in shards iff non-empty"
        assert len(include) <= 256
        for leg in include:
            assert set(leg) == matrix_keys, (
                f"leg keys {sorted(leg)} != matrix keys read {sorted(matrix_keys)}"
            )
            assert isinstance(leg["timeout-minutes"], int) and 1 <= leg["timeout-minutes"] <= 7200
            ids.append(leg["id"])
    plan = _ixci(
        "plan",
        "--catalog",
        str(ROOT),
        *_plan_args(event_file, tmp_path),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert ids == [j["id"] for j in json.loads(plan.stdout)["jobs"]], (
        "every planned job is dispatched, in order"
    )


# ---- artifacts: run-job writes, bench uploads, collect downloads ----


def _step(job: str, predicate: Any) -> dict[str, Any]:
    return next(s for s in load_workflow("sweep.yml")["jobs"][job]["steps"] if predicate(s))


def test_artifact_names_and_paths_line_up() -> None:
    run_step = _step("bench-0", lambda s: "run-job" in str(s.get("run")))
    upload = _step("bench-0", lambda s: "upload-artifact" in str(s.get("uses")))
    assert upload["if"] == "always()", "results must be uploaded even when the job fails"
    assert upload["with"]["name"] == "result-${{ matrix.id }}"
    assert re.search(r'--output "\$RUNNER_TEMP/results"', run_step["run"])
    # contracts §3: run-job writes DIR/<job id>/…; the upload takes that folder
    assert upload["with"]["path"] == "${{ runner.temp }}/results/${{ matrix.id }}/"
    for job in ("collect", "publish", "report"):
        download = _step(
            job,
            lambda s: "download-artifact" in str(s.get("uses")) and "pattern" in s.get("with", {}),
        )
        pattern = download["with"]["pattern"]
        assert fnmatch.fnmatch("result-j-0123456789ab", pattern) and not fnmatch.fnmatch(
            "plan", pattern
        )
        assert download["with"]["path"] == "artifacts"
        assert download["with"].get("merge-multiple") in (None, False)
    plan_upload = _step("plan", lambda s: "upload-artifact" in str(s.get("uses")))
    for job in ("collect", "publish"):
        plan_download = _step(
            job, lambda s: s.get("with", {}).get("name") == plan_upload["with"]["name"]
        )
        assert plan_download["with"]["path"] == "plan"


def test_collect_reads_the_downloaded_artifact_layout(tmp_path: Path) -> None:
    """Run-job's output, uploaded and downloaded as the workflow does, is what collect reads."""
    for name in ("plan", "collect"):
        resolve(("ixci", name))
    from tests.collect.factory import make_result

    plan_args = _plan_args("workflow_dispatch.json", tmp_path)
    plan_args[plan_args.index("--only") + 1] = "sku=cpu"
    plan = _ixci("plan", "--catalog", str(ROOT), *plan_args, "--format", "json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.json").write_text(plan.stdout)
    jobs = json.loads(plan.stdout)["jobs"]
    assert jobs
    upload = _step("bench-0", lambda s: "upload-artifact" in str(s.get("uses")))
    runner_temp = tmp_path / "runner-temp"
    for job in jobs:
        ctx = {"matrix": {"id": job["id"]}, "runner": {"temp": str(runner_temp)}}
        job_dir = runner_temp / "results" / job["id"]  # run-job --output $RUNNER_TEMP/results
        job_dir.mkdir(parents=True)
        (job_dir / "result.json").write_text(json.dumps(make_result(job)))
        (job_dir / "server.log").write_text("ready\n")
        # upload-artifact: the folder's contents under the artifact name; download-artifact
        # (pattern, no merge): one folder per artifact under `path`.
        source = Path(ghexpr.render(upload["with"]["path"], ctx))
        shutil.copytree(source, tmp_path / "artifacts" / ghexpr.render(upload["with"]["name"], ctx))
    collect_line = next(i for i in INVOCATIONS if i.job == "collect" and i.argv[1] == "collect")
    proc = _ixci(*collect_line.argv[1:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    coverage = json.loads((tmp_path / "collected" / "coverage.json").read_text())
    assert coverage["plan"] is True
    assert coverage["summary"]["present"] == len(jobs) and coverage["summary"]["complete"] is True
    assert sorted(j["job_id"] for j in coverage["jobs"]) == sorted(j["id"] for j in jobs)
    summary_line = next(
        i for i in INVOCATIONS if i.job == "collect" and "summary-results" in i.argv
    )
    argv = [a.replace("$BENCH_APPROVED", "true") for a in summary_line.argv[1:]]
    summary = _ixci(*argv, cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert f"{len(jobs)}/{len(jobs)} job(s) ok" in summary.stdout


def test_run_job_dry_run_accepts_the_workflow_invocation(tmp_path: Path) -> None:
    resolve(("ixci", "run-job"))
    plan_args = _plan_args("workflow_dispatch.json", tmp_path)
    plan_args[plan_args.index("--only") + 1] = "sku=cpu"
    plan = json.loads(
        _ixci("plan", "--catalog", str(ROOT), *plan_args, "--format", "json", cwd=tmp_path).stdout
    )
    job_id = plan["jobs"][0]["id"]
    line = next(i for i in INVOCATIONS if i.argv[:2] == ("ixci", "run-job"))
    argv = [
        a.replace("$JOB_ID", job_id)
        .replace("$RUNNER_TEMP", str(tmp_path))
        .replace("$RUN_ATTEMPT", "2")
        for a in line.argv[1:]
    ]
    proc = _ixci(*argv, "--dry-run", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip()


def test_event_context_used_by_the_workflow_exists_in_payloads() -> None:
    """Every `github.event.…` path a workflow reads is present in the payloads of its events."""
    events = {
        "sweep.yml": ["schedule.json", *(p.name for p in EVENTS.glob("workflow_dispatch.*json"))],
        "gate.yml": [p.name for p in EVENTS.glob("pull_request_target.*.json")],
    }
    for wf_file, files in events.items():
        text = (ROOT / ".github" / "workflows" / wf_file).read_text(encoding="utf-8")
        paths = set(re.findall(r"github\.event\.([\w.]+)", text))
        assert paths and files, wf_file
        for path in paths:
            for name in files:
                value: Any = load_event(name)
                for part in path.split("."):
                    assert isinstance(value, dict) and part in value, f"{wf_file}: {name}: {path}"
                    value = value[part]
    assert github_context("schedule", load_event("schedule.json"))["ref"] == "refs/heads/main"


# ---- the gate and the sweep agree; cancellation reaches run-job; re-runs upload ----


def test_gate_dispatches_the_inputs_sweep_declares() -> None:
    """gate.run sends pr/sha/base/approved-by; sweep.yml declares them and plan-args reads them."""
    from ixci.github import gate, gha

    declared = load_workflow("sweep.yml")["on"]["workflow_dispatch"]["inputs"]
    sent = {"pr", "sha", "base", "approved-by"}
    assert sent <= set(declared)
    assert (
        gate.WORKFLOW == "sweep.yml" and (ROOT / ".github" / "workflows" / gate.WORKFLOW).is_file()
    )
    assert all(declared[k]["type"] == "string" and declared[k]["default"] == "" for k in sent)
    payload = load_event("workflow_dispatch.pull-request.json")
    assert set(payload["inputs"]) == set(declared)
    assert gha.plan_args("workflow_dispatch", payload)[:6] == [
        "--event", "pull_request", "--base", payload["inputs"]["base"],
        "--head", payload["inputs"]["sha"],
    ]  # fmt: skip


def test_bench_jobs_clean_up_then_exec_run_job() -> None:
    """`exec`: the runner's SIGINT/SIGTERM reach run-job itself, not a shell that dies first."""
    for name, job in _bench_jobs().items():
        runs = [str(s.get("run", "")) for s in job["steps"]]
        [run_job] = [r for r in runs if "run-job" in r]
        assert run_job.startswith("exec ixci run-job "), name
        cleanup = runs.index("ixci cleanup")
        assert cleanup < runs.index(run_job), name
        upload = next(s for s in job["steps"] if "upload-artifact" in str(s.get("uses")))
        assert upload["with"]["overwrite"] is True, f"{name}: a re-run attempt uploads again"
        step = next(s for s in job["steps"] if "run-job" in str(s.get("run")))
        assert step["env"]["RUN_ATTEMPT"] == "${{ github.run_attempt }}"


def test_every_runtime_dependency_is_in_the_bench_lock() -> None:
    """The GPU jobs install only the lock (`--no-deps .`): a dependency added to pyproject but not
    to the lock would be missing on the runner (pyarrow once was)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = (ROOT / "requirements" / "bench.lock").read_text(encoding="utf-8")
    pins = {
        re.sub(r"[-_.]+", "-", p).lower()
        for p in re.findall(r"^([A-Za-z0-9_.-]+)==", lock, flags=re.M)
    }
    wanted = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", d)[0]).lower()  # type: ignore[index]
              for d in project["dependencies"]}  # fmt: skip
    assert wanted - pins == set(), (
        "pin these in requirements/bench.lock (pip-compile --generate-hashes)"
    )


def test_bench_installs_are_hash_pinned() -> None:
    lock = (ROOT / "requirements" / "bench.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+", lock, flags=re.M)
    assert pins and lock.count("--hash=sha256:") >= len(pins)
    assert {"click", "pyyaml", "requests", "hatchling"} <= {p.lower() for p in pins}
    for wf_file in ("sweep.yml", "gate.yml"):
        for job_name, job in load_workflow(wf_file)["jobs"].items():
            for step in job.get("steps", []):
                script = str(step.get("run", ""))
                if "pip install" in script:
                    assert "--require-hashes -r requirements/bench.lock" in script, job_name
                    assert "--no-deps --no-build-isolation ." in script, job_name
