"""The incumbent's `agentic-coding` scenario → ixci's sessions workload (used by `importer`).

InferenceX's agentic entries replay multi-turn coding-agent traces and carry, per search-space
entry, where the KV cache may spill (`kv-offloading: none | dram`, `kv-offload-backend: {name,
version}`) and, per scenario block, how much of the host's DRAM the offload may take
(`dram-utilization`) and how long each point is profiled (`duration`). ixci measures them with
the `agentic-coding` scenario profile (benchmarks/scenarios/agentic-coding.yaml, a sessions
workload; docs/agentic.md); the offload becomes engine arguments of the search-space entry with
its cap computed from the target runner's `cpu-dram-mib`:

  cap (GiB) = floor(dram-utilization × cpu-dram-mib / 1024)
  SGLang HiCache     → enable-hierarchical-cache, hicache-size = cap / GPUs (GB per rank)
  vLLM simple CPU    → kv-offloading-backend: native, kv-offloading-size = cap (GiB, all ranks)

Anything else (other backends, offload to disk, a runner without `cpu-dram-mib`) is reported,
never guessed. `duration` is not carried: a sessions point ends when its trace is replayed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

AGENTIC_KIND = "agentic-coding"
OFFLOAD_KEYS = ("kv-offloading", "kv-offload-backend")
SIMPLE_VLLM = frozenset({"vllm-simple", "native"})
SGLANG_WORKERS = frozenset({"sglang", "dynamo-sglang"})  # engines whose workers take SGLang's arguments
VLLM_WORKERS = frozenset({"vllm", "dynamo-vllm"})


def _unmappable(message: str) -> Exception:
    from ixci.importer import Unmappable  # the importer owns the exception it reports

    return Unmappable(message)


def offload_args(kind: str, block: Mapping[str, Any], ss: Mapping[str, Any], *, framework: str,
                 gpus: int, cpu_dram_mib: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the search-space entry without its offload keys, the engine arguments they become).

    Entries of other scenario kinds come back unchanged. Raises the importer's `Unmappable`
    with the reason when the offload has no ixci counterpart.
    """
    if kind != AGENTIC_KIND or not isinstance(ss, Mapping):
        return dict(ss) if isinstance(ss, Mapping) else ss, {}
    rest = {k: v for k, v in ss.items() if k not in OFFLOAD_KEYS}
    mode, backend = ss.get("kv-offloading", "none"), ss.get("kv-offload-backend")
    if mode == "none":
        if backend:
            raise _unmappable("kv-offload-backend given with kv-offloading: none")
        return rest, {}
    if mode != "dram":
        raise _unmappable(f"kv-offloading={mode!r} has no ixci counterpart (only dram maps)")
    name = backend.get("name") if isinstance(backend, Mapping) else None
    cap = _cap_gib(block.get("dram-utilization"), cpu_dram_mib)
    if framework in SGLANG_WORKERS and name == "hicache":
        return rest, {"enable-hierarchical-cache": True, "hicache-size": max(1, cap // max(1, gpus))}
    if framework in VLLM_WORKERS and name in SIMPLE_VLLM:
        return rest, {"kv-offloading-backend": "native", "kv-offloading-size": cap}
    raise _unmappable(f"kv-offload-backend {name!r} on {framework!r} has no ixci engine arguments yet")


def _cap_gib(utilization: Any, cpu_dram_mib: int | None) -> int:
    if isinstance(utilization, bool) or not isinstance(utilization, int | float) or not 0 < utilization <= 1:
        raise _unmappable(f"dram-utilization {utilization!r} is not a fraction in (0, 1]")
    if not cpu_dram_mib:
        raise _unmappable("the target runner has no cpu-dram-mib: the KV offload cap cannot be computed")
    return max(1, math.floor(utilization * cpu_dram_mib / 1024))


def entry_gpus(ss: Mapping[str, Any]) -> int:
    """GPUs of a single-node search-space entry (tp × dp where given); a value that is not a
    whole number counts as 1 here (the importer reports it for the entry itself)."""

    def count(key: str) -> int:
        v = ss.get(key, 1)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 1

    return count("tp") * count("dp")
