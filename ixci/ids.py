"""Untrusted identifiers that become paths, refs or arguments: one pattern each, checked once.

Run ids, job ids, dates and file-name stems arrive from the command line, from artifacts
uploaded by jobs that ran a pull request's code, and from the catalog. Every value that becomes
part of a path, a git ref or an argv element goes through one of these checks first, and every
path built from one is checked to stay inside its root (`contained`).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from ixci.errors import UnsafeValue

# A GitHub run id is a decimal number; local runs use short names (`demo-1`, `local-2026…`).
# Letters, digits, `.`, `_`, `-`; not starting with `.` or `-`; at most 64 characters.
RUN_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
# Planner job ids: `j-` + 12 lowercase hex digits (`plan.stable_id`).
JOB_ID_RE = re.compile(r"j-[0-9a-f]{12}")
# A calendar date as it appears in a results-branch path: YYYY-MM-DD.
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A catalog file-name stem (recipes, profiles): what every other catalog name allows.
STEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def run_id(value: str, *, what: str = "run id") -> str:
    """`value` if it is a safe run id, else `UnsafeValue` naming it and the pattern."""
    if not isinstance(value, str) or not RUN_ID_RE.fullmatch(value) or ".." in value:
        raise UnsafeValue(
            f"{what} {_shown(value)} is not a safe run id",
            hint="use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with . or -), "
            "e.g. the GitHub run id",
        )
    return value


def job_id(value: str, *, what: str = "job id") -> str:
    """`value` if it has the planner's job id shape (`j-` + 12 hex digits)."""
    if not isinstance(value, str) or not JOB_ID_RE.fullmatch(value):
        raise UnsafeValue(
            f"{what} {_shown(value)} is not a job id",
            hint="job ids look like j-0123456789ab; list them with `ixci plan --format table`",
        )
    return value


def calendar_date(value: str, *, what: str = "date") -> str:
    """`value` if it is a real YYYY-MM-DD date (no time, no extra characters)."""
    if isinstance(value, str) and DATE_RE.fullmatch(value):
        try:
            date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise UnsafeValue(f"{what} {_shown(value)} is not a YYYY-MM-DD date", hint="e.g. 2026-12-04")


def stem(value: str, *, what: str = "file name") -> str:
    """`value` if it is a safe catalog file-name stem."""
    if not isinstance(value, str) or not STEM_RE.fullmatch(value):
        raise UnsafeValue(
            f"{what} {_shown(value)} has characters a catalog name may not use",
            hint="rename it with only A-Z a-z 0-9 . _ - (starting with a letter or digit)",
        )
    return value


def contained(root: Path, *parts: str) -> Path:
    """`root / parts…`, resolved, guaranteed to stay inside `root` (else `UnsafeValue`)."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise UnsafeValue(
            f"path {_shown('/'.join(parts))} leaves its root {base}",
            hint="a value that becomes part of a path must be a plain name",
        )
    return path
