"""The agentic view and the server metrics in a real browser (headless chromium, file://).

The results tree holds sessions points built by ixci's own metrics code and validated against
the result schema (agentic_results_tree.py); the expected values are read back from those
documents, not from the site's payload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_site_browser as browser_tests
from agentic_results_tree import SCENARIO, agentic_documents, write_agentic_tree
from test_site_browser import open_site, shot

from ixci.site import build_site

pytestmark = pytest.mark.browser
browser, page = browser_tests.browser, browser_tests.page  # the same chromium fixtures

TRACES_JS = """() => {
  const gd = document.querySelector('[data-testid=chart]');
  return gd.data.map(t => ({kind: t.meta.kind, panel: t.meta.panel || '', side: t.meta.side || '',
    name: t.name, x: Array.from(t.x), y: Array.from(t.y),
    ids: t.customdata ? Array.from(t.customdata, i => i === null ? null : window.ixci.pointId(i)) : []}));
}"""
CLICK_JS = """([pid, axis]) => {
  const gd = document.querySelector('[data-testid=chart]');
  for (const t of gd.data) {
    if (t.meta.kind !== 'points' || !t.customdata) continue;
    const k = Array.from(t.customdata).findIndex(i => window.ixci.pointId(i) === pid);
    if (k < 0 || (t.xaxis || 'x') !== axis) continue;
    const xa = gd._fullLayout[axis === 'x' ? 'xaxis' : 'xaxis2'], ya = gd._fullLayout.yaxis;
    const r = gd.getBoundingClientRect();
    return {x: r.left + xa._offset + xa.l2p(t.x[k]), y: r.top + ya._offset + ya.l2p(t.y[k])};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return agentic_documents()


@pytest.fixture(scope="module")
def agentic_site(tmp_path_factory: pytest.TempPathFactory, docs: list[dict[str, Any]]) -> Path:
    root = tmp_path_factory.mktemp("agentic")
    return build_site(write_agentic_tree(root / "results", docs), root / "out")


def points_of(docs: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any], int]]:
    """point id → (sku · framework, point, GPUs)."""
    return {p["id"]: (f"{d['job']['sku']} · {d['job']['framework']}", p, d["job"]["topology"]["gpus"])
            for d in docs for p in d["points"]}  # fmt: skip


def front(pts: list[tuple[str, float, float]]) -> set[str]:
    """The Pareto front by its definition (both axes higher is better)."""
    out, best = set(), float("-inf")
    for pid, _x, y in sorted(pts, key=lambda r: (-r[1], -r[2])):
        if y > best:
            best = y
            out.add(pid)
    return out


def fmt(v: float) -> str:
    """app.js's `fmt` (and `fmtCount` for whole numbers)."""
    a = abs(v)
    if v == int(v) or a >= 1000:
        return f"{round(v):,}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if a >= 1 else f"{v:.3g}"


def wait_chart(page: Any, chart: str) -> None:
    page.wait_for_function(
        "c => { const gd = document.querySelector('[data-testid=chart]');"
        " return gd.getAttribute('data-chart') === c && +gd.getAttribute('data-points') > 0 && gd.data; }",
        arg=chart,
    )


