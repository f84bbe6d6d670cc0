"""Every registered subcommand imports and is a click command (no "not yet available" stand-ins)."""

from __future__ import annotations

import click
import pytest

from ixci.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_loads(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.help and "not yet available" not in command.help


def test_an_unknown_command_is_none() -> None:
    assert cli.get_command(click.Context(cli), "no-such-command") is None
