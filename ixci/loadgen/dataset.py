"""Random prompts with exact token counts for the model's tokenizer.

Three token sources, best first: a Hugging Face `tokenizers` file (exact, offline), the
server's tokenize/detokenize endpoints (exact), or a declared approximation (one common
English word ≈ one token) recorded as such in every result. Lengths are drawn uniformly from
``[L·(1−r), L·(1+r)]``; an optional shared prefix starts every prompt; a fixed seed makes the
same prompts every time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests

from ixci.errors import UsageError
from ixci.loadgen.config import TokenizerSource
from ixci.loadgen.dialect import Dialect, TokenizeStyle

_MAX_ROUNDS = 24  # re-encode rounds to converge on an exact length (random ids rarely need > 3)

# Common words that are one token (with their leading space) in the usual BPE vocabularies.
_WORDS = (  # noqa: SIM905 — a word list reads better as prose
    "the of and to in is was for that on as with by he at from his an were are which this be or "
    "had not but first one their its new after who they have her she two been other when there "
    "all during into school time may years more most only over city some world would where later "
    "up such used many can state about national out known university united then made three also "
    "people him part being several well year between while under season team some back best list "
    "good every long small great high water house place day home life work group line game right"
).split()


class Codec(Protocol):
    """Encodes text to token ids and back (without special tokens)."""

    source: TokenizerSource
    name: str

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]: ...

    def candidates(self) -> Sequence[int]: ...


class HFCodec:
    """A Hugging Face `tokenizers` tokenizer.json (a file or a folder holding one)."""

    source = TokenizerSource.TOKENIZERS

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise UsageError(f"no tokenizer at {path}", hint="give a tokenizer.json or its folder")
        try:
            self._tok = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise UsageError(f"{file}: not a tokenizers file ({exc})") from exc
        self.name = str(file)
        special = set(self._tok.get_added_tokens_decoder())
        self._candidates = [i for i in range(self._tok.get_vocab_size()) if i not in special]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return list(self._tok.decode_batch([list(x) for x in ids], skip_special_tokens=True))

    def candidates(self) -> Sequence[int]:
        return self._candidates


class ServerCodec:
    """The server's own tokenize/detokenize endpoints (llama.cpp or vLLM shape)."""

    source = TokenizerSource.SERVER

    def __init__(
        self, base_url: str, dialect: Dialect, model: str, *, timeout_s: float = 30.0
    ) -> None:
        if not (dialect.tokenize_path and dialect.detokenize_path and dialect.tokenize_style):
            raise UsageError(f"dialect {dialect.name!r} has no tokenize endpoint")
        self.name = base_url.rstrip("/") + dialect.tokenize_path
        self._base = base_url.rstrip("/")
        self._d = dialect
        self._model = model
        self._timeout = timeout_s
        self._session = requests.Session()
        self._pool: list[int] = []

    def _post(self, path: str, payload: dict[str, object]) -> dict[str, object]:
        resp = self._session.post(self._base + path, json=payload, timeout=self._timeout)
        resp.raise_for_status()
        out = resp.json()
        if not isinstance(out, dict):
            raise ValueError(f"{path}: unexpected answer {out!r:.80}")
        return out

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for text in texts:
            if self._d.tokenize_style is TokenizeStyle.LLAMACPP:
                ans = self._post(
                    str(self._d.tokenize_path), {"content": text, "add_special": False}
                )
            else:
                ans = self._post(
                    str(self._d.tokenize_path),
                    {"model": self._model, "prompt": text, "add_special_tokens": False},
                )
            tokens = ans.get("tokens")
            if not isinstance(tokens, list):
                raise ValueError(f"tokenize: no token list in {ans!r:.80}")
            out.append([int(t) if not isinstance(t, dict) else int(t["id"]) for t in tokens])
        return out

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        out = []
        for seq in ids:
            if self._d.tokenize_style is TokenizeStyle.LLAMACPP:
                ans = self._post(str(self._d.detokenize_path), {"tokens": list(seq)})
                out.append(str(ans.get("content", "")))
            else:
                ans = self._post(
                    str(self._d.detokenize_path), {"model": self._model, "tokens": list(seq)}
                )
                out.append(str(ans.get("prompt", "")))
        return out

    def candidates(self) -> Sequence[int]:
        """Token ids of ordinary words, learnt from the server (no special tokens)."""
        if not self._pool:
            rng = random.Random(0)
            corpus = " ".join(rng.choice(_WORDS) for _ in range(2000))
            self._pool = sorted(set(self.encode([corpus])[0]))
        return self._pool

    def probe(self) -> bool:
        """True when both endpoints answer."""
        try:
            ids = self.encode(["hello world"])[0]
            return bool(ids) and bool(self.decode([ids])[0].strip())
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return False


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """One prompt: its text and the requested input/output lengths in tokens."""

    text: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, kw_only=True)
