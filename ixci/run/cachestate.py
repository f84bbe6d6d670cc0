"""The engine's cache state as part of a point: flush, prime or keep it before the point.

A scenario declares `cache: {before-point: flush | prime | keep}` (default keep):
- `flush` empties the engine's prefix / KV cache over HTTP with the adapter's `CacheFlush`
  (SGLang `POST /flush_cache`; vLLM `POST /reset_prefix_cache`, only mounted when the server
  runs with `VLLM_SERVER_DEV_MODE=1`; llama.cpp `POST /slots/{id}?action=erase` for every slot
  of `GET /slots`, which needs `--slot-save-path`), so the point starts cold;
- `prime` flushes (where the engine can) and then runs the point once unmeasured (same seed,
  same prompts, results discarded), so the measured run starts with exactly its own prompts
  cached;
- `keep` leaves the cache as the previous point (and the warm-up) left it.

Every point records what was done (`cache` in the artifact): the action, each HTTP request
and its status, the duration, and an outcome — `ok`, `partial` (done, but a part of the cache
survives: llama.cpp's host-memory prompt cache), `failed` (the endpoint refused: the record
says what the server needs), or `not_supported` (the engine has no flush over HTTP). A cache
action never fails the point; a point that was meant to start cold and did not is visible.
The CPU KV-offload settings the recipe gives the engine (its cap) are recorded with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ixci.engines.base import CacheFlush, ServeSpec
from ixci.run.servermetrics import ScrapeError, request

ACTIONS = ("flush", "prime", "keep")
TIMEOUT_S = 30.0  # a flush waits for the engine to finish bookkeeping, not for requests
MAX_BYTES = 1024 * 1024
MAX_SLOTS = 4096
# engine flags that cap or enable KV-cache offload to host memory, and their unit
OFFLOAD_FLAGS: Mapping[str, str | None] = {
    "--cache-ram": "MiB",  # llama.cpp host-memory prompt cache (-cram)
    "-cram": "MiB",
    "--kv-offloading-size": "GiB",  # vLLM native CPU KV offload
    "--kv-offloading-backend": None,
    "--swap-space": "GiB",  # vLLM (v0) CPU swap space for preempted sequences
    "--enable-hierarchical-cache": None,  # SGLang HiCache
    "--hicache-ratio": "× device KV",
    "--hicache-size": "GB",
}
TRT_HOST_CACHE = "host_cache_size"  # TensorRT-LLM kv_cache_config.host_cache_size, bytes
LLAMA_RAM_OFF = ("0",)


def _request(method: str, url: str, *, timeout_s: float) -> tuple[int, bytes]:
    """One bounded HTTP request → (status, body); status 0 when unanswered or cut off."""
    try:
        return request(method, url, timeout_s=timeout_s, max_bytes=MAX_BYTES)
    except (ScrapeError, OSError):
        return 0, b""


def _step(method: str, path: str, status: int, body: bytes) -> dict[str, Any]:
    text = body[:200].decode("utf-8", errors="replace")
    return {"request": f"{method} {path}", "status": status,
            "body": "".join(c if c.isprintable() else "?" for c in text)}  # fmt: skip


def flush(serve: ServeSpec, *, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Empty the engine's cache with its `CacheFlush` → {status, detail, steps}."""
    method = serve.cache_flush
    if method is None:
        return {"status": "not_supported", "steps": [],
                "detail": f"engine {serve.engine} has no cache flush over HTTP: "
                          "the point runs on whatever the cache holds"}  # fmt: skip
    if method.kind == "slots":
        return _erase_slots(serve, method, timeout_s=timeout_s)
    status, body = _request("POST", serve.base_url + method.path, timeout_s=timeout_s)
    step = _step("POST", method.path, status, body)
    if status == 200:
        return {"status": "ok", "steps": [step], "detail": "cache flushed"}
    return {"status": "failed", "steps": [step], "detail": _refusal(status, method)}


