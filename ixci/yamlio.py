"""Line-aware YAML (and JSON) loading: every node keeps file:line:col, duplicate keys rejected.

`load_file` returns a `Document`: the plain data (dicts, lists, str, int, float, bool, None —
exactly what JSON Schema validates) plus a table from key path to `Location`, so later
stages can point at the offending line. Dates stay strings (YAML 1.1 would silently turn
`2026-01-01` into a `date`), mapping keys must be strings, and problems in the text itself
(empty file, binary junk, syntax errors, duplicate keys, several documents) become
`Problem`s instead of exceptions.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ixci.errors import Problem

PathKey = tuple[str | int, ...]
"""A path into a document: mapping keys and sequence indexes from the root."""

MAX_BYTES = 16 * 1024 * 1024  # catalog files are small; result.json files stay well below
MAX_DEPTH = 32
"""Nesting levels (collections inside collections, aliases expanded) a file may have. Catalog
files use fewer than 10; libyaml's composer recurses in C and crashes the interpreter on a
100,000-deep file, and every later stage recurses too."""
MAX_ALIASES = 1_000
"""Alias uses (`*name`) per file."""
MAX_ALIAS_NODES = 10_000
"""Nodes that alias expansion may add per file. Anchors share a few values; nine levels of
ten aliases each (an "alias bomb") would add a billion, and every later stage walks them."""
MAX_INT_DIGITS = 40
"""Longer integer literals are rejected before conversion (Python's int() is quadratic)."""


@dataclass(frozen=True, kw_only=True, order=True)
class Location:
    """Where a node starts: repo-relative (or as given) file name, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, kw_only=True)
class Document:
    """One loaded file: its data, where each value and each key starts, and any problems."""

    file: str
    data: Any
    values: Mapping[PathKey, Location] = field(default_factory=dict)
    keys: Mapping[PathKey, Location] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def where(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of `path` (its key if `key`), else of its nearest located ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Location(file=self.file, line=1, col=1))

    def problem(self, path: PathKey, message: str, *, key: bool = False) -> Problem:
        """A `Problem` pointing at `path` with a dotted key path."""
        loc = self.where(path, key=key)
        return Problem(
            file=loc.file, line=loc.line, col=loc.col, path=dotted(path), message=message
        )


def dotted(path: PathKey) -> str:
    """`("search-space", 0, "tp")` -> `search-space[0].tp`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (JSON has no date type)."""


# libyaml's parser is ~10x faster than the pure-Python one and gives the same nodes and marks;
# a file it rejects is parsed again with the pure-Python loader so messages stay identical.
_FastBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_FastBase):  # type: ignore[misc,valid-type]
    """The fast path of `_Loader` (same constructors)."""


def _timestamp_as_str(loader: yaml.SafeLoader, node: Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _bounded_int(loader: yaml.SafeLoader, node: Node) -> Any:
    """YAML ints that fit in 64 bits (JSON consumers and the site read them as numbers)."""
    text = str(node.value)
    if len(text) > MAX_INT_DIGITS:
        raise ConstructorError(
            None, None, f"integer literal of {len(text)} characters is too large", node.start_mark
        )
    value = loader.construct_yaml_int(node)  # type: ignore[arg-type]
    if not -(2**63) <= value < 2**63:
        raise ConstructorError(
            None, None, f"integer {text} does not fit in 64 bits", node.start_mark
        )
    return value


def _finite_float(loader: yaml.SafeLoader, node: Node) -> Any:
    """YAML floats except .inf/.nan, which JSON (the plan, result.json) cannot carry."""
    value = loader.construct_yaml_float(node)  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise ConstructorError(
            None,
            None,
            f"{node.value} is not a finite number (JSON has no infinity or NaN)",
            node.start_mark,
        )
    return value


for _cls in (_Loader, _FastLoader):
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_str)
    _cls.add_constructor("tag:yaml.org,2002:int", _bounded_int)
    _cls.add_constructor("tag:yaml.org,2002:float", _finite_float)


def _at(file: str, mark: Any) -> Location:
    return Location(file=file, line=mark.line + 1, col=mark.column + 1)


def _simple(file: str, message: str, line: int = 1, col: int = 1) -> Problem:
    return Problem(file=file, line=line, col=col, path="", message=message)


def _decode(raw: bytes, file: str, max_bytes: int) -> tuple[str | None, Problem | None]:
    if len(raw) > max_bytes:
        return None, _simple(file, _size_message(len(raw), max_bytes))
    if b"\x00" in raw:
        return None, _binary_problem(raw, raw.index(b"\x00"), file)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, _binary_problem(raw, exc.start, file)
    if not text.strip() or all(_is_comment(line) for line in text.splitlines()):
        return None, _simple(file, "file is empty: expected a YAML mapping (see docs/catalog.md)")
    return text, None


def _is_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#") or stripped in {"---", "..."}


def _binary_problem(raw: bytes, offset: int, file: str) -> Problem:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return _simple(
        file,
        f"not UTF-8 text (byte 0x{raw[offset]:02x} at offset {offset}): is this a binary file?",
        line,
        col,
    )


@dataclass
class _Frame:
    """An open collection while scanning events: expanded size and height so far."""

    anchor: str | None
    mapping: bool
    size: int = 1
    height: int = 1
    children: int = 0
    key: str | None = None  # the last scalar key of a mapping (for the key path)


@dataclass(frozen=True, kw_only=True)
class _Shape:
    """A closed anchored node: nodes it expands to and its nesting height (0 for a scalar)."""

    size: int
    height: int


class _Limits:
    """One pass over the parser's events, before anything recurses or expands aliases.

    The parsers are iterative state machines, so this pass is linear in the text and safe for
    any nesting; the composers (libyaml's in C) and every later stage recurse and expand.
    It stops at the first limit crossed: nesting deeper than `MAX_DEPTH`, more than
    `MAX_ALIASES` alias uses, more than `MAX_ALIAS_NODES` nodes added by aliases, or an alias
    inside its own anchor (a cycle JSON cannot hold).
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Shape] = {}
        self.aliases = 0
        self.added = 0

    def scan(self, loader: Any) -> Problem | None:
        """The first limit `loader`'s events cross, else None (parse errors propagate)."""
        while loader.check_event():
            event = loader.get_event()
            problem = self._event(event)
            if problem is not None:
                return problem
        return None

    def _event(self, event: Any) -> Problem | None:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(self.stack) >= MAX_DEPTH:
                return self._problem(event, f"nesting deeper than {MAX_DEPTH} levels", _FLAT)
            self.stack.append(
                _Frame(anchor=event.anchor, mapping=isinstance(event, yaml.MappingStartEvent))
            )
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            frame = self.stack.pop()
            self._close(frame.anchor, _Shape(size=frame.size, height=frame.height), None)
        elif isinstance(event, yaml.ScalarEvent):
            self._close(event.anchor, _Shape(size=1, height=0), event.value)
        elif isinstance(event, yaml.AliasEvent):
            return self._alias(event)
        return None

    def _close(self, anchor: str | None, shape: _Shape, scalar: str | None) -> None:
        """A node ended: remember its shape under its anchor and add it to its parent."""
        if anchor is not None:
            self.anchors[anchor] = shape
        if not self.stack:
            return
        parent = self.stack[-1]
        parent.size += shape.size
        parent.height = max(parent.height, shape.height + 1)
        if parent.mapping and parent.children % 2 == 0:
            parent.key = scalar
        parent.children += 1

    def _alias(self, event: Any) -> Problem | None:
        name = event.anchor
        if any(frame.anchor == name for frame in self.stack):
            return self._problem(
                event, f"alias *{name} is inside its own anchor &{name} (a cycle)", _CYCLE
            )
        shape = self.anchors.get(name)
        if shape is None:
            return None  # an undefined alias: the composer reports it with its position
        self.aliases += 1
        self.added += shape.size
        if len(self.stack) + shape.height > MAX_DEPTH:
            return self._problem(
                event, f"alias *{name} nests deeper than {MAX_DEPTH} levels", _FLAT
            )
        if self.aliases > MAX_ALIASES:
            return self._problem(event, f"more than {MAX_ALIASES} aliases in one file", _BOMB)
        if self.added > MAX_ALIAS_NODES:
            return self._problem(
                event,
                f"alias *{name} expands to {shape.size:,} values; with the aliases before it "
                f"that is {self.added:,}, over the {MAX_ALIAS_NODES:,} a file may add "
                "(an alias bomb?)",
                _BOMB,
            )
        self._close(None, shape, None)
        return None

    def _path(self) -> PathKey:
        """The key path of the node the current event starts."""
        path: list[str | int] = []
        for frame in self.stack:
            if not frame.mapping:
                path.append(frame.children)
            elif frame.children % 2 == 1:
                path.append(frame.key if frame.key is not None else "?")
            else:
                break  # a mapping key: point at the mapping
        return tuple(path)

    def _problem(self, event: Any, what: str, hint: str) -> Problem:
        loc = _at(self.file, event.start_mark)
        path = dotted(self._path())
        if len(path) > 160:  # 32 levels of long keys: keep the message one readable line
            path = f"{path[:78]}…{path[-80:]}"
        return Problem(
            file=loc.file, line=loc.line, col=loc.col, path=path, message=f"{what}; {hint}"
        )


_FLAT = "catalog files are flat: write the value out at a shallower level"
_CYCLE = "a value cannot contain itself: write the value out"
_BOMB = "anchors are for sharing a few values: write the values out or use fewer aliases"


def check_limits(text: str, file: str, *, fast: bool = True) -> Problem | None:
    """The first size limit `text` crosses (see `_Limits`), else None.

    Parse errors propagate as `yaml.YAMLError` (the caller turns them into pointed problems).
    """
    loader = (_FastLoader if fast else _Loader)(text)
    try:
        return _Limits(file).scan(loader)
    finally:
        loader.dispose()


class _Walker:
    """Walks a composed node tree: records locations, rejects duplicate and non-string keys."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[PathKey, Location] = {}
        self.keys: dict[PathKey, Location] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()

    def walk(self, node: Node, path: PathKey) -> None:
        self.values.setdefault(path, _at(self.file, node.start_mark))
        if id(node) in self._seen:  # an alias: already walked (`_Limits` rejected cycles)
            return
        self._seen.add(id(node))
        if isinstance(node, MappingNode):
            self._walk_mapping(node, path)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))

    def _walk_mapping(self, node: MappingNode, path: PathKey) -> None:
        first: dict[str, Location] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.walk(value_node, path)
                continue
            key_loc = _at(self.file, key_node.start_mark)
            if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                self._bad_key(key_node, key_loc, path)
                continue
            key = key_node.value
            if key in first:
                self.problems.append(self._duplicate(key, key_loc, first[key], path))
                continue
            first[key] = key_loc
            self.keys[(*path, key)] = key_loc
            self.walk(value_node, (*path, key))

    def _bad_key(self, key_node: Node, loc: Location, path: PathKey) -> None:
        shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
        hint = " (YAML 1.1 reads yes/no/on/off/true/false as booleans: quote it)"
        self.problems.append(
            Problem(
                file=loc.file,
                line=loc.line,
                col=loc.col,
                path=dotted(path),
                message=f"mapping key {shown!r} is not a string{hint if isinstance(key_node, ScalarNode) else ''}",
            )
        )

    def _duplicate(self, key: str, loc: Location, first: Location, path: PathKey) -> Problem:
        return Problem(
            file=loc.file,
            line=loc.line,
            col=loc.col,
            path=dotted((*path, key)),
            message=f"duplicate key {key!r} (first defined at line {first.line}); remove one",
        )


def load_text(text: str, file: str) -> Document:
    """Parse YAML `text` (JSON is YAML) named `file`; problems are returned, never raised.

    Size limits (`check_limits`: nesting, alias uses and expansion, cycles) are checked on the
    event stream first, so a hostile file is rejected in time linear in its length.
    """
    if _FastLoader is not _Loader:
        try:
            limit = check_limits(text, file)
            if limit is not None:
                return Document(file=file, data=None, problems=(limit,))
            fast = _FastLoader(text)
            try:
                node = fast.get_single_node()
            finally:
                fast.dispose()
        except (yaml.YAMLError, RecursionError, ValueError):
            pass  # reparse below with the pure-Python loader for its pointed messages
        else:
            if node is not None:
                return _from_node(node, text, file)
    return _load_slow(text, file)


def _from_node(node: Node, text: str, file: str) -> Document:
    """Build the document from a node libyaml composed (Python constructors, same data)."""
    constructor = _Loader("")
    try:
        return _document(node, file, constructor)
    except yaml.YAMLError:
        return _load_slow(text, file)
    finally:
        constructor.dispose()


def _document(node: Node, file: str, constructor: yaml.SafeLoader) -> Document:
    """Walk `node` (keys, duplicates, locations); construct its data only when it is clean."""
    walker = _Walker(file)
    walker.walk(node, ())
    if walker.problems:
        return Document(
            file=file,
            data=None,
            values=walker.values,
            keys=walker.keys,
            problems=tuple(walker.problems),
        )
    data = constructor.construct_document(node)
    return Document(file=file, data=data, values=walker.values, keys=walker.keys)


def _load_slow(text: str, file: str) -> Document:
    try:
        limit = check_limits(text, file, fast=False)
        loader = _Loader(text)
    except yaml.MarkedYAMLError as exc:
        return Document(file=file, data=None, problems=(_syntax_problem(file, exc),))
    except yaml.YAMLError as exc:  # ReaderError: control characters in the text
        return Document(file=file, data=None, problems=(_reader_problem(file, text, exc),))
    if limit is not None:
        loader.dispose()
        return Document(file=file, data=None, problems=(limit,))
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(
                file=file,
                data=None,
                problems=(_simple(file, "file is empty: expected a YAML mapping"),),
            )
        return _document(node, file, loader)
    except yaml.MarkedYAMLError as exc:
        return Document(file=file, data=None, problems=(_syntax_problem(file, exc),))
    except yaml.YAMLError as exc:  # ReaderError (control characters) and friends
        return Document(file=file, data=None, problems=(_reader_problem(file, text, exc),))
    except RecursionError:
        return Document(file=file, data=None, problems=(_simple(file, "YAML nesting is too deep"),))
    finally:
        loader.dispose()


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    if "but found another document" in what:
        what = "several YAML documents in one file; keep one document per file"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if isinstance(exc, ConstructorError):
        return _simple(file, _value_message(what), line, col)
    return _simple(file, f"YAML syntax error: {what}", line, col)


def _value_message(what: str) -> str:
    """A constructor's complaint (a tag, a number out of range) as a message with the fix."""
    if "could not determine a constructor for the tag" in what:
        tag = what.split("for the tag", 1)[1].strip().strip("'")
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        return (
            f"unsupported YAML tag {tag}: ixci files hold plain data (mappings, lists, strings, "
            "numbers, booleans, null); remove the tag"
        )
    return f"unsupported value: {what}; write a plain number (JSON-compatible) or quote it"


def _reader_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        char = getattr(exc, "character", None)
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        return _simple(file, f"unsupported character {shown} in YAML text", line, col)
    return _simple(file, f"cannot read YAML: {exc}")


def load_bytes(raw: bytes, file: str, *, max_bytes: int = MAX_BYTES) -> Document:
    """Decode and parse one file's bytes; binary junk, empty and oversized files are problems."""
    text, problem = _decode(raw, file, max_bytes)
    if problem is not None or text is None:
        return Document(file=file, data=None, problems=(problem,) if problem else ())
    if file.endswith(".json"):
        json_problem = _json_problem(text, file)
        if json_problem is not None:
            return Document(file=file, data=None, problems=(json_problem,))
    return load_text(text, file)


def _json_problem(text: str, file: str) -> Problem | None:
    """A `.json` file must be strict JSON (YAML would accept more); None when it is."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return _simple(file, f"JSON syntax error: {exc.msg}", exc.lineno, exc.colno)
    except RecursionError:
        return _simple(file, "JSON nesting is too deep")
    return None


def load_file(path: Path, *, display: str | None = None, max_bytes: int = MAX_BYTES) -> Document:
    """Load `path`; `display` is the name used in messages (default: the path as given).

    Read through `read_bounded`: a FIFO, a device or an oversized file is a problem, not a hang.
    """
    name = display if display is not None else str(path)
    raw, problem = read_bounded(path, name, max_bytes)
    if problem is not None or raw is None:
        return Document(file=name, data=None, problems=(problem,) if problem else ())
    return load_bytes(raw, name, max_bytes=max_bytes)


def read_bounded(path: Path, name: str, max_bytes: int) -> tuple[bytes | None, Problem | None]:
    """(bytes, None) of regular file `path`, or (None, problem named `name`).

    The size is checked before reading and at most `max_bytes` + 1 bytes are read; anything
    but a regular file (FIFO, device, folder) is refused without reading.
    """
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb", buffering=0) as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, _simple(name, "not a regular file (a folder, FIFO or device?)")
            if info.st_size > max_bytes:
                return None, _simple(name, _size_message(info.st_size, max_bytes))
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        return None, _simple(name, f"cannot read file: {exc.strerror or exc}")
    if len(raw) > max_bytes:  # it grew while being read
        return None, _simple(name, _size_message(len(raw), max_bytes))
    return raw, None


def _size_message(size: int, max_bytes: int) -> str:
    return (
        f"file is {size:,} bytes; at most {max_bytes:,} are read: split it, or remove what "
        "does not belong in it"
    )
