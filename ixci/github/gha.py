"""GitHub Actions I/O: workflow commands (annotations), step outputs and job summaries.

Paths and flags are passed in (only `cli` reads the environment). Values written to
`$GITHUB_OUTPUT` use the heredoc form with a random delimiter so no value can inject
another output.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ixci.errors import PlanError, UsageError
from ixci.job import Plan
from ixci.results.artifacts import Rejected, parse_json, read_file


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
    title: str | None = None,
) -> str:
    """Format one `::error`/`::warning`/`::notice` workflow command."""
    if level not in {"error", "warning", "notice"}:
        raise ValueError(f"unknown annotation level {level!r}")
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line is not None:
        props.append(f"line={line}")
    if col is not None:
        props.append(f"col={col}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{_escape_data(message)}"


def emit_annotation(stream: TextIO, level: str, message: str, **where: object) -> None:
    """Write one annotation line to `stream` (stdout under GitHub Actions)."""
    stream.write(annotation(level, message, **where) + "\n")  # type: ignore[arg-type]


#: GitHub: a job's outputs total at most 1 MB, "approximated based on UTF-16 encoding" (two
#: bytes per UTF-16 code unit). We stay below 10^6 such bytes.
OUTPUT_LIMIT_UTF16_BYTES = 1_000_000


def output_size(values: Mapping[str, str]) -> int:
    """The size GitHub counts for step outputs: UTF-16 bytes of every name and value.

    ASCII counts 2 per character (UTF-8 counts 1: a UTF-8 guard lets ~2 MB of ASCII through);
    CJK counts 2 (UTF-8: 3); a character outside the BMP, a surrogate pair, counts 4.
    """
    return sum(len(k.encode("utf-16-le")) + len(v.encode("utf-16-le")) for k, v in values.items())


def write_outputs(path: Path, values: dict[str, str]) -> None:
    """Append `values` to the `$GITHUB_OUTPUT` file, heredoc-delimited.

    Raises `PlanError` (nothing written) when they exceed GitHub's job-output limit.
    """
    size = output_size(values)
    if size > OUTPUT_LIMIT_UTF16_BYTES:
        raise PlanError(
            f"step outputs would be {size} bytes as GitHub counts them (UTF-16), over the "
            f"{OUTPUT_LIMIT_UTF16_BYTES}-byte job-output limit; nothing was written",
            hint="narrow the selection (--only/--exclude, a budget) or shorten job names",
        )
    with path.open("a", encoding="utf-8") as fh:
        for key, value in values.items():
            delim = f"ghadelim_{secrets.token_hex(8)}"
            if delim in value:  # astronomically unlikely, but never emit an ambiguous block
                raise ValueError("output value contains the delimiter")
            fh.write(f"{key}<<{delim}\n{value}\n{delim}\n")


def append_summary(path: Path, markdown: str) -> None:
    """Append markdown to the `$GITHUB_STEP_SUMMARY` file."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")


# --------------------------------------------------------------------------------------------
# Workflow wiring: the decisions the sweep workflow would otherwise make in bash or expressions.
# --------------------------------------------------------------------------------------------


#: GitHub shows at most this many error annotations per step.
ANNOTATIONS_PER_STEP = 10
#: The label a maintainer applies to let a fork's pull request reach self-hosted runners.
APPROVAL_LABEL = "safe-to-bench"

