"""Multi-node entries: the jobs `ixci plan` makes of the imported recipes are the incumbent's
distinct multi-node launches, one job per launch, with the incumbent's GPUs (and nodes) per role.

How the incumbent launches a multi-node entry (InferenceX 843c6254):

- `utils/matrix_logic/generate_sweep_configs.py` turns each fixed-seq-len search-space entry of a
  `multinode: true` entry into ONE matrix row carrying its whole concurrency list (`conc:
  conc_values  # Pass the entire list for multinode`), each agentic one into one row per
  concurrency (`MAX_MULTINODE_AGENTIC_CONCURRENCIES_PER_ALLOCATION = 1`);
  `.github/workflows/benchmark-multinode-tmpl.yml` starts one Slurm deployment per row (the
  srt-slurm recipe named by `CONFIG_FILE`, or the AMD scripts) and measures every `CONC_LIST`
  value on it, with both pools' `additional-settings` exported as environment.
- rows that differ only in their concurrencies are one server configuration: the incumbent groups
  them with `_multinode_parallelism_key` (every row field except conc, exp-name and the eval
  marks). A row's other fields are the entry's image, model, precision, framework, runner, router
  and kv-p2p-transfer, the scenario block's isl/osl (→ max-model-len; agentic: its
  dram-utilization → total-cpu-dram-gb) and the search-space entry without `conc-*`.

So a distinct launch is (entry, scenario block, search-space entry without `conc-*`); its points
are the union of the concurrency lists of the rows listing it.

GPUs per worker: `tp × pp × pcp-size` (configs/CONFIGS.md: "a worker pool allocates num-worker *
tp * pp * pcp-size GPUs"), except a vLLM worker with DP attention, whose expert-parallel group is
TP × DP: the incumbent writes DEP-8 both as `tp: 8, ep: 8` and as `tp: 1, ep: 8` (`dp-attn:
true`), and its staged recipes run both as tensor-parallel-size 1 × data-parallel-size 8 on
`gpus_per_prefill: 8` (srt-slurm-recipes/vllm/deepseek-v4/8k1k/disagg-b200-1p1d-dep8-dep8-mtp.yaml,
disagg-gb200-mid-curve-megamoe-mtp2.yaml), so such a worker holds max(tp, ep) × pp GPUs.
Nodes per role: `PREFILL_NODES`/`DECODE_NODES` where the entry states them, else the role's
workers tiled onto the runner's nodes (a worker smaller than a node shares it with workers of its
role: `worker_gpus_per_node`; the staged recipes' `prefill_nodes`/`decode_nodes` agree). ixci
gives every worker nodes of its own (docs/importing.md), so where the incumbent packs small
workers ixci holds more nodes: counted here, not hidden.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ixci.catalog.catalog import load_catalog
from ixci.importer import ImportReport, import_inferencex, load_target, write_recipes
from ixci.plan import plan
from ixci.yamlio import load_file
from tests.plan.test_import_coverage import REPO, SOURCE, _concs, _raw

STRUCTURAL = frozenset({"PREFILL_NODES", "DECODE_NODES", "GPUS_PER_NODE", "PREFILL_WORKERS"})
"""additional-settings the importer turns into structure (nodes, workers) rather than env."""
VLLM = frozenset({"vllm", "dynamo-vllm"})

# Launches of converted entries the import reports instead of converting, and why (a new
# refusal, or one that goes away, must show up here).
REPORTED = {
    # CONFIG_FILE=recipes/b200-fp4/8k1k.yaml:zip_override_stp_lowlat[0]: a selector, not a file
    "dsr1-fp4-b200-dynamo-sglang": (3, "CONFIG_FILE has characters unsafe"),
    # MTP without a count, its srt-slurm recipe not staged in the incumbent's repository
    "dsr1-fp8-h200-dynamo-sglang": (5, "without a token count"),
    # vLLM TP-4 × DP-4 (EP 16) with DP attention on gpus_per_agg 16: ixci's dp-attention has
    # attention TP 1, so the entry's tp 4 disagrees with the GPUs its staged recipe launches
    "kimik3-fp4-gb200-dynamo-vllm-agentic": (2, "runs 1 worker(s) of 16 GPUs"),
    # 7 prefill + 12 decode workers on their own nodes: 19 > the 18 nodes of gb300-nvl72
    "qwen3.5-fp4-gb300-dynamo-trt": (1, "spans at most 18"),
}


@dataclass(frozen=True, kw_only=True)
class Role:
    """One pool of a launch (`server` for an aggregated one): what the test compares."""

    name: str
    workers: int
    gpus: int  # of the whole pool
    ep: int
    pp: int
    dp_attention: bool

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.workers, self.gpus, self.ep, self.pp, self.dp_attention)


@dataclass(frozen=True, kw_only=True)
class Launch:
    """One distinct server launch of the incumbent (or one ixci job), comparable across both."""

    entry: str
    points: frozenset[tuple[str, int]]  # (ixci scenario, concurrency)
    roles: tuple[Role, ...]
    nodes: tuple[int, ...]  # per role, as `roles`
    gpus_per_node: int = 0
    env: tuple[tuple[str, str], ...]
    spec: tuple[bool, int | None]  # on?, token count where the incumbent's entry states it
    where: tuple[str, ...] = ()  # file:line:col of the search-space entries listing it
    incumbent_jobs: int = 0  # the incumbent's matrix rows (Slurm jobs) for this launch

    def key(self) -> tuple[Any, ...]:
        return (self.entry, self.points, tuple(r.key() for r in self.roles), self.env)


def _incumbent_launches(runners: Mapping[str, str], root: Path) -> dict[str, Launch]:
    """The incumbent's distinct multi-node launches of the converted entries (`runners`: entry →
    its recipe's runner pool, for the GPUs per node), read from the incumbent's files."""
    catalog = load_target(root)  # scenarios by lengths and runners' GPUs per node only
    by_lengths: dict[tuple[int, int], str] = {}
    for name in sorted(catalog.scenarios):
        by_lengths.setdefault((catalog.scenarios[name].isl, catalog.scenarios[name].osl), name)
    out: dict[str, Launch] = {}
    for path in SOURCE:
        doc = load_file(path, display=path.name)
        for name, entry in doc.data.items():
            if name not in runners or not entry.get("multinode"):
                continue
            gpn = catalog.runners[runners[name]].gpus_per_node
            for kind, blocks in entry["scenarios"].items():
                for b, block in enumerate(blocks):
                    scenario = kind
                    if kind == "fixed-seq-len":
                        scenario = by_lengths[(block["isl"], block["osl"])]
                    fields = {k: v for k, v in block.items() if k != "search-space"}
                    for i, ss in enumerate(block["search-space"]):
                        server = {k: v for k, v in ss.items() if not k.startswith("conc-")}
                        key = repr((name, kind, _sorted(fields), _sorted(server)))
                        concs = _concs(ss)
                        one = _launch(name, entry["framework"], ss, gpn, scenario, concs)
                        seen = out.get(key)
                        out[key] = replace(
                            one,
                            points=one.points | (seen.points if seen else frozenset()),
                            where=(
                                *(seen.where if seen else ()),
                                str(doc.where((name, "scenarios", kind, b, "search-space", i))),
                            ),
                            incumbent_jobs=(seen.incumbent_jobs if seen else 0)
                            + (len(concs) if kind == "agentic-coding" else 1),
                        )
    return out


def _launch(
    name: str, framework: str, ss: Mapping[str, Any], gpn: int, scenario: str, concs: list[int]
) -> Launch:
    """One search-space entry's launch: its pools' GPUs and nodes, env, speculative decoding."""
    env: dict[str, str] = {}
    stated: dict[str, str] = {}
    for pool in (ss["prefill"], ss["decode"]):
        for item in pool.get("additional-settings") or []:
            key, _, value = str(item).partition("=")
            (stated if key in STRUCTURAL or key == "DECODE_MTP_SIZE" else env)[key] = value
    aggregated = ss["decode"]["num-worker"] == 0
    pools = [("prefill", ss["prefill"]), ("decode", ss["decode"])]
    if aggregated:
        pools = [("server", ss["prefill"])]
    roles, nodes = [], []
    for role, pool in pools:
        workers, pp = pool["num-worker"], pool.get("pp", 1)
        width = pool["tp"]
        if framework in VLLM and pool.get("dp-attn"):
            width = max(width, pool.get("ep", 1))  # vLLM: EP = TP × DP
        per_worker = width * pp * pool.get("pcp-size", 1)
        roles.append(
            Role(
                name=role,
                workers=workers,
                gpus=workers * per_worker,
                ep=pool.get("ep", 1),
                pp=pp,
                dp_attention=bool(pool.get("dp-attn")),
            )
        )
        if per_worker < gpn:  # workers of a role share nodes (`worker_gpus_per_node`)
            tiled = math.ceil(workers * per_worker / gpn)
        else:
            tiled = workers * math.ceil(per_worker / gpn)
        named = stated.get("DECODE_NODES" if role == "decode" else "PREFILL_NODES")
        nodes.append(int(named) if named and not aggregated else tiled)
    tokens = stated.get("DECODE_MTP_SIZE")
    on = ss.get("spec-decoding", "none") != "none" and tokens != "0"
    return Launch(
        entry=name,
        points=frozenset((scenario, c) for c in concs),
        roles=tuple(roles),
        nodes=tuple(nodes),
        gpus_per_node=gpn,
        env=tuple(sorted(env.items())),
        spec=(on, int(tokens) if on and tokens else None),
    )


def _job_launch(job: plan.Job) -> Launch:
    """The same view of one planned job (its plan-JSON object)."""
    d = job.to_dict()
    topo = d["topology"]
    if topo["disaggregated"]:
        pools = [(role, topo[role]) for role in ("prefill", "decode")]
        roles = [Role(name=role, workers=p["workers"], gpus=p["gpus"], ep=p["ep"], pp=p["pp"],
                      dp_attention=p["dp_attention"]) for role, p in pools]  # fmt: skip
        nodes = [p["workers"] * p["nodes_per_worker"] for _, p in pools]
    else:
        roles = [Role(name="server", workers=1, gpus=topo["gpus"], ep=topo["ep"], pp=topo["pp"],
                      dp_attention=topo["dp_attention"])]  # fmt: skip
        nodes = [topo["nodes"]]
    spec = d["spec_decoding"]
    return Launch(
        entry=Path(d["recipe"]).stem,
        points=frozenset((p["scenario"], p["concurrency"]) for p in d["points"]),
        roles=tuple(roles),
        nodes=tuple(nodes),
        env=tuple(sorted((k, v) for k, v in d["env"].items() if k != "DECODE_MTP_SIZE")),
        spec=(spec is not None, spec["num_speculative_tokens"] if spec else None),
    )


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _sorted(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_sorted(v) for v in value)
    return value


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportReport]:
    """This repository's catalog with every incumbent entry imported (in this process, so the
    importer under test is this checkout's, whatever `ixci` on PATH runs)."""
    root = tmp_path_factory.mktemp("ixmn")
    for part in ("matrix", "benchmarks"):
        shutil.copytree(REPO / part, root / part)
    shutil.rmtree(root / "matrix" / "recipes")
    (root / "matrix" / "canary.yaml").write_text("canary: [dsr1-fp8-mi300x-sglang]\n")
    converted, report = import_inferencex(SOURCE, load_target(root))
    write_recipes(converted, root / "matrix" / "recipes")
    return root, report