def test_agentic_chart_plots_both_interactivities_with_pareto_fronts(
    page: Any, agentic_site: Path, docs: list[dict[str, Any]]
) -> None:
    """Output tok/s/GPU against E2E-normalized interactivity (InferenceX's 1 / P90 of E2E ÷
    output tokens) on the left and ixci's per-token interactivity (p10 of 1 / TPOT) on the
    right; each GPU · framework has its Pareto front on both; the KV-thrashing points are off it."""
    open_site(page, agentic_site, "?chart=agentic")
    wait_chart(page, "agentic")
    assert page.get_by_test_id("chart-tab-agentic").get_attribute("aria-selected") == "true"
    traces = page.evaluate(TRACES_JS)
    truth = points_of(docs)
    for panel, block, key in (("e2e", "e2e_normalized_interactivity", "p90"),
                              ("per-token", "interactivity_per_token", "p10")):  # fmt: skip
        pts = [t for t in traces if t["kind"] == "points" and t["panel"] == panel]
        assert sorted(t["name"] for t in pts) == ["h200 · llamacpp", "h200 · vllm"]
        for t in pts:
            assert len(t["ids"]) == 6
            for pid, x, y in zip(t["ids"], t["x"], t["y"], strict=True):
                group, p, gpus = truth[pid]
                assert group == t["name"] and p["scenario"] == SCENARIO
                assert x == pytest.approx(p["sessions"][block][key], rel=1e-5)
                assert y == pytest.approx(p["metrics"]["output_throughput"] / gpus, rel=1e-5)
            want = front(list(zip(t["ids"], t["x"], t["y"], strict=True)))
            line = next(
                f
                for f in traces
                if f["kind"] == "front" and f["panel"] == panel and f["name"] == t["name"]
            )
            drawn = {pid for pid, x in zip(t["ids"], t["x"], strict=True) if x in line["x"]}
            assert drawn == want and 2 <= len(want) < 6, (panel, t["name"], want)
            thrash = {pid for pid in t["ids"] if truth[pid][1]["concurrency"] == 128}
            assert not thrash & want  # the thrashing point is dominated
    # the incumbent's figure charges prefill to every token: below ixci's decode-only one
    e2e = next(t for t in traces if t["kind"] == "points" and t["panel"] == "e2e")
    tok = next(
        t
        for t in traces
        if t["kind"] == "points" and t["panel"] == "per-token" and t["name"] == e2e["name"]
    )
    assert all(a < b for a, b in zip(e2e["x"], tok["x"], strict=True))
    assert "InferenceX" in page.locator("#legend-note").inner_text()
    assert page.get_by_test_id("tokens").is_hidden()  # output tokens, always
    shot(page, "agentic-throughput")


def test_ttft_against_context_length_cold_and_warm(
    page: Any, agentic_site: Path, docs: list[dict[str, Any]]
) -> None:
    """Median TTFT per prompt-length bucket, cold (first) and warm (later) turns as separate
    lines per GPU · framework; each plotted value is the point's `ttft_by_context` median."""
    open_site(page, agentic_site, "?chart=ttftctx")
    wait_chart(page, "ttftctx")
    traces = page.evaluate(TRACES_JS)
    assert sorted((t["name"], t["side"]) for t in traces) == [
        ("h200 · llamacpp · cold turns", "cold"), ("h200 · llamacpp · warm turns", "warm"),
        ("h200 · vllm · cold turns", "cold"), ("h200 · vllm · warm turns", "warm"),
    ]  # fmt: skip
    truth = points_of(docs)
    plotted = 0
    for t in traces:
        for pid, bucket, y in zip(t["ids"], t["x"], t["y"], strict=True):
            if pid is None:
                assert y is None  # the gap between two points' lines
                continue
            want = truth[pid][1]["sessions"]["ttft_by_context"][bucket][t["side"]]["median"]
            assert y == pytest.approx(want, rel=1e-5)
            plotted += 1
    assert plotted > 20
    order = page.evaluate(
        "document.querySelector('[data-testid=chart]')._fullLayout.xaxis.categoryarray"
    )
    assert order == sorted(order, key=lambda b: int(b.split("-")[0].rstrip("+")))
    # at equal prompt length, a warm turn of a point below the cache's limit starts sooner
    cold = {(pid, b): y for t in traces if t["side"] == "cold"
            for pid, b, y in zip(t["ids"], t["x"], t["y"], strict=True) if pid}  # fmt: skip
    warm = {(pid, b): y for t in traces if t["side"] == "warm"
            for pid, b, y in zip(t["ids"], t["x"], t["y"], strict=True) if pid}  # fmt: skip
    both = [k for k in cold if k in warm and truth[k[0]][1]["concurrency"] <= 16]
    assert both and all(warm[k] < cold[k] for k in both)
    shot(page, "agentic-ttft-context")


