"""Runtimes live in one registry that covers exactly the catalog's runtime kinds."""

from __future__ import annotations

import pytest

from ixci.catalog import RuntimeKind
from ixci.errors import InvalidJob
from ixci.runtimes import RUNTIMES, get_runtime


def test_every_catalog_runtime_kind_has_a_runtime_and_nothing_else() -> None:
    assert set(RUNTIMES) == {k.value for k in RuntimeKind}
    for kind in RUNTIMES:
        runtime = get_runtime(kind)
        assert runtime.kind == kind  # the artifact records the runtime by this name
        for member in ("dry_run", "preflight", "launch"):
            assert callable(getattr(runtime, member))


def test_an_unknown_runtime_is_a_pointed_error() -> None:
    with pytest.raises(InvalidJob) as info:
        get_runtime("kubernetes")
    assert "unknown runtime 'kubernetes'" in info.value.render()
    assert "process, docker, podman, slurm-enroot" in info.value.render()
