"""Start a real llama-server for a test and stop it (its whole process group) afterwards."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ixci import cmd


def post(url: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_healthy(base: str, proc: Any, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"llama-server exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"llama-server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def llama_server(binary: Path, model: Path, port: int, log: Path, *extra: str) -> Iterator[str]:
    """Run llama-server on 127.0.0.1:`port`; yield its base URL; always terminate it."""
    argv = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-c", "2048", "-t", "1", *extra]  # fmt: skip
    with log.open("wb") as out:
        proc = cmd.spawn(argv, stdout=out)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, log)
        yield base
    finally:
        cmd.terminate_group(proc, grace=5)