class PromptSet:
    prompts: tuple[Prompt, ...]
    source: TokenizerSource
    tokenizer: str | None
    inexact: int  # prompts whose length could not be made exact (0 unless approximation)


def draw_lengths(
    rng: random.Random, base: int, ratio: float, n: int, *, floor: int = 1
) -> list[int]:
    """`n` integer lengths uniform in [base·(1−ratio), base·(1+ratio)], at least `floor`."""
    lo, hi = max(floor, round(base * (1 - ratio))), max(floor, round(base * (1 + ratio)))
    return [rng.randint(lo, hi) for _ in range(n)]


# texts one codec call takes (a Hugging Face tokenizer spreads them over the CPUs it may use):
# one call for every prompt of a long point held gigabytes of `Encoding`s
_CODEC_BATCH = 2048


def _exact_texts(
    codec: Codec, rng: random.Random, prefix: str, n_prefix: int, targets: Sequence[int]
) -> list[tuple[str, bool]]:
    """Per target, a text of exactly that many tokens starting with `prefix`: (text, exact?).

    All texts are built together: each round decodes and re-encodes every text still off its
    length, `_CODEC_BATCH` texts a call (a Hugging Face tokenizer spreads a batch over the CPUs
    it may use), trimming a text that came out long and drawing more ids for one that came out
    short.
    The ids are drawn from `rng` in target order, so a seed gives the same texts every time."""
    pool = codec.candidates()
    suffixes = [[rng.choice(pool) for _ in range(t - n_prefix)] for t in targets]
    texts, exact = [prefix] * len(targets), [False] * len(targets)
    pending = list(range(len(targets)))
    for _ in range(_MAX_ROUNDS):
        if not pending:
            break
        decoding = [i for i in pending if suffixes[i]]
        for lo in range(0, len(decoding), _CODEC_BATCH):
            batch = decoding[lo : lo + _CODEC_BATCH]
            for i, text in zip(batch, codec.decode([suffixes[i] for i in batch]), strict=True):
                texts[i] = prefix + text
        for i in pending:
            if not suffixes[i]:
                texts[i] = prefix
        counts = [  # a batch at a time (an HF `Encoding` holds ~20 KB): only the lengths kept
            len(ids)
            for lo in range(0, len(pending), _CODEC_BATCH)
            for ids in codec.encode([texts[i] for i in pending[lo : lo + _CODEC_BATCH]])
        ]
        still = []
        for i, count in zip(pending, counts, strict=True):
            target = targets[i]
            if count == target:
                exact[i] = True
                continue
            if count > target:
                suffixes[i] = suffixes[i][: max(0, len(suffixes[i]) - (count - target))]
            else:
                suffixes[i] = suffixes[i] + [rng.choice(pool) for _ in range(target - count)]
            still.append(i)
        pending = still
    return list(zip(texts, exact, strict=True))


def build_prompts(
    *,
    count: int,
    isl: int,
    osl: int,
    range_ratio: float,
    shared_prefix_tokens: int,
    seed: int,
    codec: Codec | None,
) -> PromptSet:
    """`count` prompts; exact token counts with a codec, the word approximation without one."""
    rng = random.Random(seed)
    ins = draw_lengths(rng, isl, range_ratio, count, floor=shared_prefix_tokens + 1)
    outs = draw_lengths(rng, osl, range_ratio, count)
    if codec is None:
        words = [rng.choice(_WORDS) for _ in range(shared_prefix_tokens)]
        prompts = tuple(
            Prompt(
                text=" ".join(
                    words + [rng.choice(_WORDS) for _ in range(n - shared_prefix_tokens)]
                ),
                input_tokens=n,
                output_tokens=o,
            )
            for n, o in zip(ins, outs, strict=True)
        )
        return PromptSet(
            prompts=prompts, source=TokenizerSource.APPROXIMATION, tokenizer=None, inexact=count
        )
    prefix = ""
    if shared_prefix_tokens:
        [(prefix, _)] = _exact_texts(codec, rng, "", 0, [shared_prefix_tokens])
    built = _exact_texts(codec, rng, prefix, shared_prefix_tokens, ins)
    out = tuple(
        Prompt(text=text, input_tokens=n, output_tokens=o)
        for (text, _), n, o in zip(built, ins, outs, strict=True)
    )
    inexact = sum(not exact for _, exact in built)
    return PromptSet(prompts=out, source=codec.source, tokenizer=codec.name, inexact=inexact)
