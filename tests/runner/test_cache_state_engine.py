"""Server metrics and cache state against a real llama-server (`--metrics`, `--slot-save-path`).

A "point" here is the same two prompts sent once each, with `ixci.run.servermetrics.PointMetrics`
sampling `/metrics` around it exactly as the runner does and `ixci.run.cachestate.before_point`
run before it. The client's own accounting (`usage.prompt_tokens_details.cached_tokens`, which
llama.cpp fills from `timings.cache_n`) is checked against the server's counters, and the
numbers are printed (`pytest -s`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ixci.engines.base import Component, ServeSpec
from ixci.engines.llamacpp import FLUSH, METRICS
from ixci.engines.modelgen import TinyModel
from ixci.loadgen.dialect import DIALECTS
from ixci.run import cachestate, servermetrics
from tests.infra.llama import llama_server, post

pytestmark = [pytest.mark.engine, pytest.mark.timeout(240)]

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]
PROMPTS = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(90)) for i in (1, 2)]


def _spec(base: str, *argv: str) -> ServeSpec:
    host, port = base.removeprefix("http://").split(":")
    return ServeSpec(engine="llamacpp", image=None, host=host, port=int(port),
                     components=(Component(name="server", role="server", argv=("llama-server", *argv)),),
                     health_path="/health", version_path=None, ready_timeout_s=60, model_name="m",
                     model_path="m", dialect=DIALECTS["llamacpp"], metrics=METRICS,
                     cache_flush=FLUSH)  # fmt: skip


def _point(spec: ServeSpec, action: str) -> dict[str, Any]:
    """Cache action, then the two prompts under metrics sampling → the point's numbers."""
    cache = cachestate.before_point(spec, action)
    scrape = servermetrics.PointMetrics(spec, interval_s=0.2).begin()
    usage = [post(spec.base_url + "/v1/completions", {"prompt": p, "max_tokens": 4,
                                                     "temperature": 0})["usage"] for p in PROMPTS]  # fmt: skip
    metrics = scrape.end()
    prompt = sum(u["prompt_tokens"] for u in usage)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usage)
    return {"cache": cache, "metrics": metrics, "client_prompt": prompt, "client_cached": cached,
            "client_hit_rate": cached / prompt, "client_output": sum(u["completion_tokens"] for u in usage),
            "server_hit_rate": metrics["prefix_cache_hit_rate"]["value"]}  # fmt: skip


def _show(name: str, p: dict[str, Any]) -> None:
    s = p["metrics"]["series"]
    print(f"{name}: cache {p['cache']['action']}→{p['cache']['status']}; client cached "
          f"{p['client_cached']}/{p['client_prompt']} = {p['client_hit_rate']:.3f}; server hits "
          f"{s['prefix_cache_hits']['delta']:.0f}, uncached {s['prompt_tokens']['delta']:.0f}, "
          f"hit rate {p['server_hit_rate']:.3f}; {p['metrics']['samples']} samples")  # fmt: skip


@pytest.fixture
def server(llama_server_bin: Path, tiny_gguf: TinyModel, free_port: int, tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[ServeSpec]:  # fmt: skip
    """A real llama-server with 2 slots; `cache-ram` from the test's parameter (None: default)."""
    argv = ["-np", "2", "--metrics", "--slot-save-path", str(tmp_path)]
    ram = getattr(request, "param", None)
    argv += ["--cache-ram", ram] if ram is not None else []
    with llama_server(llama_server_bin, tiny_gguf.gguf, free_port, tmp_path / "log", *argv) as base:
        yield _spec(base, *argv)


def _agrees(p: dict[str, Any]) -> None:
    """Server counters and client usage describe the same tokens."""
    s = p["metrics"]["series"]
    assert s["prefix_cache_hits"]["delta"] + s["prompt_tokens"]["delta"] == p["client_prompt"]
    assert s["prefix_cache_hits"]["delta"] == p["client_cached"]
    assert s["generation_tokens"]["delta"] == p["client_output"]
    assert abs(p["server_hit_rate"] - p["client_hit_rate"]) < 1e-9


@pytest.mark.parametrize("server", ["0"], indirect=True)
def test_flush_makes_an_identical_point_cold_keep_leaves_it_warm(server: ServeSpec) -> None:
    cold = _point(server, "flush")
    warm = _point(server, "keep")  # the same prompts again, cache kept
    flushed = _point(server, "flush")  # the same prompts again, cache flushed first
    for name, p in (("first", cold), ("kept", warm), ("flushed", flushed)):
        _show(name, p)
        _agrees(p)
        assert p["metrics"]["samples"] >= 2 and p["metrics"]["failed_samples"] == 0
    assert cold["cache"]["status"] == "ok" and flushed["cache"]["status"] == "ok"
    assert [s["request"] for s in flushed["cache"]["steps"]] == [
        "GET /slots", "POST /slots/0?action=erase", "POST /slots/1?action=erase"]  # fmt: skip
    assert all(s["status"] == 200 for s in flushed["cache"]["steps"])
    assert cold["server_hit_rate"] < 0.05
    assert warm["server_hit_rate"] > 0.9  # the whole prompts but the last token came from cache
    assert flushed["server_hit_rate"] < 0.05  # back to cold
    # the counters moved during the point, the gauges were read
    assert warm["metrics"]["series"]["generation_tokens"]["delta"] == 8
    assert warm["metrics"]["series"]["running"]["samples"] >= 2
    assert warm["metrics"]["missing"] == ["kv_cache_usage"]  # this build publishes no KV usage


def test_slot_erase_leaves_the_host_prompt_cache_and_says_so(server: ServeSpec) -> None:
    """Default `--cache-ram` (on): an erase clears the slots, not the host-memory prompt cache,
    so the identical point after the flush is still (partly) warm — recorded as `partial`."""
    _point(server, "flush")
    # push the two prompts out of the slots into the host cache with two other prompts
    for text in ("zulu " * 60, "yankee " * 60):
        post(server.base_url + "/v1/completions", {"prompt": text, "max_tokens": 2})
    after = _point(server, "flush")
    _show("flushed, cache-ram on", after)
    _agrees(after)
    assert after["cache"]["status"] == "partial" and "cache-ram" in after["cache"]["detail"]
    assert after["server_hit_rate"] > 0.5


def test_kv_offload_cap_is_recorded(server: ServeSpec) -> None:
    spec = replace(server, components=(replace(server.components[0],
                   argv=(*server.argv, "--cache-ram", "2048")),))  # fmt: skip
    record = cachestate.before_point(spec, "keep")
    assert record["kv_offload"] == [{"setting": "--cache-ram", "value": "2048", "unit": "MiB"}]
    assert record["status"] == "ok" and record["steps"] == []
