"""The JSON Schemas in `schemas/`: finding them, validating, pointed messages, defaults.

The schemas are the single source of truth for the shape of every input file and of the
result artifact. `validate_instance` turns jsonschema's errors into `Problem`s with
file:line:col, a dotted key path and a did-you-mean for unknown keys and enum values;
`apply_defaults` fills in the schema `default`s (the only place defaults live).

Schemas are found in the installed wheel (`ixci/_schemas`, force-included by pyproject) or,
in an editable checkout, in `<repo>/schemas`.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ixci.errors import Problem
from ixci.yamlio import Document, PathKey, dotted

SUFFIX = ".schema.json"
SHARED = "common"  # definitions only, not a file kind


def schema_dir() -> Path:
    """The folder holding `*.schema.json`: the wheel's copy first, then the checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schemas", here.parent / "schemas"):
        if (candidate / f"{SHARED}{SUFFIX}").is_file():
            return candidate
    raise FileNotFoundError(
        f"ixci's schemas are missing (looked in {here / '_schemas'} and {here.parent / 'schemas'})"
    )


def kinds() -> tuple[str, ...]:
    """Every file kind with a schema (`recipe`, `hardware`, …, `result` once it exists)."""
    names = (p.name[: -len(SUFFIX)] for p in schema_dir().glob(f"*{SUFFIX}"))
    return tuple(sorted(n for n in names if n != SHARED))


@functools.cache
def _registry() -> Registry:
    return schema_registry(schema_dir())


def schema_registry(folder: Path) -> Registry:
    """Every schema of `folder`, by file name and by its `$id` when it has one (result.json's
    `job` refers to plan.schema.json's definitions relative to its `$id`)."""
    resources = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((path.name, resource))
        if resource.id():
            resources.append((str(resource.id()), resource))
    return Registry().with_resources(resources)


def load_schema(kind: str) -> dict[str, Any]:
    """The parsed schema of `kind`; `KeyError` naming the known kinds when there is none."""
    try:
        contents = _registry()[f"{kind}{SUFFIX}"].contents
    except LookupError:
        raise KeyError(f"no schema for kind {kind!r}; known kinds: {', '.join(kinds())}") from None
    assert isinstance(contents, dict)
    return contents


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    schema = load_schema(kind)
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def has_schema(kind: str) -> bool:
    """Whether `schemas/<kind>.schema.json` exists (e.g. `result` only once the runner ships it)."""
    return kind in kinds()


def validate_instance(
    kind: str,
    data: Any,
    *,
    file: str = "<input>",
    locations: Document | None = None,
) -> list[Problem]:
    """Validate `data` against the schema of `kind`; every error as a pointed `Problem`.

    `locations` (the `Document` the data came from) gives line and column; without it
    every problem points at line 1. Returns [] when the data is valid. Problems are
    sorted by position and deduplicated.
    """
    doc = locations if locations is not None else Document(file=file, data=data)
    problems: dict[tuple[Any, ...], Problem] = {}
    for error in _validator(kind).iter_errors(data):
        for problem in _convert(error, doc):
            problems.setdefault((problem.line, problem.col, problem.path, problem.message), problem)
    return sorted(problems.values(), key=lambda p: (p.line, p.col, p.path, p.message))


# --- error conversion -------------------------------------------------------------------


def _path(error: ValidationError) -> PathKey:
    return tuple(error.absolute_path)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choices(values: Iterable[Any]) -> str:
    items = [str(v) for v in values]
    return ", ".join(items) if len(items) <= 14 else ", ".join(items[:14]) + ", …"


def _convert(error: ValidationError, doc: Document) -> list[Problem]:
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        return [_bad_name(error, doc)]
    handler = _HANDLERS.get(str(error.validator))
    if handler is not None:
        return handler(error, doc)
    return [doc.problem(_path(error), _generic(error))]


def _generic(error: ValidationError) -> str:
    custom = error.schema.get("x-error") if isinstance(error.schema, dict) else None
    return f"{_show(error.instance)} {custom}" if custom else error.message


def _unknown_keys(error: ValidationError, doc: Document) -> list[Problem]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = list(schema.get("properties", {}))
    path = _path(error)
    out = []
    for key in sorted(set(error.instance) - set(allowed)):
        hint = suggest(str(key), allowed) or (f"; allowed: {_choices(allowed)}" if allowed else "")
        out.append(doc.problem((*path, key), f"unknown key {key!r}{hint}", key=True))
    return out


