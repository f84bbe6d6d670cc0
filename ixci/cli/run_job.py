"""`ixci run-job ID`: run one planned job on this runner and write its artifact folder.

This module assembles the ambient state (environment, signals, catalog) into the runner's
injected inputs; the work is in `ixci.run.runner`.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ixci.cli import environ
from ixci.cli.collect import run_attempt_from_env
from ixci.errors import InvalidJob, JobFailure, UsageError

if TYPE_CHECKING:
    from ixci.catalog.catalog import Catalog, Model, Recipe, Runner, Sku
    from ixci.engines.base import EngineJob, ServeSpec
    from ixci.job import Job
    from ixci.run.cancel import CancelToken
    from ixci.run.jobspec import JobSpec, RunOptions
    from ixci.runtimes.base import Runtime


def _job_from_plan(path: Path, job_id: str) -> Job:
    from ixci.job import load_plan

    job = load_plan(path).job(job_id)
    if job is None:
        raise InvalidJob(
            f"job {job_id} is not in {path}",
            hint="run `ixci plan --format json` at the same commit",
        )
    return job


def _points(catalog: Any, job: Job) -> tuple[Any, ...]:
    from ixci import ids
    from ixci.plan.plan import num_requests
    from ixci.run.jobspec import PointSpec

    out = []
    for p in job.points:
        ids.stem(p.id, what=f"job {job.id}: point id")  # names scratch files
        sc = catalog.scenarios.get(p.scenario)
        if sc is None:
            raise InvalidJob(f"job {job.id}: scenario {p.scenario!r} is not in the catalog")
        conc = p.concurrency
        out.append(
            PointSpec(
                point=p,  # with the plan's (or the re-expansion's) repeats for this event
                endpoint=sc.endpoint,
                num_requests=num_requests(sc, conc),  # the count the plan's estimate assumed
                min_duration_s=sc.min_duration_s,
                max_duration_s=sc.max_duration_s,
                # at least one warm-up request per slot: a closed loop measured from a cold start
                # (or draining after too short a warm-up) under-reports steady throughput
                warmup_requests=max(sc.warmup_requests, conc or 0),
                range_ratio=sc.range_ratio,
                error_threshold=sc.error_threshold,
                slo_ttft_s=sc.slo.ttft_s,
                slo_tpot_s=sc.slo.tpot_s,
                requires_power=sc.requires_power,
                workload=_workload(catalog, sc),
                cache=sc.cache_before_point,
            )
        )
    return tuple(out)


def _workload(catalog: Any, scenario: Any) -> dict[str, Any] | None:
    """A scenario's sessions workload as JSON for the load-generator child (trace files absolute)."""
    from ixci.loadgen.sessions import workload_json

    return workload_json(scenario.workload, root=catalog.root) if scenario.workload else None


def _gpu_indices(arg: str | None, gpus: int, vendor: str) -> tuple[int, ...]:
    if vendor == "cpu" or gpus == 0:
        return ()
    if arg:
        try:
            chosen = tuple(int(x) for x in arg.split(","))
        except ValueError as exc:
            raise UsageError(f"--gpus {arg!r}: expected comma-separated indices like 0,1") from exc
        if len(chosen) < gpus:
            raise UsageError(f"--gpus lists {len(chosen)} devices but the job needs {gpus}")
        return chosen[:gpus]
    return tuple(range(gpus))


def _git_sha(root: Path, env: Mapping[str, str]) -> str | None:
    from ixci import cmd
    from ixci.errors import CommandFailed

    # The checkout's own commit first: a dispatched pull-request benchmark checks out the
    # approved commit while GITHUB_SHA stays the default branch's (a step cannot override it).
    try:
        res = cmd.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=False, timeout=30)
    except CommandFailed:
        res = None
    sha = res.stdout.strip() if res is not None and res.returncode == 0 else ""
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        return sha
    return env.get("GITHUB_SHA") or None


