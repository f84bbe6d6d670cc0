"""Golden tests: answer extraction and scoring on hand-written replies (malformed ones too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ixci.evals import client, data, extract, scoring
from ixci.evals.errors import EvalDataError
from ixci.evals.tasks import load_task, render

REPO = Path(__file__).resolve().parents[2]
GSM = ("hash-marks", "answer-is", "last-number")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("She pays 3*6=<<3*6=18>>18 dollars.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("So the total is $5.\nThe answer is 72.", "72"),
        ("The answer is: **42**", "42"),
        ("first 3, then 4, so 7.", "7"),
        ("It costs $1,000.50 in total", "1000.5"),
        ("#### 72.0", "72"),
        ("#### -5", "-5"),
        ("The answer is 3.\n#### 4", "4"),  # hash-marks wins over the phrase
        ("no number here", None),
        ("", None),
        ("####", None),
    ],
)
def test_final_number(reply: str, expected: str | None) -> None:
    assert extract.final_number(reply, GSM) == expected


def test_final_number_respects_rule_order_and_subset() -> None:
    assert extract.final_number("The answer is 3. Later 9", ("hash-marks",)) is None
    assert extract.final_number("The answer is 3. Later 9", ("answer-is",)) == "3"
    assert extract.final_number("The answer is 3. Later 9", ("last-number",)) == "9"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("(B)", "B"),
        ("Answer: B", "B"),
        ("b)", "B"),
        ("B. Paris", "B"),
        ("C", "C"),
        ("**C**", "C"),
        ("The answer is (c).", "C"),
        ("answer: d)", "D"),
        ("A<|im_end|>", "A"),
        ("I think it is (D) Heart", "D"),
        ("A cat", None),
        ("I think", None),
        ("E", None),
        ("Answer: E", None),
        ("", None),
        ("(Z)", None),
    ],
)
def test_choice_letter(reply: str, expected: str | None) -> None:
    assert extract.choice_letter(reply) == expected


def test_reference_letter_accepts_letters_and_indices() -> None:
    assert extract.reference_letter("b") == "B"
    assert extract.reference_letter(2) == "C"
    assert extract.reference_letter(7) is None
    assert extract.reference_letter(True) is None


TOOLS = [{"type": "function", "function": {"name": "set_timer", "parameters": {
    "type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1}},
    "required": ["minutes"], "additionalProperties": False}}}]  # fmt: skip


@pytest.mark.parametrize(
    ("calls", "ok", "why"),
    [
        ([{"function": {"name": "set_timer", "arguments": '{"minutes": 10}'}}], True, "ok"),
        ([{"function": {"name": "set_timer", "arguments": {"minutes": 10}}}], True, "ok"),
        ([{"function": {"name": "set_timer", "arguments": '{"minutes": 0}'}}], False, "invalid"),
        ([{"function": {"name": "set_timer", "arguments": '{"mins": 3}'}}], False, "invalid"),
        ([{"function": {"name": "set_timer", "arguments": "{not json"}}], False, "JSON object"),
        ([{"function": {"name": "get_weather", "arguments": "{}"}}], False, "expected"),
        ([{"function": {}}], False, "malformed"),
        (["junk"], False, "malformed"),
        ([], False, "no tool call"),
        (None, False, "no tool call"),
    ],
)
def test_tool_call_check(calls: object, ok: bool, why: str) -> None:
    passed, reason = extract.check_tool_call(calls, TOOLS, "set_timer")
    assert passed is ok and why in reason


def test_wilson_interval_golden_values() -> None:
    lo, hi = scoring.wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert scoring.wilson(0, 8)[0] == 0.0 and round(scoring.wilson(0, 8)[1], 4) == 0.3244
    assert scoring.wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        scoring.wilson(5, 3)


def test_gate_min_score_and_baseline_beyond_interval() -> None:
    score = scoring.Score(task="t", correct=8, n=10)  # CI 0.490–0.943
    assert scoring.check(score, scoring.GateRule(task="t", min_score=0.7)) == []
    assert scoring.check(score, scoring.GateRule(task="t", min_score=0.9))
    assert scoring.check(score, scoring.GateRule(task="t", baseline_score=0.9)) == []  # noise
    assert scoring.check(score, scoring.GateRule(task="t", baseline_score=0.95))  # beyond CI
    assert scoring.gate({}, (scoring.GateRule(task="t", min_score=0.1),)) == [
        "t: gated but not run"
    ]
    empty = scoring.Score(task="t", correct=0, n=0)
    assert scoring.check(empty, scoring.GateRule(task="t"))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b"{}", "no choices"),
        (b'{"choices": ["x"]}', "no choices"),
    ],
)
def test_malformed_replies_are_row_errors(body: bytes, error: str) -> None:
    assert error in (client.parse_reply(body).error or "")


def test_reply_fields_are_bounded_and_draft_timings_checked() -> None:
    body = {"choices": [{"message": {"content": "x" * 50_000, "tool_calls": ["bad", {}] * 10}}],
            "timings": {"draft_n": 10, "draft_n_accepted": 11}}  # fmt: skip
    reply = client.parse_reply(json.dumps(body).encode())
    assert len(reply.text) == client.MAX_TEXT_CHARS
    assert len(reply.tool_calls) <= client.MAX_TOOL_CALLS and reply.draft is None
    ok = client.parse_reply(
        b'{"choices":[{"text":"7"}],"timings":{"draft_n":8,"draft_n_accepted":6}}'
    )
    assert ok.text == "7" and ok.draft == (8, 6)


def test_render_expands_only_row_fields() -> None:
    assert (
        render("Q: {question} {missing}{x.__class__}", {"question": "2+2?"})
        == "Q: 2+2? {x.__class__}"
    )


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(EvalDataError, match=r"rows.jsonl:2: expected a JSON object"):
        data.load(bad)
    bad.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(EvalDataError, match=r"rows.jsonl:2: not valid JSON"):
        data.load(bad)


def test_package_loader_reads_a_file_inside_an_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "ixci_evalpkg_sample"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "rows.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = data.load("package:ixci_evalpkg_sample/data/rows.jsonl")
    assert rows.rows[0]["answer"] == "#### 1" and len(rows.sha256) == 64
    with pytest.raises(EvalDataError):
        data.load("package:ixci_evalpkg_sample/../x.jsonl")


def test_committed_tasks_load_and_their_references_extract() -> None:
    from ixci.evals.run import reference

    for name in ("gsm8k", "multiple-choice", "tool-call"):
        task = load_task(REPO, name)
        rows = data.load(task.dataset.sample)
        scored = rows.split(task.dataset.split, default=True)
        assert scored and all(reference(task, r, i) for i, r in enumerate(scored))
    with pytest.raises(EvalDataError, match=r"did you mean .gsm8k."):
        load_task(REPO, "gsm8kk")
