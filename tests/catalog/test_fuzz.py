"""Property tests: random bytes and random YAML never make `ixci validate` raise or print a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixci.catalog import catalog as cat
from ixci.catalog.catalog_build import build
from ixci.errors import Problem
from ixci.schemas import kinds, validate_instance
from ixci.yamlio import load_bytes
from tests.catalog.conftest import REPO, run_ixci

KEYS = st.sampled_from(
    ["model", "sku", "framework", "precision", "runner", "image", "scenarios", "search-space", "tp", "ep",
     "concurrency", "start", "end", "disaggregated", "prefill", "decode", "workers", "engine-args", "env",
     "skus", "engines", "models", "runners", "canary", "isl", "osl", "name", "vendor", "labels", "x"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_only_give_problems(raw: bytes) -> None:
    doc = load_bytes(raw, "fuzz.yaml")
    assert all(isinstance(p, Problem) for p in doc.problems)


@FAST
@given(JSONISH, st.sampled_from(kinds()))
def test_random_data_against_every_schema(data: object, kind: str) -> None:
    for problem in validate_instance(kind, data, file="fuzz.yaml"):
        assert problem.file == "fuzz.yaml" and problem.message


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(JSONISH | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_random_yaml_through_the_cli(tmp_path: Path, data: object) -> None:
    target = tmp_path / "recipes" / "fuzz.yaml"
    target.parent.mkdir(exist_ok=True)
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    target.write_text(text, encoding="utf-8")
    loaded, _problems = cat.collect(REPO, extra=[target])
    build(REPO, loaded)  # must not raise on any shape
    result = run_ixci(["validate", "--root", str(REPO), str(target)])
    assert result.exit_code in (0, 3), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
