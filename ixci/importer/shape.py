"""Shape checks of the incumbent's entries: untrusted input becomes `Unmappable` with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Unmappable(Exception):
    """One thing of the incumbent's that has no ixci counterpart (caught and reported)."""


def _int(value: Any, what: str) -> int:
    """A whole number from the incumbent's file; `Unmappable` naming the field otherwise
    (booleans are not numbers here, though Python would count True as 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Unmappable(f"{what}: {value!r} is not a whole number")
    try:
        return int(value)
    except ValueError:
        raise Unmappable(f"{what}: {value!r} is not a whole number") from None


def _blocks(raw: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """(scenario kind, index, block) of an entry, its shape checked: scenarios a mapping of
    kind → list of blocks, each block a mapping whose `search-space` is a list of mappings."""
    scenarios = raw.get("scenarios") or {}
    if not isinstance(scenarios, dict):
        raise Unmappable("scenarios is not a mapping of scenario kind → list of blocks")
    out = []
    for kind, blocks in scenarios.items():
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            raise Unmappable(f"scenarios.{kind} is not a list of mappings")
        for b, block in enumerate(blocks):
            space = block.get("search-space") or []
            if not isinstance(space, list) or not all(isinstance(e, dict) for e in space):
                raise Unmappable(f"scenarios.{kind}[{b}].search-space is not a list of mappings")
            out.append((str(kind), b, block))
    return out
