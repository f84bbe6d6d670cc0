"""The expression evaluator the security tests rely on, against GitHub's documented rules."""

from __future__ import annotations

import math

import pytest

from .ghexpr import Evaluator, ExprError, Status, evaluate_if, render

CTX = {
    "github": {
        "event_name": "pull_request",
        "repository": "ixci-dev/ixci",
        "event": {
            "action": "labeled",
            "label": {"name": "Safe-To-Bench"},
            "pull_request": {"number": 42, "head": {"repo": None}, "labels": [{"name": "a"}]},
        },
    },
    "needs": {"plan": {"result": "success", "outputs": {"shards": '["shard-0"]', "shard-1": ""}}},
    "matrix": {"runs-on": ["self-hosted", "h200"], "timeout-minutes": 95},
}


def ev(text: str) -> object:
    return Evaluator(CTX).evaluate(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("github.event_name == 'PULL_REQUEST'", True),  # strings compare case-insensitively
        ("github.event.label.name == 'safe-to-bench'", True),
        ("github.event.pull_request.head.repo.full_name == github.repository", False),
        ("github.event.pull_request.head.repo.full_name", None),  # property of null is null
        ("github.event.nothing.here", None),
        ("github.event.pull_request.number == '42'", True),  # '42' coerces to 42
        ("null == 0", True),
        ("'' == 0", True),
        ("true == 1", True),
        ("'abc' == 0", False),  # NaN equals nothing
        ("github.event['pull_request']['number'] >= 40", True),
        ("github.event.pull_request.labels[0].name", "a"),
        ("!github.event.pull_request.head.repo", True),
        ("1 && 'x'", "x"),  # && / || return an operand
        ("0 || 'fallback'", "fallback"),
        ("null || ''", ""),
        ("contains(fromJSON(needs.plan.outputs.shards), 'shard-0')", True),
        ("contains(fromJSON(needs.plan.outputs.shards), 'shard-1')", False),
        ("contains('Hello World', 'WORLD')", True),
        ("startsWith(github.repository, 'IXCI-')", True),
        ("endsWith(github.repository, '/ixci')", True),
        ("format('sweep-{0}-{1}', github.event.pull_request.number, 'x')", "sweep-42-x"),
        ("matrix.timeout-minutes", 95),  # names may contain '-'
        ("needs.plan.outputs.shard-1 != ''", False),
        ("(1 < 2) && !(2 <= 1)", True),
        ("0x10 == 16", True),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("contains(github.event.pull_request.labels.*.name, 'A')", True),  # object filter
        ("contains(github.event.pull_request.labels.*.name, 'b')", False),
    ],
)
def test_documented_semantics(text: str, expected: object) -> None:
    assert ev(text) == expected


def test_short_circuit_skips_the_right_side() -> None:
    # fromJSON('') would fail; GitHub does not evaluate it when the left side decides.
    assert ev("false && fromJSON('')") is False
    assert ev("true || fromJSON('')") is True
    with pytest.raises(ExprError):
        ev("true && fromJSON('')")


def test_objects_equal_only_themselves() -> None:
    assert ev("fromJSON('[1]') == fromJSON('[1]')") is False
    assert ev("github.event == github.event") is True


def test_nan_and_falsy_values() -> None:
    assert Evaluator({"x": math.nan}).evaluate("x || 'nan is falsy'") == "nan is falsy"
    for falsy in ("false", "0", "''", "null"):
        assert ev(f"!{falsy}") is True


def test_if_without_status_function_means_success_and() -> None:
    failed = Status(results=("failure",))
    assert evaluate_if("true", CTX, Status(results=("success",))) is True
    assert evaluate_if("true", CTX, failed) is False
    assert evaluate_if("always() && true", CTX, failed) is True
    assert evaluate_if("failure()", CTX, failed) is True
    assert evaluate_if("${{ true }}", CTX, Status()) is True
    assert evaluate_if(None, CTX, Status(results=("skipped",))) is False  # skipped needs skip


def test_render_keeps_type_of_a_whole_expression_and_interpolates_text() -> None:
    assert render("${{ matrix.runs-on }}", CTX) == ["self-hosted", "h200"]
    assert render("${{ matrix.timeout-minutes }}", CTX) == 95
    assert render("result-${{ github.event.pull_request.number }}-x", CTX) == "result-42-x"
    assert render(7, CTX) == 7


@pytest.mark.parametrize("bad", ["a ==", "(a", "a b", "'unterminated", "a $ b"])
def test_malformed_expressions_raise(bad: str) -> None:
    with pytest.raises(ExprError):
        ev(bad)
