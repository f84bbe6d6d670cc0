"""The benchmark client: datasets, workers, timing, metrics (the one place metrics are defined).

Library entry points (see docs/loadgen.md):
    run_point(config: PointConfig, *, dialect: Dialect, requests_path: Path | None) -> PointResult
    run_point_async(...)  — the same, awaitable
Imports are lazy so that `import ixci.loadgen.dialect` (used by the engine adapters) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ixci.loadgen.config import ClientHealth, DatasetInfo, PointConfig, PointResult
    from ixci.loadgen.dialect import DIALECTS, Dialect, Endpoint, get_dialect
    from ixci.loadgen.metrics import METRICS, METRICS_VERSION, Slo
    from ixci.loadgen.run import run_point, run_point_async

_EXPORTS = {
    "PointConfig": "config",
    "PointResult": "config",
    "ClientHealth": "config",
    "DatasetInfo": "config",
    "Dialect": "dialect",
    "DIALECTS": "dialect",
    "Endpoint": "dialect",
    "get_dialect": "dialect",
    "METRICS": "metrics",
    "METRICS_VERSION": "metrics",
    "Slo": "metrics",
    "run_point": "run",
    "run_point_async": "run",
}

__all__ = [
    "DIALECTS",
    "METRICS",
    "METRICS_VERSION",
    "ClientHealth",
    "DatasetInfo",
    "Dialect",
    "Endpoint",
    "PointConfig",
    "PointResult",
    "Slo",
    "get_dialect",
    "run_point",
    "run_point_async",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ixci.loadgen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"ixci.loadgen.{module}"), name)
