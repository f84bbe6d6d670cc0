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
  TensorRT-LLM native→ kv_cache_config: {host_cache_size: cap / GPUs in bytes} (per rank)
  ATOM LMCache       → kv-transfer-config {kv_connector: lmcache_offload, kv_role: offload} and
                       LMCache's environment, LMCACHE_MAX_LOCAL_CPU_SIZE = cap / GPUs (GB per rank)

Sources, read at the incumbent's commit 843c6254 and in the engines' documentation:
- TensorRT-LLM: `KvCacheConfig.host_cache_size` ("size of the host cache in bytes"; the host
  tier evicted KV blocks move to, per rank — TensorRT-LLM LLM API reference, KvCacheConfig), set
  in the extra LLM API options as the incumbent's benchmarks/single_node/agentic/
  minimaxm3_fp4_b200_trt_mtp.sh (ser.yaml, line 126) and its Dynamo TensorRT-LLM recipes
  (e.g. srt-slurm-recipes/trtllm/glm5.2/gb300-fp4/agentic/dynamo-disagg-gb300-1p4d-tep4-c30-b2-
  mtp5.yaml, line 76) do. The single-node scripts pin the byte count per topology; ixci derives
  it from the entry's `dram-utilization` like every other backend, so the cap follows the target
  runner. The importer takes a staged multi-node recipe's own per-rank figure where there is one
  (ixci/importer/staged_recipes.yaml `host-cache`).
