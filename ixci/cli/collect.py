"""`ixci collect`, `ixci aggregate`, `ixci export`: artifacts → validated results → tidy table."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ixci.cli import environ
from ixci.errors import CollectError, UsageError, storage_error

_DIR = click.Path(path_type=Path)


def run_attempt_from_env(env: dict[str, str]) -> int:
    """GITHUB_RUN_ATTEMPT as a positive number (1 when unset); `UsageError` when malformed."""
    raw = env.get("GITHUB_RUN_ATTEMPT") or "1"
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        raise UsageError(
            f"GITHUB_RUN_ATTEMPT {raw[:40]!r} is not a positive number",
            hint="pass --run-attempt N, or leave GITHUB_RUN_ATTEMPT to GitHub Actions",
        )
    return int(raw)


def economics_for(root: Path | None) -> Any:
    """Prices from the catalog at `root` (None, or no matrix/hardware.yaml there: no prices)."""
    from ixci.results.aggregate import Economics, economics_from_catalog

    if root is None or not (root / "matrix" / "hardware.yaml").is_file():
        return Economics()
    from ixci.catalog.catalog import load_catalog

    return economics_from_catalog(load_catalog(root))


def prefixes_for(root: Path) -> dict[str, str]:
    """Model key → prefix from the catalog's matrix/models.yaml (none there: no prefixes)."""
    if not (root / "matrix" / "models.yaml").is_file():
        return {}
    from ixci.catalog.catalog import load_catalog

    return {key: m.prefix for key, m in load_catalog(root).models.items()}


def github_downloads(
    ctx: click.Context, repo: str, run_id: str, dest: Path, api_url: str | None
) -> list[Any]:
    """Download the run's `result-*` artifacts into `dest`; return skip entries for expired ones."""
    import requests

    from ixci import ids
    from ixci.errors import UnsafeValue
    from ixci.github import github_api
    from ixci.results.collect import Skipped

    env = environ(ctx)
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    url = api_url or env.get("GITHUB_API_URL") or github_api.API_URL
    with requests.Session() as session:
        client = github_api.ArtifactClient(session, token, api_url=url)
        skipped = []
        for art in github_api.iter_result_artifacts(client.list_artifacts(repo, run_id)):
            source = f"github:{repo}/actions/runs/{run_id}/artifacts/{art.id}"
            try:
                target = ids.contained(dest, ids.stem(art.name, what="artifact name") + ".zip")
            except UnsafeValue as exc:
                skipped.append(
                    Skipped(source=source, category="unsafe_value", reasons=(exc.message,))
                )
                continue
            try:
                client.download(art, target)
            except github_api.ArtifactExpired as exc:
                skipped.append(
                    Skipped(
                        source=source,
                        category="expired",
                        reasons=(exc.message,),
                        job_id=art.name.removeprefix("result-") or None,
                    )
                )
    return skipped


def run_collect(
    ctx: click.Context,
    paths: Sequence[Path],
    *,
    plan: Path | None,
    run_id: str | None,
    repo: str | None,
    api_url: str | None,
) -> Any:
    """Collect from local paths and, with --repo, from the run's GitHub artifacts."""
    from ixci import ids
    from ixci.job import load_plan
    from ixci.results.collect import collect as do_collect

    plan_doc = load_plan(plan) if plan is not None else None
    if run_id is not None:
        ids.run_id(run_id, what="--run-id")
    if repo is not None and run_id is None:
        raise UsageError("--repo needs --run-id (the workflow run whose artifacts to download)")
    if repo is None and not paths:
        raise UsageError("give artifact directories, or --repo owner/name --run-id N")
    with tempfile.TemporaryDirectory(prefix="ixci-artifacts-") as tmp:
        extra = github_downloads(ctx, repo, str(run_id), Path(tmp), api_url) if repo else []
        roots = [*paths, Path(tmp)] if repo else list(paths)
        return do_collect(roots, plan=plan_doc, run_id=run_id, extra_skipped=extra)


def nothing_planned(col: Any) -> bool:
    """Whether the collection was bound to a plan with no jobs (and nothing arrived for it)."""
    return col.plan is not None and not col.plan.jobs and not col.rejected


