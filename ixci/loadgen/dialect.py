"""Per-engine request dialects for OpenAI-compatible streaming endpoints.

A `Dialect` says how to talk to one engine's OpenAI-compatible server: which paths, which
field carries the output length, whether `ignore_eos` / `min_tokens` are understood, whether
`stream_options.include_usage` is honoured, whether the stream ends with `data: [DONE]`, and
whether keep-alive connections can be trusted. Engine adapters return one (``DIALECTS[name]``);
the load generator builds request bodies only through `request_body`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from ixci.errors import UsageError


class Endpoint(enum.StrEnum):
    """Which OpenAI-compatible API is exercised."""

    COMPLETIONS = "completions"
    CHAT = "chat"


class TokenizeStyle(enum.StrEnum):
    """Shape of a server's tokenize/detokenize endpoints."""

    LLAMACPP = "llamacpp"  # POST /tokenize {"content"} -> {"tokens"}; /detokenize {"tokens"} -> {"content"}
    VLLM = (
        "vllm"  # POST /tokenize {"model","prompt"} -> {"tokens","count"}; /detokenize -> {"prompt"}
    )


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """How one engine's OpenAI-compatible server wants streaming requests.

    Fields:
      name: preset name (recorded in results).
      completions_path / chat_path: request paths for the two endpoints.
      max_tokens_field / chat_max_tokens_field: the body field carrying the output length.
      ignore_eos: the server accepts ``ignore_eos`` (forces exactly max tokens).
      min_tokens: the server accepts ``min_tokens`` (sent equal to max tokens).
      include_usage: send ``stream_options: {include_usage: true}`` to get token counts.
      sends_done: the stream ends with ``data: [DONE]``.
      fresh_connection: open a new TCP connection per request (keep-alive is unreliable).
      rejects_unknown_fields: the server answers HTTP 422 on fields it does not know, so only
        ``allowed_extra_fields`` may be added to the body.
      allowed_extra_fields: extra body fields the server is known to accept.
      tokenize_path / detokenize_path / tokenize_style: the server's tokenizer endpoints, if any.
      chat_only: the server has no completions endpoint; every request goes to chat.
    """

    name: str
    completions_path: str = "/v1/completions"
    chat_path: str = "/v1/chat/completions"
    max_tokens_field: str = "max_tokens"
    chat_max_tokens_field: str = "max_tokens"
    ignore_eos: bool = False
    min_tokens: bool = False
    include_usage: bool = True
    sends_done: bool = True
    fresh_connection: bool = False
    rejects_unknown_fields: bool = False
    allowed_extra_fields: frozenset[str] = field(default_factory=frozenset)
    tokenize_path: str | None = None
    detokenize_path: str | None = None
    tokenize_style: TokenizeStyle | None = None
    chat_only: bool = False

    def endpoint_for(self, requested: Endpoint | str) -> Endpoint:
        """The endpoint a request asked for `requested` goes to on this server."""
        return Endpoint.CHAT if self.chat_only else Endpoint(requested)

    def path(self, endpoint: Endpoint) -> str:
        """The request path for `endpoint`."""
        return self.chat_path if endpoint is Endpoint.CHAT else self.completions_path

    def with_overrides(self, **changes: Any) -> Dialect:
        """A copy with some fields changed (e.g. ``fresh_connection=True``)."""
        return replace(self, **changes)


DIALECTS: Mapping[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            name="openai",
            chat_max_tokens_field="max_completion_tokens",
            rejects_unknown_fields=True,
        ),
        Dialect(
            name="vllm",
            ignore_eos=True,
            min_tokens=True,
            tokenize_path="/tokenize",
            detokenize_path="/detokenize",
            tokenize_style=TokenizeStyle.VLLM,
        ),
        Dialect(name="sglang", ignore_eos=True, min_tokens=True),
        Dialect(name="trtllm", ignore_eos=True, min_tokens=True),
        # llama-server: usage arrives in the last content-less chunk, then [DONE]; it drops a
        # large share of reused keep-alive connections under load, so connect per request.
        Dialect(
            name="llamacpp",
            ignore_eos=True,
            fresh_connection=True,
            tokenize_path="/tokenize",
            detokenize_path="/detokenize",
            tokenize_style=TokenizeStyle.LLAMACPP,
        ),
        # `transformers serve`: chat only, no [DONE]; unknown fields -> HTTP 422.
        Dialect(name="transformers", sends_done=False, rejects_unknown_fields=True, chat_only=True),
    )
}


def get_dialect(name: str) -> Dialect:
    """The named preset; `UsageError` naming the known presets otherwise."""
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise UsageError(f"unknown dialect {name!r}", hint=f"use one of: {known}") from None


def request_body(
    dialect: Dialect,
    *,
    endpoint: Endpoint,
    model: str,
    prompt: str,
    max_tokens: int,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON body of one streaming request, as bytes.

    `max_tokens` is the requested output length in tokens; with `ignore_eos`/`min_tokens` the
    server is asked to produce exactly that many. `extra` fields are added as given, but on a
    server that rejects unknown fields only `dialect.allowed_extra_fields` are allowed
    (`UsageError` otherwise).
    """
    body: dict[str, Any] = {"model": model, "stream": True}
    if endpoint is Endpoint.CHAT:
        body["messages"] = [{"role": "user", "content": prompt}]
        body[dialect.chat_max_tokens_field] = max_tokens
    else:
        body["prompt"] = prompt
        body[dialect.max_tokens_field] = max_tokens
    if dialect.include_usage:
        body["stream_options"] = {"include_usage": True}
    if dialect.ignore_eos:
        body["ignore_eos"] = True
    if dialect.min_tokens:
        body["min_tokens"] = max_tokens
    for key, value in (extra or {}).items():
        if dialect.rejects_unknown_fields and key not in dialect.allowed_extra_fields:
            raise UsageError(
                f"dialect {dialect.name!r} rejects unknown request field {key!r}",
                hint="drop the field or add it to the dialect's allowed_extra_fields",
            )
        body[key] = value
    return orjson.dumps(body)
