"""Rows of an eval task without a hub: local JSONL/Parquet, files inside installed packages,
and a local Hugging Face `datasets` cache.

A source is one of:
- a path to a `.jsonl` file (one JSON object per line) or a `.parquet` file (needs pyarrow);
- `package:DIST/PATH` — a data file shipped inside an installed Python package (read with
  `importlib.resources`, so wheels and zipped installs work);
- `hf:NAME[:CONFIG]:SPLIT` — the `datasets` library in offline mode over its local cache.
Every loader returns `Rows`: the rows plus what the artifact records about them (source, the
sha256 of the bytes read — for the Hugging Face cache, of the canonical JSON of the rows).
Rows are untrusted: sizes are bounded and every bad line is an error naming file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ixci.evals.errors import EvalDataError, EvalUnavailable

MAX_DATA_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_ROWS = 200_000


@dataclass(frozen=True, kw_only=True)
class Rows:
    """Loaded rows and their provenance."""

    rows: tuple[Mapping[str, Any], ...]
    source: str
    sha256: str

    def split(self, name: str, *, default: bool) -> list[Mapping[str, Any]]:
        """Rows whose `split` field is `name` (rows without one count when `default`)."""
        return [r for r in self.rows if r.get("split", name if default else None) == name]


def load(source: str | Path) -> Rows:
    """The rows of `source` (see the module docstring); `EvalDataError` / `EvalUnavailable`."""
    text = str(source)
    if text.startswith("package:"):
        return load_package(text[len("package:") :])
    if text.startswith("hf:"):
        return load_hf(text[len("hf:") :])
    path = Path(text)
    if path.suffix == ".parquet":
        return load_parquet(path)
    return load_jsonl(path)


def parse_jsonl(raw: bytes, name: str) -> tuple[Mapping[str, Any], ...]:
    """JSON objects, one per non-blank line; `EvalDataError` with file:line for a bad one."""
    rows: list[Mapping[str, Any]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            raise EvalDataError(f"{name}:{number}: line longer than {MAX_LINE_BYTES} bytes")
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EvalDataError(f"{name}:{number}: not valid JSON ({exc})",
                                hint="one JSON object per line (JSON Lines)") from None  # fmt: skip
        if not isinstance(row, dict):
            raise EvalDataError(
                f"{name}:{number}: expected a JSON object, got {type(row).__name__}"
            )
        rows.append(row)
        if len(rows) > MAX_ROWS:
            raise EvalDataError(f"{name}: more than {MAX_ROWS} rows")
    if not rows:
        raise EvalDataError(f"{name}: no rows", hint="one JSON object per line")
    return tuple(rows)


def _read(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise EvalDataError(f"{path}: no such data file",
                                hint="give a .jsonl or .parquet file, package:DIST/PATH or hf:NAME:SPLIT")  # fmt: skip
        if path.stat().st_size > MAX_DATA_BYTES:
            raise EvalDataError(f"{path}: larger than {MAX_DATA_BYTES >> 20} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_jsonl(path: Path) -> Rows:
    """Rows of a local JSON Lines file."""
    raw = _read(path)
    return Rows(rows=parse_jsonl(raw, str(path)), source=str(path), sha256=_sha(raw))


def load_parquet(path: Path) -> Rows:
    """Rows of a local Parquet file (pyarrow must be installed)."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise EvalUnavailable(f"{path}: reading Parquet needs pyarrow, which is not installed",
                              hint="pip install pyarrow, or convert the file to JSON Lines") from None  # fmt: skip
    raw = _read(path)
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:
        raise EvalDataError(f"{path}: not a readable Parquet file ({exc})") from None
    return Rows(rows=tuple(rows[:MAX_ROWS]), source=str(path), sha256=_sha(raw))


def load_package(spec: str) -> Rows:
    """Rows of `DIST/PATH` inside installed package DIST (JSON Lines)."""
    import importlib.resources

    package, _, inner = spec.partition("/")
    if not package.isidentifier() or not inner or ".." in inner.split("/"):
        raise EvalDataError(f"package:{spec}: expected package:PACKAGE/PATH/TO/FILE.jsonl")
    try:
        ref = importlib.resources.files(package).joinpath(inner)
        raw = ref.read_bytes()
    except ModuleNotFoundError:
        raise EvalUnavailable(f"package:{spec}: package {package!r} is not installed",
                              hint=f"pip install the distribution that provides {package!r}") from None  # fmt: skip
    except OSError as exc:
        raise EvalDataError(
            f"package:{spec}: no file {inner!r} in package {package!r} ({exc})"
        ) from None
    if len(raw) > MAX_DATA_BYTES:
        raise EvalDataError(f"package:{spec}: larger than {MAX_DATA_BYTES >> 20} MiB")
    return Rows(
        rows=parse_jsonl(raw, f"package:{spec}"), source=f"package:{spec}", sha256=_sha(raw)
    )


def load_hf(spec: str) -> Rows:
    """Rows of `NAME[:CONFIG]:SPLIT` from the local Hugging Face `datasets` cache (offline)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise EvalDataError(f"hf:{spec}: expected hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")
    try:
        import datasets  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise EvalUnavailable(f"hf:{spec}: the Hugging Face `datasets` library is not installed",
                              hint="pip install datasets (the data must already be in its cache), "
                                   "or export the split to JSON Lines") from None  # fmt: skip
    name, config, split = (parts[0], None, parts[1]) if len(parts) == 2 else tuple(parts)
    datasets.config.HF_DATASETS_OFFLINE = True  # a cache only: never reach a hub at run time
    try:
        table = datasets.load_dataset(name, config, split=split)
    except Exception as exc:
        raise EvalUnavailable(f"hf:{spec}: not in the local datasets cache ({exc})",
                              hint="load it once where the hub is reachable, or use a JSONL file") from None  # fmt: skip
    rows = tuple(dict(r) for r in table.select(range(min(len(table), MAX_ROWS))))
    canonical = "\n".join(json.dumps(r, sort_keys=True, default=str) for r in rows).encode()
    return Rows(rows=rows, source=f"hf:{spec}", sha256=_sha(canonical))


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
