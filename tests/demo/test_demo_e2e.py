"""`ixci demo` for real, twice, then the site in headless chromium from file://.

The README's main command end to end: the real `ixci demo` process runs the real
llama-server (process runtime) through `ixci run-job`, publishes to a bare git repository in
the work dir, builds the site. The second demo in the same work dir reuses the model and
must append a second run to the same `results` branch; the site's history view must show
both runs for each configuration. Afterwards no llama-server or run-job of the demo may be
left running. Screenshots go to test-artifacts/demo/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.engine, pytest.mark.browser, pytest.mark.timeout(1500)]
playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "demo"
IXCI = [sys.executable, "-c", "from ixci.cli import main; main()"]
RUNS = ("demo-e2e-1", "demo-e2e-2")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOCAL = ("file:", "data:", "blob:", "about:")
# (point id, x, y) of every plotted point of the main chart's "points" traces
PLOTTED_JS = """async () => {
  await new Promise(r => window.ixci.loadExtra(r));
  const gd = document.querySelector('[data-testid=chart]');
  const out = [];
  for (const t of (gd.data || [])) {
    if (!t.meta || t.meta.kind !== 'points') continue;
    for (let k = 0; k < t.x.length; k++) out.push([window.ixci.pointId(t.customdata[k]), t.x[k], t.y[k]]);
  }
  return out;
}"""

# the per-configuration curves of the main chart
CONFIG_LINES_JS = """() => document.querySelector('[data-testid=chart]').data
  .filter(t => t.meta && t.meta.kind === 'config')
  .map(t => ({name: t.name, group: t.legendgroup, dash: t.line.dash, n: t.x.length}))"""


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    output: str
    seconds: float


@dataclass(frozen=True)
class Demo:
    workdir: Path
    runs: tuple[DemoRun, ...]
    model_before: os.stat_result
    model_after: os.stat_result


def _own_processes(workdir: Path) -> list[str]:
    """Live processes whose command line mentions the demo's work dir (llama-server loads the
    model from it; run-job writes into it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv)
        if str(workdir) in text:
            found.append(f"{proc.name}: {text[:200]}")
    return found


