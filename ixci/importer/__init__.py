"""`ixci import inferencex`: the incumbent's master configs → ixci recipes, a coverage report.

`convert` maps entries onto recipes (`entries` their search-space blocks), `spec` holds the speculative-token defaults read from the
incumbent's launch scripts, `evals` its eval selection and thresholds (→ recipe `evals`),
`coverage` renders the per-entry table kept in docs/.
"""

from ixci.importer.convert import (
    Converted,
    ImportReport,
    Skipped,
    import_inferencex,
    load_target,
    write_recipes,
)
from ixci.importer.entries import _settings
from ixci.importer.shape import Unmappable

__all__ = [
    "Converted",
    "ImportReport",
    "Skipped",
    "Unmappable",
    "_settings",
    "import_inferencex",
    "load_target",
    "write_recipes",
]