def _install_signals(cancel: CancelToken) -> None:
    """SIGINT, SIGTERM and SIGHUP cancel the job (`ixci.run.cancel.CancelToken.trip`): the GitHub runner
    sends SIGINT, SIGTERM 7.5 s later, then SIGKILL 2.5 s after that; a lost session sends
    SIGHUP. Only the first signal acts; later ones are reported and never abort the cleanup."""

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        first = not cancel.is_set()
        with contextlib.suppress(OSError):  # a closed stderr must not break the cleanup
            sys.stderr.write(
                f"ixci run-job: received {name}; "
                + ("stopping (finished points are kept)\n" if first else "already stopping\n")
            )
        cancel.trip(f"cancelled by {name}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _settle_signals() -> None:
    """The job is over and cleaned up: ignore further stop signals, so the exit code says how
    the job ended. (At interpreter exit Python resets its own handlers to the default, and a
    late SIGINT/SIGTERM would then kill the process with that signal instead.)"""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _summary(doc: Mapping[str, Any]) -> str:
    from ixci.loadgen.timing import invalid_timing

    lines = [
        f"job {doc['job']['id']}: {doc['status']}"
        + (f" ({doc['failure_class']})" if doc["failure_class"] else "")
    ]
    for p in doc["points"]:
        m = p.get("metrics") or {}
        ttft = (m.get("ttft") or {}).get("median")
        tput = m.get("output_throughput")
        lines.append(
            f"  {p['id']} {p['scenario']} c={p['concurrency']}: {p['status']}"
            + (f", {tput:.1f} out tok/s" if tput is not None else "")
            + (f", TTFT p50 {ttft * 1e3:.1f} ms" if ttft is not None else "")
            + (f"  [{'; '.join(p['invalid_reasons'])}]" if p["status"] not in ("ok",) else "")
        )
        # a timing metric the client could not stamp exactly is null in the artifact: say why
        lines += [f"    {why}" for why in invalid_timing(m)]
    return "\n".join(lines)


@click.command("run-job")
@click.argument("job_id")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Take the job object from this `ixci plan --format json` file.",
)
@click.option(
    "--catalog",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Repository root holding matrix/ and benchmarks/.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Artifact folder; writes OUTPUT/<job id>/result.json, requests.jsonl.gz, server.log.",
)
@click.option("--dry-run", is_flag=True, help="Print every command it would run; run nothing.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Retry infrastructure failures (preflight, image, not_ready) this many times.",
)
@click.option(
    "--run-id", help="Run id recorded in the artifact (default: GITHUB_RUN_ID, else local-<time>)."
)
@click.option(
    "--run-attempt",
    type=click.IntRange(min=1),
    help="Workflow run attempt recorded in the artifact (default: GITHUB_RUN_ATTEMPT, else 1).",
)
@click.option(
    "--model-cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model folder (mounted into containers; local: checkpoints are generated here).",
)
@click.option("--gpus", "gpu_arg", help="GPU indices to use, e.g. 0,1 (default: the first N).")
@click.option(
    "--runtime", "runtime_kind", help="Override the runner's runtime (process, docker, podman)."
)
@click.option(
    "--ready-timeout", type=click.FloatRange(min=1), help="Override the readiness timeout (s)."
)
@click.option(
    "--pull", is_flag=True, help="Pull a missing image instead of failing with class `image`."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_context
def run_job(
    ctx: click.Context,
    job_id: str,
    plan_file: Path | None,
    root: Path,
    output: Path | None,
    dry_run: bool,
    retries: int,
    run_id: str | None,
    run_attempt: int | None,
    model_cache: Path | None,
    gpu_arg: str | None,
    runtime_kind: str | None,
    ready_timeout: float | None,
    pull: bool,
    port: int,
) -> None:
    """Run planned job JOB_ID: preflight, launch, readiness, every point, telemetry, artifacts."""
    from ixci import ids
    from ixci.run.cancel import CancelToken
    from ixci.runtimes import get_runtime

    env = environ(ctx)
    ids.job_id(job_id)  # it names the artifact folder, containers and the Slurm job
    if run_id is not None:
        ids.run_id(run_id, what="--run-id")
    if output is None and not dry_run:
        raise UsageError("--output DIR is required (or --dry-run)")
    cancel = CancelToken()
    if not dry_run:  # from here on a signal cancels the job instead of killing it midway
        _install_signals(cancel)
    out = (output or Path("/tmp/ixci-dry-run")).resolve()
    prep = _prepare(root, env, job_id, plan_file, out=out, dry_run=dry_run,
                    model_cache=model_cache, gpu_arg=gpu_arg, runtime_kind=runtime_kind, port=port)  # fmt: skip
    opts = _options(root, env, prep, out=out, run_id=run_id, run_attempt=run_attempt, pull=pull,
                    ready_timeout=ready_timeout)  # fmt: skip
    runtime = get_runtime(prep.kind)
    if dry_run:
        _print_dry_run(prep, opts, runtime)
    else:
        _execute(prep, opts, runtime, env, cancel=cancel, retries=retries)


@dataclass(frozen=True)
class _Prepared:
    """A planned job resolved against the catalog: what the runner needs to run it."""

    job_id: str
    name: str
    event: str
    kind: str  # the runtime
    cache: Path  # the model cache
    folder: Path  # the job's artifact folder
    spec: JobSpec
    serve: ServeSpec


def _prepare(
    root: Path,
    env: Mapping[str, str],
    job_id: str,
    plan_file: Path | None,
    *,
    out: Path,
    dry_run: bool,
    model_cache: Path | None,
    gpu_arg: str | None,
    runtime_kind: str | None,
    port: int,
) -> _Prepared:
    """The job (from the plan file, else planned here) with its checkpoint, engine command and
    points; the checkpoint is generated here when it is a local model not made yet."""
    from ixci.catalog.catalog import load_catalog
    from ixci.engines import adapter_for
    from ixci.engines.resolve import engine_job, resolve_checkpoint, resolve_draft
    from ixci.plan.plan import find_job, weights_gb

    catalog = load_catalog(root)
    event = env.get("GITHUB_EVENT_NAME") or "local"
    job = (
        _job_from_plan(plan_file, job_id)
        if plan_file
        else find_job(catalog, job_id, event)  # nightly: `nightly-repeats`
    )
    runner_entry, sku, model = _entries(catalog, job, root)
    recipe = next((r for r in catalog.recipes if r.path == job.recipe), None)
    by_precision = {str(k): v for k, v in model.checkpoints.items()}
    cache = model_cache or Path(
        env.get("IXCI_MODEL_CACHE") or Path(env.get("HOME", "/tmp"), ".cache/ixci/models")
    )
    vendor = str(sku.vendor)
    checkpoint = resolve_checkpoint(
        recipe.checkpoint if recipe else by_precision.get(job.precision, model.id),
        cache=cache,
        model=model,
        size_gb=weights_gb(model, job.precision),
        generate=not dry_run,
    )
    folder = out / job_id
    ejob = engine_job(
        job,
        checkpoint=checkpoint,
        served_name=model.id,
        device={"nvidia": "cuda", "amd": "rocm"}.get(vendor, "cpu"),
        port=port,
        files_dir=str(folder / "files"),
        image=job.image or None,
        draft_path=resolve_draft(job, cache=cache, check=not dry_run),
    )
    engine = catalog.engines.get(job.framework)
    spec = _job_spec(root, catalog, job, recipe, model, sku, ejob=ejob, tokenizer=checkpoint.tokenizer,
                     runtime=runtime_kind or str(runner_entry.runtime), gpu_arg=gpu_arg)  # fmt: skip
    return _Prepared(job_id=job_id, name=job.name, event=event, kind=spec.runtime, cache=cache,
                     folder=folder, spec=spec, serve=adapter_for(engine.adapter if engine else job.framework)(ejob))  # fmt: skip


def _entries(catalog: Catalog, job: Job, root: Path) -> tuple[Runner, Sku, Model]:
    runner_entry = catalog.runners.get(job.runner)
    sku = catalog.skus.get(job.sku)
    model = catalog.models.get(job.model)
    if runner_entry is None or sku is None or model is None:
        raise InvalidJob(f"job {job.id}: runner/sku/model not in the catalog at {root}")
    return runner_entry, sku, model


def _job_spec(
    root: Path,
    catalog: Catalog,
    job: Job,
    recipe: Recipe | None,
    model: Model,
    sku: Sku,
    *,
    ejob: EngineJob,
    tokenizer: str | None,
    runtime: str,
    gpu_arg: str | None,
) -> JobSpec:
    """The runner's view of the job: the plan's job object, its engine job, GPUs, points, evals
    and roofline inputs."""
    from ixci.evals.step import eval_step
    from ixci.run import roofline
    from ixci.run.jobspec import JobSpec

    vendor = str(sku.vendor)
    topo = job.topology
    return JobSpec(
        engine_job=ejob,
        runtime=runtime,
        vendor=vendor,
        gpu_indices=_gpu_indices(gpu_arg, topo.gpus, vendor),
        points=_points(catalog, job),
        tokenizer=tokenizer,
        sku_gpu_names=tuple(sku.gpu_names),
        sku_memory_gb=sku.memory_gb,
        evals=eval_step(root, recipe.evals if recipe else None, lambda s: click.echo(s, err=True)),
        roofline=None
        if topo.disaggregated
        else roofline.inputs_for(model, sku, precision=job.precision, gpus=topo.gpus),
    )


def _options(
    root: Path,
    env: dict[str, str],
    prep: _Prepared,
    *,
    out: Path,
    run_id: str | None,
    run_attempt: int | None,
    pull: bool,
    ready_timeout: float | None,
) -> RunOptions:
    from ixci import ids
    from ixci.run.jobspec import RunOptions
    from ixci.runtimes.state import owner_scope, state_dir

    return RunOptions(
        output=out,
        run_id=ids.run_id(
            run_id or env.get("GITHUB_RUN_ID") or time.strftime("local-%Y%m%dT%H%M%S"),
            what="run id (--run-id or GITHUB_RUN_ID)",
        ),
        run_attempt=run_attempt or run_attempt_from_env(env),
        event=prep.event,
        repository=env.get("GITHUB_REPOSITORY"),
        runner_name=env.get("RUNNER_NAME"),
        hostname=socket.gethostname(),
        git_sha=_git_sha(root, env),
        host_env=env,
        model_cache=str(prep.cache),
        pull=pull,
        ready_timeout_s=ready_timeout,
        owner=owner_scope(env.get("RUNNER_NAME")),
        state_dir=state_dir(env),
    )


def _print_dry_run(prep: _Prepared, opts: RunOptions, runtime: Runtime) -> None:
    """--dry-run: the launch command and each point's request, nothing started."""
    from ixci.runtimes.base import LaunchContext

    serve, spec = prep.serve, prep.spec
    lc = LaunchContext(
        job_id=prep.job_id,
        run_id=opts.run_id,
        vendor=spec.vendor,
        gpu_indices=spec.gpu_indices,
        workdir=prep.folder,
        model_cache=str(prep.cache),
        host_env=opts.host_env,
        pull=opts.pull,
        owner=opts.owner,
    )
    click.echo(
        f"# job {prep.job_id} ({prep.name}) on runtime {prep.kind}; readiness timeout {serve.ready_timeout_s:.0f} s"
    )
    click.echo(runtime.dry_run(serve, lc))
    for p in spec.points:
        click.echo(
            f"# point {p.id}: {p.scenario} isl={p.isl} osl={p.osl} concurrency={p.concurrency} "
            f"requests={p.num_requests} → POST {serve.base_url}{serve.dialect.path(serve.dialect.endpoint_for(p.endpoint))}"
        )


def _execute(
    prep: _Prepared,
    opts: RunOptions,
    runtime: Runtime,
    env: Mapping[str, str],
    *,
    cancel: CancelToken,
    retries: int,
) -> None:
    """Run the job with the load driver; print its summary and the artifact's path."""
    from ixci.run.loaddriver import loadgen_driver
    from ixci.run.runner import run_job as run

    driver = loadgen_driver(
        sys.executable, env, state_dir=opts.state_dir, owner=opts.owner, run_id=opts.run_id
    )
    try:
        result = run(
            prep.spec,
            opts,
            runtime=runtime,
            driver=driver,
            serve=prep.serve,
            cancel=cancel,
            retries=retries,
            on_retry=lambda exc, n: click.echo(
                f"attempt {n} failed ({exc.failure_class}); retrying", err=True
            ),
        )
    except JobFailure as exc:
        _settle_signals()
        doc_path = opts.output / prep.job_id / "result.json"
        if doc_path.exists():
            click.echo(_summary(json.loads(doc_path.read_text())), err=True)
        click.echo(f"artifact: {doc_path}", err=True)
        raise exc from None
    _settle_signals()
    click.echo(_summary(result.doc))
    click.echo(f"artifact: {result.path}")
