"""ixci.engines.modelgen: the generated models are real — llama-server and transformers load them."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import gguf
import pytest
from tokenizers import Tokenizer

from ixci.engines import modelgen
from ixci.errors import IxciError
from tests.infra.llama import llama_server, post

TEXTS = [
    "def hello(self, x):\n    return x  # ünïcode",
    "The quick brown fox jumps over the lazy dog. 12345 !!",
    "    import os\n\tprint(os.getcwd())  \n\n  ",
    "日本語のテキストと emoji 🎉",
]


def _field(reader: gguf.GGUFReader, key: str) -> object:
    field = reader.fields[key]
    return field.contents()


def test_gguf_metadata_matches_the_request(tiny_gguf: modelgen.TinyModel) -> None:
    reader = gguf.GGUFReader(str(tiny_gguf.gguf))
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "llama.block_count") == tiny_gguf.layers == 2
    assert _field(reader, "llama.embedding_length") == tiny_gguf.hidden == 64
    assert _field(reader, "llama.attention.head_count_kv") == tiny_gguf.kv_heads
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert isinstance(tokens, list) and len(tokens) == tiny_gguf.vocab
    names = {t.name: t for t in reader.tensors}
    assert len(names) == 2 + 9 * tiny_gguf.layers + 1
    assert list(names["token_embd.weight"].shape) == [tiny_gguf.hidden, tiny_gguf.vocab]
    assert sum(int(t.n_elements) for t in reader.tensors) == tiny_gguf.params


def test_tokenizer_json_is_the_gguf_vocabulary(tiny_gguf: modelgen.TinyModel) -> None:
    tok = Tokenizer.from_file(str(tiny_gguf.tokenizer_json))
    reader = gguf.GGUFReader(str(tiny_gguf.gguf))
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert tok.get_vocab(with_added_tokens=True) == {t: i for i, t in enumerate(tokens)}
    for text in TEXTS:  # byte-level: every text round-trips
        assert tok.decode(tok.encode(text).ids) == text


def test_same_arguments_give_the_same_file(tmp_path: Path, tiny_gguf: modelgen.TinyModel) -> None:
    again = modelgen.make_tiny_gguf(tmp_path / "a" / "model.gguf")
    digest = hashlib.sha256(again.gguf.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(tiny_gguf.gguf.read_bytes()).hexdigest()
    other = modelgen.make_tiny_gguf(tmp_path / "b" / "model.gguf", seed=1)
    assert hashlib.sha256(other.gguf.read_bytes()).hexdigest() != digest


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"hidden": 65}, "not divisible by heads"),
        ({"heads": 4, "kv_heads": 3}, "not divisible by kv_heads"),
        ({"vocab": 100}, "too small"),
        ({"layers": 0}, ">= 1"),
    ],
)
def test_bad_shapes_are_clear_errors(tmp_path: Path, kwargs: dict[str, int], needle: str) -> None:
    with pytest.raises(IxciError, match=needle):
        modelgen.make_tiny_gguf(tmp_path / "model.gguf", **kwargs)


@pytest.mark.engine
def test_llama_server_serves_the_tiny_model(
    llama_server_bin: Path, tiny_gguf: modelgen.TinyModel, free_port: int, tmp_path: Path
) -> None:
    tok = Tokenizer.from_file(str(tiny_gguf.tokenizer_json))
    with llama_server(llama_server_bin, tiny_gguf.gguf, free_port, tmp_path / "server.log") as base:
        for text in TEXTS:  # llama.cpp tokenizes exactly like tokenizer.json
            assert post(base + "/tokenize", {"content": text})["tokens"] == tok.encode(text).ids
        body = {"prompt": TEXTS[0], "max_tokens": 16, "stream": True, "ignore_eos": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
        req = urllib.request.Request(
            base + "/v1/completions", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            lines = [ln.decode().strip() for ln in resp if ln.strip()]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln.removeprefix("data: ")) for ln in lines[:-1]]
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 16
    assert usage["prompt_tokens"] == len(tok.encode(TEXTS[0]).ids)
    pieces = [c["choices"][0]["text"] for c in chunks if c.get("choices")]
    # One chunk per token, except that llama.cpp holds back a token that ends inside a UTF-8
    # sequence (random weights emit such byte pieces) and sends it with the next one. So
    # re-tokenizing the text is NOT an exact output-token count here: use `usage`.
    assert 1 <= sum(1 for p in pieces if p) <= 16
    assert "".join(pieces)


@pytest.mark.engine
@pytest.mark.slow
def test_llama_server_serves_gemma(
    llama_server_bin: Path, gemma_gguf: Path, free_port: int, tmp_path: Path
) -> None:
    reader = gguf.GGUFReader(str(gemma_gguf))
    assert _field(reader, "general.architecture") == "gemma3"
    with llama_server(llama_server_bin, gemma_gguf, free_port, tmp_path / "server.log") as base:
        out = post(
            base + "/v1/completions", {"prompt": "The capital of France is", "max_tokens": 4}
        )
    assert out["usage"]["completion_tokens"] >= 1


def test_hf_llama_loads_and_generates(hf_tiny_llama: modelgen.HfModel) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_tiny_llama.path))
    model = AutoModelForCausalLM.from_pretrained(str(hf_tiny_llama.path))
    assert sum(p.numel() for p in model.parameters()) == hf_tiny_llama.params
    assert model.config.num_key_value_heads == hf_tiny_llama.kv_heads
    ids = tok(TEXTS[0], return_tensors="pt").input_ids
    assert tok.decode(ids[0]) == TEXTS[0]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)  # fmt: skip
    assert chat.endswith("<|im_start|>assistant\n")


def test_modelgen_imports_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; import ixci.engines.modelgen; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
