"""The built site in a real browser: Debian's chromium driven by Playwright, from file://.

Every page must load with no console error and no request leaving file:// (any other
request is aborted and fails the test). Screenshots go to test-artifacts/site/.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from published_tree import narrower_tree, regression_tree
from site_results_tree import (
    CONFIGS,
    RUNS,
    real_gpu_document,
    write_large_tree,
    write_real_gpu_tree,
    write_tree,
)

from ixci.site import build_site

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "site"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOCAL = ("file:", "data:", "blob:", "about:")

# the plotted points of the main chart: (trace name, point id, x, y) of the "points" traces
PLOTTED_JS = """async () => {
  await new Promise(r => window.ixci.loadExtra(r));
  const gd = document.querySelector('[data-testid=chart]');
  const out = [];
  for (const t of (gd.data || [])) {
    if (!t.meta || t.meta.kind !== 'points') continue;
    for (let k = 0; k < t.x.length; k++) out.push([t.name, window.ixci.pointId(t.customdata[k]), t.x[k], t.y[k]]);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    tree = write_tree(root / "results")
    return build_site(tree, root / "out")


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Guard:
    """Collects console errors, page errors and any request that is not local."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.external: list[str] = []

    def route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    guard = Guard()
    ctx.route("**/*", guard.route)
    pg = ctx.new_page()
    pg.on("console", lambda m: guard.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: guard.errors.append(f"page error: {e}"))
    pg.on("request", lambda r: None if r.url.startswith(LOCAL) else guard.external.append(r.url))
    yield pg
    ctx.close()
    assert guard.errors == [], f"console errors: {guard.errors}"
    assert guard.external == [], f"requests that left file://: {guard.external}"


def open_site(page: Any, site: Path, query: str = "") -> None:
    page.goto(site.as_uri() + query)
    if "view=" not in query or "view=charts" in query:
        page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached")


def plotted(page: Any) -> list[list[Any]]:
    rows: list[list[Any]] = page.evaluate(PLOTTED_JS)
    return rows


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_points(page: Any, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('[data-testid=chart]').getAttribute('data-points') === String(n)",
        arg=count,
    )


def test_loads_from_file_url_without_errors_or_requests(page: Any, site: Path) -> None:
    open_site(page, site)
    assert page.url == site.as_uri()  # all defaults: nothing in the query string
    pts = plotted(page)
    assert len(pts) > 20
    assert {p[0].split(" · ")[0] for p in pts} == {"b200", "h200", "mi355x"}
    status = page.get_by_test_id("status").inner_text()
    assert f"Showing {len(pts)} points" in status
    shot(page, "charts-default")


def test_sku_filter_changes_the_plotted_points(page: Any, site: Path) -> None:
    open_site(page, site)
    before = plotted(page)
    h200 = [p for p in before if p[0].startswith("h200 ")]
    assert h200
    page.get_by_test_id("check-sku-h200").uncheck()
    wait_points(page, len(before) - len(h200))
    after = plotted(page)
    assert sorted(map(tuple, after)) == sorted(tuple(p) for p in before if p not in h200)
    assert "sku=" in page.url and "h200" not in page.url.split("sku=")[1].split("&")[0]


def test_model_and_disaggregation_filters(page: Any, site: Path) -> None:
    open_site(page, site)
    page.get_by_test_id("filter-disagg").select_option("yes")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=chart]').getAttribute('data-points') === '9'"
    )
    assert {p[0] for p in plotted(page)} == {"b200 · dynamo-trt"}
    page.get_by_test_id("filter-disagg").select_option("all")
    page.get_by_test_id("filter-model").select_option("gpt-oss-120b")
    page.wait_for_function("() => document.querySelector('#f-model').value === 'gpt-oss-120b'")
    latest = plotted(page)
    assert {p[0] for p in latest} == {"b200 · vllm", "h100 · vllm", "mi355x · vllm"}
    # mi355x · vllm failed in the newest run: "latest" keeps its last complete curve …
    page.get_by_test_id("filter-runs").select_option("run:" + RUNS[-1]["run_id"])
    page.wait_for_function("() => location.search.includes('run=')")
    assert {p[0] for p in plotted(page)} == {
        "b200 · vllm",
        "h100 · vllm",
    }  # … the run alone lacks it
    assert page.get_by_test_id("filter-runs").input_value() == "run:" + RUNS[-1]["run_id"]


def test_url_round_trips_the_state(page: Any, site: Path, browser: Any) -> None:
    open_site(page, site)
    page.get_by_test_id("chart-tab-cost").click()
    page.get_by_test_id("tier").select_option("neocloud")
    page.get_by_test_id("check-fw-trtllm").uncheck()
    page.get_by_test_id("filter-spec").select_option("no")
    page.get_by_test_id("front-only").check()
    page.get_by_test_id("prices").locator("summary").click()
    page.get_by_test_id("price-h200").fill("2.5")
    page.get_by_test_id("price-h200").dispatch_event("change")
    page.wait_for_function("() => location.search.includes('price=')")
    url = page.url
    for part in ("chart=cost", "tier=neocloud", "fw=", "spec=no", "front=1", "price=h200:2.5"):
        assert part in url, (part, url)
    assert "model=" not in url and "seq=" not in url  # defaults are omitted
    shown = plotted(page)
    controls = controls_state(page)

    other = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        open_site(other, site, "?" + url.split("?", 1)[1])
        assert other.url == url
        assert plotted(other) == shown
        assert controls_state(other) == controls
    finally:
        other.close()


def controls_state(page: Any) -> dict[str, Any]:
    js = """() => ({
      tab: document.querySelector('[role=tab][aria-selected=true]').id,
      checks: [...document.querySelectorAll('#filters input[type=checkbox]')].map(c => c.id + ':' + c.checked),
      selects: [...document.querySelectorAll('select')].map(s => s.id + ':' + s.value),
      front: document.querySelector('#c-front').checked,
      prices: [...document.querySelectorAll('#price-inputs input')].map(i => i.dataset.sku + ':' + i.value),
    })"""
    state: dict[str, Any] = page.evaluate(js)
    return state


@pytest.mark.parametrize(
    ("query", "xcol", "ycol"),
    [
        ("", "interactivity_median [tok/s/user]", "tput_per_gpu [tok/s/GPU]"),
        ("?chart=cost&front=1&price=b200:3.1", "interactivity_median [tok/s/user]",
         "usd_per_mtok_hyperscaler [USD/Mtok]"),
        ("?chart=latency&tokens=output", "e2el_median_s [s]", "output_tput_per_gpu [tok/s/GPU]"),
    ],
)  # fmt: skip
def test_csv_is_exactly_the_visible_points(
    page: Any, site: Path, query: str, xcol: str, ycol: str
) -> None:
    open_site(page, site, query)
    shown = plotted(page)
    with page.expect_download() as dl:
        page.get_by_test_id("download-csv").click()
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert "tput_per_gpu [tok/s/GPU]" in header
    assert "interactivity_median [tok/s/user]" in header
    xi, yi, pid = header.index(xcol), header.index(ycol), header.index("point_id")
    got = sorted((r[pid], float(r[xi]), float(r[yi])) for r in body)
    want = sorted((p[1], float(p[2]), float(p[3])) for p in shown)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0]
        assert g[1] == pytest.approx(w[1], rel=1e-9) and g[2] == pytest.approx(w[2], rel=1e-9)
    if "price=" in query:
        assert "usd_per_gpu_hour [USD/GPU-h]" in header
        prices = {
            r[header.index("sku")]: r[header.index("usd_per_gpu_hour [USD/GPU-h]")] for r in body
        }
        assert prices.get("b200") == "3.1"


def test_hover_shows_parallelism_image_run_and_date(page: Any, site: Path) -> None:
    open_site(page, site, "?disagg=yes")
    box = page.evaluate("""() => {
      const gd = document.querySelector('[data-testid=chart]');
      const t = gd.data.findIndex(t => t.meta.kind === 'points');
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      const r = gd.getBoundingClientRect();
      return {x: r.left + xa._offset + xa.l2p(gd.data[t].x[3]), y: r.top + ya._offset + ya.l2p(gd.data[t].y[3])};
    }""")
    page.mouse.move(box["x"], box["y"])
    label = page.get_by_test_id("hover")
    label.wait_for()
    text = label.inner_text()
    for part in (
        "disaggregated",
        "prefill 8 GPUs",
        "TP8",
        "EP8",
        "DP-attention",
        "image:",
        "run 19802002002",
        "2026-11-27",
    ):
        assert part in text, (part, text)
    page.mouse.click(box["x"], box["y"])
    detail = page.get_by_test_id("point-detail")
    detail.wait_for()
    page.get_by_test_id("detail-run-link").click()
    page.get_by_test_id("run-manifest").wait_for()
    assert "view=run" in page.url


def test_keyboard_moves_between_chart_tabs(page: Any, site: Path) -> None:
    open_site(page, site)
    page.get_by_test_id("chart-tab-tput").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => location.search.includes('chart=latency')")
    focused = page.evaluate("() => document.activeElement.getAttribute('data-testid')")
    assert focused == "chart-tab-latency"
    assert page.get_by_test_id("chart-tab-latency").get_attribute("aria-selected") == "true"


def test_permalink_pins_the_newest_run(page: Any, site: Path) -> None:
    open_site(page, site, "?sku=b200")
    href = page.get_by_test_id("permalink").get_attribute("href")
    assert f"asof={RUNS[-1]['run_id']}" in href and "sku=b200" in href
    page.get_by_test_id("permalink").click()
    page.get_by_test_id("pinned").wait_for()
    assert RUNS[-1]["run_id"] in page.get_by_test_id("pinned").inner_text()


def test_coverage_grid_and_run_page(page: Any, site: Path) -> None:
    open_site(page, site, "?view=coverage")
    grid = page.get_by_test_id("coverage-grid")
    grid.wait_for()
    cell = page.get_by_test_id("cov-mi355x-vllm-gpt-oss-120b")
    assert cell.get_attribute("data-state") == "failed"
    assert "server_start" in cell.inner_text() and "last measured 2026-11-26" in cell.inner_text()
    assert (
        page.get_by_test_id("cov-h100-vllm-gpt-oss-120b").get_attribute("data-state") == "partial"
    )
    assert (
        page.get_by_test_id("cov-h200-sglang-deepseek-r1").get_attribute("data-state") == "measured"
    )
    assert grid.locator("td[data-state=none]").count() > 0
    shot(page, "coverage")
    cell.get_by_role("link").click()
    manifest = page.get_by_test_id("run-manifest")
    manifest.wait_for()
    assert manifest.locator("tr[data-status=failed]").count() == 2
    assert manifest.locator("tr[data-status=missing]").count() == 1
    shot(page, "run")


def test_history_marks_the_image_change(page: Any, site: Path) -> None:
    open_site(page, site, "?view=history&fw=sglang&sku=h200")
    page.get_by_test_id("history-table").locator("table").wait_for()
    assert page.get_by_test_id("image-changed").count() == 1
    shapes = page.evaluate(
        "() => document.querySelector('[data-testid=history-chart]').layout.shapes.length"
    )
    assert shapes == 1
    assert "1 image change marked" in page.locator("#h-status").inner_text()
    shot(page, "history")


def test_comparison_table_marks_best_and_baseline(page: Any, site: Path) -> None:
    open_site(page, site, "?view=compare&levels=50,100")
    table = page.get_by_test_id("compare-table").locator("table")
    table.wait_for()
    assert table.locator("td[data-best]").count() == 2  # one best per column
    page.get_by_test_id("compare-baseline").select_option("h200 · sglang")
    page.wait_for_function("() => location.search.includes('baseline=')")
    base_row = table.locator("tr.baseline")
    assert "h200 · sglang" in base_row.inner_text()
    assert "%" in table.locator("tbody tr:not(.baseline)").first.inner_text()
    shot(page, "compare")


def test_first_chart_waits_for_plotly_loaded_async(page: Any, site: Path) -> None:
    """plotly.js is an async script: the page prepares its traces without it, shows that the
    chart library is loading, and draws once plotly.js has run."""
    held: list[Any] = []
    page.route("**/assets/plotly.min.js", lambda route: held.append(route))
    page.goto(site.as_uri(), wait_until="commit")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('Showing')"
    )
    assert "Loading the chart library" in page.get_by_test_id("chart").inner_text()
    assert page.evaluate("() => !window.Plotly && !window.ixciTiming.firstChart")
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached")
    assert len(plotted(page)) > 20


def test_first_chart_when_plotly_runs_before_the_page_script(page: Any, site: Path) -> None:
    held: list[Any] = []
    page.route("**/data/site.js", lambda route: held.append(route))
    page.goto(site.as_uri(), wait_until="commit")
    page.wait_for_function("() => !!window.Plotly")  # plotly.js ran while site.js was held
    assert page.evaluate("() => !window.IXCI_DATA")
    held[0].continue_()
    page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached")
    assert len(plotted(page)) > 20


def test_chart_webgl_without_msaa_and_getcontext_restored(page: Any, site: Path) -> None:
    open_site(page, site)
    info = page.evaluate("""() => ({
      aa: [...document.querySelectorAll('[data-testid=chart] canvas.gl-canvas-context')]
            .map(c => c.getContext('webgl').getContextAttributes().antialias),
      native: HTMLCanvasElement.prototype.getContext.toString().includes('[native code]'),
      other: document.createElement('canvas').getContext('webgl').getContextAttributes().antialias,
    })""")
    assert info["aa"] == [False]  # the chart's context: no multisampling
    assert info["native"]  # getContext is wrapped only during Plotly.react
    assert info["other"] is True  # other canvases keep the browser's default


@pytest.fixture(scope="module")
def cloud_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 points of one model and scenario: fronts drawn from a real cloud."""
    root = tmp_path_factory.mktemp("cloud")
    return build_site(write_large_tree(root / "results", 3000), root / "out")


def reference_front(rows: list[tuple[str, float, float]], xdir: int, ydir: int) -> set[str]:
    """The Pareto front by the definition: best x first (ties: best y), keep strictly better y."""
    front, best = set(), float("-inf")
    for pid, _x, y in sorted(rows, key=lambda r: (-r[1] * xdir, -r[2] * ydir)):
        if y * ydir > best:
            best = y * ydir
            front.add(pid)
    return front


@pytest.mark.parametrize(
    ("query", "xcol", "xdir"),
    [("", "interactivity_median [tok/s/user]", 1), ("?chart=latency", "e2el_median_s [s]", -1)],
)
def test_fronts_on_a_cloud_match_the_definition(
    page: Any, cloud_site: Path, query: str, xcol: str, xdir: int
) -> None:
    open_site(page, cloud_site, query)
    with page.expect_download() as dl:
        page.get_by_test_id("download-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 3000
    groups: dict[str, list[tuple[str, float, float]]] = {}
    for r in rows:
        key = r["sku"] + " · " + r["framework"]
        groups.setdefault(key, []).append(
            (r["point_id"], float(r[xcol]), float(r["tput_per_gpu [tok/s/GPU]"]))
        )
    want = set().union(*(reference_front(g, xdir, 1) for g in groups.values()))
    got = {r["point_id"] for r in rows if r["on_pareto_front"] == "true"}
    assert 20 < len(got) < 3000
    assert got == want


# ---------- two configurations of one SKU × framework ----------
TWIN = replace(CONFIGS[0], variant="parallel=8", speed=CONFIGS[0].speed * 0.6)
CONFIG_LINES_JS = """() => {
  const gd = document.querySelector('[data-testid=chart]');
  return gd.data.filter(t => t.meta && t.meta.kind !== 'points').map(t => ({
    kind: t.meta.kind, name: t.name, group: t.legendgroup, legend: t.showlegend !== false,
    dash: (t.line || {}).dash || 'solid', color: (t.line || {}).color,
    conc: t.meta.kind === 'config' ? Array.from(t.customdata, i => window.ixci.col('concurrency', i)) : [],
    n: t.x.length}));
}"""


@pytest.fixture(scope="module")
def twin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("twin")
    tree = write_tree(root / "results", configs=(*CONFIGS, TWIN))
    return build_site(tree, root / "out")


def test_two_configurations_of_one_sku_framework_are_two_curves(twin_site: Path, page: Any) -> None:
    """h200 · sglang has two configurations (parallel=8 is the twin): each is its own thin
    line in concurrency order with its own name, in its own dash; the group keeps one
    Pareto front; the history view labels both by their job names."""
    open_site(page, twin_site, "?sku=h200&fw=sglang&seq=1024x1024")
    traces = page.evaluate(CONFIG_LINES_JS)
    lines = [t for t in traces if t["kind"] == "config"]
    fronts = [t for t in traces if t["kind"] == "front"]
    assert {t["group"] for t in lines} == {"h200 · sglang"}
    assert sorted(t["name"] for t in lines) == sorted([CONFIGS[0].name, TWIN.name])
    assert len({t["dash"] for t in lines}) == 2 and len({t["color"] for t in lines}) == 2
    assert all(t["legend"] for t in lines)  # both names in the legend
    for t in lines:
        assert t["n"] >= 3 and t["conc"] == sorted(t["conc"]), t
    assert len(fronts) == 1 and fronts[0]["dash"] == "solid"
    assert "each configuration" in page.locator("#legend-note").inner_text()
    legend = page.evaluate("document.querySelector('[data-testid=chart] .legend').textContent")
    assert CONFIGS[0].name in legend and TWIN.name in legend
    shot(page, "two-configurations")
    open_site(page, twin_site, "?view=history&sku=h200&fw=sglang&seq=1024x1024")
    page.get_by_test_id("history-table").locator("table").wait_for()
    options = page.get_by_test_id("history-config").locator("option")
    labels = [options.nth(k).inner_text() for k in range(options.count())]
    assert sorted(labels) == sorted([CONFIGS[0].name, TWIN.name])


@pytest.fixture(scope="module")
def gpu_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gpu-site")
    return build_site(write_real_gpu_tree(root / "results"), root / "out")


ROOFLINE_JS = """() => {
  const gd = document.querySelector('[data-testid=chart]');
  return (gd.data || []).filter(t => t.meta && t.meta.kind === 'roofline')
    .map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));
}"""


def test_real_gpu_run_draws_its_physical_limit(gpu_site: Path, page: Any) -> None:
    """The real H200 llama.cpp sweep: a dotted "physical limit" line per SKU · framework through
    the roofline of each concurrency (docs/roofline.md), every measured point below it, and the
    point details, the comparison table and the CSV say how close each point came."""
    doc = real_gpu_document()
    bounds = {
        p["concurrency"]: p["roofline"] for p in doc["points"] if p.get("roofline") is not None
    }
    assert sorted(bounds) == [1, 4, 16, 64, 128, 256]
    open_site(page, gpu_site, "?tokens=output")
    lines = page.evaluate(ROOFLINE_JS)
    assert [ln["name"] for ln in lines] == ["h200 · llamacpp · physical limit"]
    want = sorted((1 / b["decode_step_s"], b["bound_output_tps_per_gpu"]) for b in bounds.values())
    got = sorted(zip(lines[0]["x"], lines[0]["y"], strict=True))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-5)
    pts = plotted(page)
    assert len(pts) == 6
    for _name, _pid, x, y in pts:  # measured below the limit, in speed and in throughput
        assert y < max(b for _, b in want) and x < max(a for a, _ in want)
    assert "physical limit (roofline)" in page.locator("#legend-note").inner_text()
    shot(page, "roofline-h200")
    # input + output tokens: the bound scales by (ISL + OSL) / OSL like the measured points
    open_site(page, gpu_site)
    total = page.evaluate(ROOFLINE_JS)[0]["y"]
    assert sorted(total) == pytest.approx(sorted(y * (1024 + 256) / 256 for _, y in want), rel=1e-5)
    # point details: the share of the bound, its binding resource and its window
    page.evaluate("window.ixci.loadExtra(function () {})")
    box = page.evaluate("""() => {
      const gd = document.querySelector('[data-testid=chart]');
      const t = gd.data.findIndex(t => t.meta.kind === 'points');
      let k = 0;
      for (let j = 1; j < gd.data[t].x.length; j++) if (gd.data[t].x[j] > gd.data[t].x[k]) k = j;
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      const r = gd.getBoundingClientRect();
      return {x: r.left + xa._offset + xa.l2p(gd.data[t].x[k]), y: r.top + ya._offset + ya.l2p(gd.data[t].y[k])};
    }""")  # the fastest point per user: concurrency 1
    page.mouse.click(box["x"], box["y"])
    detail = page.get_by_test_id("point-detail")
    detail.wait_for()
    text = detail.inner_text()
    assert "% of roofline" in text and "decode memory" in text and "steady-state window" in text
    assert f"{100 * bounds[1]['fraction']:.1f} % of" in text, text
    assert "while every slot was busy" in text
    # the comparison table ranks by the share of the limit
    open_site(page, gpu_site, "?view=compare&metric=roofline&levels=20,100")
    table = page.get_by_test_id("compare-table").locator("table")
    table.wait_for()
    assert "physical limit" in table.locator("caption").inner_text()
    cells = [c for c in table.locator("td").all_inner_texts() if c.strip() not in ("", "—")]
    assert cells, "a share of the limit at a measured interactivity"
    # the CSV carries the bound, the share and the binding resource
    open_site(page, gpu_site, "?tokens=output")
    with page.expect_download() as dl:
        page.get_by_test_id("download-csv").click()
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    header = rows[0]
    frac = header.index("roofline_fraction [fraction of the bound]")
    conc = header.index("concurrency [requests]")
    by_conc = {int(r[conc]): float(r[frac]) for r in rows[1:]}
    assert by_conc == pytest.approx({c: b["fraction"] for c, b in bounds.items()}, rel=1e-5)
    assert "roofline_binding" in header


def test_repeated_points_carry_error_bars_and_intervals(page: Any, site: Path) -> None:
    """b200 · vllm measured each point 3 times (95 % intervals in the table): its points get
    error bars on both axes, its details and comparison cells show the interval; the other
    configurations (one sample) get none."""
    open_site(page, site, "?model=gpt-oss-120b")
    bars = page.evaluate("""() => {
      const gd = document.querySelector('[data-testid=chart]');
      return gd._fullData.filter(t => t.meta && t.meta.kind === 'points').map(t => [t.name,
        !!(t.error_y && t.error_y.visible), !!(t.error_x && t.error_x.visible),
        t.error_y && t.error_y.array ? Array.from(t.error_y.array).filter(v => v > 0).length : 0,
        t.error_y && t.error_y.arrayminus ? Array.from(t.error_y.arrayminus).filter(v => v > 0).length : 0]);
    }""")
    by = {b[0]: b for b in bars}
    assert by["b200 · vllm"][1:] == [True, True, 9, 9], by
    assert by["h100 · vllm"][1:3] == [False, False], by
    shot(page, "charts-error-bars")
    box = page.evaluate("""() => {
      const gd = document.querySelector('[data-testid=chart]');
      const t = gd.data.findIndex(t => t.meta.kind === 'points' && t.name === 'b200 · vllm');
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      const r = gd.getBoundingClientRect();
      return {x: r.left + xa._offset + xa.l2p(gd.data[t].x[0]), y: r.top + ya._offset + ya.l2p(gd.data[t].y[0])};
    }""")
    page.mouse.move(box["x"], box["y"])
    page.get_by_test_id("hover").wait_for()
    page.mouse.click(box["x"], box["y"])
    detail = page.get_by_test_id("point-detail")
    detail.wait_for()
    text = detail.inner_text()
    assert "3 (intervals: 95 % Student-t" in text and " – " in text.split("Throughput")[1], text
    open_site(page, site, "?view=compare&model=gpt-oss-120b&levels=150")
    table = page.get_by_test_id("compare-table").locator("table")
    table.wait_for()
    rows = {r.locator("th").inner_text().split(" (")[0]: r for r in table.locator("tbody tr").all()}
    assert rows["b200 · vllm"].get_by_test_id("compare-ci").count() == 1
    assert rows["h100 · vllm"].get_by_test_id("compare-ci").count() == 0
    lo, hi = (
        float(v.replace(",", ""))
        for v in rows["b200 · vllm"]
        .get_by_test_id("compare-ci")
        .inner_text()
        .strip(" []")
        .split(" – ")
    )
    value = float(
        rows["b200 · vllm"].locator("td").first.inner_text().split(" [")[0].replace(",", "")
    )
    assert lo < value < hi and hi / lo == pytest.approx(1.04 / 0.96, rel=0.01)
    shot(page, "compare-intervals")


CLICK_FIRST_JS = """name => {
  const gd = document.querySelector('[data-testid=chart]');
  const t = gd.data.findIndex(t => t.meta.kind === 'points' && t.name === name);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const r = gd.getBoundingClientRect();
  return {x: r.left + xa._offset + xa.l2p(gd.data[t].x[0]), y: r.top + ya._offset + ya.l2p(gd.data[t].y[0])};
}"""


def point_detail(page: Any, trace: str) -> str:
    """Hover and click the first point of the named trace; the detail panel's text."""
    box = page.evaluate(CLICK_FIRST_JS, trace)
    page.mouse.move(box["x"], box["y"])
    page.get_by_test_id("hover").wait_for()
    hover = page.get_by_test_id("hover").inner_text()
    page.mouse.click(box["x"], box["y"])
    detail = page.get_by_test_id("point-detail")
    detail.wait_for()
    return hover + "\n---\n" + detail.inner_text()


def test_quality_failed_points_are_flagged_and_can_be_hidden(page: Any, site: Path) -> None:
    """h200 · sglang failed its eval suite's quality gate in the newest run: its points are
    drawn hollow, say so on hover, in the details and the status line, and the toggle hides
    exactly them (and round-trips through the URL)."""
    open_site(page, site, "?model=deepseek-r1")
    symbols = page.evaluate("""() => Object.fromEntries(document.querySelector('[data-testid=chart]')
      .data.filter(t => t.meta.kind === 'points').map(t => [t.name, t.marker.symbol]))""")
    assert symbols["h200 · sglang"] == "circle-open", symbols
    assert all(not str(v).endswith("-open") for k, v in symbols.items() if k != "h200 · sglang")
    before = plotted(page)
    failed = [p for p in before if p[0] == "h200 · sglang"]
    assert failed
    status = page.get_by_test_id("status").inner_text()
    assert f"{len(failed)} of them failed their quality gate" in status, status
    text = point_detail(page, "h200 · sglang")
    assert "quality gate failed" in text.split("---")[0]
    assert "FAILED: the eval suite" in text.split("---")[1], text
    shot(page, "charts-quality-flagged")
    toggle = page.get_by_test_id("hide-quality-failed")
    assert toggle.is_visible() and not toggle.is_checked()
    toggle.check()
    wait_points(page, len(before) - len(failed))
    after = plotted(page)
    assert sorted(map(tuple, after)) == sorted(tuple(p) for p in before if p[0] != "h200 · sglang")
    assert "quality=hide" in page.url
    status = page.get_by_test_id("status").inner_text()
    assert f"{len(failed)} points that failed their quality gate are hidden" in status, status
    page.reload()
    page.wait_for_selector("[data-testid=chart][data-ready='1']", state="attached")
    assert page.get_by_test_id("hide-quality-failed").is_checked()
    assert len(plotted(page)) == len(after)
    shot(page, "charts-quality-hidden")


def test_speculative_acceptance_in_point_details(page: Any, site: Path) -> None:
    open_site(page, site, "?model=deepseek-r1&spec=yes")
    text = point_detail(page, "b200 · trtllm").split("---")[1]
    assert "mtp: acceptance 80.0 % of draft tokens · 3.40 tokens per verification step" in text, (
        text
    )
    open_site(page, site, "?model=gpt-oss-120b")
    assert "Speculative decoding\noff" in point_detail(page, "h100 · vllm")


# --- what publish decides: published curves, regressions, which runs a comparison reads ------

# (sku, run, concurrency) of every plotted point of the main chart
PLOTTED_RUNS_JS = """() => {
  const gd = document.querySelector('[data-testid=chart]');
  const out = [];
  for (const t of (gd.data || [])) {
    if (!t.meta || t.meta.kind !== 'points') continue;
    for (const i of t.customdata) out.push([ixci.str('sku', i), ixci.str('run_id', i), ixci.col('concurrency', i)]);
  }
  return out.sort();
}"""


def plotted_runs(page: Any) -> dict[str, tuple[set[str], list[int]]]:
    """sku → (runs its points come from, their concurrencies sorted)."""
    out: dict[str, tuple[set[str], list[int]]] = {}
    for sku, run, conc in page.evaluate(PLOTTED_RUNS_JS):
        runs, concs = out.setdefault(sku, (set(), []))
        runs.add(run)
        concs.append(conc)
    return {k: (r, sorted(c)) for k, (r, c) in out.items()}


@pytest.fixture(scope="module")
def narrower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("narrower")
    return build_site(narrower_tree(root), root / "out")


def test_a_narrower_run_after_a_dense_one_keeps_the_dense_curve(narrower: Path, page: Any) -> None:
    """h100's newer run lost c=4…16 (neither run is complete): the page draws publish's choice,
    the older run's four points, not the newest run's two; h200's recipe changed to c=1, 2, and
    the page follows publish to the new, narrower curve."""
    open_site(page, narrower)
    assert plotted_runs(page) == {"h100": ({"r1"}, [1, 2, 4, 8]), "h200": ({"r2"}, [1, 2])}
    assert "the published curve" in page.get_by_test_id("status").inner_text()
    shot(page, "charts-published-curve")
    open_site(page, narrower, "?runs=all")
    assert plotted_runs(page)["h100"] == ({"r1", "r2"}, [1, 1, 2, 2, 4, 8])
    open_site(page, narrower, "?asof=r1")  # publish's h200 run is after the window: r1 then
    assert plotted_runs(page) == {"h100": ({"r1"}, [1, 2, 4, 8]), "h200": ({"r1"}, [1, 2, 4, 8])}


def test_without_publish_curves_the_page_applies_the_coverage_rule(
    tmp_path: Path, page: Any
) -> None:
    """An index.json without `configs[].curves` (an older tree): the page itself keeps the run
    whose valid points cover the newer one's, and (knowing no recipe) keeps h200's denser run."""
    tree = narrower_tree(tmp_path)
    index = json.loads((tree / "index.json").read_text())
    index["configs"] = [c["config_id"] for c in index["configs"]]
    (tree / "index.json").write_text(json.dumps(index))
    site_index = build_site(tree, tmp_path / "out")
    open_site(page, site_index)
    assert plotted_runs(page) == {"h100": ({"r1"}, [1, 2, 4, 8]), "h200": ({"r1"}, [1, 2, 4, 8])}
    open_site(page, site_index, "?asof=r1")  # as of r1, r1 is the only run
    assert plotted_runs(page)["h200"] == ({"r1"}, [1, 2, 4, 8])


def test_a_comparison_names_the_runs_and_dates_of_each_side(narrower: Path, page: Any) -> None:
    """h100's published curve is from 2026-11-01, h200's from 2026-11-02: each row says so and
    the table warns that the rows are not one batch; pinned to one run, it says one run."""
    open_site(page, narrower, "?view=compare&levels=60,90")
    table = page.get_by_test_id("compare-table").locator("table")
    table.wait_for()
    rows = {r.locator("th").inner_text().split(" (")[0]: r for r in table.locator("tbody tr").all()}
    assert rows["h100 · vllm"].get_by_test_id("compare-runs").inner_text() == "2026-11-01"
    assert rows["h200 · vllm"].get_by_test_id("compare-runs").inner_text() == "2026-11-02"
    link = rows["h100 · vllm"].get_by_test_id("compare-runs").get_by_role("link")
    assert link.get_attribute("title") == "run r1" and "id=r1" in link.get_attribute("href")
    note = page.get_by_test_id("compare-batches").inner_text()
    assert "2 runs on 2 dates" in note and "h100 · vllm: 2026-11-01" in note, note
    assert "h200 · vllm: 2026-11-02" in note
    shot(page, "compare-runs")
    open_site(page, narrower, "?view=compare&levels=60,90&run=r2")
    page.get_by_test_id("compare-table").locator("table").wait_for()
    note = page.get_by_test_id("compare-batches").inner_text()
    assert note == "Every row comes from one run (2026-11-02, run r2)."


@pytest.fixture(scope="module")
def regressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regressed")
    return build_site(regression_tree(root), root / "out")


HISTORY_MARKS_JS = """() => {
  const gd = document.querySelector('[data-testid=history-chart]');
  const k = gd.data.findIndex(t => t.meta && t.meta.kind === 'regression');
  if (k < 0) return null;
  return {curve: k, x: gd.data[k].x, text: gd.data[k].hovertext, shapes: gd.layout.shapes.length};
}"""


def history_marks(page: Any, query: str, site: Path) -> dict[str, Any]:
    open_site(page, site, query)
    page.wait_for_function(
        "() => /regressions? \\(regressions.json\\) marked/.test(document.getElementById('h-status').textContent)"
    )
    page.wait_for_function(
        "() => { const g = document.querySelector('[data-testid=history-chart]');"
        " return g.data && g.data.some(t => t.meta && t.meta.kind === 'regression'); }"
    )
    marks: dict[str, Any] = page.evaluate(HISTORY_MARKS_JS)
    return marks


def test_history_marks_each_regression_with_its_image_change(regressed: Path, page: Any) -> None:
    """regressions.json (derived by publish) found a −20 % step at night n08 on every point and
    metric of both configurations: one marker at its first bad night whose hover names the step,
    its interval and the image change; a table lists every finding."""
    marks = history_marks(page, "?view=history&sku=h100", regressed)
    assert [x[:10] for x in marks["x"]] == ["2026-11-09"]
    text = marks["text"][0]
    assert "vllm/vllm-openai:v0.11.0 → vllm/vllm-openai:v0.12.0" in text
    assert "last good 2026-11-08 (run n07)" in text and "tput_per_gpu at c=16 (1k1k): −" in text
    assert marks["shapes"] == 2  # the image-change line and the regression line
    assert "6 regressions (regressions.json) marked" in page.locator("#h-status").inner_text()
    # the real hover label of the marker (plotly draws it into the chart's hover layer)
    page.evaluate(
        "k => Plotly.Fx.hover(document.querySelector('[data-testid=history-chart]'),"
        " [{curveNumber: k, pointNumber: 0}])",
        marks["curve"],
    )
    hover = page.evaluate(
        "() => document.querySelector('[data-testid=history-chart] .hoverlayer').textContent"
    )
    assert "v0.11.0 → vllm/vllm-openai:v0.12.0" in hover and "Regression" in hover
    shot(page, "history-regression")
    rows = page.get_by_test_id("regression-row")
    assert rows.count() == 6
    assert {r.get_attribute("data-state") for r in rows.all()} == {"open"}
    image = rows.first.get_by_test_id("regression-image").inner_text()
    assert image == "vllm/vllm-openai:v0.11.0 → vllm/vllm-openai:v0.12.0"


def test_history_names_the_digest_when_the_tag_was_rebuilt(regressed: Path, page: Any) -> None:
    marks = history_marks(page, "?view=history&sku=h200", regressed)
    want = "vllm/vllm-openai:nightly rebuilt (sha256:111111111111 → sha256:222222222222)"
    assert want in marks["text"][0]
    assert page.get_by_test_id("regression-image").first.inner_text() == want
    assert page.get_by_test_id("image-changed").count() == 1  # the digest moved: marked too
