"""Layer contracts of the package, read from the source (every `import`, also inside functions).

Each contract names what a layer may import from ixci outside itself; anything else is a
finding with the file and line. They hold today; a new import across a layer fails here, with
the rule it breaks, before it becomes a cycle or a hidden dependency:

* `ixci.errors` is the bottom: it imports nothing of ixci.
* the plan file's types (`ixci.job`) sit just above it: `ixci.errors` only, so every layer
  (engines and runtimes included) may read a typed job.
* the load generator (`ixci.loadgen`) is a client usable on its own: errors only.
* engines (`ixci.engines`) turn a resolved job into argv: never the catalog, planner, runner or
  runtimes (the plan's types in `ixci.job` they may).
* runtimes (`ixci.runtimes`) launch what an engine built: never the catalog, planner or runner.
* the stages follow the data: the catalog (`ixci.catalog`) reads YAML and knows no later stage;
  the planner (`ixci.plan`) reads the catalog; the runner (`ixci.run`) reads a typed job, never
  the catalog or the planner; the results (`ixci.results`) read artifacts, never the catalog, the
  planner or the runner's driving code; the GitHub face (`ixci.github`) reads only artifacts.
* the site (`ixci.site`) reads published data only: never collect, publish, the runner or the
  catalog.
* the metric table (`ixci.metric_table`) and the statistics (`ixci.results.stepdetect`,
  `ixci.results.intervals`) are pure; the roofline (`ixci.run.roofline`) reads only the
  precision table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ixci"

# what every stage may use: the error types, the plan file's types, ids, the one subprocess
# choke point and the YAML reader
_BASE = frozenset({"ixci.errors", "ixci.job", "ixci.ids", "ixci.cmd", "ixci.yamlio"})

CONTRACTS: dict[str, frozenset[str]] = {
    "ixci.errors": frozenset(),
    "ixci.job": frozenset({"ixci.errors"}),
    "ixci.loadgen": frozenset({"ixci.errors"}),
    "ixci.engines": frozenset({"ixci.errors", "ixci.job", "ixci.loadgen.dialect"}),
    "ixci.runtimes": frozenset(
        {"ixci.errors", "ixci.cmd", "ixci.ids", "ixci.job", "ixci.engines.base"}
    ),
    "ixci.catalog": frozenset(
        _BASE
        | {"ixci.schemas", "ixci.evals.suite", "ixci.loadgen.traces", "ixci.metric_table"}
        | {"ixci.runtimes"}  # a runner's `runtime` is a kind of the runtime registry
    ),
    "ixci.plan": frozenset(
        _BASE | {"ixci.catalog.catalog", "ixci.catalog.catalog_files", "ixci.precision"}
    ),
    "ixci.run": frozenset(
        _BASE
        | {"ixci", "ixci.precision", "ixci.results.intervals", "ixci.results.result"}
        | {"ixci.engines.base", "ixci.runtimes.base", "ixci.runtimes.slurm", "ixci.runtimes.state"}
        | {
            f"ixci.loadgen.{m}"
            for m in ("audit", "config", "dialect", "metrics", "run", "sessions")
        }
    ),
    "ixci.results": frozenset(
        _BASE
        | {"ixci", "ixci.schemas", "ixci.metric_table", "ixci.loadgen.sessions_metrics"}
        | {"ixci.run.servermetrics", "ixci.run.telemetry", "ixci.site.build"}
    ),
    "ixci.github": frozenset(_BASE | {"ixci.results.artifacts"}),
    "ixci.site": frozenset(
        {"ixci", "ixci.errors", "ixci.metric_table", "ixci.results.pointstore"}
        | {"ixci.run.servermetrics"}
    ),
    "ixci.metric_table": frozenset(),
    "ixci.results.stepdetect": frozenset(),
    "ixci.results.intervals": frozenset(),
    "ixci.run.roofline": frozenset({"ixci.precision"}),
}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path) -> list[tuple[str, str, int]]:
    """(importing module, imported ixci module, line) for every import under `root`; `from ixci.a
    import b` counts as `ixci.a.b` when that is a module, else as `ixci.a`."""
    files = sorted(root.rglob("*.py"))
    modules = {_module_name(p, root) for p in files}
    out = []
    for path in files:
        mod = _module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != root.name:
                    continue
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    out.append((mod, full if full in modules else node.module, node.lineno))
            elif isinstance(node, ast.Import):
                out += [(mod, a.name, node.lineno) for a in node.names
                        if a.name.split(".")[0] == root.name]  # fmt: skip
    return out


def _inside(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def broken(root: Path, contracts: dict[str, frozenset[str]]) -> list[str]:
    """Every import that leaves its layer for a module the layer's contract does not allow."""
    found = []
    for mod, target, line in imports(root):
        for layer, allowed in contracts.items():
            if _inside(mod, layer) and not _inside(target, layer) and target not in allowed:
                found.append(f"{mod} (line {line}) imports {target}: {layer} may import only "
                             f"{sorted(allowed) or 'nothing of the package'}")  # fmt: skip
    return found


@pytest.mark.parametrize("layer", sorted(CONTRACTS))
def test_layer_contract(layer: str) -> None:
    assert broken(PACKAGE, {layer: CONTRACTS[layer]}) == []


def test_every_contract_names_a_real_layer() -> None:
    modules = {m for m, _, _ in imports(PACKAGE)} | {t for _, t, _ in imports(PACKAGE)}
    for layer, allowed in CONTRACTS.items():
        assert any(_inside(m, layer) for m in modules), layer
        assert all(a in modules for a in allowed), (layer, allowed - modules)


def test_a_crossing_import_is_found(tmp_path: Path) -> None:
    """The checker is not a no-op: an engine that imports the catalog, even inside a function."""
    pkg = tmp_path / "ixci"
    (pkg / "engines").mkdir(parents=True)
    for name in ("__init__.py", "catalog.py", "errors.py", "engines/__init__.py"):
        (pkg / name).write_text("")
    (pkg / "engines" / "vllm.py").write_text(
        "from ixci.errors import IxciError\n\ndef f():\n    from ixci import catalog\n"
    )
    found = broken(pkg, {"ixci.engines": frozenset({"ixci.errors"})})
    assert found == [
        "ixci.engines.vllm (line 4) imports ixci.catalog: ixci.engines may import only "
        "['ixci.errors']"
    ]
