"""Hostile incumbent configs for `ixci import inferencex`: malformed shapes and values, names
that would break the coverage table, settings with shell characters. Each is reported for its
entry with a reason (exit 0, the other entries still imported) — never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ixci.cli import cli

REPO = Path(__file__).resolve().parents[2]
GOOD = (
    'ok: {image: "lmsysorg/sglang:v0.5.9", model: deepseek-ai/DeepSeek-R1-0528, model-prefix: dsr1, '
    "framework: sglang, runner: h200, precision: fp8, multinode: false, scenarios: "
    "{fixed-seq-len: [{isl: 1024, osl: 1024, search-space: [{tp: 8, conc-list: [4, 8]}]}]}}"
)
HEAD = (
    '{image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, framework: sglang, runner: h200, '
    "precision: fp8, multinode: false, "
)

# (id, entry YAML, expected exit, fragment the report must say)
CASES = [
    ("scenarios-a-string", f"x: {HEAD}scenarios: oops}}", 0, "scenarios is not a mapping"),
    ("blocks-a-string", f"x: {HEAD}scenarios: {{fixed-seq-len: oops}}}}", 0, "not a list"),
    (
        "search-space-a-string",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: 1024, osl: 1024, search-space: oops}}]}}}}",
        0,
        "not a list",
    ),
    (
        "isl-not-a-number",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: abc, osl: 1024, "
        "search-space: [{tp: 8, conc-list: [4]}]}]}}",
        0,
        "'abc' is not a whole number",
    ),
    (
        "tp-not-a-number",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: 1024, osl: 1024, "
        "search-space: [{tp: x, conc-list: [4]}]}]}}",
        0,
        "'x' is not a whole number",
    ),
    (
        "conc-a-bool",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: 1024, osl: 1024, "
        "search-space: [{tp: 8, conc-list: [true]}]}]}}",
        0,
        "True is not a whole number",
    ),
    (
        "pipe-and-newline-in-name",
        '"a|b\\n`c`": {model-prefix: dsr1}',
        0,
        "is not a valid ixci recipe name",
    ),
    (
        "shell-in-setting",
        'y: {image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, framework: '
        "sglang-disagg, runner: mi355x-disagg, precision: fp8, multinode: true, disagg: true, "
        'router: {name: r, version: "1"}, kv-p2p-transfer: mori, scenarios: {fixed-seq-len: [{isl: '
        "1024, osl: 1024, search-space: [{conc-list: [4], prefill: {num-worker: 1, tp: 8, "
        'additional-settings: ["X=$(touch /tmp/pwned)"]}, decode: {num-worker: 1, tp: 8}}]}]}}',
        0,
        "unsafe on a command line",
    ),
    (
        "date-as-value",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: 1024, osl: 1024, "
        "search-space: [{tp: 2026-01-01, conc-list: [4]}]}]}}",
        0,
        "is not a whole number",
    ),
    (
        "mtp-size-not-a-number",
        'y: {image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, framework: '
        "sglang-disagg, runner: mi355x-disagg, precision: fp8, multinode: true, disagg: true, "
        'router: {name: r, version: "1"}, kv-p2p-transfer: mori, scenarios: {fixed-seq-len: [{isl: '
        "1024, osl: 1024, search-space: [{conc-list: [4], spec-decoding: mtp, prefill: {num-worker: 1, "
        'tp: 8}, decode: {num-worker: 1, tp: 8, additional-settings: ["DECODE_MTP_SIZE=abc"]}}]}]}}',
        0,
        "'abc' is not a whole number",
    ),
    (
        "aggregated-pools-a-string",
        'z: {image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, framework: '
        "dynamo-sglang, runner: h200-multinode, precision: fp8, multinode: true, disagg: false, "
        "scenarios: {fixed-seq-len: [{isl: 1024, osl: 1024, search-space: [{conc-list: [4], "
        "prefill: oops, decode: {num-worker: 0}}]}]}}",
        0,
        "are not mappings",
    ),
    (
        "aggregated-with-decode-workers",
        'z: {image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, '
        "framework: dynamo-sglang, runner: h200-multinode, precision: fp8, multinode: true, disagg: false, "
        "scenarios: {fixed-seq-len: [{isl: 1024, osl: 1024, search-space: [{conc-list: [4], "
        "prefill: {num-worker: 1, tp: 8}, decode: {num-worker: 2, tp: 8}}]}]}}",
        0,
        "decode workers in an aggregated",
    ),
    (
        "aggregated-workers-a-bool",
        'z: {image: "lmsysorg/sglang:v0.5.9", model-prefix: dsr1, '
        "framework: dynamo-sglang, runner: h200-multinode, precision: fp8, multinode: true, disagg: false, "
        "scenarios: {fixed-seq-len: [{isl: 1024, osl: 1024, search-space: [{conc-list: [4], "
        "prefill: {num-worker: true, tp: 8}, decode: {num-worker: 0}}]}]}}",
        0,
        "True is not a whole number",
    ),
    (
        "internal-marker-smuggled",
        f"x: {HEAD}scenarios: {{fixed-seq-len: [{{isl: 1024, osl: 1024, "
        "search-space: [{tp: 8, conc-list: [4], _aggregated: {X: '$(touch /tmp/pwned)'}}]}]}}",
        0,
        "fields with no ixci counterpart: _aggregated",
    ),
    (
        "traversal-in-prefix-and-runner",
        "x: {image: 'lmsysorg/sglang:v0.5.9', model-prefix: "
        "'../../etc', framework: sglang, runner: '../../h200', precision: fp8, scenarios: {}}",
        0,
        "is not in matrix/models.yaml",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_entry_is_reported_not_crashed(
    case: tuple[str, str, int, str], tmp_path: Path
) -> None:
    _, entry, code, says = case
    master = tmp_path / "m.yaml"
    master.write_text(GOOD + "\n" + entry + "\n")
    out = tmp_path / "recipes"
    r = CliRunner().invoke(
        cli,
        [
            "import",
            "inferencex",
            str(master),
            "--catalog",
            str(REPO),
            "--out",
            str(out),
            "--coverage",
            str(tmp_path / "cov.md"),
        ],
    )
    assert r.exit_code == code, r.output
    assert "internal error" not in r.output and says in r.output
    if code:  # the file itself is unreadable: a pointed error, nothing written
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]
        return
    assert [p.name for p in out.iterdir()] == ["ok.yaml"]  # the good entry is still imported
    rows = [x for x in (tmp_path / "cov.md").read_text().splitlines() if x.startswith("| `")]
    assert len(rows) == 2  # one table row per entry, whatever its name holds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cov.md", "m.yaml", "recipes"]
