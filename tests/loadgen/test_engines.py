"""Dialects against real engines: llama.cpp's llama-server (tiny random-weight GGUF) and
`transformers serve` (tiny random-weight HF llama) — skipped with the reason when absent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ixci.loadgen import PointConfig, get_dialect, run_point
from ixci.loadgen.config import CLOCK_SLEW_MAX
from ixci.loadgen.dialect import Endpoint

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url + path, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready in time")


@pytest.fixture(scope="module")
def llama(
    llama_server_bin: Path, tiny_gguf, port_factory, tmp_path_factory
) -> Iterator[tuple[str, Path]]:
    port = port_factory()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(llama_server_bin),
            "-m",
            str(tiny_gguf.gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            "2048",
            "-np",
            "4",
            "-t",
            "1",
            "--no-webui",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, "/health")
        yield url, tiny_gguf.tokenizer_json
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("endpoint", [Endpoint.COMPLETIONS, Endpoint.CHAT])
def test_llamacpp_dialect_exact_tokens(llama: tuple[str, Path], endpoint: Endpoint) -> None:
    url, tokenizer = llama
    r = run_point(
        PointConfig(
            url=url,
            model="tiny",
            isl=48,
            osl=16,
            endpoint=endpoint,
            concurrency=4,
            num_requests=8,
            warmup_requests=2,
            workers=1,
            tokenizer=tokenizer,
            request_timeout_s=120,
        ),
        dialect=get_dialect("llamacpp"),
    )
    m = r.metrics.to_json()
    assert (m["completed"], m["failed"]) == (8, 0), m["errors"]
    assert m["token_count_source"] == "usage"
    assert m["total_output_tokens"] == 8 * 16  # ignore_eos honoured: exactly osl tokens
    for name in (
        "ttft",
        "itl",
    ):  # measured, or withheld (a busy host) with its reason — never a bare null
        if m[name]["mean"] is None or m[name]["p99"] is None:
            assert name in m["timing"]["invalid"], m["timing"]
        else:
            assert m[name]["mean"] > 0 and m[name]["p99"] >= m[name]["mean"] * 0.5
    if sys.platform == "linux":  # every read of a real engine's stream carried the kernel's stamp
        assert (
            r.client.receive_stamps == "kernel"
            and r.client.reads == r.client.kernel_stamped_reads > 0
        )
        # the oldest stamp's age at its read, and what converting it between clocks may cost
        assert 0 < r.client.stamp_age_max_s < 10
        assert r.client.clock_residual_s == r.client.stamp_age_max_s * CLOCK_SLEW_MAX
    d = r.dataset
    assert d.tokenizer_source == "tokenizers" and d.prompt_tokens_checked == 8 + 2  # warm-up too
    # completions: prompt tokens = requested (+ BOS); chat adds a constant template overhead
    assert d.prompt_tokens_mismatched == 0 and d.prompt_tokens_offset is not None
    if endpoint is Endpoint.COMPLETIONS:
        assert d.prompt_tokens_offset in (0, 1)


def test_llamacpp_server_tokenizer_endpoints(llama: tuple[str, Path]) -> None:
    url, _ = llama
    r = run_point(
        PointConfig(
            url=url,
            model="tiny",
            isl=32,
            osl=8,
            concurrency=2,
            num_requests=4,
            workers=1,
            request_timeout_s=120,
        ),
        dialect=get_dialect("llamacpp"),
    )
    assert r.metrics["completed"] == 4
    assert r.dataset.tokenizer_source == "server" and r.dataset.prompt_tokens_mismatched == 0


def test_transformers_serve_dialect(hf_tiny_llama, port_factory, tmp_path: Path) -> None:
    import shutil

    exe = shutil.which("transformers")
    if exe is None:
        pytest.skip("the `transformers` CLI (transformers serve) is not installed")
    port = port_factory()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait_ready(url, proc, "/health", timeout=180)
        except RuntimeError as exc:
            pytest.skip(f"transformers serve did not start here: {exc}")
        r = run_point(
            PointConfig(
                url=url,
                model=str(hf_tiny_llama.path),
                isl=16,
                osl=8,
                endpoint=Endpoint.CHAT,
                concurrency=2,
                num_requests=4,
                workers=1,
                request_timeout_s=120,
            ),
            dialect=get_dialect("transformers"),
        )
        m = r.metrics.to_json()
        assert m["completed"] == 4, m["errors"]
        assert m["total_output_tokens"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
