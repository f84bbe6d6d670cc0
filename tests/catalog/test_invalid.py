"""Every broken file in tests/data/invalid/ gives its pointed error and exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.catalog.conftest import REPO, run_ixci

INVALID = REPO / "tests" / "data" / "invalid"
EXPECTED: dict[str, dict[str, object]] = yaml.safe_load((INVALID / "expected.yaml").read_text())


def test_corpus_is_large_and_complete() -> None:
    files = {p.name for p in INVALID.iterdir() if p.name != "expected.yaml"}
    assert len(files) >= 30
    assert files == set(EXPECTED), "every broken file needs an expectation and vice versa"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file(name: str) -> None:
    expected = EXPECTED[name]
    rel = f"tests/data/invalid/{name}"
    result = run_ixci(["validate", "--root", str(REPO), str(INVALID / name)])
    output = result.output
    assert result.exit_code == expected["exit"], output
    assert "Traceback" not in output and "internal error" not in output
    lines = [line for line in output.splitlines() if line.startswith(f"{rel}:")]
    hits = [line for line in lines if str(expected["message"]) in line]
    assert hits, f"expected {expected['message']!r} in a line about {rel}:\n{output}"
    if "line" in expected:
        assert any(line.startswith(f"{rel}:{expected['line']}:") for line in hits), output
    assert "found by ixci validate" in output


def test_debug_shows_traceback_for_internal_errors_only(tmp_path: Path) -> None:
    # Bad input never shows a traceback, even with --debug it is a clean IxciError path.
    result = run_ixci(["validate", "--root", str(REPO), str(INVALID / "recipe-unknown-key.yaml")])
    assert result.exit_code == 3
    assert "Traceback" not in result.output


def test_github_actions_annotations() -> None:
    target = INVALID / "recipe-dangling-sku.yaml"
    result = run_ixci(
        ["validate", "--root", str(REPO), str(target)], env={"GITHUB_ACTIONS": "true"}
    )
    assert result.exit_code == 3
    assert (
        "::error file=tests/data/invalid/recipe-dangling-sku.yaml,line=2,col=6::sku%3A"
        not in result.output
    )
    annotations = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert annotations == [
        "::error file=tests/data/invalid/recipe-dangling-sku.yaml,line=2,col=6::sku: unknown SKU 'h20' "
        "(did you mean 'h200'?) (defined in matrix/hardware.yaml)"
    ]


def test_no_annotations_outside_actions() -> None:
    result = run_ixci(["validate", "--root", str(REPO), str(INVALID / "recipe-dangling-sku.yaml")])
    assert "::error" not in result.output


def test_all_problems_at_once() -> None:
    result = run_ixci(
        ["validate", "--root", str(REPO), str(INVALID / "recipe-typo-framework-key.yaml")]
    )
    rel = "tests/data/invalid/recipe-typo-framework-key.yaml"
    ours = [line for line in result.output.splitlines() if line.startswith(rel)]
    assert len(ours) == 2  # the missing key and the unknown key, in one run