In a disaggregated entry the arguments go to the prefill workers, as in the incumbent's recipes.
- ATOM + LMCache: benchmarks/single_node/agentic/kimik3_fp4_mi355x_atom_mtp.sh lines 99-133 and
  glm5.2_fp4_mi355x_atom_mtp.sh lines 77-91: the connector JSON and what both set —
  PYTHONHASHSEED=0, LMCACHE_LOCAL_CPU=True, LMCACHE_CHUNK_SIZE=256 and LMCACHE_MAX_LOCAL_CPU_SIZE,
  which "is per rank and every rank allocates its own, so the aggregate is divided by TP" (kimik3
  script, lines 102-109). LMCache reads its `LMCACHE_*` configuration from the environment
  (max_local_cpu_size in GB). Per-model tuning of one script (OFFLOAD_MIN_LOAD_TOKENS, the KDA
  state tier's OFFLOAD_STATE*) is not carried, like the scripts' other tuning flags.

Not mapped, with the reason reported: Mooncake (`mooncake` on vLLM / Dynamo-vLLM) — its store
needs a `mooncake_master` process beside the server and a config file naming the host's RDMA
device (the incumbent's kimik3_fp4_b300_vllm_mtp.sh lines 118-190 start both), which no ixci
engine adapter launches; offload to disk; a runner without `cpu-dram-mib`.
`duration` is not carried: a sessions point ends when its trace is replayed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

AGENTIC_KIND = "agentic-coding"
OFFLOAD_KEYS = ("kv-offloading", "kv-offload-backend")
SIMPLE_VLLM = frozenset({"vllm-simple", "native"})
SGLANG_WORKERS = frozenset(
    {"sglang", "dynamo-sglang"}
)  # engines whose workers take SGLang's arguments
VLLM_WORKERS = frozenset({"vllm", "dynamo-vllm"})
TRTLLM_WORKERS = frozenset({"trtllm", "dynamo-trt"})
GIB = 1024**3
LMCACHE_CONNECTOR = {"kv_connector": "lmcache_offload", "kv_role": "offload"}
LMCACHE_ENV = {"LMCACHE_LOCAL_CPU": "True", "LMCACHE_CHUNK_SIZE": 256, "PYTHONHASHSEED": "0"}
"""ATOM's LMCache offload as both of the incumbent's ATOM LMCache scripts set it;
LMCACHE_MAX_LOCAL_CPU_SIZE, the cap per rank, is added per entry."""
MOONCAKE_REASON = (
    "needs a mooncake_master process and a Mooncake config file naming the host's "
    "RDMA device beside the server (vLLM's MooncakeStoreConnector); no ixci engine "
    "adapter launches them"
)


def _unmappable(message: str) -> Exception:
    from ixci.importer import Unmappable  # the importer owns the exception it reports

    return Unmappable(message)


def offload_args(
    kind: str,
    block: Mapping[str, Any],
    ss: Mapping[str, Any],
    *,
    framework: str,
    gpus: int,
    cpu_dram_mib: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the search-space entry without its offload keys, the engine arguments they become).

    Entries of other scenario kinds come back unchanged. Raises the importer's `Unmappable`
    with the reason when the offload has no ixci counterpart.
    """
    rest, args, _ = offload(
        kind, block, ss, framework=framework, gpus=gpus, cpu_dram_mib=cpu_dram_mib
    )
    return rest, args


def offload(
    kind: str,
    block: Mapping[str, Any],
    ss: Mapping[str, Any],
    *,
    framework: str,
    gpus: int,
    cpu_dram_mib: int | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """`offload_args` plus the server environment the offload needs (LMCache reads its own)."""
    if kind != AGENTIC_KIND or not isinstance(ss, Mapping):
        return dict(ss) if isinstance(ss, Mapping) else ss, {}, {}
    rest = {k: v for k, v in ss.items() if k not in OFFLOAD_KEYS}
    mode, backend = ss.get("kv-offloading", "none"), ss.get("kv-offload-backend")
    if mode == "none":
        if backend:
            raise _unmappable("kv-offload-backend given with kv-offloading: none")
        return rest, {}, {}
    if mode != "dram":
        raise _unmappable(f"kv-offloading={mode!r} has no ixci counterpart (only dram maps)")
    name = backend.get("name") if isinstance(backend, Mapping) else None
    if name == "mooncake":
        raise _unmappable(f"kv-offload-backend 'mooncake' on {framework!r} {MOONCAKE_REASON}")
    cap = _cap_gib(block.get("dram-utilization"), cpu_dram_mib)
    if framework in SGLANG_WORKERS and name == "hicache":
        return (
            rest,
            {"enable-hierarchical-cache": True, "hicache-size": max(1, cap // max(1, gpus))},
            {},
        )
    if framework in VLLM_WORKERS and name in SIMPLE_VLLM:
        return rest, {"kv-offloading-backend": "native", "kv-offloading-size": cap}, {}
    if framework in TRTLLM_WORKERS and name == "native":
        per_rank = max(1, cap * GIB // max(1, gpus))
        return rest, {"kv_cache_config": {"host_cache_size": per_rank}}, {}
    if framework == "atom" and name == "lmcache":
        return (
            rest,
            {"kv-transfer-config": dict(LMCACHE_CONNECTOR)},
            {**LMCACHE_ENV, "LMCACHE_MAX_LOCAL_CPU_SIZE": max(1, cap // max(1, gpus))},
        )
    raise _unmappable(
        f"kv-offload-backend {name!r} on {framework!r} has no ixci engine arguments yet"
    )


def _cap_gib(utilization: Any, cpu_dram_mib: int | None) -> int:
    if (
        isinstance(utilization, bool)
        or not isinstance(utilization, int | float)
        or not 0 < utilization <= 1
    ):
        raise _unmappable(f"dram-utilization {utilization!r} is not a fraction in (0, 1]")
    if not cpu_dram_mib:
        raise _unmappable(
            "the target runner has no cpu-dram-mib: the KV offload cap cannot be computed"
        )
    return max(1, math.floor(utilization * cpu_dram_mib / 1024))


def entry_gpus(ss: Mapping[str, Any]) -> int:
    """GPUs of a single-node search-space entry (tp × dp where given); a value that is not a
    whole number counts as 1 here (the importer reports it for the entry itself)."""

    def count(key: str) -> int:
        v = ss.get(key, 1)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 1

    return count("tp") * count("dp")