def _required(error: ValidationError, doc: Document) -> list[Problem]:
    missing = error.validator_value if isinstance(error.validator_value, list) else []
    present = error.instance if isinstance(error.instance, dict) else {}
    out = []
    for key in missing:
        if key not in present:
            hint = suggest(key, [k for k in present if isinstance(k, str)])
            typo = f"; is {hint[len(' (did you mean ') : -2]} a typo of it?" if hint else ""
            out.append(doc.problem(_path(error), f"missing required key {key!r}{typo}"))
    return out


def _enum(error: ValidationError, doc: Document) -> list[Problem]:
    options = [str(v) for v in error.validator_value]
    hint = suggest(str(error.instance), options)
    message = f"{_show(error.instance)} is not one of {_choices(options)}{hint}"
    return [doc.problem(_path(error), message)]


def _type(error: ValidationError, doc: Document) -> list[Problem]:
    expected = error.validator_value
    wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
    wanted = wanted.replace("object", "mapping").replace("array", "list")
    message = f"expected {wanted}, got {_type_name(error.instance)} {_show(error.instance)}"
    return [doc.problem(_path(error), message)]


def _any_of(error: ValidationError, doc: Document) -> list[Problem]:
    custom = error.schema.get("x-error") if isinstance(error.schema, dict) else None
    if custom:
        return [doc.problem(_path(error), f"{_show(error.instance)} {custom}")]
    # Prefer the branch whose type matched the value: its error says what is wrong.
    same_type = [
        e
        for e in error.context or []
        if e.validator != "type" and "type" not in e.relative_schema_path
    ]
    if same_type:
        deepest = max(same_type, key=lambda e: len(e.absolute_path))
        return _convert(deepest, doc)
    types = sorted({_wanted(e) for e in error.context or []})
    message = (
        f"expected {' or '.join(types)}, got {_type_name(error.instance)} {_show(error.instance)}"
    )
    return [doc.problem(_path(error), message)]


def _wanted(error: ValidationError) -> str:
    value = (
        error.validator_value if error.validator == "type" else error.schema.get("type", "value")
    )
    text = " or ".join(value) if isinstance(value, list) else str(value)
    return text.replace("object", "mapping").replace("array", "list")


def _bad_name(error: ValidationError, doc: Document) -> Problem:
    name = error.instance
    path = (*_path(error), name) if isinstance(name, str) else _path(error)
    if error.validator == "enum":
        options = [str(v) for v in error.validator_value]
        message = f"unknown key {name!r}{suggest(str(name), options) or '; allowed: ' + _choices(options)}"
    else:
        custom = error.schema.get("x-error") if isinstance(error.schema, dict) else None
        message = f"key {name!r} {custom}" if custom else f"key {name!r}: {error.message}"
    return doc.problem(path, message, key=True)


_HANDLERS = {
    "additionalProperties": _unknown_keys,
    "required": _required,
    "enum": _enum,
    "type": _type,
    "anyOf": _any_of,
    "oneOf": _any_of,
}


# --- defaults ---------------------------------------------------------------------------


def apply_defaults(kind: str, data: Any) -> Any:
    """A deep copy of valid `data` with every missing property that has a schema `default` set.

    Call it on data that passed `validate_instance`; the defaults are the schema's.
    """
    resolver = _registry().resolver(base_uri=f"{kind}{SUFFIX}")
    out = copy.deepcopy(data)
    _fill(load_schema(kind), out, resolver)
    return out


_RESOLVED: dict[tuple[int, str], tuple[Mapping[str, Any], Any]] = {}


def _resolve(schema: Mapping[str, Any], resolver: Any) -> tuple[Mapping[str, Any], Any]:
    # Memoised per (schema node, base URI): the schemas are loaded once and never change, and
    # reference lookups dominated catalog loading before.
    if "$ref" not in schema:
        return schema, resolver
    key = (id(schema), str(getattr(resolver, "_base_uri", "")))
    hit = _RESOLVED.get(key)
    if hit is None:
        node, res = schema, resolver
        while "$ref" in node:
            resolved = res.lookup(node["$ref"])
            node, res = resolved.contents, resolved.resolver
        hit = _RESOLVED[key] = (node, res)
    return hit


