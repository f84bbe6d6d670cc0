"""Draft-model speculative decoding on the real llama-server, measured through `ixci run-job`.

Two GGUFs are made on the spot next to the target the catalog generates (the tiny llama, f16):
a smaller copy of the target's own weights (q8_0: the same layers, about half the bytes) that
agrees with it on almost every greedy token, and an unrelated random draft (another seed, one
layer) that almost never does. Each serves as `-md` in one job of an otherwise identical recipe
(greedy sampling, `--temp 0`); the points' measured acceptance must tell them apart, from the
responses' own draft counts and from the server's `/metrics` counters alike. The figures are
printed (`pytest -s`).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ixci.catalog.catalog import load_catalog
from ixci.engines import modelgen
from ixci.engines.resolve import resolve_checkpoint
from ixci.plan.plan import weights_gb
from ixci.results import aggregate
from ixci.results import result as artifact

from .test_run_job import IXCI, ROOT, _assert_clean, _bin_dir, _finish

pytestmark = [pytest.mark.engine, pytest.mark.timeout(420)]

DRAFTS = {"copy": "spec-draft-copy-q8.gguf", "random": "spec-draft-random.gguf"}
RECIPE = """\
description: tiny-llama on llama.cpp with a {kind} draft model (speculative-decoding test).
model: tiny-llama
sku: cpu
framework: llamacpp
precision: fp16
runner: cpu-local
image: localhost/ixci/llama-server:b11434
engine-args: {{parallel: 2, ctx-size: 4096, threads: 2, temp: 0}}
scenarios: [local-short]
search-space:
  - tp: 1
    concurrency: [2]
    spec-decoding: {{method: draft-model, num-tokens: 4, draft-model: "local:{draft}"}}
"""


def _models(catalog: Path, cache: Path) -> None:
    """The target exactly as run-job makes it, and the two drafts beside it."""
    model = load_catalog(catalog).models["tiny-llama"]
    ref = model.checkpoints["fp16"]
    target = Path(resolve_checkpoint(ref, cache=cache, model=model,
                                     size_gb=weights_gb(model, "fp16")).path)  # fmt: skip
    facts = {"layers": model.layers, "hidden": model.hidden_size, "heads": model.attention_heads,
             "kv_heads": model.kv_heads, "vocab": model.vocab_size, "context": model.context_length}  # fmt: skip
    copy = modelgen.make_tiny_gguf(cache / DRAFTS["copy"], weights="q8_0", **facts)
    other = modelgen.make_tiny_gguf(cache / DRAFTS["random"], **{**facts, "layers": 1}, seed=7)
    assert copy.gguf.stat().st_size < target.stat().st_size * 0.6  # a smaller copy
    assert other.vocab == copy.vocab  # llama.cpp needs the draft's vocabulary to match


def _catalog(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(ROOT / "matrix", root / "matrix")
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks")
    for kind, draft in DRAFTS.items():
        (root / "matrix" / "recipes" / f"tiny-fp16-cpu-llamacpp-spec-{kind}.yaml").write_text(
            RECIPE.format(kind=kind, draft=draft)
        )
    return root


def _job(catalog: Path, kind: str) -> str:
    out = subprocess.run([*IXCI, "plan", "--catalog", str(catalog), "--event", "workflow_dispatch",
                          "--format", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    jobs = [j for j in json.loads(out.stdout)["jobs"] if j["recipe"].endswith(f"-spec-{kind}.yaml")]
    assert len(jobs) == 1 and jobs[0]["spec_decoding"]["method"] == "draft-model"
    return str(jobs[0]["id"])


def _run(
    catalog: Path, job: str, out: Path, cache: Path, port: int, bindir: Path
) -> dict[str, Any]:
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    argv = [*IXCI, "run-job", job, "--catalog", str(catalog), "--output", str(out), "--port", str(port),
            "--runtime", "process", "--model-cache", str(cache), "--run-id", "test"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    rc, log = _finish(proc, timeout=380)
    assert rc == 0, log
    _assert_clean(port)
    doc: dict[str, Any] = artifact.load(out / job / "result.json")  # schema-validated
    return doc


def test_measured_acceptance_follows_the_draft(
    tmp_path: Path, llama_server_bin: Path, free_port: int
) -> None:
    catalog, cache = _catalog(tmp_path), tmp_path / "models"
    _models(catalog, cache)
    bindir = _bin_dir(tmp_path, llama_server_bin, None)
    figures: dict[str, dict[str, Any]] = {}
    for kind in DRAFTS:
        job = _job(catalog, kind)
        doc = _run(catalog, job, tmp_path / "out", cache, free_port, bindir)
        argv = doc["provenance"]["server_argv"]
        assert argv[argv.index("-md") + 1] == str(cache / DRAFTS[kind])  # local: → the model cache
        assert argv[argv.index("--spec-draft-n-max") + 1] == "4" and "--spec-type" in argv
        (point,) = doc["points"]
        assert point["status"] == "ok", point["invalid_reasons"]
        spec = point["speculative"]
        # the responses' own counts, over the measured requests (every one drafted)
        assert spec["source"].startswith("llama.cpp response timings"), spec
        assert spec["requests"] == point["metrics"]["completed"] >= 8
        assert spec["draft_tokens"] > 0
        assert spec["acceptance_rate"] == pytest.approx(
            spec["accepted_tokens"] / spec["draft_tokens"]
        )
        with gzip.open(tmp_path / "out" / job / "requests.jsonl.gz", "rt") as fh:
            measured = [r for r in map(json.loads, fh) if not r["warmup"]]
        assert sum(r["draft_tokens"] for r in measured) == spec["draft_tokens"]
        # the server's counters over the point (its warm-up requests included) agree in kind
        series = point["server_metrics"]["series"]
        server_rate = series["spec_accepted_tokens"]["delta"] / series["spec_draft_tokens"]["delta"]
        assert series["spec_draft_tokens"]["delta"] >= spec["draft_tokens"]
        assert spec["mean_accepted_length"] == pytest.approx(
            1 + series["spec_accepted_tokens"]["delta"] / series["spec_drafts"]["delta"], abs=1e-6
        )
        # and the tidy table carries the point's figures
        (row,) = aggregate.rows_from_documents([doc])
        assert row["spec_acceptance_rate"] == spec["acceptance_rate"]
        figures[kind] = {**spec, "server_rate": round(server_rate, 4),
                         "output_tok_s": round(point["metrics"]["output_throughput"], 1)}  # fmt: skip
    for kind, f in figures.items():
        print(f"{kind} draft: acceptance {f['acceptance_rate']:.3f} ({f['accepted_tokens']}/"
              f"{f['draft_tokens']} draft tokens over {f['requests']} requests; server counters "
              f"{f['server_rate']:.3f}), mean accepted length {f['mean_accepted_length']:.2f}, "
              f"output {f['output_tok_s']} tok/s")  # fmt: skip
    copy, other = figures["copy"], figures["random"]
    assert copy["acceptance_rate"] > 0.6 and other["acceptance_rate"] < 0.2
    assert copy["acceptance_rate"] - other["acceptance_rate"] > 0.5
    assert copy["server_rate"] > 0.6 > 0.2 > other["server_rate"]
    assert copy["mean_accepted_length"] > 2.0 > 1.5 > other["mean_accepted_length"]
