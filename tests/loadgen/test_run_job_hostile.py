"""`ixci run-job` against an engine whose answers turn hostile: the real llama-server behind
tests/runner/fault_server.py, which after the first point answers every completion with an
SSE stream that never ends (health still answered by the real server).

Before the size limits the client read such a stream until its timeout, the point overran its
limit and the job was recorded as an engine `crash` (15). Now each response is cut at the
response limit and counted as `protocol`, and the job fails as `error_rate` (16).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.runner.test_run_job import (  # noqa: F401 — fixtures used by name
    _assert_clean,
    _bin_dir,
    _finish,
    _load,
    _requests_of_first_point,
    _start,
    real_server,
    two_point_job,
)

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


def test_hostile_engine_answers_are_error_rate_not_crash(
    tmp_path: Path,
    real_server: Path,  # noqa: F811
    two_point_job: str,  # noqa: F811
    free_port: int,
) -> None:
    out = tmp_path / "out"
    after = _requests_of_first_point(two_point_job) + 3
    t0 = time.monotonic()
    got, log = _finish(
        _start(
            two_point_job, out, free_port, _bin_dir(tmp_path, real_server, "endless-stream", after)
        ),
        280,
    )
    doc = _load(out, two_point_job)
    first, second = doc["points"][0], doc["points"][1]
    assert got == 16 and doc["failure_class"] == "error_rate", (
        got,
        doc["failure_message"],
        log[-2000:],
    )
    assert first["status"] == "ok" and first["valid"]
    assert (
        second["failure_class"] == "error_rate"
        and second["metrics"]["errors"].get("protocol", 0) > 0
    )
    assert time.monotonic() - t0 < 200  # the point ended by itself: no overrun of its limit
    _assert_clean(free_port)
