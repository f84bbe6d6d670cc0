"""Answer extraction from model replies (untrusted text) and the per-row checks.

Exact match follows the lm-evaluation-harness GSM8K conventions, tried in the task's order:
- `hash-marks`: `#### N` — GSM8K's own answer format (lm-eval's `strict-match` filter);
- `answer-is`: `The answer is N` — the chain-of-thought exemplars' phrase (lm-eval gsm8k-cot);
- `last-number`: the last number anywhere in the reply (lm-eval's `flexible-extract`).
Numbers are normalised before comparison: `$`, thousands separators and a trailing full stop
are dropped and `72.0` equals `72`. Multiple choice extracts one letter, robust to `(B)`,
`Answer: B`, `b)`, `B.`, `**B**`, `The answer is B`. Every function takes at most
`MAX_REPLY_CHARS` of a reply into account, so a hostile reply costs bounded time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_REPLY_CHARS = 20_000
_NUM = r"-?\$?\s?\d[\d,]*(?:\.\d+)?"
_HASH = re.compile(r"####\s*(" + _NUM + ")")
_ANSWER_IS = re.compile(r"answer is[:\s]*\**\s*(" + _NUM + ")", re.IGNORECASE)
_ANY_NUM = re.compile(_NUM)
_LETTER_RULES = (
    # "Answer: B", "the answer is (c)", "Answer - b)": an explicit answer, any case when bracketed
    re.compile(r"[Aa]nswer\s*(?:is|:)?\s*[:\-]?\s*\**\s*(?:\(([A-Za-z])\)|([A-Za-z])\)|([A-Z])\b)"),
    re.compile(r"^\s*\**\s*\(?([A-Za-z])\)"),  # a reply that starts "b)" or "(B)"
    re.compile(r"^\s*\**\s*([A-Z])(?:[^\w\s']|\s*$)"),  # "B." / "B:" / "B<eos>" / a lone "B"
    re.compile(r"\(([A-Za-z])\)"),  # "(B)" anywhere
)


def normalise_number(text: str) -> str | None:
    """`text` as a canonical decimal string (`"1,234.50"` → `"1234.5"`), None if not a number."""
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    normal = value.normalize()
    return format(normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal, "f")


def final_number(reply: str, rules: Sequence[str]) -> str | None:
    """The reply's final answer as a normalised number by the first matching rule, else None."""
    text = reply[:MAX_REPLY_CHARS]
    for rule in rules:
        found = _by_rule(text, rule)
        if found is not None:
            return found
    return None


def _by_rule(text: str, rule: str) -> str | None:
    if rule == "hash-marks":
        m = _HASH.search(text)
        return normalise_number(m.group(1)) if m else None
    if rule == "answer-is":
        matches = _ANSWER_IS.findall(text)
        return normalise_number(matches[-1]) if matches else None
    if rule == "last-number":
        for raw in reversed(_ANY_NUM.findall(text)):
            value = normalise_number(raw)
            if value is not None:
                return value
        return None
    raise ValueError(f"unknown extraction rule {rule!r}")


def choice_letter(reply: str, choices: int = 4) -> str | None:
    """The answer letter (upper case, within the first `choices` letters) of a reply, else None.

    Rules in order: an explicit `Answer: X` / `answer is (X)`; a reply that starts with `X)` /
    `(X)`; a reply that starts with `X.` / `X:` / a lone `X`; a `(X)` anywhere. A letter outside
    the options (e.g. `E` of four) is no answer.
    """
    text = reply[:MAX_REPLY_CHARS].strip()
    valid = {chr(ord("A") + i) for i in range(max(1, min(choices, 26)))}
    for rule in _LETTER_RULES:
        for m in rule.finditer(text):
            letter = next(g for g in m.groups() if g).upper()
            if letter in valid:
                return letter
    return None


def reference_letter(value: Any, choices: int = 4) -> str | None:
    """A row's reference answer as a letter: a letter or a 0-based index."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < choices:
        return chr(ord("A") + value)
    if isinstance(value, str) and len(value.strip()) == 1:
        letter = value.strip().upper()
        return letter if "A" <= letter < chr(ord("A") + choices) else None
    return None


def check_tool_call(
    tool_calls: Any, tools: Sequence[Mapping[str, Any]], expected: str
) -> tuple[bool, str]:
    """(passed, reason) for a reply's `tool_calls` against the offered `tools`.

    Passes when the first call names `expected` and its `arguments` (a JSON string, as the
    OpenAI API sends them) parse to an object valid under that function's `parameters` schema.
    """
    from jsonschema import Draft202012Validator

    if not isinstance(tool_calls, list) or not tool_calls:
        return False, "no tool call"
    call = tool_calls[0]
    fn = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        return False, "malformed tool call (no function name)"
    name = fn["name"][:200]
    if name != expected:
        return False, f"called {name!r}, expected {expected!r}"
    args = _arguments(fn.get("arguments"))
    if args is None:
        return False, "arguments are not a JSON object"
    schema = _parameters(tools, expected)
    errors = sorted(Draft202012Validator(schema).iter_errors(args), key=lambda e: list(e.path))
    if errors:
        return False, "arguments invalid: " + errors[0].message[:200]
    return True, "ok"


def _arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str):
        if len(raw) > MAX_REPLY_CHARS:
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _parameters(tools: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for tool in tools:
        fn = tool.get("function") or {}
        if fn.get("name") == name:
            return fn.get("parameters") or {"type": "object"}
    return {"type": "object"}