@pytest.fixture(scope="module")
def matched(imported: tuple[Path, ImportReport]) -> dict[str, Any]:
    """Incumbent launches of the converted multi-node entries, their planned jobs, the reported."""
    root, report = imported
    raw = _raw()
    runners = {c.entry: c.recipe["runner"] for c in report.converted if raw[c.entry]["multinode"]}
    converted = sorted(runners)
    launches = _incumbent_launches(runners, root)
    reported = {s.where: (s.entry, s.reason) for s in report.skipped if s.search is not None}
    catalog = load_catalog(root)  # full validation: schemas + cross-file checks
    jobs = [j for j in plan.expand(catalog) if Path(j.to_dict()["recipe"]).stem in converted]
    return {
        "converted": converted,
        "launches": launches,
        "reported": reported,
        "jobs": [_job_launch(j) for j in jobs],
    }


def test_every_multinode_launch_is_one_job_with_its_gpus(matched: dict[str, Any]) -> None:
    """Each incumbent launch of a converted multi-node entry is reported (all its search-space
    entries, with the reason in REPORTED) or is exactly one planned job — same concurrencies per
    scenario, pools, workers, GPUs, EP, PP, DP attention, env — and each job is one launch."""
    launches: dict[str, Launch] = matched["launches"]
    reported: dict[str, tuple[str, str]] = matched["reported"]
    jobs: list[Launch] = matched["jobs"]
    kept, dropped, unexpected = [], Counter[str](), []
    for launch in launches.values():
        hits = [w for w in launch.where if w in reported]
        assert len(hits) in (0, len(launch.where)), f"{launch.entry}: partly reported {hits}"
        if not hits:
            kept.append(launch)
            continue
        dropped[launch.entry] += 1
        entry, reason = reported[hits[0]]
        if entry != launch.entry or REPORTED.get(entry, (0, "\0"))[1] not in reason:
            unexpected.append(f"{hits[0]} {entry}: {reason}")
    want = Counter(launch.key() for launch in kept)
    got = Counter(job.key() for job in jobs)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"incumbent launches without their job: {sorted(missing, key=str)[:3]}; "
        f"jobs that are no incumbent launch: {sorted(extra, key=str)[:3]}"
    )
    assert not unexpected, f"launches reported for an unexpected reason: {unexpected}"
    assert dict(dropped) == {k: n for k, (n, _) in REPORTED.items()}
    assert all(n == 1 for n in got.values())  # one job per launch, none shared
    # per entry: the incumbent's distinct launches less the reported ones = its planned jobs
    per_entry = Counter(launch.entry for launch in kept)
    assert per_entry == Counter(job.entry for job in jobs)
    assert set(per_entry) == set(matched["converted"])
    # speculative decoding on where the incumbent's is, with its stated token count
    by_key = {job.key(): job for job in jobs}
    for launch in kept:
        job = by_key[launch.key()]
        assert job.spec[0] == launch.spec[0], launch.where
        assert launch.spec[1] in (None, job.spec[1]), launch.where


