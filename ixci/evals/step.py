"""The eval step of `ixci run-job`: after the points, on the same warm server, no restart.

The runner calls `EvalStep.run(job_run)` once its points are done and before its cleanup, so
the suite talks to the very deployment that was measured (the step checks that it is still the
one process that was launched, and logs it). The result goes to the artifact's `evals` block;
a failed gate sets `quality_failed` on every measured point. An eval that cannot run (a bad
data file, a cancelled job) is recorded in `evals.error` and never costs the measured points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.errors import IxciError
from ixci.evals.run import SuiteOptions, run_suite
from ixci.evals.suite import EvalPlan
from ixci.evals.tasks import EvalTask, load_suite

ROWS_FILE = "evals.rows.jsonl.gz"


@dataclass(frozen=True, kw_only=True)
class EvalStep:
    """A recipe's suite, loaded and validated before the server starts."""

    plan: EvalPlan
    tasks: tuple[EvalTask, ...]
    log: Callable[[str], None] = lambda _line: None

    def run(self, job_run: Any) -> None:
        """Run the suite against `job_run`'s warm server and record it in its artifact."""
        dep = job_run.deployment
        if dep is None or dep.poll() is not None:
            self._record(job_run, {"error": "the server is not running: eval skipped"})
            return
        pid = (list(getattr(dep, "pids", None) or []) or [None])[0]  # process runtime only
        self.log(f"eval: {len(self.tasks)} task(s) {', '.join(t.name for t in self.tasks)} on the "
                 f"warm server {job_run.serve.base_url} (same deployment as the points, "
                 f"pid {pid}; no restart)")  # fmt: skip
        opts = SuiteOptions(
            base_url=job_run.serve.base_url, model=job_run.serve.model_name,
            concurrency=self.plan.concurrency, timeout_s=self.plan.timeout_s,
            limit=self.plan.limit, rules=self.plan.gate, records=job_run.folder / ROWS_FILE,
            stop=job_run.cancel.is_set,
        )  # fmt: skip
        try:
            block = run_suite(self.tasks, opts)
        except IxciError as exc:
            self.log(f"eval: failed: {exc.message}")
            self._record(job_run, {"error": exc.message[:2000]})
            return
        # the deployment object is the one launched before the first point: still running
        # after the suite means the same process served the points and the evals (a restart
        # would be a new launch); if it died, how often it restarted is not known
        alive = dep.poll() is None
        block["server"] = {"base_url": job_run.serve.base_url, "pid": pid,
                           "same_deployment": alive, "restarts": 0 if alive else None}  # fmt: skip
        for t in block["tasks"]:
            lo, hi = t["ci95"]
            self.log(f"eval: {t['task']}: {t['score']} (95 % CI {lo:.3f}–{hi:.3f}, n={t['n']})")
        self.log("eval: quality gate " + ("passed" if block["gate"]["passed"] else
                 "FAILED: " + "; ".join(block["gate"]["reasons"])))  # fmt: skip
        self._record(job_run, block)

    def _record(self, job_run: Any, block: dict[str, Any]) -> None:
        doc = job_run.result.doc
        marked = []
        if block.get("quality_failed"):
            marked = [p for p in doc["points"] if p.get("status") in ("ok", "invalid")]
        doc["evals"] = block
        for point in marked:
            point["quality_failed"] = True
        try:
            job_run.result.write()
        except IxciError as exc:  # the eval block must never cost the measured points
            for point in marked:
                point.pop("quality_failed", None)
            doc["evals"] = {"error": f"eval results not recorded: {exc.message}"[:4000]}
            self.log(f"eval: {doc['evals']['error']}")
            job_run.result.write()


def eval_step(root: Path, plan: EvalPlan | None, log: Callable[[str], None]) -> EvalStep | None:
    """The step for a recipe's plan (its tasks loaded and validated now), None without one."""
    if plan is None or not plan.tasks:
        return None
    return EvalStep(plan=plan, tasks=load_suite(root, plan.tasks), log=log)
