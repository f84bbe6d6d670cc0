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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ixci.errors import Problem

PathKey = tuple[str | int, ...]
"""A path into a document: mapping keys and sequence indexes from the root."""

MAX_BYTES = 16 * 1024 * 1024  # catalog files are small; result.json files stay well below


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


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_str)
_FastLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_str)


def _at(file: str, mark: Any) -> Location:
    return Location(file=file, line=mark.line + 1, col=mark.column + 1)


def _simple(file: str, message: str, line: int = 1, col: int = 1) -> Problem:
    return Problem(file=file, line=line, col=col, path="", message=message)


def _decode(raw: bytes, file: str) -> tuple[str | None, Problem | None]:
    if len(raw) > MAX_BYTES:
        return None, _simple(
            file, f"file is {len(raw)} bytes; a catalog file must be under {MAX_BYTES}"
        )
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
        if id(node) in self._seen:  # an alias: already walked (and YAML forbids cycles here)
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
    """Parse YAML `text` (JSON is YAML) named `file`; problems are returned, never raised."""
    if _FastLoader is not _Loader:
        try:
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
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # ReaderError: control characters in the text
        return Document(file=file, data=None, problems=(_reader_problem(file, text, exc),))
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
    return _simple(file, f"YAML syntax error: {what}", line, col)


def _reader_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        char = getattr(exc, "character", None)
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        return _simple(file, f"unsupported character {shown} in YAML text", line, col)
    return _simple(file, f"cannot read YAML: {exc}")


def load_bytes(raw: bytes, file: str) -> Document:
    """Decode and parse one file's bytes; binary junk and empty files are problems."""
    text, problem = _decode(raw, file)
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


def load_file(path: Path, *, display: str | None = None) -> Document:
    """Load `path`; `display` is the name used in messages (default: the path as given)."""
    name = display if display is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Document(
            file=name, data=None, problems=(_simple(name, f"cannot read file: {exc.strerror}"),)
        )
    return load_bytes(raw, name)
