"""`ixci site build` without a browser: output files, data encoding, coverage grid, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from site_results_tree import PRICES, columns, write_tree

from ixci.cli import cli
from ixci.errors import InvalidInput
from ixci.results.aggregate import to_columnar
from ixci.results.pointstore import POINTS_DIR, read_points
from ixci.site import build_site
from ixci.site.build import COMPILE_HINT, plotly_js

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("build")
    tree = write_tree(root / "results")
    build_site(tree, root / "out")
    return tree, root / "out"


def load_js(path: Path) -> Any:
    """The payload of a data/*.js file (`… = JSON.parse("<json>");`)."""
    text = path.read_text(encoding="utf-8")
    literal = text[text.index("JSON.parse(") + len("JSON.parse(") : text.rindex(");")]
    return json.loads(json.loads(literal.replace("<\\/", "</")))


def decode(payload: dict[str, Any], extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows back from the site's encoding (what app.js does at start-up)."""
    pts = payload["points"]

    def value(col: Any, k: int) -> Any:
        if isinstance(col, dict):
            code = col["codes"][k]
            return None if code < 0 else col["dict"][code]
        return col[k]

    rows = []
    for i in range(pts["n"]):
        row = {c: value(v, pts["job"][i]) for c, v in pts["jobs"]["columns"].items()}
        row.update({c: value(v, i) for c, v in pts["columns"].items()})
        row.update({c: value(v, i) for c, v in extra["columns"].items()})
        rows.append(row)
    return rows


def test_build_writes_a_self_contained_site(built: tuple[Path, Path]) -> None:
    _, out = built
    for rel in ("index.html", "assets/app.js", "assets/app.css", "assets/plotly.min.js",
                "data/site.js", "data/extra.js", "data/site.json", ".nojekyll"):  # fmt: skip
        assert (out / rel).is_file(), rel
    # the installed package's plotly.js, byte for byte, after V8's compile-hint comment line
    assert (out / "assets/plotly.min.js").read_bytes() == COMPILE_HINT + plotly_js().read_bytes()
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing fetched at view time
    assert sorted(p.name for p in (out / "data" / "runs").glob("*.js")) == [
        "19781001001.js",
        "19802002002.js",
    ]


def test_encoded_points_decode_to_the_table(built: tuple[Path, Path]) -> None:
    tree, out = built
    table = to_columnar(read_points(tree))
    want = [dict(zip(table["columns"], r, strict=True)) for r in table["rows"]]
    got = decode(load_js(out / "data" / "site.js"), load_js(out / "data" / "extra.js"))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for col in ("point_id", "run_id", "sku", "framework", "image", "isl", "tp", "concurrency"):
            assert g[col] == w[col], col
        assert g["valid"] == int(w["valid"])
        for col in ("interactivity_median", "tput_per_gpu", "usd_per_mtok_neocloud"):
            if w[col] is None:
                assert g[col] is None
            else:
                assert g[col] == pytest.approx(w[col], rel=1e-5), col  # 6 significant digits


def test_payload_prices_tiers_and_units(built: tuple[Path, Path]) -> None:
    _, out = built
    data = load_js(out / "data" / "site.js")
    assert data["tiers"] == ["hyperscaler", "neocloud", "rental_3y"]
    for tier, by_sku in data["prices"].items():
        for sku, usd in by_sku.items():
            assert usd == pytest.approx(PRICES[sku][tier], abs=1e-3)
    assert data["units"]["tput_per_gpu"] == "tok/s/GPU"
    assert [r["run_id"] for r in data["runs"]] == ["19781001001", "19802002002"]
    assert data["runs"][1]["coverage"] == {"ok": 13, "partial": 0, "failed": 2, "missing": 1}
    assert data["runs"][1]["url"].endswith("/actions/runs/19802002002")


def test_coverage_grid_states(built: tuple[Path, Path]) -> None:
    _, out = built
    cells = {
        (c["sku"], c["framework"], c["model"]): c
        for c in load_js(out / "data" / "site.js")["coverage"]["cells"]
    }
    failed = cells[("mi355x", "vllm", "gpt-oss-120b")]
    assert failed["state"] == "failed" and failed["failure_class"] == "server_start"
    assert failed["last_measured"].startswith("2026-11-26")
    partial = cells[("h100", "vllm", "gpt-oss-120b")]
    assert (partial["state"], partial["jobs"], partial["jobs_measured"]) == ("partial", 2, 1)
    assert cells[("b200", "dynamo-trt", "deepseek-r1")]["state"] == "measured"
    assert ("h100", "vllm", "deepseek-r1") not in cells  # never planned


def test_build_is_byte_identical_for_the_same_input(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    tree, out = built
    again = tmp_path / "again"
    build_site(tree, again)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        assert (again / rel).read_bytes() == path.read_bytes(), rel


def test_cli_build(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results")
    result = CliRunner().invoke(
        cli, ["site", "build", "--data", str(tree), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "index.html").as_uri() in result.output


def test_missing_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    with pytest.raises(InvalidInput) as err:
        build_site(tmp_path / "results", tmp_path / "out")
    text = err.value.render()
    # no partitions and no points.json of the older layout: the latter is what is missing
    assert "index.json:1:1: file not found" in text and "points.json:1:1: file not found" in text
    assert "results branch" in text


def test_bad_json_points_at_the_line(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results")
    (tree / "index.json").write_text('{\n  "runs": [\n    {"path": }\n  ]\n}\n')
    with pytest.raises(InvalidInput) as err:
        build_site(tree, tmp_path / "out")
    assert err.value.problems[0].line == 3
    assert "not valid JSON" in err.value.problems[0].message


def test_missing_column_and_short_row(tmp_path: Path) -> None:
    """A branch of the older layout (one points.json) is still checked row by row."""
    tree = write_tree(tmp_path / "results", layout="json")
    table = json.loads((tree / "data" / "points.json").read_text())
    drop = table["columns"].index("tput_per_gpu")
    table["columns"].pop(drop)
    for row in table["rows"]:
        row.pop(drop)
    table["rows"][3] = table["rows"][3][:5]
    (tree / "data" / "points.json").write_text(json.dumps(table))
    result = CliRunner().invoke(
        cli, ["site", "build", "--data", str(tree), "--out", str(tmp_path / "o")]
    )
    assert isinstance(result.exception, InvalidInput)
    text = result.exception.render()
    assert "missing column(s) tput_per_gpu" in text
    assert "rows[3]: row has 5 cells" in text


def test_payload_carries_publishs_curves_and_the_regressions(tmp_path: Path) -> None:
    """index.json's `configs[].curves[].latest_run` reaches the page as {config: {scenario: run}}
    and regressions.json's findings as data/regressions.js (loaded by the History view)."""
    from published_tree import narrower_tree, regression_tree

    tree = narrower_tree(tmp_path / "a")
    index = json.loads((tree / "index.json").read_text())
    build_site(tree, tmp_path / "a-out")
    curves = load_js(tmp_path / "a-out" / "data" / "site.js")["curves"]
    want = {c["config_id"]: {"1k1k": c["curves"][0]["latest_run"]} for c in index["configs"]}
    assert curves == want and sorted(r for v in curves.values() for r in v.values()) == ["r1", "r2"]
    assert load_js(tmp_path / "a-out" / "data" / "regressions.js") == {"regressions": []}
    tree = regression_tree(tmp_path / "b")
    build_site(tree, tmp_path / "b-out")
    found = load_js(tmp_path / "b-out" / "data" / "regressions.js")["regressions"]
    assert found == json.loads((tree / "regressions.json").read_text())["regressions"]


def test_bad_curves_and_regressions_are_pointed_errors(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results")
    index = json.loads((tree / "index.json").read_text())
    index["configs"] = [{"config_id": "c-000000000000", "curves": {"1k1k": "r1"}},
                        {"config_id": "c-000000000001", "curves": [{"latest_run": "r1"}]}]  # fmt: skip
    (tree / "index.json").write_text(json.dumps(index))
    (tree / "regressions.json").write_text(json.dumps({"regressions": [{"config_id": 3}]}))
    with pytest.raises(InvalidInput) as err:
        build_site(tree, tmp_path / "out")
    text = err.value.render()
    assert "index.json:1:1: configs[0].curves: expected a list of curves" in text
    assert "configs[1].curves[0]: a curve needs a string 'scenario'" in text
    assert "regressions.json:1:1: regressions[0]: a finding needs string 'config_id'" in text


def test_damaged_partition_is_named(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results")
    part = sorted((tree / POINTS_DIR).glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])  # a truncated write
    result = CliRunner().invoke(
        cli, ["site", "build", "--data", str(tree), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and isinstance(result.exception, InvalidInput)
    text = result.exception.render()
    assert part.name in text and "not a readable Parquet partition" in text
    assert "--rebuild" in text


def test_cli_exit_code_for_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "ixci", "site", "build", "--data", str(tmp_path / "empty"),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "No module named ixci.__main__" in proc.stderr:
        proc = subprocess.run(
            ["ixci", "site", "build", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_serve_answers_on_loopback(built: tuple[Path, Path], free_port: int) -> None:
    _, out = built
    proc = subprocess.Popen(
        ["ixci", "site", "serve", "--dir", str(out), "--port", str(free_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        body = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/", timeout=2) as resp:
                    body = resp.read()
                break
            except OSError:
                time.sleep(0.1)
        assert b'<script src="data/site.js">' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_site_builds_from_a_tree_written_by_publish(tmp_path: Path) -> None:
    """The real publish code path (collect → run folder → derived files) feeds the site."""
    sys.path.insert(0, str(TESTS))
    try:
        from collect.factory import make_job, make_result

        from ixci.results.aggregate import Economics
        from ixci.results.collect import collect
        from ixci.results.publish import (
            build_derived,
            run_files,
            run_folder,
            stage_run,
            write_derived,
            write_economics,
        )
    except ImportError as exc:  # pragma: no cover - the publish API moved
        pytest.fail(f"publish API changed: {exc}")
    finally:
        sys.path.remove(str(TESTS))
    tree = tmp_path / "tree"
    tree.mkdir()
    write_economics(
        tree, Economics(usd_per_gpu_hour={"h100": {"neocloud": 1.69}}, all_in_kw={"h100": 1.73})
    )
    for run_id, date, scale in (("2001", "2026-11-26", 1.0), ("2002", "2026-11-27", 1.2)):
        arts = tmp_path / f"art-{run_id}"
        for job in (make_job(name="a", tp=1), make_job(name="b", tp=2)):
            doc = make_result(job, run_id=run_id, date=date, scale=scale)
            (arts / f"result-{job['id']}").mkdir(parents=True)
            (arts / f"result-{job['id']}" / "result.json").write_text(json.dumps(doc))
        col = collect([arts], run_id=run_id)
        stage_run(tree, run_files(col, run_id, date=date), run_folder(run_id, date))
    write_derived(tree, build_derived(tree))
    build_site(tree, tmp_path / "site")
    data = load_js(tmp_path / "site" / "data" / "site.js")
    table = to_columnar(read_points(tree))
    assert data["points"]["n"] == len(table["rows"]) > 0
    assert [r["run_id"] for r in data["runs"]] == ["2001", "2002"]
    assert data["tiers"] == ["neocloud"]
    assert {c["state"] for c in data["coverage"]["cells"]} == {"measured"}
    assert columns()[:5] == table["columns"][:5]  # the fixture keeps the contract's order


def test_agentic_points_reach_the_payload(tmp_path: Path, built: tuple[Path, Path]) -> None:
    """Sessions points: the agentic x-axis is a core column (it turns the view on), the other
    multi-turn and server-metrics columns are extra, TTFT by context arrives as lists; a table
    without sessions points pays nothing for them."""
    from agentic_results_tree import agentic_documents, write_agentic_tree

    from ixci.run.servermetrics import SERVER_COLUMNS

    docs = agentic_documents()
    tree = write_agentic_tree(tmp_path / "results", docs)
    out = tmp_path / "out"
    build_site(tree, out)
    rows = decode(load_js(out / "data" / "site.js"), load_js(out / "data" / "extra.js"))
    assert "e2e_norm_interactivity_p90" in load_js(out / "data" / "site.js")["points"]["columns"]
    points = {p["id"]: p for d in docs for p in d["points"]}
    assert len(rows) == len(points) == 12
    for row in rows:
        p = points[row["point_id"]]
        assert row["e2e_norm_interactivity_p90"] == pytest.approx(
            p["sessions"]["e2e_normalized_interactivity"]["p90"], rel=1e-5
        )
        ctx = p["sessions"]["ttft_by_context"]
        assert [b[0] for b in row["ttft_by_context"]] == list(ctx)
        for label, cold, n_cold, warm, n_warm in row["ttft_by_context"]:
            assert (n_cold, n_warm) == (ctx[label]["cold"]["count"], ctx[label]["warm"]["count"])
            assert cold == (
                None
                if ctx[label]["cold"]["median"] is None
                else pytest.approx(ctx[label]["cold"]["median"], rel=1e-5)
            )
            assert warm == (
                None
                if ctx[label]["warm"]["median"] is None
                else pytest.approx(ctx[label]["warm"]["median"], rel=1e-5)
            )
        assert row["server_metrics_samples"] == p["server_metrics"]["samples"]
        assert set(SERVER_COLUMNS) <= set(row)
    plain = decode(load_js(built[1] / "data" / "site.js"), load_js(built[1] / "data" / "extra.js"))
    assert not {"e2e_norm_interactivity_p90", "ttft_by_context", *SERVER_COLUMNS} & set(plain[0])


@pytest.mark.parametrize("cell", ['{"a": 1}', "[1, 2]", '[["0-256", 1, 2, 3]]', "not json", 7,
                                  '[[1, 0.1, 1, 0.1, 1]]'])  # fmt: skip
def test_a_malformed_ttft_by_context_cell_is_dropped(cell: object) -> None:
    from ixci.site.data import _profile

    assert _profile(cell) is None
