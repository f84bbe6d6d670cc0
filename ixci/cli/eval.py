"""`ixci eval`: run eval tasks against a running OpenAI-compatible server and report scores
with their 95 % intervals; exit 20 when the quality gate fails. The work is in `ixci.evals`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ixci.errors import UsageError


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise UsageError(f"{what} {value!r}: expected TASK=VALUE")
        out[key] = rest
    return out


def _rules(min_scores: dict[str, str], baseline: Path | None, tasks: list[str]) -> tuple[Any, ...]:
    from ixci.evals import scoring

    rules = []
    for task, value in min_scores.items():
        try:
            rules.append(scoring.GateRule(task=task, min_score=float(value)))
        except ValueError:
            raise UsageError(f"--min-score {task}={value!r}: not a number") from None
    if baseline is not None:
        try:
            doc = json.loads(baseline.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--baseline {baseline}: cannot read ({exc})") from None
        block = doc.get("evals", doc) if isinstance(doc, dict) else None
        if not isinstance(block, dict):
            raise UsageError(f"--baseline {baseline}: no `evals` block",
                             hint="give a result.json or an `ixci eval --output` file")  # fmt: skip
        rules += scoring.baseline_rules(block, tasks)
    return tuple(rules)


def render(block: dict[str, Any]) -> str:
    """The human summary of an `evals` block."""
    lines = []
    for t in block["tasks"]:
        lo, hi = t["ci95"]
        score = "n/a" if t["score"] is None else f"{t['score']:.3f}"
        lines.append(f"{t['task']}: {score} (95 % CI {lo:.3f}–{hi:.3f}), n={t['n']}, "
                     f"correct={t['correct']}, errors={t['errors']}; dataset {t['dataset']['name']} "
                     f"{t['dataset']['version']} sha256 {t['dataset']['sha256'][:12]}")  # fmt: skip
        spec = t.get("speculative")
        if spec:
            lines.append(f"  draft acceptance {spec['acceptance_rate']:.3f} "
                         f"({spec['accepted_tokens']}/{spec['draft_tokens']})")  # fmt: skip
    gate = block["gate"]
    lines.append("quality gate: " + ("passed" if gate["passed"] else "FAILED"))
    lines += [f"  {r}" for r in gate["reasons"]]
    return "\n".join(lines)


@click.command("eval")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--url", required=True, help="Server base URL, e.g. http://127.0.0.1:8000.")
@click.option("--model", required=True, help="Model name the server serves.")
@click.option("--catalog", "root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Repository root holding benchmarks/evals/.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="Rows per task (default: the task's).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds per request.")  # fmt: skip
@click.option(
    "--data",
    "data_args",
    multiple=True,
    metavar="TASK=SOURCE",
    help="Rows for TASK: a .jsonl/.parquet file, package:PKG/PATH or hf:NAME[:CONFIG]:SPLIT.",
)
@click.option(
    "--min-score",
    "min_args",
    multiple=True,
    metavar="TASK=SCORE",
    help="Gate: fail when TASK scores below SCORE.",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Gate: fail a task whose score is below this earlier result's beyond its 95 % CI.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the `evals` block as JSON here (and the per-row records beside it).",
)
def eval_(tasks: tuple[str, ...], url: str, model: str, root: Path, limit: int | None,
          concurrency: int, timeout: float, data_args: tuple[str, ...], min_args: tuple[str, ...],
          baseline: Path | None, output: Path | None) -> None:  # fmt: skip
    """Score TASKS (names under benchmarks/evals/) on the server at --url."""
    from ixci.evals.errors import QualityGateFailed
    from ixci.evals.run import SuiteOptions, run_suite
    from ixci.evals.tasks import load_suite

    suite = load_suite(root, list(tasks))
    opts = SuiteOptions(
        base_url=url, model=model, concurrency=concurrency, timeout_s=timeout, limit=limit,
        data=_pairs(data_args, "--data"), rules=_rules(_pairs(min_args, "--min-score"), baseline, list(tasks)),
        records=output.with_name(output.stem + ".rows.jsonl.gz") if output else None,
    )  # fmt: skip
    block = run_suite(suite, opts)
    if output is not None:
        output.write_text(json.dumps(block, indent=1) + "\n", encoding="utf-8")
    click.echo(render(block))
    if block["quality_failed"]:
        raise QualityGateFailed("quality gate failed: " + "; ".join(block["gate"]["reasons"]))
