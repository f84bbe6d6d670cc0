"""Prompts built to exact token counts with a tokenizer file, a batch of texts at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ixci.engines import modelgen
from ixci.errors import UsageError
from ixci.loadgen import dataset
from ixci.loadgen.dataset import HFCodec, build_prompts


@pytest.fixture(scope="module")
def codec(tmp_path_factory: pytest.TempPathFactory) -> HFCodec:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    modelgen.train_tokenizer(512).save(str(path))
    return HFCodec(path)


def _prompts(codec: HFCodec) -> list[tuple[str, int, int]]:
    built = build_prompts(
        count=300, isl=48, osl=16, range_ratio=0.5, shared_prefix_tokens=8, seed=3, codec=codec
    )
    assert built.inexact == 0
    return [(p.text, p.input_tokens, p.output_tokens) for p in built.prompts]


def test_batched_tokenizer_calls_build_the_same_exact_prompts(
    codec: HFCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokenizer is called 2,048 texts at a time (an Encoding holds ~20 KB, so one call for
    every prompt of a long point held gigabytes): batches of 7 give the very same prompts."""
    whole = _prompts(codec)
    monkeypatch.setattr(dataset, "_CODEC_BATCH", 7)
    assert _prompts(codec) == whole
    texts = [t for t, _, _ in whole]
    assert [len(ids) for ids in codec.encode(texts)] == [n for _, n, _ in whole]
    assert codec.decode(codec.encode(texts[:20])) == texts[:20]
    assert len(set(texts)) == len(texts) and len({n for _, n, _ in whole}) > 10


def test_codec_reads_only_a_tokenizer_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no tokenizer"):
        HFCodec(tmp_path)