def report(ctx: click.Context, col: Any) -> None:
    """Print a one-line summary per rejection and, under GitHub Actions, annotations."""
    from ixci.github import gha

    s = col.coverage["summary"]
    if nothing_planned(col):
        click.echo("nothing planned: the plan has no jobs, so no artifact was expected")
        return
    click.echo(
        f"accepted {len(col.accepted)} artifact(s), skipped {len(col.skipped)}; "
        f"jobs present {s['present']}, partial {s['partial']}, failed {s['failed']}, "
        f"missing {s['missing']}, rejected {s['rejected']}; points ok {s['points_ok']}/{s['points_expected']}"
    )
    in_actions = environ(ctx).get("GITHUB_ACTIONS") == "true"
    for sk in col.skipped:
        click.echo(f"  skipped {sk.source}: {sk.category}: {'; '.join(sk.reasons)}", err=True)
        if in_actions and sk.category not in {"duplicate", "superseded"}:
            gha.emit_annotation(
                sys.stdout,
                "warning",
                "; ".join(sk.reasons),
                title=f"artifact rejected ({sk.category})",
            )


def strict_check(col: Any, out: Path) -> None:
    """`--strict`: `CollectError` (exit 6) when an artifact was rejected or a job is not present.

    Exit 6 means "the collection is incomplete"; an internal error is exit 1.
    """
    s = col.coverage["summary"]
    rejected = len(col.rejected)
    if s["complete"] and not rejected:
        return
    raise CollectError(
        f"collection incomplete: {s['jobs'] - s['present']} of {s['jobs']} job(s) not present, "
        f"{rejected} artifact(s) rejected, {s['points_ok']}/{s['points_expected']} points ok; "
        f"see {out / 'coverage.json'} and {out / 'skipped.json'}"
    )


@click.command("collect")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out", type=_DIR, required=True, help="Folder for results/, skipped.json, coverage.json."
)
@click.option(
    "--plan",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="`ixci plan --format json` output: only its jobs are accepted; coverage against it.",
)
@click.option(
    "--run-id", help="Only accept artifacts of this run (and the GitHub run to download)."
)
@click.option(
    "--repo", help="owner/name: download the run's result-* artifacts (token: GITHUB_TOKEN)."
)
@click.option("--api-url", help="GitHub API URL (default: $GITHUB_API_URL or api.github.com).")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 6 when any artifact was rejected or any job is not present.",
)
@click.pass_context
def collect(
    ctx: click.Context,
    paths: tuple[Path, ...],
    out: Path,
    plan: Path | None,
    run_id: str | None,
    repo: str | None,
    api_url: str | None,
    strict: bool,
) -> None:
    """Validate every artifact under PATHS; reject bad ones with reasons; write coverage.

    With --plan, a PATH that does not exist means no artifact arrived (a plan with no jobs
    uploads none); without one it is an error.
    """
    from ixci.results.collect import write_collection

    col = run_collect(ctx, paths, plan=plan, run_id=run_id, repo=repo, api_url=api_url)
    write_collection(col, out)
    report(ctx, col)
    if strict:
        strict_check(col, out)


@click.command("aggregate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", type=_DIR, required=True, help="Folder for points.json (columnar) and points.csv."
)
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Repository root whose matrix/hardware.yaml gives prices and all-in kW.",
)
def aggregate(path: Path, out: Path, catalog: Path) -> None:
    """Turn collected results (PATH/results/*.json, or a results tree) into the tidy table."""
    from ixci.results.aggregate import read_documents, tidy_table, write_tables

    docs = read_documents(path)
    if not docs:
        raise CollectError(
            f"{path}: no results/*.json found", hint="run `ixci collect … --out DIR` first"
        )
    df = tidy_table(docs, economics_for(catalog))
    try:
        write_tables(df, out)
    except OSError as exc:
        raise storage_error(exc, f"the table into {out}") from exc
    click.echo(f"{len(df)} rows from {len(docs)} results → {out / 'points.json'}")


@click.command("export")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["inferencex"]), default="inferencex", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default stdout)."
)
@click.option(
    "--catalog", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True
)
def export(path: Path, fmt: str, out: Path | None, catalog: Path) -> None:
    """Export PATH (a points.json, a collect output or a results tree) as the incumbent's rows.

    Points left out and facts a points.json cannot give are printed as notes on stderr."""
    from ixci.results.aggregate import from_columnar, read_documents, tidy_table
    from ixci.results.export import to_inferencex

    docs = None
    per_node: dict[str, int] = {}
    if path.is_file():
        df = from_columnar(json.loads(path.read_text(encoding="utf-8")))
        if (catalog / "matrix" / "runners.yaml").is_file():  # GPUs per node → nodes
            from ixci.catalog.catalog import load_catalog

            per_node = {n: r.gpus_per_node for n, r in load_catalog(catalog).runners.items()}
    else:
        docs = read_documents(path)
        df = tidy_table(docs, economics_for(catalog))
    notes: list[str] = []
    rows = to_inferencex(
        df, prefixes_for(catalog), documents=docs, gpus_per_node=per_node, notes=notes
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    text = json.dumps(rows, indent=2, allow_nan=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise storage_error(exc, str(out)) from exc
