"""The static results site: built from a checkout of the `results` branch.

`build_site(data_dir, out_dir)` writes `out_dir/index.html`, its assets (plotly.js copied
from the installed package) and the data as JavaScript, so the page works from `file://`
and GitHub Pages with no server and no network.
"""

from __future__ import annotations

from pathlib import Path


def build_site(data_dir: Path, out_dir: Path) -> Path:
    """Build the site for the results tree `data_dir` into `out_dir`; return its index.html."""
    from ixci.site.build import build_site as _build  # keep `import ixci.site` cheap

    return _build(data_dir, out_dir)


__all__ = ["build_site"]
