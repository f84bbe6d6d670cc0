"""`ixci site build` and `ixci site serve`: the static results site."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click

from ixci.errors import UsageError


@click.group()
def site() -> None:
    """Build or preview the static results site."""


@site.command()
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A checkout of the results branch (index.json, data/points/*.parquet, runs/).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; index.html and its assets are written here.",
)
def build(data_dir: Path, out_dir: Path) -> None:
    """Build the site from RESULTS_DIR into DIR (works from file:// and GitHub Pages)."""
    from ixci.site import build_site

    index = build_site(data_dir, out_dir)
    click.echo(f"wrote {index}")
    click.echo(f"open  {index.resolve().as_uri()}")


@site.command()
@click.option(
    "--dir",
    "site_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A built site (the --out of `ixci site build`).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve(site_dir: Path, port: int) -> None:
    """Serve a built site on http://127.0.0.1:PORT (loopback only) until Ctrl-C."""
    if not (site_dir / "index.html").is_file():
        raise UsageError(
            f"{site_dir} has no index.html",
            hint=f"build it first: ixci site build --data RESULTS_DIR --out {site_dir}",
        )
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        host, bound = httpd.server_address[:2]
        click.echo(f"serving {site_dir} on http://{host!s}:{bound}/ (Ctrl-C to stop)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files only; logs one short line per request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        click.echo(f"{self.address_string()} {format % args}", err=True)
