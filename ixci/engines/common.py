"""Helpers shared by the engine adapters (pure functions only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ixci.engines.base import Component, EngineJob, frozen_env
from ixci.errors import InvalidJob

# Activation dtypes by precision; quantised checkpoints (fp8, fp4, int4) carry their own
# quantisation config and the engine derives compute types from it.
DTYPES: Mapping[str, str] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def require(cond: bool, job: EngineJob, what: str) -> None:
    """Raise `InvalidJob` naming the job and engine when an unsupported option is asked for."""
    if not cond:
        raise InvalidJob(
            f"job {job.job_id}: {job.framework} adapter does not support {what}",
            hint="remove the option from the recipe's search space or pick another engine",
        )


def reject_unknown(job: EngineJob, args: Mapping[str, object], reserved: Iterable[str]) -> None:
    """Structured engine args may not override what the adapter derives from the topology."""
    clash = sorted(set(args) & set(reserved))
    if clash:
        raise InvalidJob(
            f"job {job.job_id}: engine_args {clash} are set by ixci from the job's topology",
            hint="use tp/ep/pp/dp_attention/max_model_len/spec_decoding in the recipe instead",
        )


def merged_env(job: EngineJob, extra: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The job's env with adapter defaults underneath (the recipe wins)."""
    env = dict(extra or {})
    env.update(job.env)
    return frozen_env(env)


def opt(flag: str, value: object | None) -> list[str]:
    """`[flag, str(value)]`, or nothing when value is None."""
    return [] if value is None else [flag, str(value)]


def server_component(job: EngineJob, argv: Iterable[str]) -> Component:
    """The one `server` component of an aggregated (single-pool) deployment."""
    return Component(
        name="server",
        role="server",
        argv=tuple(argv),
        env=merged_env(job),
        gpus=job.gpus,
        port=job.port,
    )
