"""A small evaluator for the GitHub Actions expression language, as the workflows use it.

Covers what `.github/workflows/*.yml` writes: literals (null, booleans, numbers, 'strings'),
contexts with `.name` and `['name']` access (names may contain `-`), `!`, `<`, `<=`, `>`, `>=`,
`==`, `!=`, `&&`, `||`, parentheses, and the functions `contains`, `startsWith`, `endsWith`,
`format`, `join`, `toJSON`, `fromJSON`, `success`, `failure`, `always`, `cancelled`.

Semantics follow GitHub's documentation ("Expressions" in the Actions reference): `&&`/`||`
return an operand, not a boolean, and short-circuit; falsy values are false, 0, -0, "", null
and NaN; `==` compares strings case-insensitively and coerces mismatched types to numbers
(null -> 0, true -> 1, '' -> 0, other text -> its number or NaN); objects and arrays are equal
only to themselves; a missing property is null. A job-level `if:` without a status function
means `success() && (...)`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>0x[0-9a-fA-F]+|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^']|'')*')
    | (?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\].,*])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class ExprError(ValueError):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"cannot tokenize {text[pos:]!r} in {text!r}")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


@dataclass
class Status:
    """What the status functions see: the results of the `needs` jobs, or of earlier steps."""

    results: tuple[str, ...] = ()
    cancelled: bool = False

    def success(self) -> bool:
        return not self.cancelled and all(r == "success" for r in self.results)

    def failure(self) -> bool:
        return any(r == "failure" for r in self.results)


@dataclass
class Evaluator:
    context: Mapping[str, Any]
    status: Status = field(default_factory=Status)
    tokens: list[tuple[str, str]] = field(default_factory=list)
    pos: int = 0

    def evaluate(self, text: str) -> Any:
        self.tokens, self.pos = tokenize(text), 0
        value = self._or()
        if self.pos != len(self.tokens):
            raise ExprError(f"unexpected {self.tokens[self.pos][1]!r} in {text!r}")
        return value

    # ---- recursive descent, lowest precedence first ----
    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ExprError("unexpected end of expression")
        tok = self.tokens[self.pos]
        if expected is not None and tok[1] != expected:
            raise ExprError(f"expected {expected!r}, got {tok[1]!r}")
        self.pos += 1
        return tok

    def _lazy(self, parse: Callable[[], Any], skip: bool) -> Any:
        # GitHub short-circuits: the right side is parsed but its functions are not called
        # (fromJSON('') on a skipped branch must not raise).
        if not skip:
            return parse()
        saved = self.context
        self.context = _Null()
        try:
            return parse()
        except ExprError:
            raise
        except Exception:
            return None
        finally:
            self.context = saved

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._lazy(self._and, skip=truthy(left))
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._eq()
        while self._peek() == "&&":
            self._take()
            right = self._lazy(self._eq, skip=not truthy(left))
            left = right if truthy(left) else left
        return left

    def _eq(self) -> Any:
        left = self._cmp()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._cmp()
            left = loose_equal(left, right) == (op == "==")
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        while self._peek() in ("<", "<=", ">", ">="):
            op = self._take()[1]
            right = self._unary()
            left = compare(left, right, op)
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix(self._primary())

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(" and kind == "op":
            value = self._or()
            self._take(")")
            return value
        if kind == "num":
            return int(text, 16) if text.lower().startswith("0x") else _number(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "name":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            if self._peek() == "(":
                return self._call(text)
            if isinstance(self.context, _Null):
                return None
            return self.context.get(text)
        raise ExprError(f"unexpected {text!r}")

    def _postfix(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if kind != "name" and name != "*":  # `.*` is the object filter
                    raise ExprError(f"bad property name {name!r}")
                value = _prop(value, name)
            else:
                key = self._or()
                self._take("]")
                value = _prop(value, key)
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args: list[Any] = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if isinstance(self.context, _Null):
            return None
        return self._apply(name.lower(), args)

    def _apply(self, name: str, args: list[Any]) -> Any:
        if name == "success":
            return self.status.success()
        if name == "failure":
            return self.status.failure()
        if name == "always":
            return True
        if name == "cancelled":
            return self.status.cancelled
        if name == "contains":
            haystack, needle = args
            if isinstance(haystack, list):
                return any(loose_equal(item, needle) for item in haystack)
            return to_str(needle).lower() in to_str(haystack).lower()
        if name == "startswith":
            return to_str(args[0]).lower().startswith(to_str(args[1]).lower())
        if name == "endswith":
            return to_str(args[0]).lower().endswith(to_str(args[1]).lower())
        if name == "format":
            return re.sub(
                r"\{(\d+)\}", lambda m: to_str(args[1 + int(m.group(1))]), to_str(args[0])
            )
        if name == "join":
            sep = to_str(args[1]) if len(args) > 1 else ","
            return sep.join(map(to_str, args[0])) if isinstance(args[0], list) else to_str(args[0])
        if name == "tojson":
            return json.dumps(args[0], indent=2)
        if name == "fromjson":
            try:
                return json.loads(to_str(args[0]))
            except json.JSONDecodeError as exc:
                raise ExprError(f"fromJSON: invalid JSON {args[0]!r}") from exc
        raise ExprError(f"unsupported function {name}()")


class _Null(dict[str, Any]):
    """The context while skipping a short-circuited operand."""


class _Filtered(list[Any]):
    """The result of `.*`: a property access applies to every element."""


def _prop(value: Any, key: Any) -> Any:
    if key == "*" and isinstance(value, list | Mapping):
        return _Filtered(value.values() if isinstance(value, Mapping) else value)
    if isinstance(value, _Filtered):
        return _Filtered(v for v in (_prop(item, key) for item in value) if v is not None)
    if isinstance(value, Mapping):
        if isinstance(key, str):
            for k, v in value.items():  # property names are case-insensitive
                if k.lower() == key.lower():
                    return v
        return None
    if isinstance(value, list) and isinstance(key, int | float) and not isinstance(key, bool):
        index = int(key)
        return value[index] if 0 <= index < len(value) else None
    return None


def _number(text: str) -> float | int:
    value = float(text)
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped == "":
            return 0.0
        try:
            return (
                float(int(stripped, 16)) if stripped.lower().startswith("0x") else float(stripped)
            )
        except ValueError:
            return math.nan
    return math.nan


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def loose_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return a is b
    if type(a) is type(b) or (a is None and b is None):
        if isinstance(a, str):
            return a.lower() == b.lower()
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    na, nb = to_number(a), to_number(b)
    return not (math.isnan(na) or math.isnan(nb)) and na == nb


def compare(a: Any, b: Any, op: str) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.lower()
        y: Any = b.lower()
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


_WRAPPED = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def evaluate_if(condition: Any, context: Mapping[str, Any], status: Status) -> bool:
    """A job's or step's `if:`; an absent condition is `success()`."""
    if condition is None:
        return status.success()
    if isinstance(condition, bool):
        return condition
    text = str(condition)
    m = _WRAPPED.match(text)
    if m and "${{" not in m.group(1):
        text = m.group(1)
    if not any(re.search(rf"\b{f}\s*\(", text) for f in STATUS_FUNCTIONS):
        text = f"success() && ({text})"
    return truthy(Evaluator(context, status).evaluate(text))


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """A field's value: one whole `${{ }}` keeps its type; otherwise interpolate as text."""
    if not isinstance(value, str):
        return value
    m = _WRAPPED.match(value)
    if m and "${{" not in m.group(1):
        return Evaluator(context).evaluate(m.group(1))
    return _EMBEDDED.sub(lambda g: to_str(Evaluator(context).evaluate(g.group(1))), value)
