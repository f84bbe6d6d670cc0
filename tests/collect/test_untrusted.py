"""Untrusted artifacts: bounded reads, strict JSON limits, formats enforced, one bad file isolated."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from collect.factory import make_job, make_result
from ixci.cli import cli
from ixci.errors import CollectError
from ixci.results.artifacts import Limits, Rejected, nesting_depth, parse_json, read_zip_member
from ixci.results.collect import collect, validate_artifact


def _write(root: Path, name: str, data: bytes) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_bytes(data)
    return folder


def _good(**kw: object) -> dict:
    return make_result(make_job(name="good", tp=2), **kw)  # type: ignore[arg-type]


def test_the_date_time_format_is_really_checked() -> None:
    """jsonschema skips formats it has no checker for: the dependency must be installed."""
    assert "date-time" in jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
    doc = _good()
    doc["run"]["started_at"] = "yesterday at noon"
    with pytest.raises(Rejected) as info:
        validate_artifact(json.dumps(doc).encode())
    assert info.value.category == "schema"
    assert "run/started_at" in info.value.reasons[0] and "date-time" in info.value.reasons[0]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a": 1e400}', "number"),
        (b'{"a": -1e400}', "number"),
        (b'{"a": ' + b"9" * 400 + b"}", "number"),
        (b'{"a": NaN}', "nan"),
        (b'{"a": -Infinity}', "nan"),
        (b'{"a": "' + b"[" * 1000 + b'"}', None),  # brackets inside a string are text
    ],
)
def test_json_limits(text: bytes, category: str | None) -> None:
    if category is None:
        assert parse_json(text) == {"a": "[" * 1000}
        return
    with pytest.raises(Rejected) as info:
        parse_json(text)
    assert info.value.category == category


def test_depth_scan_ignores_escaped_quotes() -> None:
    assert nesting_depth(b'{"a": "\\"[[[[", "b": [[1]]}') == 3


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    buf = io.BytesIO()
    block = b" " * (1 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("result.json", "w", force_zip64=True) as fh,
    ):
        for _ in range(64):  # 64 MiB of spaces → ~64 KiB compressed
            fh.write(block)
    path = tmp_path / "bomb.zip"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 1 << 20
    with pytest.raises(Rejected) as info:
        read_zip_member(path, "result.json", Limits(max_json_bytes=1 << 20))
    assert info.value.category == "too_large"


def test_a_zip_member_that_lies_about_its_size_is_capped(tmp_path: Path) -> None:
    """The declared size says small, the stream inflates to more: the bounded read stops."""
    data = b" " * 5000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("result.json", data)
    raw = bytearray(buf.getvalue())
    # patch the uncompressed size in the local header (offset 22) and central directory
    raw[22:26] = (100).to_bytes(4, "little")
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(raw))
    with pytest.raises(Rejected) as info:
        read_zip_member(path, "result.json", Limits(max_json_bytes=1000))
    assert info.value.category in {"too_large", "corrupt_zip"}


def test_each_hostile_file_is_skipped_and_the_good_ones_kept(tmp_path: Path) -> None:
    good = _good(run_id="9")
    _write(tmp_path, "good", json.dumps(good).encode())
    _write(tmp_path, "deep", b"[" * 100_000 + b"]" * 100_000)
    _write(
        tmp_path, "huge-float", json.dumps(_good(run_id="9")).encode().replace(b"60.0", b"1e400", 1)
    )
    _write(tmp_path, "huge-int", b'{"kind": "ixci.result", "n": ' + b"7" * 400 + b"}")
    _write(tmp_path, "big", b" " * 2_000_000 + b"{}")
    col = collect([tmp_path], run_id="9", limits=Limits(max_json_bytes=1_000_000))
    assert [a.job_id for a in col.accepted] == [good["job"]["id"]]
    got = {s.source.split("/")[1]: s.category for s in col.skipped}
    assert got == {
        "deep": "too_deep",
        "huge-float": "number",
        "huge-int": "number",
        "big": "too_large",
    }


def test_collect_cli_with_hostile_files_exits_cleanly(tmp_path: Path) -> None:
    arts = tmp_path / "artifacts"
    _write(arts, "good", json.dumps(_good(run_id="9")).encode())
    _write(arts, "deep", b"{" + b'"a":{' * 50_000 + b"}" * 50_001)
    res = CliRunner().invoke(cli, ["collect", str(arts), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert res.exception is None
    assert "accepted 1 artifact(s), skipped 1" in res.output
    strict = CliRunner().invoke(
        cli, ["collect", str(arts), "--out", str(tmp_path / "out"), "--strict"]
    )
    assert isinstance(strict.exception, CollectError) and strict.exception.exit_code == 6
    assert "1 artifact(s) rejected" in strict.exception.message


@pytest.mark.parametrize(
    "started_at",
    [
        "../../../../tmp/x",
        "2026-11-28/../../../../tmp/x",
        "..%2F..%2Ftmp",
        "2026-11-28T10:00:00Z/../../x",
        "2026-02-30T10:00:00Z",
        "/etc/passwdT00:00:00Z",
    ],
)
def test_a_crafted_started_at_is_rejected(started_at: str) -> None:
    doc = _good()
    doc["run"]["started_at"] = started_at
    with pytest.raises(Rejected) as info:
        validate_artifact(json.dumps(doc).encode())
    assert info.value.category in {"schema", "unsafe_value"}
