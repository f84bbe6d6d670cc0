"""The evals' expected failures (`IxciError` subclasses with their exit codes)."""

from __future__ import annotations

from ixci.errors import IxciError


class EvalDataError(IxciError):
    """A task file, data file or data source that cannot be used (names the file and fix)."""

    exit_code = 3


class EvalUnavailable(IxciError):
    """An optional loader whose library or cache is missing (the hint says how to get it)."""

    exit_code = 2


class QualityGateFailed(IxciError):
    """A recipe's quality gate failed: the points measured on that server are `quality_failed`."""

    exit_code = 20
