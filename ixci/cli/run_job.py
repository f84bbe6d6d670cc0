"""`ixci run-job ID`: run one planned job on this runner and write its artifact folder.

This module assembles the ambient state (environment, signals, catalog) into the runner's
injected inputs; the work is in `ixci.runner`.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ixci.cli import environ
from ixci.cli.collect import run_attempt_from_env
from ixci.errors import InvalidJob, JobFailure, UsageError


def _job_from_plan(path: Path, job_id: str) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read plan {path}: {exc}") from exc
    for job in plan.get("jobs", []):
        if job.get("id") == job_id:
            return dict(job)
    raise InvalidJob(
        f"job {job_id} is not in {path}", hint="run `ixci plan --format json` at the same commit"
    )


def _points(catalog: Any, job: Mapping[str, Any]) -> tuple[Any, ...]:
    from ixci.runner import PointSpec

    out = []
    for p in job.get("points", []):
        sc = catalog.scenarios.get(p["scenario"])
        if sc is None:
            raise InvalidJob(f"job {job['id']}: scenario {p['scenario']!r} is not in the catalog")
        conc = p.get("concurrency")
        n = max(sc.min_requests, sc.min_requests_per_concurrency * (conc or 1))
        out.append(
            PointSpec(
                id=p["id"],
                scenario=p["scenario"],
                isl=int(p["isl"]),
                osl=int(p["osl"]),
                concurrency=conc,
                request_rate=p.get("request_rate"),
                endpoint=sc.endpoint,
                num_requests=n,
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
            )
        )
    return tuple(out)


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

    if env.get("GITHUB_SHA"):
        return env["GITHUB_SHA"]
    try:
        res = cmd.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=False, timeout=30)
    except CommandFailed:
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _install_signals(cancel: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        click.echo(f"ixci run-job: received {signal.Signals(signum).name}; stopping", err=True)
        cancel.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _summary(doc: Mapping[str, Any]) -> str:
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
    from ixci.catalog import load_catalog
    from ixci.engines import adapter_for
    from ixci.engines.resolve import engine_job, resolve_checkpoint
    from ixci.plan import find_job, weights_gb
    from ixci.runner import JobSpec, RunOptions, loadgen_driver
    from ixci.runner import run_job as run
    from ixci.runtimes import get_runtime

    env = environ(ctx)
    if output is None and not dry_run:
        raise UsageError("--output DIR is required (or --dry-run)")
    catalog = load_catalog(root)
    job = _job_from_plan(plan_file, job_id) if plan_file else find_job(catalog, job_id).to_dict()
    runner_entry = catalog.runners.get(job["runner"])
    sku = catalog.skus.get(job["sku"])
    model = catalog.models.get(job["model"])
    if runner_entry is None or sku is None or model is None:
        raise InvalidJob(f"job {job_id}: runner/sku/model not in the catalog at {root}")
    recipe = next((r for r in catalog.recipes if r.path == job.get("recipe")), None)
    checkpoint_ref = (
        recipe.checkpoint if recipe else model.checkpoints.get(job["precision"], model.id)
    )
    cache = model_cache or Path(
        env.get("IXCI_MODEL_CACHE") or Path(env.get("HOME", "/tmp")) / ".cache" / "ixci" / "models"
    )
    kind = runtime_kind or str(runner_entry.runtime)
    vendor = str(sku.vendor)
    device = {"nvidia": "cuda", "amd": "rocm"}.get(vendor, "cpu")
    checkpoint = resolve_checkpoint(
        checkpoint_ref,
        cache=cache,
        model=model,
        size_gb=weights_gb(model, job["precision"]),
        generate=not dry_run,
    )
    folder = (output or Path("/tmp/ixci-dry-run")).resolve() / job_id
    ejob = engine_job(
        job,
        checkpoint=checkpoint,
        served_name=model.id,
        device=device,
        port=port,
        files_dir=str(folder / "files"),
        image=job.get("image") or None,
    )
    serve = adapter_for(
        catalog.engines[job["framework"]].adapter
        if job["framework"] in catalog.engines
        else job["framework"]
    )(ejob)
    spec = JobSpec(
        job=job,
        engine_job=ejob,
        runtime=kind,
        vendor=vendor,
        gpu_indices=_gpu_indices(gpu_arg, int(job["topology"].get("gpus", 0)), vendor),
        points=_points(catalog, job),
        tokenizer=checkpoint.tokenizer,
        sku_gpu_names=tuple(sku.gpu_names),
        sku_memory_gb=sku.memory_gb,
    )
    runtime = get_runtime(kind)
    opts = RunOptions(
        output=(output or Path("/tmp/ixci-dry-run")).resolve(),
        run_id=run_id or env.get("GITHUB_RUN_ID") or time.strftime("local-%Y%m%dT%H%M%S"),
        run_attempt=run_attempt or run_attempt_from_env(env),
        event=env.get("GITHUB_EVENT_NAME") or "local",
        repository=env.get("GITHUB_REPOSITORY"),
        runner_name=env.get("RUNNER_NAME"),
        hostname=socket.gethostname(),
        git_sha=_git_sha(root, env),
        host_env=env,
        model_cache=str(cache),
        pull=pull,
        ready_timeout_s=ready_timeout,
    )
    if dry_run:
        from ixci.runtimes.base import LaunchContext

        lc = LaunchContext(
            job_id=job_id,
            run_id=opts.run_id,
            vendor=vendor,
            gpu_indices=spec.gpu_indices,
            workdir=folder,
            model_cache=str(cache),
            host_env=env,
            pull=pull,
        )
        click.echo(
            f"# job {job_id} ({job['name']}) on runtime {kind}; readiness timeout {serve.ready_timeout_s:.0f} s"
        )
        click.echo(runtime.dry_run(serve, lc))
        for p in spec.points:
            click.echo(
                f"# point {p.id}: {p.scenario} isl={p.isl} osl={p.osl} concurrency={p.concurrency} "
                f"requests={p.num_requests} → POST {serve.base_url}{serve.dialect.path(_endpoint(serve, p.endpoint))}"
            )
        return
    cancel = threading.Event()
    _install_signals(cancel)
    driver = loadgen_driver(sys.executable, env)
    try:
        result = run(
            spec,
            opts,
            runtime=runtime,
            driver=driver,
            serve=serve,
            cancel=cancel,
            retries=retries,
            on_retry=lambda exc, n: click.echo(
                f"attempt {n} failed ({exc.failure_class}); retrying", err=True
            ),
        )
    except JobFailure as exc:
        doc_path = opts.output / job_id / "result.json"
        if doc_path.exists():
            click.echo(_summary(json.loads(doc_path.read_text())), err=True)
        click.echo(f"artifact: {doc_path}", err=True)
        raise exc from None
    click.echo(_summary(result.doc))
    click.echo(f"artifact: {result.path}")


def _endpoint(serve: Any, name: str) -> Any:
    from ixci.loadgen.dialect import Endpoint

    return Endpoint.CHAT if serve.engine == "transformers" else Endpoint(name)