def test_multinode_node_counts_differ_only_where_the_incumbent_packs_workers(
    matched: dict[str, Any],
) -> None:
    """Nodes per role equal the incumbent's, except where it packs workers smaller than a node
    onto shared nodes and ixci gives each worker its own (then ixci holds more, never fewer)."""
    by_key = {job.key(): job for job in matched["jobs"]}
    packed = 0
    for launch in matched["launches"].values():
        job = by_key.get(launch.key())
        if job is None:
            continue  # reported (test above)
        for role, want, got in zip(launch.roles, launch.nodes, job.nodes, strict=True):
            per_worker_gpus = role.gpus // role.workers
            if got != want:
                assert got > want and role.workers > 1, (launch.where, role, want, got)
                # ixci: every worker on nodes of its own
                assert got == role.workers * math.ceil(per_worker_gpus / launch.gpus_per_node)
                packed += 1
    # 63 pools (prefill or decode) of workers smaller than a node at the incumbent's 843c6254
    assert packed == 63


def test_multinode_figures(matched: dict[str, Any]) -> None:
    """The counts the acceptance is judged by, at the incumbent's 843c6254."""
    launches: dict[str, Launch] = matched["launches"]
    assert len(matched["converted"]) == 75  # converted multi-node entries (of 94)
    assert sum(len(x.where) for x in launches.values()) == 447  # their search-space entries
    assert len(launches) == 436  # distinct launches: 9 are listed more than once
    # the incumbent's Slurm jobs for them: 368 fixed-seq-len rows + 169 agentic allocations
    assert sum(x.incumbent_jobs for x in launches.values()) == 537
    assert len(matched["jobs"]) == 436 - sum(n for n, _ in REPORTED.values()) == 425


