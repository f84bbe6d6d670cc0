"""The shipped catalog loads into the typed model; every data file matches its schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ixci.catalog import catalog as cat
from ixci.errors import InvalidInput
from ixci.schemas import has_schema, schema_dir, validate_instance
from ixci.yamlio import load_file
from tests.catalog.conftest import REPO, run_ixci

# Corpora of deliberately broken files: ours (invalid/) and collect's damaged artifacts; and
# recorded GitHub API responses, which are GitHub's documents, not ixci's (a recording named
# `runners.*.json` is not a runners catalog file).
BROKEN_CORPORA = ("tests/data/invalid/", "tests/data/damaged/", "tests/data/github/")


def _data_files() -> list[Path]:
    out = []
    for folder in ("matrix", "benchmarks", "tests/data"):
        for path in sorted((REPO / folder).rglob("*")):
            rel = path.relative_to(REPO).as_posix()
            if (
                path.is_file()
                and path.suffix in {".yaml", ".yml", ".json"}
                and not rel.startswith(BROKEN_CORPORA)
            ):
                out.append(path)
    return out


@pytest.mark.parametrize("path", _data_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_data_file_matches_its_schema(path: Path) -> None:
    doc = load_file(path)
    assert not doc.problems, [p.render() for p in doc.problems]
    kind = cat.kind_of(path, doc.data)
    if kind is None:
        pytest.skip("not a catalog file or result artifact")
    if not has_schema(kind):
        pytest.skip(f"schemas/{kind}.schema.json does not exist yet")
    problems = validate_instance(kind, doc.data, locations=doc)
    assert problems == [], "\n".join(p.render() for p in problems)


def test_shipped_catalog_loads() -> None:
    catalog = cat.load_catalog(REPO)
    assert {
        "h100",
        "h200",
        "b200",
        "b300",
        "gb200",
        "gb300",
        "mi300x",
        "mi325x",
        "mi355x",
        "cpu",
    } <= set(catalog.skus)
    assert {"vllm", "sglang", "trtllm", "dynamo-trt", "dynamo-sglang", "llamacpp"} <= set(
        catalog.engines
    )
    assert len(catalog.recipes) >= 20
    assert catalog.digest and len(catalog.digest) == 64
    assert all(name in {r.name for r in catalog.recipes} for name in catalog.canary)
    assert any(e.disaggregated for r in catalog.recipes for e in r.search_space)


def test_local_recipes_compare_two_server_configurations() -> None:
    catalog = cat.load_catalog(REPO)
    local = [
        r
        for r in catalog.recipes
        if r.sku == "cpu" and r.runner == "cpu-local" and r.model == "tiny-llama"
    ]
    assert len(local) == 2
    assert {r.engine_args["parallel"] for r in local} == {2, 8}
    for recipe in local:
        assert recipe.framework == "llamacpp" and recipe.checkpoint == "local:tiny-llama-f16.gguf"
        assert len(recipe.scenarios) == 2
        assert recipe.search_space[0].concurrency == (1, 2, 4)
        for name in recipe.scenarios:
            assert catalog.scenarios[name].isl <= 256
    assert catalog.runners["cpu-local"].labels == ("self-hosted", "cpu")
    assert catalog.runners["cpu-local"].runtime == "process"


def test_defaults_come_from_the_schema() -> None:
    catalog = cat.load_catalog(REPO)
    recipe = catalog.recipe("tiny-fp16-cpu-llamacpp-docker")
    entry = recipe.search_space[0]
    schema = json.loads((schema_dir() / "recipe.schema.json").read_text())
    assert entry.tp == schema["$defs"]["entry"]["properties"]["tp"]["default"]
    assert entry.dp_attention is False and entry.engine_args == {} and recipe.env == {}
    assert recipe.max_model_len is None
    runner = catalog.runners["h200-docker"]
    assert runner.image_pull_s == 120 and runner.gpus_per_node == 8  # default and SKU-derived


def test_sources_point_at_lines() -> None:
    catalog = cat.load_catalog(REPO)
    recipe = catalog.recipe("dsr1-fp8-h200-sglang")
    assert recipe.source.file == "matrix/recipes/dsr1-fp8-h200-sglang.yaml"
    entry = recipe.search_space[0]
    text = (REPO / recipe.path).read_text().splitlines()
    assert "tp" in text[entry.source.line - 1]
    assert catalog.skus["gb200"].gpus_per_node == 4 and catalog.skus["gb200"].scale_up_domain == 72


@pytest.mark.parametrize(
    ("spec", "expanded"),
    [
        ({"start": 4, "end": 64}, (4, 8, 16, 32, 64)),
        ({"start": 1, "end": 6}, (1, 2, 4, 6)),
        ({"start": 5, "end": 5}, (5,)),
        ({"start": 8, "end": 4}, ()),
        ([16, 1, 4], (16, 1, 4)),
    ],
)
def test_expand_concurrency(spec: object, expanded: tuple[int, ...]) -> None:
    assert cat.expand_concurrency(spec) == expanded  # type: ignore[arg-type]


def test_image_repository() -> None:
    from ixci.catalog.catalog_checks import image_repository

    assert image_repository("lmsysorg/sglang:v0.5.14-cu130@sha256:" + "a" * 64) == "lmsysorg/sglang"
    assert (
        image_repository("localhost:5000/ixci/llama-server:b1")
        == "localhost:5000/ixci/llama-server"
    )
    assert (
        image_repository("nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc14")
        == "nvcr.io/nvidia/tensorrt-llm/release"
    )


def test_missing_catalog_is_a_pointed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        cat.load_catalog(tmp_path)
    assert "no catalog here" in info.value.render()


def test_stray_file_in_matrix_is_reported(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(REPO / "matrix", tmp_path / "matrix")
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")
    (tmp_path / "matrix" / "hardwre.yaml").write_text("skus: {}\n")
    with pytest.raises(InvalidInput) as info:
        cat.load_catalog(tmp_path)
    assert (
        "matrix/hardwre.yaml:1:1: unknown catalog file (did you mean 'hardware.yaml'?)"
        in info.value.render()
    )


@pytest.mark.parametrize("name", ["hardware", "engines", "models", "runners", "canary"])
def test_a_misspelt_top_key_is_a_pointed_error(tmp_path: Path, name: str) -> None:
    """A misspelt top key of a catalog file (`canaries:`) crashed validate (KeyError)."""
    import re
    import shutil

    shutil.copytree(REPO / "matrix", tmp_path / "matrix")
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")
    path = tmp_path / "matrix" / f"{name}.yaml"
    text, count = re.subn(
        rf"^{name if name != 'hardware' else 'skus'}:", "misspelt:", path.read_text(), flags=re.M
    )
    assert count == 1
    path.write_text(text)
    result = run_ixci(["validate", "--root", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert re.search(
        rf"matrix/{name}\.yaml:\d+:1: misspelt: unknown key 'misspelt'", result.output
    ), result.output


def test_validate_command_on_shipped_catalog() -> None:
    result = run_ixci(["validate", "--root", str(REPO)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_docs_are_generated_from_the_schemas() -> None:
    from ixci.schemas import render_docs

    committed = (REPO / "docs" / "catalog.md").read_text(encoding="utf-8")
    assert committed == render_docs(), (
        "docs/catalog.md is stale: python -c \"import ixci.schemas as s; print(s.render_docs(), end='')\" "
        "> docs/catalog.md"
    )
