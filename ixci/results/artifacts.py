"""Bounded reading and strict parsing of untrusted artifact files.

Artifacts are uploaded by jobs that ran a pull request's code, so every byte is hostile until
proven otherwise. Each read here is capped *before* the bytes are held in memory: a plain
file by its size on disk, a zip member by its declared sizes and then by a bounded read of the
inflated stream (a header may lie). Parsing is strict JSON with limits a real `result.json`
never comes near: nesting depth, integer digits, finite floats only (no NaN/Infinity, no
`1e400`). Every failure is `Rejected(category, reasons)`, so the caller skips that one file
with a reason and goes on with the next.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps on one untrusted file. Defaults are far above any real artifact."""

    max_json_bytes: int = 32 * 1024 * 1024  # a result.json (inflated): ~3 KB per point
    max_zip_bytes: int = 4 * 1024**3  # a whole artifact archive (server logs included)
    max_zip_members: int = 10_000
    max_depth: int = 64  # a result.json nests ~8 levels deep
    max_int_digits: int = 20  # beyond 64 bits is no count, no token total, no id


DEFAULT_LIMITS = Limits()


class Rejected(Exception):
    """One untrusted file refused: a skip-report category and every reason found."""

    def __init__(self, category: str, reasons: list[str], job_id: str | None = None) -> None:
        super().__init__(category)
        self.category = category
        self.reasons = tuple(reasons)
        self.job_id = job_id


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def read_capped(stream: IO[bytes], cap: int, *, what: str) -> bytes:
    """At most `cap` bytes of `stream`; `Rejected("too_large")` if there are more.

    Reads `cap + 1` bytes at most, so a stream that inflates without end (a zip or gzip bomb)
    costs `cap` bytes of memory, never more.
    """
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise Rejected("too_large", [f"{what} is larger than the {_mib(cap)} limit"])
    return data


def read_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of a plain file, refused unread when it is over `limits.max_json_bytes`."""
    try:
        size = path.stat().st_size
        if size > limits.max_json_bytes:
            raise Rejected(
                "too_large",
                [f"{path.name} is {_mib(size)}, over the {_mib(limits.max_json_bytes)} limit"],
            )
        with path.open("rb") as fh:
            return read_capped(fh, limits.max_json_bytes, what=path.name)
    except OSError as exc:
        raise Rejected("unreadable", [f"cannot read {path.name}: {exc.strerror or exc}"]) from exc


def zip_members(path: Path, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Names of the `result.json` members of a zip archive (any folder), sorted.

    `Rejected` for an archive that is not a zip, over `max_zip_bytes` on disk, or with more
    than `max_zip_members` entries (a central directory that alone would exhaust memory).
    """
    try:
        size = path.stat().st_size
        if size > limits.max_zip_bytes:
            raise Rejected(
                "too_large",
                [f"{path.name} is {_mib(size)}, over the {_mib(limits.max_zip_bytes)} limit"],
            )
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Rejected("corrupt_zip", [f"{path.name} is not a readable zip archive"]) from exc
    if len(infos) > limits.max_zip_members:
        raise Rejected(
            "too_large",
            [f"{path.name} has {len(infos)} entries, over the {limits.max_zip_members} limit"],
        )
    return sorted(i.filename for i in infos if i.filename.rsplit("/", 1)[-1] == "result.json")


def read_zip_member(path: Path, member: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """One member's inflated bytes, capped by its declared sizes and by a bounded read."""
    cap = limits.max_json_bytes
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(member)
            if info.file_size > cap or info.compress_size > cap:
                raise Rejected(
                    "too_large",
                    [f"{member} inflates to {_mib(info.file_size)}, over the {_mib(cap)} limit"],
                )
            with zf.open(info) as fh:
                return read_capped(fh, cap, what=member)
    except Rejected:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError) as exc:
        raise Rejected("corrupt_zip", [f"cannot inflate {member}: {exc}"]) from exc
    except RuntimeError as exc:  # encrypted member
        raise Rejected("corrupt_zip", [f"cannot read {member}: {exc}"]) from exc


# --- strict JSON ----------------------------------------------------------------------------

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(data: bytes) -> int:
    """The deepest `[`/`{` nesting of JSON text, in linear time without recursion."""
    depth = deepest = 0
    for byte in _STRINGS.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _reject_constant(name: str) -> float:
    raise Rejected("nan", [f"non-finite number {name} in JSON (NaN/Infinity are not valid JSON)"])


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Rejected("number", [f"number {text[:40]} overflows a 64-bit float"])
    return value


def parse_json(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse untrusted JSON bytes strictly: UTF-8, depth, digits and finiteness limits.

    Categories: `not_utf8`, `empty`, `too_deep`, `truncated`, `not_json`, `nan`, `number`.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("not_utf8", [f"not UTF-8 text: {exc}"]) from exc
    if not text.strip():
        raise Rejected("empty", ["file is empty"])
    depth = nesting_depth(data)
    if depth > limits.max_depth:
        raise Rejected(
            "too_deep", [f"JSON nests {depth} levels deep, over the {limits.max_depth} limit"]
        )

    def _int(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_int_digits:
            raise Rejected(
                "number",
                [f"integer of {len(digits)} digits (over {limits.max_int_digits}): {digits[:20]}…"],
            )
        return int(digits)

    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        category = "truncated" if truncated else "not_json"
        what = "truncated JSON (ends early)" if truncated else "invalid JSON"
        raise Rejected(
            category, [f"{what}: {exc.msg} at line {exc.lineno} col {exc.colno}"]
        ) from exc
    except RecursionError as exc:  # the depth scan above makes this unreachable; kept as a net
        raise Rejected("too_deep", ["JSON nests too deeply to parse"]) from exc