def test_multinode_launch_shapes_the_importer_must_keep() -> None:
    """Three launch shapes of the incumbent's multi-node catalog: an aggregated launch inside a
    `disagg: true` entry (`decode.num-worker: 0`), a vLLM DEP worker written `tp: 1, ep: 8`, and
    a prefill-context-parallel worker (`pcp-size`) whose GPUs ixci's pools cannot count."""
    converted, report = import_inferencex(SOURCE, load_target(REPO))
    by = {c.entry: c.recipe for c in converted}
    # dsv4-fp4-gb200-dynamo-vllm-mtp2 search-space[0]: agg-gb200-low-latency-mtp2.yaml,
    # resources.agg_nodes 2, gpus_per_agg 8, vLLM TP 8 with 2 MTP tokens, conc 1
    agg = [
        e for e in by["dsv4-fp4-gb200-dynamo-vllm-mtp2"]["search-space"] if "disaggregated" not in e
    ]
    assert agg == [
        {
            "tp": 8,
            "nodes": 2,
            "spec-decoding": {"method": "mtp", "num-tokens": 2},
            "env": {
                "CONFIG_FILE": "recipes/vllm/deepseek-v4/8k1k/agg-gb200-low-latency-mtp2.yaml",
                "SYNTHETIC_ACCEPTANCE": "true",
                "SYNTHETIC_ACCEPTANCE_LENGTH": "2.27",
            },
            "concurrency": [1],
        }
    ]
    # dsv4-fp4-b200-dynamo-vllm-mtp: prefill `tp: 1, ep: 8, dp-attn: true` is vLLM
    # tensor-parallel-size 1 × data-parallel-size 8 on 8 GPUs (gpus_per_prefill: 8)
    first = by["dsv4-fp4-b200-dynamo-vllm-mtp"]["search-space"][0]["disaggregated"]
    assert first["prefill"] == {"workers": 1, "tp": 8, "ep": 8, "dp-attention": True}
    assert first["decode"] == {"workers": 1, "tp": 8}
    # glm5.2-fp8-h200-dynamo-sglang-agentic-mtp-2p2d: prefill tp 1 × pcp 8 = 8 GPUs a worker
    glm = "glm5.2-fp8-h200-dynamo-sglang-agentic-mtp-2p2d"
    assert glm not in by
    reasons = {s.reason for s in report.skipped if s.entry == glm and s.search is not None}
    assert reasons == {
        "prefill: pcp-size 8: the incumbent's worker spans tp × pp × pcp-size GPUs (prefill "
        "context parallelism) but an ixci pool holds tp × pp GPUs and has no context-parallel field"
    }