# FORCE_COLOR in the environment (CI sets it) makes the demo style its lines; the tests read text
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _demo(workdir: Path, run_id: str) -> DemoRun:
    start = time.monotonic()
    proc = subprocess.run(
        [*IXCI, "demo", "--workdir", str(workdir), "--catalog", str(ROOT), "--run-id", run_id],
        cwd=workdir.parent, capture_output=True, text=True, timeout=900,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    return DemoRun(proc.returncode, _plain(proc.stdout + proc.stderr), time.monotonic() - start)


def _demo_serving(workdir: Path, run_id: str, port: int) -> tuple[DemoRun, bytes]:
    """`ixci demo --serve`: once it says it is serving, fetch the page over loopback, then
    Ctrl-C (SIGINT) it; return the run and the page it served."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [*IXCI, "demo", "--workdir", str(workdir), "--catalog", str(ROOT), "--run-id", run_id,
         "--serve", "--port", str(port)],
        cwd=workdir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # ends early (EOF) if the demo fails
        lines.append(line)
        if f"on http://127.0.0.1:{port}/" in _plain(line):
            break
    page = b""
    if proc.poll() is None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            page = resp.read()
        proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return DemoRun(proc.returncode, _plain("".join(lines) + rest), time.monotonic() - start), page


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path,
         port_factory: Callable[[], int]) -> Demo:  # fmt: skip
    workdir = tmp_path_factory.mktemp("demo") / "ixci-demo"
    first = _demo(workdir, RUNS[0])
    assert first.returncode == 0, first.output
    model = workdir / "models" / "tiny-llama-f16.gguf"
    before = model.stat()
    second, served = _demo_serving(workdir, RUNS[1], port_factory())
    assert second.returncode == 0, second.output
    assert b'data-testid="chart"' in served  # --serve served the built site over loopback
    assert "stopped" in second.output
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "demo-output.txt").write_text(
        "".join(f"$ ixci demo ({r.seconds:.0f} s)\n{r.output}\n" for r in (first, second))
    )
    return Demo(workdir, (first, second), before, model.stat())


def test_both_demos_succeed_and_print_the_site_path(demo: Demo) -> None:
    for run, run_id in zip(demo.runs, RUNS, strict=True):
        assert f"work dir {demo.workdir}" in " ".join(run.output.split())
        assert f"run {run_id}" in run.output
        assert "12/12 points ok" in run.output
        assert (demo.workdir / "site" / "index.html").resolve().as_uri() in run.output
        assert run.seconds < 600  # the budget on 2 cores (engine already built)
    assert "2 run(s)" in demo.runs[1].output


def test_same_artifacts_as_run_job(demo: Demo) -> None:
    plan = json.loads((demo.workdir / "plan.json").read_text())
    assert len(plan["jobs"]) == 2
    for run_id in RUNS:
        for job in plan["jobs"]:
            folder = demo.workdir / "artifacts" / run_id / job["id"]
            assert {"result.json", "requests.jsonl.gz", "server.log"} <= {
                p.name for p in folder.iterdir()
            }
            doc = json.loads((folder / "result.json").read_text())
            assert doc["status"] == "ok" and doc["run"]["run_id"] == run_id
            assert doc["job"] == job | {"selected_because": doc["job"]["selected_because"]}
            assert doc["provenance"]["runtime"] == "process"


def test_second_demo_reuses_the_model(demo: Demo) -> None:
    assert demo.model_after.st_ino == demo.model_before.st_ino
    assert demo.model_after.st_mtime_ns == demo.model_before.st_mtime_ns


def test_second_demo_appends_a_run_to_the_same_results_branch(demo: Demo) -> None:
    git = ["git", "--git-dir", str(demo.workdir / "results.git")]
    log = subprocess.run([*git, "log", "--format=%s", "results"], capture_output=True,
                         text=True, check=True).stdout.splitlines()  # fmt: skip
    assert len(log) == 2 and RUNS[1] in log[0] and RUNS[0] in log[1]
    tree = subprocess.run([*git, "ls-tree", "-r", "--name-only", "results"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    for run_id in RUNS:
        assert re.search(rf"^runs/\d{{4}}/\d\d/\d\d/{run_id}/run\.json$", tree, re.M)
    assert "site/index.html" in tree.splitlines()
    index = json.loads((demo.workdir / "results" / "index.json").read_text())
    assert [r["run_id"] for r in index["runs"]] == list(RUNS)


def test_nothing_is_left_running(demo: Demo) -> None:
    assert _own_processes(demo.workdir) == []


# --- the site in a real browser ------------------------------------------------------------


class Guard:
    """Console errors, page errors, and any request that is not local (aborted)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.external: list[str] = []

    def route(self, route: Any) -> None:
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    guard = Guard()
    ctx.route("**/*", guard.route)
    pg = ctx.new_page()
    pg.on("console", lambda m: guard.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: guard.errors.append(f"page error: {e}"))
    yield pg
    ctx.close()
    assert guard.errors == [], f"console errors: {guard.errors}"
    assert guard.external == [], f"requests that left file://: {guard.external}"


def _newest_rows(demo: Demo) -> list[dict[str, Any]]:
    """The newest run's rows of the published tidy table."""
    from ixci.results.aggregate import to_columnar
    from ixci.results.pointstore import read_points

    table = to_columnar(read_points(demo.workdir / "results"))
    cols = table["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in table["rows"]]
    return [r for r in rows if r["run_id"] == RUNS[1]]


def _points_by_job(demo: Demo) -> dict[str, str]:
    """point id → job id of the newest run, from the published tidy table."""
    return {r["point_id"]: r["job_id"] for r in _newest_rows(demo)}


def test_site_from_file_url_shows_both_configurations(demo: Demo, page: Any) -> None:
    site = demo.workdir / "site" / "index.html"
    page.goto(site.as_uri())
    page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached")
    plotted = page.evaluate(PLOTTED_JS)
    plan = json.loads((demo.workdir / "plan.json").read_text())
    recipe = {j["id"]: Path(j["recipe"]).stem for j in plan["jobs"]}
    by_job = _points_by_job(demo)
    shown: dict[str, int] = {}
    for point_id, x, y in plotted:
        assert x > 0 and y > 0
        shown[recipe[by_job[point_id]]] = shown.get(recipe[by_job[point_id]], 0) + 1
    # both configurations' curves at the sequence lengths shown: every valid point whose
    # interactivity was published (on a loaded host a point's TPOT can be withheld as possibly
    # coalesced: it has no x to plot)
    assert set(shown) == {"tiny-fp16-cpu-llamacpp-np2", "tiny-fp16-cpu-llamacpp-np8"}
    rows = _newest_rows(demo)
    ids = {point_id for point_id, _, _ in plotted}
    seqs = {(r["isl"], r["osl"]) for r in rows if r["point_id"] in ids}
    plottable: dict[str, int] = {}
    for r in rows:
        if (r["isl"], r["osl"]) in seqs and r["valid"] and r["interactivity_median"] is not None:
            name = recipe[r["job_id"]]
            plottable[name] = plottable.get(name, 0) + 1
    assert shown == plottable
    assert sum(shown.values()) >= 4, shown  # most of a sequence's 6 points, whatever the load
    assert f"Showing {len(plotted)} points" in page.get_by_test_id("status").inner_text()
    # two configuration curves of the one cpu · llamacpp group, named by their plan job names
    names = {j["name"] for j in plan["jobs"]}
    lines = page.evaluate(CONFIG_LINES_JS)
    assert {line["group"] for line in lines} == {"cpu · llamacpp"}
    assert {line["name"] for line in lines} <= names
    assert len({line["name"] for line in lines}) == 2, lines
    assert len({line["dash"] for line in lines}) == 2
    assert all(line["n"] >= 3 for line in lines), lines
    legend = page.evaluate("document.querySelector('[data-testid=chart] .legend').textContent")
    assert all(line["name"] in legend for line in lines)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)


def test_history_view_shows_both_runs_of_each_configuration(demo: Demo, page: Any) -> None:
    site = demo.workdir / "site" / "index.html"
    page.goto(site.as_uri() + "?view=history")
    page.get_by_test_id("history-table").locator("table").wait_for()
    options = page.get_by_test_id("history-config").locator("option")
    configs = [options.nth(k).get_attribute("value") for k in range(options.count())]
    assert len(configs) == 2  # np2 and np8
    labels = {options.nth(k).inner_text() for k in range(options.count())}
    plan = json.loads((demo.workdir / "plan.json").read_text())
    assert len(labels) == 2 and labels <= {j["name"] for j in plan["jobs"]}, labels
    for k, config in enumerate(configs):
        page.get_by_test_id("history-config").select_option(config)
        page.wait_for_function(
            "c => new URLSearchParams(location.search).get('config') === c || "
            "document.querySelector('[data-testid=history-config]').value === c",
            arg=config,
        )
        table = page.get_by_test_id("history-table")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=history-table] tbody tr').length === 2"
        )
        text = table.inner_text()
        assert RUNS[0] in text and RUNS[1] in text
        assert "2 runs of" in page.locator("#h-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / f"history-{k + 1}.png"), full_page=True)
