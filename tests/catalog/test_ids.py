"""ixci.ids: the one place untrusted identifiers are checked before they become paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from ixci import ids
from ixci.errors import UnsafeValue


@pytest.mark.parametrize("good", ["1234567890", "demo-1", "local_2026.12.04", "a"])
def test_run_id_accepts_plain_names(good: str) -> None:
    assert ids.run_id(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "..", "../x", "a/b", "-rf", ".hidden", "a\nb", "a b", "$(id)", "x" * 65, "a..b", "é"],
)
def test_run_id_rejects_hostile_values(bad: str) -> None:
    with pytest.raises(UnsafeValue, match="not a safe run id"):
        ids.run_id(bad)


def test_job_id_shape() -> None:
    assert ids.job_id("j-0123456789ab") == "j-0123456789ab"
    for bad in ("j-0123456789AB", "j-123", "x-0123456789ab", "j-0123456789ab\n"):
        with pytest.raises(UnsafeValue):
            ids.job_id(bad)


@pytest.mark.parametrize(
    "bad", ["2026-13-01", "2026-02-30", "../../../x", "2026-12-04T00", "20261204"]
)
def test_calendar_date_rejects(bad: str) -> None:
    with pytest.raises(UnsafeValue, match="YYYY-MM-DD"):
        ids.calendar_date(bad)


def test_calendar_date_accepts() -> None:
    assert ids.calendar_date("2026-12-04") == "2026-12-04"


def test_stem() -> None:
    assert ids.stem("llama-8b.fp8_tp2") == "llama-8b.fp8_tp2"
    for bad in ("$(touch x)", "a\nb", ".x", "a/b", ""):
        with pytest.raises(UnsafeValue):
            ids.stem(bad)


def test_contained_keeps_paths_inside(tmp_path: Path) -> None:
    assert (
        ids.contained(tmp_path, "runs", "2026-12-04")
        == (tmp_path / "runs" / "2026-12-04").resolve()
    )
    with pytest.raises(UnsafeValue, match="leaves its root"):
        ids.contained(tmp_path, "runs", "../../etc")
    with pytest.raises(UnsafeValue, match="leaves its root"):
        ids.contained(tmp_path, "/etc/passwd")