def test_point_details_and_run_page_show_server_metrics(
    page: Any, agentic_site: Path, docs: list[dict[str, Any]]
) -> None:
    """Clicking a point shows the engine's metrics sampled during it (queue, running, KV-cache
    usage, server-side hit rate with its basis, preemptions) beside its multi-turn metrics; the
    run page lists them for every point of the run."""
    vllm = next(d for d in docs if d["job"]["framework"] == "vllm")
    point = next(p for p in vllm["points"] if p["concurrency"] == 128)
    sm = point["server_metrics"]
    open_site(page, agentic_site, "?chart=agentic")
    wait_chart(page, "agentic")
    page.evaluate("window.ixci.loadExtra(function () {})")
    box = page.evaluate(CLICK_JS, [point["id"], "x"])
    assert box is not None
    page.mouse.click(box["x"], box["y"])
    table = page.get_by_test_id("point-detail").get_by_test_id("server-metrics")
    table.wait_for()
    rows = {r.locator("th").inner_text(): r.locator("td").all_inner_texts()
            for r in table.locator("tbody tr").all()}  # fmt: skip
    series = sm["series"]
    assert rows["Queue depth (waiting requests)"] == [fmt(series["queue_depth"]["mean"]),
                                                      fmt(series["queue_depth"]["max"])]  # fmt: skip
    assert rows["Running requests"][1] == fmt(series["running"]["max"])
    assert rows["KV-cache usage"][1] == fmt(100 * series["kv_cache_usage"]["max"]) + " %"
    rate = sm["prefix_cache_hit_rate"]
    assert rows["Prefix-cache hit rate"] == [fmt(100 * rate["value"]) + " % (queries)"]
    assert (
        rows["Preemptions"] == [fmt(series["preemptions"]["delta"])]
        and series["preemptions"]["delta"] > 0
    )
    assert f"{sm['samples']} samples" in table.locator("caption").inner_text()
    detail = page.get_by_test_id("point-detail").inner_text()
    assert "E2E-normalized interactivity" in detail and "TTFT, cold / warm turns" in detail
    shot(page, "agentic-point-detail")
    page.get_by_test_id("detail-run-link").click()
    run_table = page.get_by_test_id("run-server-metrics")
    run_table.wait_for()
    assert run_table.locator("tbody tr").count() == sum(len(d["points"]) for d in docs)
    row = run_table.locator(f"tr[data-point='{point['id']}']").locator("td").all_inner_texts()
    assert row[2] == "128" and row[-1] == rows["Preemptions"][0]
    shot(page, "run-server-metrics")


def test_mixed_site_links_to_the_multi_turn_points(
    page: Any, tmp_path: Path, docs: list[dict[str, Any]]
) -> None:
    """Single-turn and multi-turn points of one model in one table: at the single-turn lengths
    the agentic chart has nothing to draw and links the lengths that have sessions points; the
    link draws them, and the single-turn chart still shows only its own points at its lengths."""
    import json

    from site_results_tree import GPU_RESULT

    single = json.loads(GPU_RESULT.read_text())
    site = build_site(write_agentic_tree(tmp_path / "results", [*docs, single]), tmp_path / "out")
    seq = f"{single['points'][0]['isl']}x{single['points'][0]['osl']}"
    open_site(page, site, f"?seq={seq}")
    valid = sum(1 for p in single["points"] if p["valid"] and p["status"] == "ok")
    page.wait_for_function("n => document.querySelector('[data-testid=chart]').getAttribute('data-points') === String(n)",
                           arg=valid)  # fmt: skip
    page.goto(site.as_uri() + f"?chart=agentic&seq={seq}")  # nothing to draw: no data-ready
    link = page.get_by_test_id("agentic-seq")
    link.wait_for()
    assert "No multi-turn (sessions) points" in page.get_by_test_id("chart").inner_text()
    assert link.inner_text() == "24k in / 512 out"
    link.click()
    wait_chart(page, "agentic")
    assert "seq=24576x512" in page.url or "seq=" not in page.url
    names = {t["name"] for t in page.evaluate(TRACES_JS) if t["kind"] == "points"}
    assert names == {"h200 · llamacpp", "h200 · vllm"}
    assert page.get_by_test_id("chart").get_attribute("data-points") == "12"


def test_single_turn_site_has_no_agentic_charts(page: Any, tmp_path: Path) -> None:
    """Without a sessions point the agentic tabs do not appear (the tables keep their shape)."""
    from site_results_tree import write_tree

    site = build_site(write_tree(tmp_path / "results"), tmp_path / "out")
    open_site(page, site)
    tabs = page.get_by_test_id("chart-tabs").locator("[role=tab]").all_inner_texts()
    assert tabs and not [t for t in tabs if "Agentic" in t]
    open_site(page, site, "?chart=agentic")  # an old link falls back to the default chart
    assert page.get_by_test_id("chart-tab-tput").get_attribute("aria-selected") == "true"