def _refusal(status: int, method: CacheFlush) -> str:
    if status == 0:
        return f"{method.path}: no answer"
    return f"{method.path} answered {status}" + (
        f"; it needs {method.needs}" if method.needs else ""
    )


def _erase_slots(serve: ServeSpec, method: CacheFlush, *, timeout_s: float) -> dict[str, Any]:
    status, body = _request("GET", serve.base_url + method.path, timeout_s=timeout_s)
    steps = [_step("GET", method.path, status, b"")]
    ids = _slot_ids(body) if status == 200 else None
    if ids is None:
        detail = _refusal(status, method) if status != 200 else "unreadable slot list"
        return {"status": "failed", "steps": steps, "detail": detail}
    for slot in ids:
        path = f"{method.path}/{slot}?action=erase"
        code, answer = _request("POST", serve.base_url + path, timeout_s=timeout_s)
        steps.append(_step("POST", path, code, answer))
        if code != 200:
            return {"status": "failed", "steps": steps, "detail": _refusal(code, method)}
    if _flag_value(serve, "--cache-ram", "-cram") not in LLAMA_RAM_OFF:
        return {"status": "partial", "steps": steps,
                "detail": f"{len(ids)} slots erased; llama-server's host-memory prompt cache "
                          "(--cache-ram, on by default) survives an erase: set the engine arg "
                          "cache-ram: 0 for a cold start"}  # fmt: skip
    return {"status": "ok", "steps": steps, "detail": f"{len(ids)} slots erased"}


def _slot_ids(body: bytes) -> list[int] | None:
    """Slot ids from llama-server's `GET /slots` (a list of objects with an integer `id`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, list) or len(data) > MAX_SLOTS:
        return None
    ids = [s.get("id") for s in data if isinstance(s, dict)]
    ok = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_SLOTS for i in ids)
    return [int(i) for i in ids if isinstance(i, int)] if ok and ids else None


def _argv(serve: ServeSpec) -> list[str]:
    return [a for comp in serve.components for a in comp.argv]


def _flag_value(serve: ServeSpec, *flags: str) -> str | None:
    """The value of the last of `flags` in any component's argv (`--f v` or `--f=v`)."""
    argv = _argv(serve)
    found: str | None = None
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in flags:
            found = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    return found


def kv_offload(serve: ServeSpec) -> list[dict[str, Any]]:
    """The KV-offload settings the engine was started with: [{setting, value, unit}]."""
    out: list[dict[str, Any]] = []
    argv = _argv(serve)
    for flag, unit in OFFLOAD_FLAGS.items():
        if any(a == flag or a.startswith(flag + "=") for a in argv):
            value = _flag_value(serve, flag) if unit is not None else "on"
            out.append({"setting": flag, "value": value, "unit": unit})
    for name, text in serve.files.items():
        for line in text.splitlines():
            key, _, value = line.strip().partition(":")
            if key == TRT_HOST_CACHE and value.strip():
                out.append({"setting": f"{name}: {TRT_HOST_CACHE}", "value": value.strip(),
                            "unit": "bytes"})  # fmt: skip
    return out


def before_point(
    serve: ServeSpec,
    action: str,
    *,
    prime: Callable[[], None] | None = None,
    timeout_s: float = TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Bring the cache into the state `action` declares; the point's `cache` record.

    `prime` runs the point once unmeasured (the runner's driver); a failure there raises as
    the point itself would (the server crashed), everything else is recorded, never raised.
    """
    t0 = clock()
    record: dict[str, Any] = {"action": action, "kv_offload": kv_offload(serve)}
    if action == "keep":
        record.update(status="ok", steps=[],
                      detail="cache left as the previous point and the warm-up left it")  # fmt: skip
    else:
        record.update(flush(serve, timeout_s=timeout_s))
        if action == "prime" and prime is not None:
            t1 = clock()
            prime()
            record["prime_s"] = clock() - t1
            record["detail"] += "; then the point ran once unmeasured (same prompts)"
    record["duration_s"] = clock() - t0
    return record