_FILTER_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_-]*=[A-Za-z0-9_.:/+*|-]+(,[A-Za-z_][A-Za-z0-9_-]*=[A-Za-z0-9_.:/+*|-]+)*$"
)
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def plan_args(
    event_name: str,
    payload: Mapping[str, Any],
    *,
    nightly_budget: str = "",
    history: Path | None = None,
) -> list[str]:
    """The `ixci plan` arguments (one argv element each) for a workflow event.

    `payload` is the webhook payload GitHub writes to `$GITHUB_EVENT_PATH`. Pull requests
    (`pull_request`, `pull_request_target`: what the gate plans) plan against their base and head
    commits; nightly runs plan everything, or a rotation within `nightly_budget` GPU-hours when
    given; dispatch runs pass the `only`, `exclude` and `budget-gpu-hours` inputs, and a dispatch
    with a `pr` input (the gate's, for an approved commit) plans as that pull request from its
    `base` and `sha` inputs. Every input is checked here so nothing odd reaches the planner's argv.
    `history` (the results branch's index.json, when the caller found one) orders the nightly
    rotation oldest-measured first.
    Raises `UsageError` for an event the sweep does not plan or a malformed input.
    """
    if event_name in ("pull_request", "pull_request_target"):
        pr = _mapping(payload.get("pull_request"), "pull_request")
        base = _sha(_mapping(pr.get("base"), "pull_request.base").get("sha"), "base")
        head = _sha(_mapping(pr.get("head"), "pull_request.head").get("sha"), "head")
        return ["--event", "pull_request", "--base", base, "--head", head]
    if event_name == "schedule":
        extra = ["--history", str(history)] if history is not None else []
        return ["--event", "schedule", *_budget_args(nightly_budget, "nightly budget"), *extra]
    if event_name == "workflow_dispatch":
        inputs = _mapping(payload.get("inputs") or {}, "inputs")
        args = _dispatch_event_args(inputs)
        for key, flag in (("only", "--only"), ("exclude", "--exclude")):
            value = str(inputs.get(key) or "").strip()
            if value:
                args += [flag, _filter(value, key)]
        args += _budget_args(str(inputs.get("budget-gpu-hours") or ""), "budget-gpu-hours")
        return args
    raise UsageError(
        f"the sweep does not plan for the event {event_name!r}",
        hint="sweep.yml triggers on schedule and workflow_dispatch; gate.yml plans pull requests",
    )


def _dispatch_event_args(inputs: Mapping[str, Any]) -> list[str]:
    """`--event workflow_dispatch`, or `--event pull_request --base B --head H` with a `pr` input."""
    pr = str(inputs.get("pr") or "").strip()
    if not pr:
        return ["--event", "workflow_dispatch"]
    if not pr.isascii() or not pr.isdigit() or int(pr) <= 0:
        raise UsageError(
            f"workflow_dispatch input 'pr': {pr!r} is not a pull request number", hint="e.g. 42"
        )
    head = _input_sha(inputs, "sha", pr)
    base = _input_sha(inputs, "base", pr)
    return ["--event", "pull_request", "--base", base, "--head", head]


def _input_sha(inputs: Mapping[str, Any], key: str, pr: str) -> str:
    value = str(inputs.get(key) or "").strip()
    if not _SHA_RE.match(value):
        raise UsageError(
            f"workflow_dispatch input {key!r}: {value!r} is not a 40-hex commit SHA "
            f"(required with pr={pr})",
            hint="gate.yml sets pr, sha and base together; by hand, copy them from the pull request",
        )
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"event payload: {where} is missing or not an object")
    return value


def _sha(value: object, which: str) -> str:
    if not isinstance(value, str) or not _SHA_RE.match(value):
        raise UsageError(
            f"event payload: the pull request's {which} sha {value!r} is not a commit sha"
        )
    return value


def _filter(value: str, name: str) -> str:
    if not _FILTER_RE.match(value):
        raise UsageError(
            f"workflow_dispatch input {name!r}: {value!r} is not a filter",
            hint="write key=value[,key=value], e.g. sku=h100,framework=vllm (no spaces)",
        )
    return value


def _budget_args(value: str, name: str) -> list[str]:
    value = value.strip()
    if not value:
        return []
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours <= 0:
        raise UsageError(
            f"{name}: {value!r} is not a positive number of GPU-hours", hint="e.g. 40 or 12.5"
        )
    return ["--budget-gpu-hours", value]


# ---- changed lines and annotations ----------------------------------------------------------

_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def changed_lines(diff: str) -> dict[str, frozenset[int]]:
    """Map each file of a `git diff --unified=0 --no-prefix` to its added/changed line numbers."""
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    for raw in diff.splitlines():
        if raw.startswith("+++ "):
            path = raw[4:].strip()
            if path.startswith('"') and path.endswith('"'):
                path = path[1:-1].encode().decode("unicode_escape").encode("latin-1").decode()
            current = None if path == "/dev/null" else out.setdefault(path, set())
            continue
        match = _HUNK_RE.match(raw)
        if match and current is not None:
            start, count = int(match.group(1)), int(match.group(2) or "1")
            current.update(range(start, start + count))
    return {path: frozenset(lines) for path, lines in out.items()}


@dataclass(frozen=True, kw_only=True)
class Reported:
    """One problem found in `ixci validate`'s output."""

    file: str
    line: int
    col: int
    message: str
    shown: bool  # already an annotation GitHub displays (one of the step's first ten errors)


