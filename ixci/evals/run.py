"""One eval suite end to end against a running server: rows → prompts → replies → scores.

`run_suite` returns the artifact's `evals` block (`schemas/result.schema.json`): per task the
score, n, the Wilson 95 % interval, the dataset record (name, version, source, sha256), the
extraction rules, and — when the engine reports them per response (llama.cpp `timings`) —
the draft acceptance of the eval's own requests; then the gate's verdict. Greedy decoding
(temperature 0, fixed seed) makes two runs on the same server agree up to engine batching noise.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.evals import client, data, extract, scoring
from ixci.evals.errors import EvalDataError
from ixci.evals.tasks import EvalTask, Kind, render

RECORD_CHARS = 2000  # reply text kept per row in the per-row record file


@dataclass(frozen=True, kw_only=True)
class SuiteOptions:
    """How to run a suite: server, limits, data overrides, the gate."""

    base_url: str
    model: str
    concurrency: int = 4
    timeout_s: float = 120.0
    limit: int | None = None  # None: each task's own limit
    data: Mapping[str, str] | None = None  # task → source overriding the committed sample
    rules: tuple[scoring.GateRule, ...] = ()
    records: Path | None = None  # evals.jsonl.gz: one line per scored row
    stop: Callable[[], bool] = lambda: False


def reference(task: EvalTask, row: Mapping[str, Any], index: int) -> str:
    """The row's reference answer in the form the metric compares."""
    raw = row.get(task.answer_field)
    if task.kind is Kind.EXACT_MATCH:
        value = extract.final_number(raw, task.extraction) if isinstance(raw, str) else (
            extract.normalise_number(str(raw)) if isinstance(raw, (int, float)) else None)  # fmt: skip
    elif task.kind is Kind.MULTIPLE_CHOICE:
        value = extract.reference_letter(raw)
    else:
        value = raw if isinstance(raw, str) and raw else None
    if value is None:
        raise EvalDataError(f"task {task.name}: row {index}: field {task.answer_field!r} has no "
                            f"usable reference answer ({str(raw)[:80]!r})")  # fmt: skip
    return value


def build_request(task: EvalTask, row: Mapping[str, Any], shots: Sequence[Mapping[str, Any]],
                  model: str) -> client.Request:  # fmt: skip
    """The request for one row with its few-shot examples (greedy, bounded length)."""
    p = task.prompt
    body: dict[str, Any] = {"model": model, "max_tokens": p.max_tokens, "temperature": 0.0,
                            "seed": 0}  # fmt: skip
    if p.stop:
        body["stop"] = list(p.stop)
    if p.endpoint == "completions":
        blocks = [render(p.template, s) + render(p.target, s) for s in shots]
        body["prompt"] = "\n\n".join([*blocks, render(p.template, row)])
        return client.Request(endpoint="completions", body=body)
    messages: list[dict[str, Any]] = [{"role": "system", "content": p.system}] if p.system else []
    for s in shots:
        messages += [{"role": "user", "content": render(p.template, s)},
                     {"role": "assistant", "content": render(p.target, s).strip()}]  # fmt: skip
    messages.append({"role": "user", "content": render(p.template, row)})
    body["messages"] = messages
    if task.kind is Kind.TOOL_CALL:
        body["tools"] = list(row.get("tools") or [])
        body["tool_choice"] = "auto"
    return client.Request(endpoint="chat", body=body)


def judge(
    task: EvalTask, reply: client.Reply, ref: str, row: Mapping[str, Any]
) -> tuple[bool, str]:
    """(correct, what was extracted or why not) for one reply."""
    if reply.error:
        return False, f"error: {reply.error}"
    if task.kind is Kind.EXACT_MATCH:
        got = extract.final_number(reply.text, task.extraction)
        return got == ref, f"extracted {got}"
    if task.kind is Kind.MULTIPLE_CHOICE:
        letter = extract.choice_letter(reply.text)
        return letter == ref, f"extracted {letter}"
    tools = [t for t in row.get("tools") or [] if isinstance(t, dict)]
    return extract.check_tool_call(list(reply.tool_calls), tools, ref)


