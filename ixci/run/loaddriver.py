"""The load driver: each point's load generator in a child process group the runner can stop.

`loadgen_driver` is the `runner.PointDriver` run-job uses: it writes the point's
`ixci.loadgen.config.PointConfig` (`point_config`) for a child process (`point_child`), runs the
child under the supervisor, watches the server while it runs, and returns the point's metrics
and its measured window in Unix seconds (`telemetry_window`) for the power integration.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ixci import cmd
from ixci.engines.base import ServeSpec
from ixci.errors import Cancelled, JobFailure
from ixci.loadgen.dialect import Endpoint
from ixci.results.result import REQUESTS_FILE
from ixci.run.jobspec import JobSpec, PointDriver, PointOutcome, PointSpec
from ixci.run.runner import CANCEL_CLIENT_GRACE_S
from ixci.runtimes import state
from ixci.runtimes.base import supervised

CHILD_CODE = "from ixci.run.loaddriver import point_child; point_child({cfg!r}, {out!r})"


def loadgen_range_ratio(catalog_ratio: float) -> float:
    """Scenario `range-ratio` r (lengths uniform in [r·L, L], InferenceX's convention) → the
    load generator's half-width r' (lengths uniform in [L(1−r'), L(1+r')]): the same width
    (1−r)·L, centred on the nominal length so the requested ISL/OSL stay the means."""
    return max(0.0, min(0.99, (1.0 - catalog_ratio) / 2.0))


def point_config(spec: ServeSpec, point: PointSpec, job: JobSpec) -> dict[str, Any]:
    """The `ixci.loadgen.config.PointConfig` fields of one point (JSON-able)."""
    return {
        "url": spec.base_url,
        "model": spec.model_name,
        "isl": point.isl,
        "osl": point.osl,
        "endpoint": spec.dialect.endpoint_for(point.endpoint).value,
        "concurrency": point.concurrency,
        "request_rate": point.request_rate,
        "num_requests": point.num_requests,
        "min_requests": point.num_requests,
        "min_duration_s": point.min_duration_s,
        "max_duration_s": point.max_duration_s,
        "warmup_requests": point.warmup_requests,
        "range_ratio": loadgen_range_ratio(point.range_ratio),
        "error_threshold": point.error_threshold,
        "tokenizer": job.tokenizer,
        "slo": {"ttft_s": point.slo_ttft_s, "tpot_s": point.slo_tpot_s},
        # None: the load generator derives the timeout from the point's longest request
        # (docs/loadgen.md, "Timeouts"); max_duration_s still cuts requests in flight
        "request_timeout_s": None,
        # a repeat draws other prompts: the same ones again would be served from the prefix cache
        "seed": point_seed(point.id if point.repeat == 1 else f"{point.id}/r{point.repeat}"),
        **(
            {"workload": dict(point.workload), "gpus": len(job.gpu_indices) or None}
            if point.workload
            else {}
        ),
    }


def point_seed(point_id: str) -> int:
    """The prompt seed of a point: stable per point, different between points, so points
    that share a warm server never replay each other's prompts (an engine's prefix cache
    would otherwise serve later points from earlier ones)."""
    digest = hashlib.sha256(point_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def point_child(config_path: str, out_path: str) -> None:
    """Entry of the load-generator child process: run one point, write outcome JSON.

    The window is converted from CLOCK_MONOTONIC (shared by the loadgen workers) to Unix
    seconds here, so telemetry can be integrated over exactly the measured window.
    """

    from ixci.loadgen.config import PointConfig
    from ixci.loadgen.dialect import get_dialect
    from ixci.loadgen.metrics import Slo
    from ixci.loadgen.run import run_point

    raw = json.loads(Path(config_path).read_text())
    workload, gpus = raw.pop("workload", None), raw.pop("gpus", None)
    dialect = get_dialect(raw.pop("dialect"))
    requests = Path(raw.pop("requests_path"))
    raw["slo"] = Slo(**raw["slo"])
    raw["endpoint"] = Endpoint(raw["endpoint"])
    raw["tokenizer"] = Path(raw["tokenizer"]) if raw.get("tokenizer") else None
    offset_ns = time.time_ns() - time.perf_counter_ns()
    if workload is not None:
        from ixci.loadgen.sessions import run_workload_point

        point = run_workload_point(
            PointConfig(**raw), workload, dialect=dialect, requests_path=requests, gpus=gpus
        ).to_json()
    else:
        point = run_point(PointConfig(**raw), dialect=dialect, requests_path=requests).to_json()
    window = telemetry_window(requests, offset_ns)
    Path(out_path).write_text(json.dumps({"point": point, "window": window}))


def telemetry_window(requests: Path, offset_ns: int) -> list[float] | None:
    """The point's measured window in Unix seconds, for integrating power: the metrics' own
    window (a request the client gave up on never stretches it), so energy per token covers
    exactly the seconds the throughput divides by. `offset_ns`: Unix minus monotonic ns."""
    from ixci.loadgen.audit import read_records
    from ixci.loadgen.metrics import measured_window

    records = [rec for group in read_records(requests).values() for rec in group]
    measured = measured_window(records)
    if measured is None:
        return None
    return [(measured.start_ns + offset_ns) / 1e9, (measured.end_ns + offset_ns) / 1e9]


def _append_requests(src: Path, dest: Path, point_id: str, repeat: int | None = None) -> None:
    """Append one point's request records to the job's requests.jsonl.gz, tagged by point
    (and by repeat number when the point has several)."""
    import gzip

    if not src.exists():
        return
    with gzip.open(src, "rt") as fin, gzip.open(dest, "at") as fout:
        for line in fin:
            rec = json.loads(line)
            rec["point_id"] = point_id
            if repeat is not None:
                rec["repeat"] = repeat
            fout.write(json.dumps(rec, separators=(",", ":")) + "\n")


class _PointFiles:
    """One point's files under the job folder's `.points/`: the child's config, its outcome,
    its request records (appended to the job's requests file after the point) and its log."""

    def __init__(self, work: Path, point_id: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.point_id = point_id
        self.config, self.out = work / f"{point_id}.json", work / f"{point_id}.out.json"
        self.requests, self.log = work / f"{point_id}.jsonl.gz", work / f"{point_id}.log"
        self.out.unlink(missing_ok=True)
        self.requests.unlink(missing_ok=True)  # never append an earlier repeat's records twice

    def outcome(self, returncode: int | None, job_requests: Path, tag: int | None) -> PointOutcome:
        if returncode != 0 or not self.out.exists():
            tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
            raise JobFailure(
                f"load generator failed on point {self.point_id} (exit {returncode}):\n"
                + "\n".join(tail)
            )
        _append_requests(self.requests, job_requests, self.point_id, tag)
        data = json.loads(self.out.read_text())
        window = tuple(data["window"]) if data.get("window") else None
        return PointOutcome(point=data["point"], window=window)


def loadgen_driver(
    python: str,
    env: Mapping[str, str],
    *,
    state_dir: Path | None = None,
    owner: str = "local",
    run_id: str = "",
) -> PointDriver:
    """A `PointDriver` running `ixci.loadgen.run_point` in a child process group, so the runner
    can stop it (and its worker processes) at once on cancel, crash or hang. The group runs
    under the supervisor (it ends when run-job dies, even by SIGKILL) and is recorded in
    `state_dir` while it runs (`runtimes.state`, for `ixci cleanup`)."""

    def drive(
        spec: ServeSpec, point: PointSpec, job: JobSpec, *, folder: Path, watch: Callable[[], None]
    ) -> PointOutcome:
        files = _PointFiles(folder / ".points", point.id)
        tag = point.repeat if point.repeats > 1 else None
        config = {
            **point_config(spec, point, job),
            "dialect": spec.dialect.name,
            "requests_path": str(files.requests),
        }
        files.config.write_text(json.dumps(config))
        log = files.log.open("ab")
        child = [python, "-c", CHILD_CODE.format(cfg=str(files.config), out=str(files.out))]
        proc = cmd.spawn(
            supervised(child, grace_s=CANCEL_CLIENT_GRACE_S), env=dict(env), stdout=log
        )
        record = state.record_group(state_dir, pid=proc.pid, owner=owner, job=job.job.id,
                                    run=run_id, what="load generator")  # fmt: skip
        try:
            while proc.poll() is None:
                watch()
                time.sleep(0.2)
        except (JobFailure, Cancelled):
            cmd.terminate_group(proc, grace=CANCEL_CLIENT_GRACE_S)
            _append_requests(files.requests, folder / REQUESTS_FILE, point.id, tag)
            raise
        finally:
            cmd.terminate_group(proc, grace=5.0)  # no stray workers even on success
            state.forget_group(record)
            log.close()
        watch()  # a crash that made the point end early is a crash, not a measurement
        return files.outcome(proc.returncode, folder / REQUESTS_FILE, tag)

    return drive
