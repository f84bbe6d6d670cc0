"""Hostile metrics and cache-control answers: recorded, never raised, never a hang.

A real HTTP server on a local socket (`http.server`, one thread per request) answers `/metrics`,
`/slots`, `/flush_cache` and `/reset_prefix_cache` with one crafted fault per case. Each case
runs the real `ixci.run.servermetrics.Scraper` (or `ixci.run.cachestate.flush`) against it and checks
the outcome it names: the scrape failure or flush status recorded, no exception, a bounded
time, and a record that validates against the artifact schema (`server_metrics` / `cache`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator

from ixci import schemas
from ixci.engines.base import CacheFlush, MetricsMap, ServeSpec
from ixci.engines.llamacpp import FLUSH as LLAMA_FLUSH
from ixci.engines.llamacpp import METRICS as LLAMA_METRICS
from ixci.engines.vllm import FLUSH as VLLM_FLUSH
from ixci.engines.vllm import METRICS as VLLM_METRICS
from ixci.loadgen.dialect import DIALECTS
from ixci.run import cachestate
from ixci.run.servermetrics import Scraper

TIMEOUT_S = 1.0
WALL_S = 6.0  # one baseline + one final scrape, each cut at TIMEOUT_S, plus slack


def _vllm(waiting: str, hits: str = "5", queries: str = "10") -> bytes:
    return (
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{model_name="m"}} {waiting}\n'
        f'vllm:prefix_cache_hits_total{{model_name="m"}} {hits}\n'
        f'vllm:prefix_cache_queries_total{{model_name="m"}} {queries}\n'
    ).encode()


# path → what the server does: bytes (answered with 200), an int status, or a callable on the
# handler (for the slow and silent faults)
Behaviour = bytes | int | Callable[[BaseHTTPRequestHandler], None]


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.end_headers()
    with contextlib.suppress(OSError):
        for _ in range(600):  # one byte every 50 ms for 30 s
            handler.wfile.write(b"#")
            handler.wfile.flush()
            time.sleep(0.05)


def _silent(_handler: BaseHTTPRequestHandler) -> None:
    time.sleep(20)


@dataclass(frozen=True)
class Case:
    """One crafted answer and what ixci must make of it."""

    id: str
    routes: dict[str, Behaviour]
    outcome: str  # the error message fragment, flush status or summary property expected
    what: str = "metrics"  # metrics (vLLM mapping) | llama-metrics | flush-llama | flush-vllm


CASES = [
    Case("garbage-binary", {"/metrics": bytes(range(256)) * 64}, "no-series"),
    Case("huge-body", {"/metrics": b"vllm:num_requests_waiting 1\n" * 400_000}, "response over"),
    Case("slow-drip", {"/metrics": _drip}, "took over"),
    Case("silent", {"/metrics": _silent}, "no answer"),
    Case("http-500", {"/metrics": 500}, "HTTP 500"),
    Case("not-found", {"/metrics": 404}, "HTTP 404"),
    Case("non-finite-values", {"/metrics": _vllm("NaN", "+Inf", "-Inf")}, "no-series"),
    Case(
        "overflow-to-inf",
        {
            "/metrics": b'vllm:num_requests_waiting{a="1"} 1e308\n'
            b'vllm:num_requests_waiting{a="2"} 1e308\n'
        },
        "no-series",
    ),
    Case("too-many-lines", {"/metrics": b"x 1\n" * 150_000}, "lines"),
    Case("hits-over-queries", {"/metrics": _vllm("1", "50", "10")}, "hit-rate-null"),
    Case("brace-in-label", {"/metrics": b'vllm:num_requests_waiting{m="a}b"} 3\n'}, "waiting=3"),
    Case("counter-reset", {"/metrics": "counter-reset"}, "delta-null", what="llama-metrics"),  # type: ignore[dict-item]
    Case("slots-not-json", {"/slots": b"<html>"}, "failed", what="flush-llama"),
    Case(
        "slots-too-many",
        {"/slots": b"[" + b",".join(b'{"id":%d}' % i for i in range(5000)) + b"]"},
        "failed",
        what="flush-llama",
    ),
    Case(
        "slots-id-traversal", {"/slots": b'[{"id":"0/../../props"}]'}, "failed", what="flush-llama"
    ),
    Case("slots-bool-id", {"/slots": b'[{"id":true}]'}, "failed", what="flush-llama"),
    Case("erase-501", {"/slots": b'[{"id":0}]', "/slots/0": 501}, "failed", what="flush-llama"),
    Case(
        "erase-ok-ram-cache-on",
        {"/slots": b'[{"id":0},{"id":1}]', "/slots/0": b"{}", "/slots/1": b"{}"},
        "partial",
        what="flush-llama",
    ),
    Case("vllm-without-dev-mode", {"/reset_prefix_cache": 404}, "failed", what="flush-vllm"),
    Case("flush-silent", {"/reset_prefix_cache": _silent}, "failed", what="flush-vllm"),
    Case(
        "flush-control-chars", {"/reset_prefix_cache": b"\x1b[31mok\x00"}, "ok", what="flush-vllm"
    ),
]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Behaviour]] = {}
    calls: ClassVar[list[str]] = []

    def log_message(self, *_args: Any) -> None:
        pass

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        self.calls.append(f"{self.command} {self.path}")
        behaviour = self.routes.get(path, 404)
        if behaviour == "counter-reset":  # 100 first, then 5: the server restarted
            behaviour = b"llamacpp:prompt_tokens_total %d\n" % (100 if len(self.calls) == 1 else 5)
        if callable(behaviour):
            behaviour(self)
            return
        if isinstance(behaviour, int):
            self.send_error(behaviour)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(behaviour)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(behaviour)

    do_GET = _answer
    do_POST = _answer


@contextlib.contextmanager
def _server(routes: dict[str, Behaviour]) -> Iterator[tuple[str, list[str]]]:
    handler = type("H", (_Handler,), {"routes": routes, "calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.calls
    finally:
        server.shutdown()
        server.server_close()


def _serve(url: str, flush: CacheFlush, *argv: str) -> ServeSpec:
    from ixci.engines.base import Component

    host, port = url.removeprefix("http://").split(":")
    return ServeSpec(engine="x", image=None, host=host, port=int(port), health_path="/health",
                     components=(Component(name="server", role="server", argv=("srv", *argv)),),
                     version_path=None, ready_timeout_s=1, model_name="m", model_path="m",
                     dialect=DIALECTS["llamacpp"], cache_flush=flush)  # fmt: skip


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"result.schema.json#/$defs/{name}"},
                                registry=schemas._registry())  # fmt: skip


def _metrics(url: str, mapping: MetricsMap) -> dict[str, Any]:
    return Scraper(url + mapping.path, mapping, interval_s=0.2, timeout_s=TIMEOUT_S).start().stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_answer_is_recorded(case: Case) -> None:
    t0 = time.monotonic()
    with _server(case.routes) as (url, calls):
        if case.what.startswith("flush"):
            flush = LLAMA_FLUSH if case.what == "flush-llama" else VLLM_FLUSH
            record = cachestate.before_point(_serve(url, flush), "flush", timeout_s=TIMEOUT_S)
            _validator("cache_state").validate(record)
            assert record["status"] == case.outcome, record
            # a crafted slot id never becomes part of a request path
            assert not any(".." in c or "props" in c for c in calls), calls
            assert all(s["body"].isprintable() for s in record["steps"])
        else:
            mapping = LLAMA_METRICS if case.what == "llama-metrics" else VLLM_METRICS
            record = _metrics(url, mapping)
            _validator("server_metrics").validate(record)
            _check_metrics(case, record)
    assert time.monotonic() - t0 < WALL_S + (TIMEOUT_S if "silent" in case.id else 0), "too slow"


def _check_metrics(case: Case, record: dict[str, Any]) -> None:
    series = record["series"]
    if case.outcome == "no-series":
        assert series == {} and record["failed_samples"] == 0, record
    elif case.outcome == "hit-rate-null":
        assert (
            series["prefix_cache_hits"]["last"] == 50
            and record["prefix_cache_hit_rate"]["value"] is None
        )
    elif case.outcome == "waiting=3":
        assert series["queue_depth"]["last"] == 3, record
    elif case.outcome == "delta-null":
        assert series["prompt_tokens"]["delta"] is None and series["prompt_tokens"]["first"] == 100
    else:  # every scrape failed, with the reason
        assert record["samples"] == 0 and record["failed_samples"] >= 2, record
        assert any(case.outcome in e for e in record["errors"]), record["errors"]