def _fill(schema: Mapping[str, Any], value: Any, resolver: Any) -> None:
    schema, resolver = _resolve(schema, resolver)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, sub in props.items():
            sub_resolved, _ = _resolve(sub, resolver)
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            elif key not in value and "default" in sub_resolved:
                value[key] = copy.deepcopy(sub_resolved["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _fill(props[key], item, resolver)
            elif isinstance(extra, dict):
                _fill(extra, item, resolver)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill(schema["items"], item, resolver)


__all__ = [
    "apply_defaults",
    "dotted",
    "has_schema",
    "kinds",
    "load_schema",
    "schema_dir",
    "suggest",
    "validate_instance",
]


# --- docs -------------------------------------------------------------------------------

DOC_KINDS = ("hardware", "engines", "models", "runners", "canary", "recipe", "scenario")


def render_docs() -> str:
    """`docs/catalog.md`: every catalog file kind, generated from the schema descriptions.

    Regenerate with `python -c "import ixci.schemas as s; print(s.render_docs(), end='')" > docs/catalog.md`;
    a test checks the file is up to date.
    """
    lines = [
        "# The catalog: file reference",
        "",
        "<!-- generated from schemas/*.schema.json by ixci.schemas.render_docs(); do not edit -->",
        "",
        "YAML keys are kebab-case. A default is applied by the loader when a key is left out.",
        "Check your edits with `ixci validate` (every problem at once, as `file:line:col: key: message`).",
        "",
        *_limits_doc(),
    ]
    for kind in DOC_KINDS:
        schema = load_schema(kind)
        lines += [f"## `{schema.get('title', kind)}`", "", str(schema.get("description", "")), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        resolver = _registry().resolver(base_uri=f"{kind}{SUFFIX}")
        lines += [_doc_row(*row) for row in _doc_rows(schema, resolver, "", set())]
        lines.append("")
    return "\n".join(lines)


def _limits_doc() -> list[str]:
    """The "Files and limits" section, from the constants the loader enforces."""
    from ixci import yamlio
    from ixci.catalog.catalog_files import CATALOG_MAX_BYTES

    return [
        "## Files and limits",
        "",
        "- Recipe and scenario file names are `<name>.yaml`, where the name (it becomes the "
        "recipe's name in plans and results) uses only `A-Z a-z 0-9 . _ -`, starts with a letter "
        "or digit and has at most 128 characters. Files starting with `.` are ignored.",
        "- Only regular files inside the repository are read: a folder, FIFO or device where a "
        "catalog file is expected, or a symbolic link that leaves the repository, is an error.",
        f"- A catalog file holds at most {CATALOG_MAX_BYTES:,} bytes (checked before reading), "
        "UTF-8 text (a leading byte-order mark is fine), one YAML document.",
        f"- Nesting: at most {yamlio.MAX_DEPTH} levels. Anchors and aliases work (also `<<:` merge "
        f"keys), up to {yamlio.MAX_ALIASES:,} alias uses and {yamlio.MAX_ALIAS_NODES:,} values "
        "added by their expansion per file; an alias inside its own anchor is an error.",
        "- Plain data only: mappings with string keys, lists, strings, numbers, booleans, null. "
        "No tags such as `!!python/object`, no duplicate keys, no `.inf`/`.nan`, integers within "
        "64 bits; dates stay strings.",
        "",
    ]


def _doc_row(key: str, kind: str, default: str, description: str) -> str:
    return (
        f"| `{key}` | {kind} | {default} | {description.replace('|', '/').replace(chr(10), ' ')} |"
    )


def _doc_type(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind:
        return str(kind).replace("object", "mapping").replace("array", "list")
    return "one of several forms" if "anyOf" in schema else "value"


def _doc_rows(
    schema: Mapping[str, Any], resolver: Any, prefix: str, seen: set[str]
) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for key, sub in schema.get("properties", {}).items():
        resolved, sub_resolver = _resolve(sub, resolver)
        merged = {**resolved, **{k: v for k, v in sub.items() if k != "$ref"}}
        default = sub.get("default", resolved.get("default"))
        shown = "—" if default is None and "default" not in merged else f"`{json.dumps(default)}`"
        rows.append((prefix + key, _doc_type(merged), shown, str(merged.get("description", ""))))
        rows += _doc_children(merged, sub_resolver, prefix + key, seen | {str(sub.get("$ref", ""))})
    return rows


def _doc_children(
    schema: Mapping[str, Any], resolver: Any, key: str, seen: set[str]
) -> list[tuple[str, str, str, str]]:
    for child, suffix in (
        (schema.get("items"), "[]."),
        (schema.get("additionalProperties"), ".<name>."),
    ):
        if not isinstance(child, dict) or str(child.get("$ref", "")) in seen:
            continue
        resolved, sub_resolver = _resolve(child, resolver)
        if "properties" in resolved:
            return _doc_rows(
                resolved, sub_resolver, key + suffix, seen | {str(child.get("$ref", ""))}
            )
    if "properties" in schema:
        return _doc_rows(schema, resolver, key + ".", seen)
    return []
