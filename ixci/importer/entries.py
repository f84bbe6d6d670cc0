"""One InferenceX search-space entry → ixci search entries: parallelism, concurrency, speculative
decoding groups (from the configs and the incumbent's launch scripts), KV offload, and the
prefill/decode pools of a disaggregated entry. `ixci.importer.convert` maps the rest of an
entry (model, image, runner, scenario) and calls these per block."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ixci.importer import agentic
from ixci.importer.incumbent import _count_range
from ixci.importer.shape import Unmappable, _int
from ixci.importer.spec import spec_table, staged_table

SPEC_METHODS = frozenset({"mtp", "eagle", "eagle3", "ngram", "draft-model"})
VLLM_ENGINES = frozenset({"vllm", "dynamo-vllm"})
"""Engines whose DP-attention workers the incumbent may write by their EP group (`_worker_tp`)."""
KV_TRANSFERS = frozenset({"nixl", "mooncake", "mori", "ucx", "nccl", "lmcache"})
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_SAFE = re.compile(r"^[A-Za-z0-9_.,:/=+@%-]*$")
_MTP_IN_NAME = re.compile(r"_mtp(\d+)")


_KNOWN = frozenset(
    {
        "tp",
        "ep",
        "pp",
        "dp-attn",
        "dcp-size",
        "spec-decoding",
        "conc-list",
        "conc-start",
        "conc-end",
        "prefill",
        "decode",
        "router",
        "kv-p2p-transfer",
        "kv-offloading",
        "_aggregated",
    }
)


def _staged_host_cache(
    offload: Mapping[str, Any], entry: Mapping[str, Any], head: dict[str, Any]
) -> Mapping[str, Any]:
    """TensorRT-LLM's host tier as the entry's staged recipe sizes it per prefill rank, where it
    does (the incumbent's figure is dram-utilization × the node's DRAM per rank there)."""
    staged = staged_table().host_cache.get(str(entry.get("env", {}).get("CONFIG_FILE", "")))
    if staged is None or "kv_cache_config" not in offload:
        return offload
    head["_facts"].add(
        f"host_cache_size {staged.bytes}: {staged_table().url(staged.path, staged.line)}"
    )
    return {
        **offload,
        "kv_cache_config": {**offload["kv_cache_config"], "host_cache_size": staged.bytes},
    }


def _add_offload(entry: dict[str, Any], offload: Mapping[str, Any]) -> None:
    """KV-offload engine arguments onto the server, or onto the prefill workers of a
    disaggregated entry: the incumbent's disaggregated agentic recipes give the host tier to the
    prefill workers only (e.g. srt-slurm-recipes/sglang/deepseek-v4/agentic/disagg-gb300-2p1d-
    dep8-tp4-c80-mtp-kvoffload.yaml lines 131-166; trtllm/glm5.2/gb300-fp4/agentic/dynamo-disagg-
    gb300-1p4d-tep4-c30-b2-mtp5.yaml line 76), where every engine adapter passes pool arguments."""
    dis = entry.get("disaggregated")
    if dis is None:
        entry["engine-args"] = {**entry.get("engine-args", {}), **offload}
        return
    prefill = dis["prefill"]
    dis["prefill"] = {**prefill, "engine-args": {**prefill.get("engine-args", {}), **offload}}


def _offload_gpus(ss: Any, head: Mapping[str, Any]) -> int:
    """Ranks that share one node's host DRAM cap: the entry's GPUs on one node; a node of the
    runner for disaggregated pools (each rank of a worker takes its share of its node)."""
    if not isinstance(ss, dict):
        return 1
    if "prefill" in ss or "decode" in ss:
        return int(head["_gpn"])
    return min(agentic.entry_gpus(ss), int(head["_gpn"]))


def _aggregated(ss: Any, head: dict[str, Any]) -> Any:
    """A multi-node aggregated launch (the worker given as a `prefill` pool and
    `decode.num-worker: 0`, as the incumbent writes its srt-slurm aggregated launches: every
    search-space entry of a `disagg: false` entry, and one of a `disagg: true` entry whose decode
    pool has no workers, e.g. dsv4-fp4-gb200-dynamo-vllm-mtp2's agg-gb200-low-latency-mtp2.yaml)
    → a flat entry of one server spanning nodes; its settings ride along under `_aggregated`.
    Checked against the staged recipe's `resources.gpus_per_agg` where the incumbent stages it."""
    if isinstance(ss, dict) and "_aggregated" in ss:  # ixci's own marker, never the incumbent's
        raise Unmappable("fields with no ixci counterpart: _aggregated")
    if not isinstance(ss, dict) or not ("prefill" in ss or "decode" in ss):
        return ss
    if head["_disagg"] and not _no_decode_workers(ss):
        return ss
    prefill, decode = ss.get("prefill"), ss.get("decode") or {}
    if not isinstance(prefill, dict) or not isinstance(decode, dict):
        raise Unmappable("prefill/decode pools of an aggregated entry are not mappings")
    if _int(decode.get("num-worker", 0), "decode.num-worker") != 0:
        raise Unmappable(
            "prefill/decode pools with decode workers in an aggregated (disagg: false) "
            "entry: neither one aggregated server nor a disaggregated deployment"
        )
    workers = _int(prefill.get("num-worker", 0), "prefill.num-worker")
    tp, pp = _int(prefill.get("tp", 1), "prefill.tp"), _int(prefill.get("pp", 1), "prefill.pp")
    settings = _settings(prefill.get("additional-settings") or [], "prefill")
    if workers != 1:
        raise Unmappable(
            f"aggregated entry with prefill.num-worker {workers}: {workers} data-parallel "
            f"copies of a TP-{tp} worker in one server have no ixci counterpart (ixci's "
            "dp-attention is attention DP across the TP ranks, its dp whole-model replicas "
            "without DP attention)"
        )
    _no_context_parallel(prefill, "prefill")
    dep = _worker_tp(prefill, head, "prefill") if tp == 1 else None  # vLLM DEP: `tp: 1, ep: N`
    tp = dep or tp
    staged = staged_table().aggregated.get(settings.get("CONFIG_FILE", ""))
    if staged is not None:
        if staged.gpus != tp * pp or staged.workers != 1:
            raise Unmappable(
                f"the incumbent's recipe {staged.path} runs {staged.workers} worker(s) of "
                f"{staged.gpus} GPUs (resources.gpus_per_agg) but the entry says tp {tp} × "
                f"pp {pp}; ixci does not guess the split"
            )
        head["_facts"].add(
            f"aggregated worker of {staged.gpus} GPUs: "
            f"{staged_table().url(staged.path, staged.line)}"
        )
    flat = {k: v for k, v in ss.items() if k not in ("prefill", "decode")}
    flat.update({k: prefill[k] for k in ("tp", "ep", "pp", "dp-attn", "dcp-size") if k in prefill})
    flat["tp"] = dep or _worker_tp(prefill, head, "prefill")  # refuses TP > 1 inside DP ranks
    flat["_aggregated"] = settings
    return flat


def _no_decode_workers(ss: Mapping[str, Any]) -> bool:
    """True for a search-space entry whose decode pool is given with `num-worker: 0`."""
    decode = ss.get("decode")
    count = decode.get("num-worker") if isinstance(decode, dict) else None
    return type(count) is int and count == 0


def _worker_tp(raw: Mapping[str, Any], head: Mapping[str, Any], role: str) -> int:
    """A worker's `tp` in ixci's terms. The incumbent writes a vLLM worker with DP attention by
    its expert-parallel group, which vLLM makes TP × DP: DEP-8 appears as `tp: 8, ep: 8` and as
    `tp: 1, ep: 8` (`dp-attn: true`), and its staged recipes run both as tensor-parallel-size 1 ×
    data-parallel-size 8 on 8 GPUs (srt-slurm-recipes/vllm/deepseek-v4/8k1k/
    disagg-b200-1p1d-dep8-dep8-mtp.yaml and disagg-gb200-mid-curve-megamoe-mtp2.yaml:
    `gpus_per_prefill: 8`). ixci's dp-attention is attention DP across the tp ranks (vLLM `-tp 1
    --data-parallel-size tp`), so both are tp 8 here; TP > 1 inside each DP rank is refused."""
    tp = _int(raw.get("tp", 1), f"{role}.tp")
    ep = _int(raw.get("ep", 1), f"{role}.ep")
    if head["framework"] not in VLLM_ENGINES or not raw.get("dp-attn") or ep <= tp:
        return tp
    if tp != 1:
        raise Unmappable(
            f"{role}: vLLM worker of TP {tp} × DP {ep // tp} (EP {ep} = TP × DP) with DP "
            "attention: ixci's dp-attention runs attention TP 1 across the worker's ranks, so "
            "attention TP inside each DP rank has no ixci counterpart"
        )
    return ep


def _no_context_parallel(raw: Mapping[str, Any], role: str) -> None:
    """The incumbent's worker holds tp × pp × pcp-size GPUs (configs/CONFIGS.md; e.g.
    glm5.2's disagg-h200-2p2d-pcp8-tp8-dp8-mtp.yaml: `tp: 1, pcp-size: 8`, gpus_per_prefill 8);
    an ixci pool holds tp × pp and has no context-parallel field, so the GPUs would be wrong."""
    pcp = _int(raw.get("pcp-size", 1) or 1, f"{role}.pcp-size")
    if pcp != 1:
        raise Unmappable(
            f"{role}: pcp-size {pcp}: the incumbent's worker spans tp × pp × pcp-size GPUs "
            "(prefill context parallelism) but an ixci pool holds tp × pp GPUs and has no "
            "context-parallel field"
        )


def _entry(ss: Any, head: dict[str, Any], kind: str, isl: int) -> list[dict[str, Any]]:
    """One incumbent search-space entry → ixci search-space entries (kebab-case keys): one, or
    one per speculative-token count where the incumbent's script picks it by concurrency."""
    if not isinstance(ss, dict):
        raise Unmappable("search-space entry is not a mapping")
    unknown = sorted(set(ss) - _KNOWN)
    if unknown:
        raise Unmappable(f"fields with no ixci counterpart: {', '.join(unknown)}")
    if ss.get("kv-offloading", "none") != "none":
        raise Unmappable(f"kv-offloading={ss['kv-offloading']!r} has no ixci field yet")
    entry: dict[str, Any] = {}
    if "prefill" in ss or "decode" in ss:
        env = _disaggregated(ss, head, entry)
    else:
        env = {}
        settings = ss.get("_aggregated")
        if settings is None and (head["_disagg"] or head["_multinode"]):
            raise Unmappable("multi-node entry without prefill/decode pools")
        if ss.get("router"):
            raise Unmappable("a router in front of a single-node server has no ixci field yet")
        _parallel(entry, ss)
        if settings is not None:
            env = _aggregated_env(dict(settings), entry, head)
    if env:
        entry["env"] = dict(sorted(env.items()))
    _check_nodes(entry, head)
    out = []
    for spec, concurrency in _spec_groups(ss, env, head, kind, isl):
        one = dict(entry)
        if spec:
            one = {
                **{k: v for k, v in entry.items() if k != "env"},
                "spec-decoding": spec,
                **({"env": entry["env"]} if "env" in entry else {}),
            }
        one["concurrency"] = concurrency
        out.append(one)
    return out


def _check_nodes(entry: Mapping[str, Any], head: Mapping[str, Any]) -> None:
    """A launch must fit the runner pool's nodes; ixci gives every worker nodes of its own (the
    incumbent may pack several small workers onto one node)."""
    dis = entry.get("disaggregated")
    nodes = (
        sum(p["workers"] * p.get("nodes-per-worker", 1) for p in (dis["prefill"], dis["decode"]))
        if dis
        else entry.get("nodes", 1)
    )
    most = head.get("_max_nodes")
    if most is not None and nodes > most:
        raise Unmappable(
            f"needs {nodes} nodes (ixci gives each worker nodes of its own) but runner "
            f"{head['runner']} spans at most {most}"
        )


def _parallel(entry: dict[str, Any], ss: Mapping[str, Any]) -> None:
    tp, ep, pp = (
        _int(ss.get("tp", 1), "tp"),
        _int(ss.get("ep", 1), "ep"),
        _int(ss.get("pp", 1), "pp"),
    )
    entry["tp"] = tp
    if ep != 1:
        entry["ep"] = ep
    if pp != 1:
        entry["pp"] = pp
    if ss.get("dcp-size") and _int(ss["dcp-size"], "dcp-size") != 1:
        entry["dcp"] = _int(ss["dcp-size"], "dcp-size")
    if ss.get("dp-attn"):
        entry["dp-attention"] = True


def _aggregated_env(
    settings: dict[str, str], entry: dict[str, Any], head: Mapping[str, Any]
) -> dict[str, str]:
    """A multi-node aggregated server: its nodes from tp × pp and the runner's GPUs per node; its
    other settings → env (as the incumbent exported them)."""
    gpn = _int(settings.pop("GPUS_PER_NODE", head["_gpn"]), "GPUS_PER_NODE")
    if gpn != head["_gpn"]:
        raise Unmappable(f"GPUS_PER_NODE={gpn} but runner {head['runner']} has {head['_gpn']}")
    nodes = max(1, math.ceil(entry["tp"] * entry.get("pp", 1) / gpn))
    if nodes != 1:
        entry["nodes"] = nodes
    for key in ("PREFILL_NODES", "DECODE_NODES", "PREFILL_WORKERS"):
        settings.pop(key, None)  # derived from the parallelism
    return settings


def _concurrency(ss: Mapping[str, Any]) -> Any:
    if ss.get("conc-list"):
        if not isinstance(ss["conc-list"], list):
            raise Unmappable("conc-list is not a list")
        return [_int(c, "conc-list") for c in dict.fromkeys(ss["conc-list"])]
    if "conc-start" in ss and "conc-end" in ss:
        return {
            "start": _int(ss["conc-start"], "conc-start"),
            "end": _int(ss["conc-end"], "conc-end"),
        }
    raise Unmappable("no conc-list or conc-start/conc-end")


def _count(entry: Mapping[str, Any]) -> int:
    conc = entry["concurrency"]
    if isinstance(conc, list):
        return len(conc)
    n, c = 1, int(conc["start"])
    while c < int(conc["end"]):
        c, n = min(c * 2, int(conc["end"])), n + 1
    return n


def _spec_groups(
    ss: Mapping[str, Any], env: dict[str, str], head: dict[str, Any], kind: str, isl: int
) -> list[tuple[dict[str, Any] | None, Any]]:
    """(spec-decoding or None, concurrency) per launch. The token count comes from the entry
    (`DECODE_MTP_SIZE`, an `_mtpN` recipe name), else `--spec-tokens`, else the incumbent's
    launch script (`spec_tokens.yaml`, provenance recorded in the recipe's `source`)."""
    concurrency = _concurrency(ss)
    method = str(ss.get("spec-decoding") or "none")
    if method == "none":
        return [(None, concurrency)]
    if method not in SPEC_METHODS:
        raise Unmappable(f"spec-decoding {method!r} is not one of {sorted(SPEC_METHODS)}")
    tokens = env.pop("DECODE_MTP_SIZE", None)
    if tokens is None:  # srt-slurm recipe names carry it: ..._mtp3.yaml
        found = _MTP_IN_NAME.search(str(env.get("CONFIG_FILE", "")))
        tokens = found.group(1) if found else None
    if tokens is not None:
        return [(_spec_of(method, _int(tokens, "spec-decoding token count")), concurrency)]
    if head["_spec_tokens"] is not None:
        return [
            (
                {"method": method, "num-tokens": head["_spec_tokens"], "_note": "assumed"},
                concurrency,
            )
        ]
    staged = spec_table().recipes.get(env.get("CONFIG_FILE", ""))
    if staged is not None:  # the srt-slurm recipe the incumbent stages in its repository
        head["_provenance"].setdefault(staged.path, set()).add(staged.line)
        return [
            (_spec_of(staged.method or method, staged.num_tokens, staged.draft_model), concurrency)
        ]
    return _script_groups(
        method, ss, head, kind, isl, concurrency, config_file=env.get("CONFIG_FILE", "")
    )


def _spec_of(method: str, tokens: int, draft_model: str | None = None) -> dict[str, Any] | None:
    if tokens < 1:
        return None  # 0: speculation off
    return {
        "method": method,
        "num-tokens": tokens,
        **({"draft-model": draft_model} if draft_model else {}),
    }


def _script_groups(
    method: str,
    ss: Mapping[str, Any],
    head: dict[str, Any],
    kind: str,
    isl: int,
    concurrency: Any,
    *,
    config_file: str = "",
) -> list[tuple[dict[str, Any] | None, Any]]:
    script = None if head["_multinode"] else spec_table().script_for(head["_raw"], kind)
    split = staged_table().speculative_split.get(config_file)
    if split is not None:
        raise Unmappable(
            f"spec-decoding {method!r}: the incumbent's staged recipe {split.path} sets "
            f"{split.prefill} speculative step(s) on its prefill workers and {split.decode} on "
            f"its decode workers (lines {', '.join(map(str, split.lines))}); ixci's "
            "spec-decoding is one count per launch"
        )
    if script is None and head["_multinode"]:
        raise Unmappable(
            f"spec-decoding {method!r} without a token count: its srt-slurm recipe "
            "is not staged in the incumbent's repository (it lives in NVIDIA/srt-slurm; "
            "pass --spec-tokens N)"
        )
    if script is None:
        raise Unmappable(
            f"spec-decoding {method!r} without a token count, and the incumbent's "
            "launch script for it sets none (pass --spec-tokens N)"
        )
    concs = (
        concurrency
        if isinstance(concurrency, list)
        else list(_count_range(int(concurrency["start"]), int(concurrency["end"])))
    )
    groups: dict[int, list[int]] = {}
    for conc in concs:
        found = script.tokens(dp_attn=bool(ss.get("dp-attn")), isl=isl, conc=conc)
        if found is None:
            raise Unmappable(f"{script.path}: no token count recorded for conc {conc}")
        groups.setdefault(found[0], []).append(conc)
        head["_provenance"].setdefault(script.path, set()).add(found[1])
    method, draft = script.method or method, script.draft_model
    if len(groups) == 1:
        return [(_spec_of(method, next(iter(groups)), draft), concurrency)]
    return [(_spec_of(method, n, draft), c) for n, c in groups.items()]


def _provenance(found: Mapping[str, set[int]]) -> list[str]:
    """Permanent links to the lines that set the speculative token counts, one per file."""
    table = spec_table()
    return [
        f"https://github.com/{table.repository}/blob/{table.commit[:12]}/{path} line "
        + ", ".join(map(str, sorted(lines)))
        for path, lines in sorted(found.items())
    ]


def _disaggregated(
    ss: Mapping[str, Any], head: dict[str, Any], entry: dict[str, Any]
) -> dict[str, str]:
    if not head["_disagg"]:
        raise Unmappable("prefill/decode pools in an aggregated (disagg: false) entry")
    env: dict[str, str] = {}
    pools = {role: _pool(role, ss.get(role), head, env) for role in ("prefill", "decode")}
    router = ss.get("router") or head["_router"] or _staged_router(env, head)
    if not isinstance(router, dict) or not router.get("name"):
        raise Unmappable(
            "disaggregated entry names no router (ixci records the router's name "
            "and version; add router: {name, version} to the entry)"
        )
    kv = str(ss.get("kv-p2p-transfer") or head["_kv"] or "")
    if kv not in KV_TRANSFERS:
        raise Unmappable(f"kv-p2p-transfer {kv!r} is not one of {sorted(KV_TRANSFERS)}")
    entry["disaggregated"] = {
        **pools,
        "router": {"name": str(router["name"]), "version": str(router.get("version", ""))},
        "kv-transfer": kv,
    }
    return env


def _staged_router(env: Mapping[str, str], head: dict[str, Any]) -> dict[str, str] | None:
    """The Dynamo front end the entry's staged srt-slurm recipe installs (`frontend: {type:
    dynamo}`, `dynamo: {version | wheel | hash}`), when the entry names no router itself."""
    if not str(head["framework"]).startswith("dynamo-"):
        return None
    staged = staged_table().routers.get(env.get("CONFIG_FILE", ""))
    if staged is None:
        return None
    head["_facts"].add(
        f"router dynamo-router {staged.version}: {staged_table().url(staged.path, staged.line)}"
    )
    return {"name": "dynamo-router", "version": staged.version}


def _pool(role: str, raw: Any, head: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    if not isinstance(raw, dict) or _int(raw.get("num-worker", 0), f"{role}.num-worker") < 1:
        raise Unmappable(f"{role} pool missing or with no workers")
    settings = _settings(raw.get("additional-settings") or [], role)
    _no_context_parallel(raw, role)
    tp, pp = _worker_tp(raw, head, role), _int(raw.get("pp", 1), f"{role}.pp")
    pool: dict[str, Any] = {"workers": _int(raw["num-worker"], f"{role}.num-worker"), "tp": tp}
    for src, dst in (("ep", "ep"), ("pp", "pp")):
        if _int(raw.get(src, 1), f"{role}.{src}") != 1:
            pool[dst] = _int(raw[src], f"{role}.{src}")
    if raw.get("dp-attn"):
        pool["dp-attention"] = True
    gpn = _int(settings.pop("GPUS_PER_NODE", head["_gpn"]), f"{role}: GPUS_PER_NODE")
    if gpn != head["_gpn"]:
        raise Unmappable(
            f"{role}: GPUS_PER_NODE={gpn} but runner {head['runner']} has {head['_gpn']}"
        )
    nodes_per_worker = max(1, math.ceil(tp * pp / gpn))
    if nodes_per_worker != 1:
        pool["nodes-per-worker"] = nodes_per_worker
    args = _context_parallel(raw)
    if args:
        pool["engine-args"] = args
    for key in ("PREFILL_NODES", "DECODE_NODES", "PREFILL_WORKERS"):
        settings.pop(key, None)  # derived from workers × nodes-per-worker
    for key, value in settings.items():
        if env.get(key, value) != value:
            raise Unmappable(f"{role}: setting {key} conflicts with the other pool's value")
        env[key] = value
    return pool


def _context_parallel(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Decode context parallelism (it reuses the TP ranks); prefill context parallelism is
    refused (`_no_context_parallel`)."""
    dcp = _int(raw.get("dcp-size") or 1, "dcp-size")
    return {"decode-context-parallel-size": dcp} if dcp != 1 else {}


def _settings(items: Iterable[Any], role: str) -> dict[str, str]:
    """`["KEY=VALUE", …]` → {KEY: VALUE}, each checked against the catalog's env rules."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise Unmappable(f"{role}: additional-setting {item!r} is not KEY=VALUE")
        if not _SAFE.match(value):
            raise Unmappable(
                f"{role}: additional-setting {key} has characters unsafe on a command line"
            )
        out[key] = value
    return out
