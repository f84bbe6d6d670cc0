"""Runtimes live in one registry that covers exactly the catalog's runtime kinds."""

from __future__ import annotations

import pytest

from ixci.errors import InvalidJob
from ixci.runtimes import RUNTIMES, get_runtime, multi_node_kinds


def test_every_registered_runtime_has_every_member() -> None:
    for kind in RUNTIMES:
        runtime = get_runtime(kind)
        assert runtime.kind == kind  # the artifact records the runtime by this name
        assert isinstance(runtime.places_components, bool)
        assert isinstance(runtime.host_binaries, bool)
        for member in ("dry_run", "preflight", "launch"):
            assert callable(getattr(runtime, member))
    assert multi_node_kinds() == ("slurm-enroot",)


def test_an_unknown_runtime_is_a_pointed_error() -> None:
    with pytest.raises(InvalidJob) as info:
        get_runtime("kubernetes")
    assert "unknown runtime 'kubernetes'" in info.value.render()
    assert "process, docker, podman, slurm-enroot" in info.value.render()
