"""Engine adapters: one module per engine, one registry (framework name → adapter).

A new engine is one module with a pure `serve_spec(job) -> ServeSpec`, one line here and one
golden test in tests/runner/test_engines.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from ixci.engines import atom, dynamo, llamacpp, sglang, transformers, trtllm, vllm
from ixci.engines.base import Adapter
from ixci.errors import InvalidJob

ADAPTERS: Mapping[str, Adapter] = {
    "vllm": vllm.serve_spec,
    "sglang": sglang.serve_spec,
    "trtllm": trtllm.serve_spec,
    "dynamo-sglang": dynamo.serve_spec,
    "dynamo-trt": dynamo.serve_spec,
    "dynamo-vllm": dynamo.serve_spec,
    "llamacpp": llamacpp.serve_spec,
    "transformers": transformers.serve_spec,
    "atom": atom.serve_spec,
}


def adapter_for(name: str) -> Adapter:
    """The adapter registered for engine/adapter `name`; `InvalidJob` listing the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise InvalidJob(
            f"no engine adapter named {name!r}", hint=f"known: {', '.join(sorted(ADAPTERS))}"
        ) from None