def run_task(task: EvalTask, opts: SuiteOptions) -> dict[str, Any]:
    """One task's entry of the `evals.tasks` list (see the module docstring)."""
    source = (opts.data or {}).get(task.name) or task.dataset.sample
    rows = data.load(source)
    scored = rows.split(task.dataset.split, default=True)[: opts.limit or task.limit]
    shots = rows.split(task.dataset.fewshot_split, default=False)[: task.prompt.fewshot]
    if not scored:
        raise EvalDataError(f"task {task.name}: {rows.source} has no {task.dataset.split!r} rows")
    refs = [reference(task, r, i) for i, r in enumerate(scored)]
    reqs = [build_request(task, r, shots, opts.model) for r in scored]
    t0 = time.monotonic()
    replies = client.post_all(opts.base_url, reqs, concurrency=opts.concurrency,
                              timeout_s=opts.timeout_s, stop=opts.stop)  # fmt: skip
    verdicts = [
        judge(task, rep, ref, row) for rep, ref, row in zip(replies, refs, scored, strict=True)
    ]
    score = scoring.Score(task=task.name, correct=sum(ok for ok, _ in verdicts), n=len(scored),
                          errors=sum(1 for r in replies if r.error))  # fmt: skip
    if opts.records is not None:
        _record(opts.records, task.name, replies, refs, verdicts)
    return {
        **score.to_json(), "kind": str(task.kind), "duration_s": round(time.monotonic() - t0, 3),
        "extraction": list(task.extraction) if task.kind is not Kind.TOOL_CALL else [],
        "fewshot": len(shots), "endpoint": task.prompt.endpoint,
        "dataset": {"name": task.dataset.name, "version": task.dataset.version,
                    "split": task.dataset.split, "licence": task.dataset.licence,
                    "source": str(rows.source), "sha256": rows.sha256},
        "speculative": _draft_stats(replies),
    }  # fmt: skip


def run_suite(tasks: Sequence[EvalTask], opts: SuiteOptions) -> dict[str, Any]:
    """Every task, then the gate: the artifact's `evals` block."""
    started = _now()
    entries = [run_task(t, opts) for t in tasks]
    scores = {e["task"]: scoring.Score(task=e["task"], correct=e["correct"], n=e["n"],
                                       errors=e["errors"]) for e in entries}  # fmt: skip
    reasons = scoring.gate(scores, opts.rules)
    return {
        "started_at": started, "finished_at": _now(), "tasks": entries,
        "gate": {"passed": not reasons, "reasons": reasons,
                 "rules": [{"task": r.task, "min_score": r.min_score,
                            "baseline_score": r.baseline_score} for r in opts.rules]},
        "quality_failed": bool(reasons),
    }  # fmt: skip


def _draft_stats(replies: Sequence[client.Reply]) -> dict[str, Any] | None:
    drafts = [r.draft for r in replies if r.draft is not None]
    drafted = sum(d[0] for d in drafts)
    if not drafted:
        return None
    accepted = sum(d[1] for d in drafts)
    return {"source": "llama.cpp response timings", "draft_tokens": drafted,
            "accepted_tokens": accepted, "acceptance_rate": round(accepted / drafted, 6)}  # fmt: skip


def _record(path: Path, task: str, replies: Sequence[client.Reply], refs: Sequence[str],
            verdicts: Sequence[tuple[bool, str]]) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "at") as fh:
        for i, (rep, ref, (ok, why)) in enumerate(zip(replies, refs, verdicts, strict=True)):
            fh.write(json.dumps({"task": task, "row": i, "reference": ref, "correct": ok,
                                 "judged": why[:300], "reply": rep.text[:RECORD_CHARS],
                                 "error": rep.error}) + "\n")  # fmt: skip


def _now() -> str:
    from ixci.results.result import utc_now

    return utc_now()