_ANNOT_RE = re.compile(r"^::error(?: (?P<props>[^:]*))?::(?P<msg>.*)$")
_PLAIN_RE = re.compile(
    r"^(?:error: )?(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$"
)


def _unescape(value: str) -> str:
    for code, char in (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        value = value.replace(code, char)
    return value


def parse_reported(text: str) -> list[Reported]:
    """Problems in validate's output: `file:line:col: msg` lines and `::error file=…::` commands.

    A problem that also appears as one of the first `ANNOTATIONS_PER_STEP` `::error` commands is
    marked `shown`. Duplicates (the same problem in both forms) are merged.
    """
    found: dict[tuple[str, int, int], Reported] = {}
    annotations = 0
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if m := _ANNOT_RE.match(line):
            annotations += 1
            props = dict(p.split("=", 1) for p in (m.group("props") or "").split(",") if "=" in p)
            if "file" not in props or not props.get("line", "").isdigit():
                continue
            key = (_unescape(props["file"]), int(props["line"]), int(props.get("col", "0") or 0))
            shown = annotations <= ANNOTATIONS_PER_STEP
            prev = found.get(key)
            found[key] = Reported(
                file=key[0],
                line=key[1],
                col=key[2],
                message=prev.message if prev else _unescape(m.group("msg")),
                shown=shown or bool(prev and prev.shown),
            )
        elif m := _PLAIN_RE.match(line):
            key = (m.group("file"), int(m.group("line")), int(m.group("col")))
            prev = found.get(key)
            found[key] = Reported(
                file=key[0],
                line=key[1],
                col=key[2],
                message=m.group("msg"),
                shown=bool(prev and prev.shown),
            )
    return list(found.values())


def on_changed_lines(
    problems: Iterable[Reported], changed: Mapping[str, frozenset[int]]
) -> list[Reported]:
    """The problems that sit on a line the pull request added or changed."""
    return [p for p in problems if p.line in changed.get(p.file, frozenset())]


def changed_line_annotations(
    problems: Sequence[Reported], changed: Mapping[str, frozenset[int]]
) -> list[str]:
    """`::error` commands for changed-line problems GitHub does not already show (≤ 10)."""
    todo = [p for p in on_changed_lines(problems, changed) if not p.shown]
    return [
        annotation(
            "error",
            p.message,
            file=p.file,
            line=p.line,
            col=p.col or None,
            title="ixci validate (changed line)",
        )
        for p in todo[:ANNOTATIONS_PER_STEP]
    ]


def problems_markdown(problems: Sequence[Reported], changed: Mapping[str, frozenset[int]]) -> str:
    """A step-summary table of every validation problem, changed lines first."""
    hit = set(map(id, on_changed_lines(problems, changed)))
    ordered = sorted(problems, key=lambda p: (id(p) not in hit, p.file, p.line, p.col))
    rows = [
        f"| {'yes' if id(p) in hit else ''} | `{_cell(p.file)}:{p.line}:{p.col}` | {_cell(p.message)} |"
        for p in ordered
    ]
    head = f"### Catalog validation: {len(problems)} problem(s), {len(hit)} on lines this pull request changed"
    return "\n".join([head, "", "| changed | where | problem |", "|---|---|---|", *rows])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


# ---- plan and results summaries -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one result artifact says about its job (contracts §3), as far as a summary needs."""

    job_id: str
    status: str  # ok | partial | failed | unreadable
    failure_class: str | None
    message: str | None
    points_ok: int
    points_total: int
    source: str


def read_outcomes(root: Path) -> dict[str, Outcome]:
    """Every `result.json` under `root` (downloaded `result-<job id>` artifacts), by job id.

    An unreadable or malformed file becomes an `unreadable` outcome keyed by its folder name,
    so the summary shows it; judging artifacts in full is `ixci collect`'s job.
    """
    out: dict[str, Outcome] = {}
    for path in sorted(root.rglob("result.json")) if root.is_dir() else []:
        outcome = _outcome(path, root)
        out.setdefault(outcome.job_id, outcome)
    return out


def _outcome(path: Path, root: Path) -> Outcome:
    rel = str(path.relative_to(root))
    fallback = path.parent.name.removeprefix("result-")
    try:
        raw = parse_json(read_file(path))
        return _outcome_of(raw, rel)
    except Rejected as exc:
        message = f"{exc.category}: {'; '.join(exc.reasons)}"
    except (KeyError, TypeError, ValueError) as exc:
        message = f"malformed result: {type(exc).__name__}: {str(exc)[:200]}"
    return Outcome(
        job_id=fallback,
        status="unreadable",
        failure_class=None,
        message=message,
        points_ok=0,
        points_total=0,
        source=rel,
    )


def _text(value: object, what: str, *, optional: bool = False) -> str | None:
    """An untrusted field that the summary prints: a string (or null when `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} is a {type(value).__name__}, not a string")
    return value


def _outcome_of(raw: object, rel: str) -> Outcome:
    if not isinstance(raw, dict) or not isinstance(raw.get("job"), dict):
        raise TypeError("not a result object with a `job`")
    points = raw.get("points") or []
    if not isinstance(points, list):
        raise TypeError("points is not a list")
    return Outcome(
        job_id=str(_text(raw["job"].get("id"), "job.id")),
        status=str(_text(raw.get("status"), "status")),
        failure_class=_text(raw.get("failure_class"), "failure_class", optional=True),
        message=_text(raw.get("failure_message"), "failure_message", optional=True),
        points_ok=sum(1 for p in points if isinstance(p, dict) and p.get("status") == "ok"),
        points_total=len(points),
        source=rel,
    )


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """Planned jobs against arrived results."""

    planned: int
    ok: int
    partial: int
    failed: int
    missing: int
    unexpected: int
    points_planned: int
    points_ok: int


def coverage(plan: Plan, outcomes: Mapping[str, Outcome]) -> Coverage:
    """Count planned jobs by what arrived for them (`unreadable` counts as failed)."""
    planned_ids = {j.id for j in plan.jobs}
    got = [outcomes[j.id] for j in plan.jobs if j.id in outcomes]
    return Coverage(
        planned=len(plan.jobs),
        ok=sum(o.status == "ok" for o in got),
        partial=sum(o.status == "partial" for o in got),
        failed=sum(o.status not in {"ok", "partial"} for o in got),
        missing=len(plan.jobs) - len(got),
        unexpected=sum(1 for k in outcomes if k not in planned_ids),
        points_planned=plan.points,
        points_ok=sum(o.points_ok for o in got),
    )


def results_markdown(plan: Plan, outcomes: Mapping[str, Outcome], *, approved: bool) -> str:
    """Per-job results and coverage as a step-summary section."""
    cov = coverage(plan, outcomes)
    lines = [
        f"### Results: {cov.ok}/{cov.planned} job(s) ok, {cov.partial} partial, {cov.failed} failed,"
        f" {cov.missing} missing — {cov.points_ok}/{cov.points_planned} point(s) measured",
        "",
    ]
    if not approved and plan.jobs:
        lines += [
            f"**Not run: waiting for approval.** This pull request comes from a fork, so its "
            f"{len(plan.jobs)} benchmark job(s) do not reach the self-hosted GPU runners until a "
            f"maintainer with write access reviews the change and applies the `{APPROVAL_LABEL}` "
            "label (a later push needs the label applied again).",
            "",
        ]
    if not plan.jobs:
        return "\n".join([*lines, "The plan has no jobs."])
    lines += ["| job | name | status | points ok | failure |", "|---|---|---|--:|---|"]
    for j in plan.jobs:
        o = outcomes.get(j.id)
        if o is None:
            lines.append(
                f"| `{j.id}` | {_cell(j.name)} | missing | 0/{len(j.points)} | no artifact `result-{j.id}` |"
            )
            continue
        failure = ": ".join(x for x in (o.failure_class, o.message) if x)
        lines.append(
            f"| `{j.id}` | {_cell(j.name)} | {_cell(o.status[:40])} | {o.points_ok}/{o.points_total or len(j.points)}"
            f" | {_cell(failure[:200])} |"
        )
    extra = sorted(k for k in outcomes if k not in {j.id for j in plan.jobs})
    if extra:
        shown = ", ".join(f"`{_cell(k[:40]).replace('`', '')}`" for k in extra)
        lines.append(f"\nArtifacts for jobs not in the plan: {shown}")
    return "\n".join(lines)


def require_approval(plan: Plan, *, approved: bool) -> None:
    """Fail the required check while a fork's planned benchmarks wait for approval."""
    if plan.jobs and not approved:
        raise PlanError(
            f"{len(plan.jobs)} benchmark job(s) were not run: this pull request comes from a fork",
            hint=f"a maintainer with write access reviews it and applies the `{APPROVAL_LABEL}` label",
        )
