"""Builds the static results site: `build_site(data_dir, out_dir) -> out_dir/index.html`.

The site has no server and makes no request at view time: it must work from `file://`,
where `fetch()` of local JSON is blocked, so the data ships as JavaScript files that
define globals: `data/site.js` sets `window.IXCI_DATA` (what the first chart needs),
`data/extra.js` sets `window.IXCI_EXTRA` (the other point columns; loaded after the first
chart), `data/runs/<id>.js` adds one run's coverage manifest to `window.IXCI_RUNS` when
its page is opened, `data/regressions.js` sets `window.IXCI_REGRESSIONS` (regressions.json's
findings) when the History view opens. The same data is also
written as JSON for other tools. plotly.js is copied from the installed `plotly` package.
The output is byte-identical for the same input (no clock, sorted keys).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from ixci import __version__
from ixci.errors import InstallError
from ixci.site.coverage import coverage_grid
from ixci.site.data import (
    UNITS,
    derive_prices,
    encode_extra,
    encode_points,
    run_detail,
    run_summary,
    tiers,
)
from ixci.site.load import Results, load_results

SITE_VERSION = 1
ASSETS = ("app.js", "app.css")
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def build_site(data_dir: Path, out_dir: Path) -> Path:
    """Build the site for the results tree `data_dir` into `out_dir`; return its index.html.

    Raises `InvalidInput` (every problem, pointed) when `data_dir` is not a results tree
    in the layout of contracts.md §4.
    """
    results = load_results(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _copy_assets(out_dir)
    _write_data(out_dir / "data", "site", "IXCI_DATA", site_payload(results))
    _write_data(out_dir / "data", "extra", "IXCI_EXTRA", encode_extra(results))
    _write_runs(out_dir / "data" / "runs", results)
    _write_data(out_dir / "data", "regressions", "IXCI_REGRESSIONS", regressions_payload(results))
    (out_dir / ".nojekyll").write_text("")  # GitHub Pages: serve files as they are
    index = out_dir / "index.html"
    index.write_text(_asset_text("index.html"), encoding="utf-8")
    return index


def build_site_atomic(data_dir: Path, out_dir: Path) -> Path:
    """`build_site` into a new folder beside `out_dir`, then swap it in.

    `out_dir` keeps the previous site until the new one is complete: a failure (a full disk, a
    bad results tree) removes the half-built folder and leaves the old site untouched. The swap
    is two renames on one file system; the old folder is deleted after.
    """
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=parent))
    try:
        new.chmod(0o755)  # a published site is world-readable; mkdtemp makes it private
        build_site(data_dir, new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = new.with_name(new.name.replace(".new-", ".old-"))
    try:
        if out_dir.exists():
            out_dir.rename(old)
        new.rename(out_dir)
    except BaseException:
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)  # put the previous site back
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out_dir / "index.html"


def site_payload(results: Results) -> dict[str, Any]:
    """The data the page runs on (see `ixci.site.data` for the encoding)."""
    return {
        "site_version": SITE_VERSION,
        "ixci_version": __version__,
        "schema_versions": dict(results.schema_versions),
        "runs": [run_summary(r) for r in results.runs],
        "run_files": {r.run_id: run_file_stem(r.run_id) for r in results.runs},
        "tiers": tiers(results.columns),
        "prices": derive_prices(results),
        "units": UNITS,
        "points": encode_points(results),
        "coverage": coverage_grid(results),
        "curves": curves_payload(results),
    }


def curves_payload(results: Results) -> dict[str, dict[str, str]]:
    """{config_id: {scenario: run_id}}: the run publish publishes each curve from (the page's
    "latest per configuration"; ixci.results.curves decides it, the page does not second-guess it)."""
    out: dict[str, dict[str, str]] = {}
    for (cfg, scenario), run in sorted(results.curves.items()):
        out.setdefault(cfg, {})[scenario] = run
    return out


def regressions_payload(results: Results) -> dict[str, Any]:
    """regressions.json's findings as the History view marks them (oldest first)."""
    found = sorted(
        results.regressions, key=lambda f: (str(f["first_bad_date"]), str(f["config_id"]))
    )
    return {"regressions": [dict(f) for f in found]}


def run_file_stem(run_id: str) -> str:
    """A file name for a run id that is safe on every file system and in a URL."""
    return _SAFE.sub("_", run_id) or "_"


def _copy_assets(out_dir: Path) -> None:
    assets = out_dir / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        (assets / name).write_text(_asset_text(name), encoding="utf-8")
    # V8's explicit compile hint: compile every function while the file streams in on a
    # background thread instead of lazily on the main thread as plotly.js runs (halves its
    # main-thread time); the rest of the file is the installed package's, byte for byte
    with (assets / "plotly.min.js").open("wb") as out:
        out.write(COMPILE_HINT)
        out.write(plotly_js().read_bytes())


def _asset_text(name: str) -> str:
    return (resources.files("ixci.site") / "assets" / name).read_text(encoding="utf-8")


def plotly_js() -> Path:
    """The plotly.min.js bundled with the installed `plotly` Python package."""
    path = Path(str(resources.files("plotly"))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise InstallError(
            f"plotly.min.js not found at {path}",
            hint="reinstall the `plotly` Python package (pip install --force-reinstall plotly)",
        )
    return path


def _write_data(folder: Path, stem: str, global_name: str, payload: Any, key: str = "") -> None:
    """Write `stem.json` and `stem.js`; the .js assigns the payload to `window.<global_name>`
    (or to `window.<global_name>[key]`), parsing a JSON string literal, which V8 reads
    much faster than the same data as an object literal."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False)
    (folder / f"{stem}.json").write_text(text + "\n", encoding="utf-8")
    literal = json.dumps(text).replace("</", "<\\/")
    if key:
        target = f"(window.{global_name} = window.{global_name} || {{}})[{json.dumps(key)}]"
    else:
        target = f"window.{global_name}"
    (folder / f"{stem}.js").write_text(f"{target} = JSON.parse({literal});\n", encoding="utf-8")


def _write_runs(folder: Path, results: Results) -> None:
    if folder.is_dir():
        shutil.rmtree(folder)  # runs removed from the tree must not linger in the site
    for run in results.runs:
        _write_data(folder, run_file_stem(run.run_id), "IXCI_RUNS", run_detail(run), run.run_id)
