"""Engine jobs for adapter tests, written with the launch facts flat (tp=8, router=...).

`engine_job_of` builds the planned `Job` those facts describe (its topology, points up to
`max_concurrency`) and the `EngineJob` around it, as `ixci.engines.resolve.engine_job` does
for a real plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ixci.engines.base import EngineJob, PoolJob, SpecDecoding
from ixci.job import Estimate, Job, Point, Router, Topology

_ESTIMATE = Estimate(server_start_s=0.0, warmup_s=0.0, points_s=0.0, total_gpu_hours=0.0,
                     restart_per_point_gpu_hours=0.0)  # fmt: skip


def engine_job_of(
    *,
    job_id: str,
    framework: str,
    model_key: str,
    precision: str,
    tp: int = 1,
    ep: int = 1,
    pp: int = 1,
    dcp: int = 1,
    dp: int = 1,
    dp_attention: bool = False,
    gpus: int = 0,
    nodes: int = 1,
    max_model_len: int | None = None,
    max_concurrency: int = 1,
    spec_decoding: SpecDecoding | None = None,
    prefill: PoolJob | None = None,
    decode: PoolJob | None = None,
    kv_transfer: str | None = None,
    router: str | None = None,
    router_version: str | None = None,
    engine_args: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    **resolved: Any,
) -> EngineJob:
    """`resolved`: the EngineJob's own fields (image, model_path, served_name, device, port…)."""
    disaggregated = prefill is not None and decode is not None
    if disaggregated and not gpus:
        gpus = sum(p.gpus for p in (prefill, decode) if p is not None)
    topology = Topology(
        tp=tp, gpus=gpus, ep=ep, pp=pp, dp=dp, dcp=dcp, dp_attention=dp_attention, nodes=nodes,
        disaggregated=disaggregated, prefill=prefill, decode=decode,
        router=Router(name=router, version=router_version) if router else None,
        kv_transfer=kv_transfer,
    )  # fmt: skip
    point = Point(id="p-1", scenario="s", isl=1024, osl=1024, concurrency=max_concurrency)
    job = Job(
        id=job_id, name=job_id, runs_on=("self-hosted",), recipes=("matrix/recipes/test.yaml",),
        model=model_key, sku="h200", framework=framework, precision=precision, runner="test",
        image=resolved.get("image"), topology=topology, spec_decoding=spec_decoding,
        engine_args=dict(engine_args or {}), env=dict(env or {}), max_model_len=max_model_len,
        checkpoint=f"local:{model_key}", points=(point,), estimate=_ESTIMATE,
    )  # fmt: skip
    return EngineJob(job=job, **resolved)
