"""GitHub Actions I/O: workflow commands (annotations), step outputs and job summaries.

Paths and flags are passed in (only `cli` reads the environment). Values written to
`$GITHUB_OUTPUT` use the heredoc form with a random delimiter so no value can inject
another output.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TextIO


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
    title: str | None = None,
) -> str:
    """Format one `::error`/`::warning`/`::notice` workflow command."""
    if level not in {"error", "warning", "notice"}:
        raise ValueError(f"unknown annotation level {level!r}")
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line is not None:
        props.append(f"line={line}")
    if col is not None:
        props.append(f"col={col}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{_escape_data(message)}"


def emit_annotation(stream: TextIO, level: str, message: str, **where: object) -> None:
    """Write one annotation line to `stream` (stdout under GitHub Actions)."""
    stream.write(annotation(level, message, **where) + "\n")  # type: ignore[arg-type]


def write_outputs(path: Path, values: dict[str, str]) -> None:
    """Append `values` to the `$GITHUB_OUTPUT` file, heredoc-delimited."""
    with path.open("a", encoding="utf-8") as fh:
        for key, value in values.items():
            delim = f"ghadelim_{secrets.token_hex(8)}"
            if delim in value:  # astronomically unlikely, but never emit an ambiguous block
                raise ValueError("output value contains the delimiter")
            fh.write(f"{key}<<{delim}\n{value}\n{delim}\n")


def append_summary(path: Path, markdown: str) -> None:
    """Append markdown to the `$GITHUB_STEP_SUMMARY` file."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")
