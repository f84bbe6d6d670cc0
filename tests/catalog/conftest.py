"""Helpers for the catalog tests: run the real `ixci` entry point in-process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from ixci.cli import main

REPO = Path(__file__).resolve().parents[2]


def run_ixci(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    """`ixci ARGS` through `ixci.cli.main` (exit-code mapping included), captured by CliRunner."""
    command = click.Command("ixci-under-test", callback=lambda: main(list(args)))
    return CliRunner().invoke(command, [], env=env, catch_exceptions=False)


@pytest.fixture
def repo() -> Path:
    return REPO
