"""How long until the site's first chart is interactive, with N points in the data.

Builds a results tree with N valid points (by default all of one model and ISL/OSL in
one run, so every point is in the default view: the worst case), builds the site, opens
it from file:// in headless Debian chromium and measures, from navigation start:

  data ready   the data script has been parsed (window.IXCI_DATA available)
  plotly       plotly.js (loaded async, in parallel with the data) is ready to draw
  first chart  plotly has drawn the first chart
  interactive  a mouse move over a plotted point has produced its hover label

Prints one line per repetition with the 1-minute load average of the machine when it
started (other work on a 2-core machine slows every number), and the median; exits 1 if the
median "interactive" time is over --budget seconds (default 2.0). --quiet-load L waits
(up to --max-wait seconds, polling every 5 s) until the load average is below L before each
repetition, for a measurement that is not someone else's. Usage:

  python perf/site_interactive.py [--points 100000] [--repeat 3] [--budget 2.0] [--quiet-load 1.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "site"))

from playwright.sync_api import sync_playwright  # noqa: E402
from site_results_tree import write_large_tree  # noqa: E402

from ixci.site import build_site  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

HOVER_TARGET_JS = """() => {
  const gd = document.querySelector('[data-testid=chart]');
  const t = gd.data.find(t => t.meta && t.meta.kind === 'points' && t.x.length > 10);
  const k = Math.floor(t.x.length / 2);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return {x: r.left + xa._offset + xa.l2p(t.x[k]), y: r.top + ya._offset + ya.l2p(t.y[k]),
          shown: Number(gd.getAttribute('data-points')), webgl: !!document.querySelector('canvas.gl-canvas'),
          dataReady: window.ixciTiming.dataReady, plotly: window.ixciTiming.plotly,
          firstChart: window.ixciTiming.firstChart};
}"""


def measure(browser: Any, url: str) -> dict[str, float]:
    """One cold page load; times in seconds from navigation start."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="commit")
    page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached", timeout=60_000)
    info = page.evaluate(HOVER_TARGET_JS)
    page.mouse.move(info["x"], info["y"])
    page.wait_for_selector("[data-testid=hover]", state="visible", timeout=60_000)
    interactive_ms = page.evaluate("() => performance.now()")
    page.close()
    if errors:
        raise SystemExit(f"console errors: {errors}")
    return {
        "data_ready": info["dataReady"] / 1000,
        "plotly": (info["plotly"] or float("nan")) / 1000,  # nan: a site without the mark
        "first_chart": info["firstChart"] / 1000,
        "interactive": interactive_ms / 1000,
        "shown": info["shown"],
        "webgl": info["webgl"],
    }


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Sleep until the 1-minute load average is below `limit` (or `max_wait` s); return it."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds allowed (median)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument(
        "--data",
        type=Path,
        help="build from this results tree instead (e.g. a "
        "year from perf/publish_time.py --store-only DIR)",
    )
    ap.add_argument("--quiet-load", type=float, default=None, help="wait for a load below this")
    ap.add_argument("--max-wait", type=float, default=900, help="seconds to wait for quiet")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ixci-site-perf-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        tree = args.data or write_large_tree(root / "results", args.points)
        t1 = time.perf_counter()
        index = build_site(tree, root / "site")
        t2 = time.perf_counter()
        data_mb = (root / "site" / "data" / "site.js").stat().st_size / 1e6
        shown = "a given tree" if args.data else f"{args.points:,}"
        print(f"points in data: {shown} · tree written in {t1 - t0:.1f} s · "
              f"site built in {t2 - t1:.1f} s · data/site.js {data_mb:.1f} MB")  # fmt: skip
        runs = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for k in range(args.repeat):
                if args.quiet_load is not None:
                    wait_for_quiet(args.quiet_load, args.max_wait)
                load = os.getloadavg()[0]
                r = measure(browser, index.as_uri())
                runs.append(r)
                print(f"run {k + 1} (load {load:.2f}): data ready {r['data_ready']:.2f} s · plotly "
                      f"{r['plotly']:.2f} s · first chart "
                      f"{r['first_chart']:.2f} s · interactive (hover answered) "
                      f"{r['interactive']:.2f} s · {int(r['shown']):,} points drawn · "
                      f"webgl canvas {'yes' if r['webgl'] else 'no'}")  # fmt: skip
            browser.close()
    med = statistics.median(r["interactive"] for r in runs)
    verdict = "OK" if med < args.budget else "OVER BUDGET"
    print(f"median time to interactive: {med:.2f} s (budget {args.budget:.1f} s) {verdict} · "
          f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    return 0 if med < args.budget else 1


if __name__ == "__main__":
    raise SystemExit(main())
