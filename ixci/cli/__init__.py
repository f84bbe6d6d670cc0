"""The `ixci` command line. The only reader of argv and `os.environ`.

Subcommands live one per module in this package and are loaded lazily, so `ixci validate`
does not import pandas or aiohttp. Every expected failure is an `IxciError`: printed as one
clean message with its exit code; a traceback only with `--debug`.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from ixci import __version__
from ixci.errors import INTERNAL_EXIT, IxciError

# command name -> "module:function" inside ixci.cli
COMMANDS: dict[str, str] = {
    "validate": "validate:validate",
    "plan": "plan:plan",
    "import": "importer:import_",
    "loadgen": "loadgen:loadgen",
    "run-job": "run_job:run_job",
    "eval": "eval:eval_",
    "cleanup": "cleanup:cleanup",
    "collect": "collect:collect",
    "aggregate": "collect:aggregate",
    "export": "collect:export",
    "publish": "publish:publish",
    "compare": "publish:compare",
    "comment": "publish:comment",
    "site": "site:site",
    "demo": "demo:demo",
    "gha": "gha:gha",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(f"ixci.cli.{module_name}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="ixci")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ixci — continuous LLM-inference benchmarks on GitHub Actions."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["env"] = dict(os.environ)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def environ(ctx: click.Context) -> dict[str, str]:
    """The process environment as captured by the top-level command (for injection)."""
    root = ctx.find_root()
    env = (root.obj or {}).get("env")
    return dict(env) if env is not None else dict(os.environ)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the group and map failures to exit codes."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="ixci", standalone_mode=False)
    except IxciError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:
        if debug:
            raise
        import traceback

        click.echo(
            "internal error (a bug in ixci; rerun with --debug for the traceback): "
            + traceback.format_exc().strip().splitlines()[-1],
            err=True,
        )
        sys.exit(INTERNAL_EXIT)
