"""Cost and precision of repeats: the 95 % interval's half-width against R, and the time it costs.

Runs one job of the catalog through `ixci run-job` with its scenario's `repeats` set to N (a
copy of the catalog; the job and point ids do not change), on whatever host this is (a GPU
runner: `--runtime docker`; a laptop: the default process runtime with llama-server on PATH).
Then, for R = 1 … 5, it averages the Student-t half-width over every subset of R of the N
repeats of each point (the expected half-width a nightly with R repeats would publish), and
prices R: the job's wall time = server start + R × (the points' mean time per repeat).

    python perf/repeats_precision.py --job j-c462a70a3601 --scenario local-short --repeats 8
    python perf/repeats_precision.py --artifact out/j-…/result.json     # tabulate only

Then it chooses R: another repeat is worth taking while it narrows the interval clearly more
(by at least MARGIN ×) than it adds point time — the server start is paid once whatever R, and
a step that only breaks even is not worth it: on a budgeted nightly, point time spent on
repeats is time the rotation cannot spend on other configurations. It prints that choice twice: from the
measured widths, and from the expected width for normal noise, E[s] · t(0.975, R − 1) / √R
(c4 · t / √R × σ), which does not depend on this host's noise.

Not a test; prints a markdown table (docs/repeats.md quotes one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
METRICS = (
    ("output tok/s", ("metrics", "output_throughput")),
    ("TTFT p99", ("metrics", "ttft", "p99")),
    ("TPOT median", ("metrics", "tpot", "median")),
)


def run(args: argparse.Namespace, work: Path) -> Path:
    """`ixci run-job` on a catalog copy whose scenario asks for `args.repeats`; the artifact."""
    catalog = work / "catalog"
    for part in ("matrix", "benchmarks"):
        shutil.copytree(Path(args.catalog) / part, catalog / part)
    scenario = catalog / "benchmarks" / "scenarios" / f"{args.scenario}.yaml"
    lines = [ln for ln in scenario.read_text().splitlines() if not ln.startswith("repeats:")]
    scenario.write_text("\n".join([*lines, f"repeats: {args.repeats}"]) + "\n")
    out = work / "out"
    argv = [sys.executable, "-c", "from ixci.cli import main; main()", "run-job", args.job, "--catalog", str(catalog),
            "--output", str(out), "--runtime", args.runtime, "--run-id", "repeats-precision",
            "--model-cache", str(Path(args.model_cache).resolve())]  # fmt: skip
    if args.port:
        argv += ["--port", str(args.port)]
    subprocess.run(argv, check=True)
    return out / args.job / "result.json"


def dig(rec: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        rec = rec.get(key) if isinstance(rec, dict) else None
    return float(rec) if isinstance(rec, int | float) else None


def half_width_pct(values: list[float], r: int) -> float | None:
    """Mean over all r-subsets of the 95 % Student-t half-width, % of the subset mean."""
    from ixci.results.intervals import student_t

    if r < 2 or len(values) < r:
        return None
    widths = []
    for subset in itertools.combinations(values, r):
        iv = student_t(subset)
        if iv is not None and iv.half_width is not None and iv.mean:
            widths.append(100.0 * iv.half_width / abs(iv.mean))
    return sum(widths) / len(widths) if widths else None


def expected_factor(r: int) -> float:
    """E[half-width] / σ for R samples of normal noise: c4(R) · t(0.975, R − 1) / √R."""
    from ixci.results.intervals import t_quantile

    c4 = math.sqrt(2 / (r - 1)) * math.exp(math.lgamma(r / 2) - math.lgamma((r - 1) / 2))
    return c4 * t_quantile(r - 1) / math.sqrt(r)


MARGIN = 1.1  # a step must narrow the width by ≥ 1.1 × the point time it adds


def choose(widths: dict[int, float]) -> int:
    """The largest R reached while each step R−1 → R narrowed the width by at least MARGIN ×
    the point time it added (1/(R−1)); `widths` maps R ≥ 2 to a mean half-width. R = 2 is the
    least that has an interval at all."""
    best = 2 if 2 in widths else 1
    for r in sorted(widths):
        if r >= 3 and r - 1 in widths:
            if 1 - widths[r] / widths[r - 1] < MARGIN / (r - 1):
                break
            best = r
    return best


def seconds(rec: dict[str, Any]) -> float:
    t0 = datetime.fromisoformat(str(rec["started_at"]).replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(str(rec["finished_at"]).replace("Z", "+00:00"))
    return (t1 - t0).total_seconds()


def table(doc: dict[str, Any], max_r: int) -> str:
    """The markdown report of one artifact with repeats."""
    points = [p for p in doc["points"] if p.get("repeats")]
    timings = doc["provenance"].get("timings") or {}
    start = float(timings.get("launch_to_ready_s") or 0.0)
    per_repeat = sum(sum(seconds(r) for r in p["repeats"]) / len(p["repeats"]) for p in points)
    gpus = int(doc["job"]["topology"].get("gpus") or 0)
    head = ["R", *(f"{p['scenario']} c={p['concurrency']} {name}" for p in points
                   for name, _ in METRICS)]  # fmt: skip
    lines = [
        f"job {doc['job']['id']} ({doc['job'].get('name')}), {len(points)} points × "
        f"{max(len(p['repeats']) for p in points)} repeats, server start {start:.1f} s, "
        f"{per_repeat:.1f} s of points per repeat, {gpus} GPUs",
        "",
        "Expected 95 % CI half-width, % of the mean (averaged over every subset of R repeats):",
        "",
        "| " + " | ".join(head) + " | job wall time | extra vs R=1 |",
        "|" + "---:|" * (len(head) + 2),
    ]
    base = start + per_repeat
    mean_width: dict[int, float] = {}
    for r in range(1, max_r + 1):
        cells, widths = [str(r)], []
        for p in points:
            for _, path in METRICS:
                vals = [v for v in (dig(x, path) for x in p["repeats"] if x.get("valid")) if v]
                hw = half_width_pct(vals, r)
                cells.append("—" if hw is None else f"±{hw:.1f} %")
                widths += [] if hw is None else [hw]
        if widths:
            mean_width[r] = sum(widths) / len(widths)
        wall = start + r * per_repeat
        extra = f"+{100 * (wall - base) / base:.0f} %" + (
            f" (+{(wall - base) * gpus / 3600:.3f} GPU-h)" if gpus else ""
        )
        lines.append("| " + " | ".join(cells) + f" | {wall:.0f} s | {extra} |")
    lines += ["", *decision(mean_width, max_r)]
    cv = []
    for p in points:
        vals = [v for v in (dig(x, METRICS[0][1]) for x in p["repeats"]) if v]
        if len(vals) >= 2:
            m = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
            cv.append(f"c={p['concurrency']}: {100 * sd / m:.1f} %")
    lines += ["", "Run-to-run spread of output tok/s (CV over all repeats): " + ", ".join(cv)]
    return "\n".join(lines) + "\n"


def decision(measured: dict[int, float], max_r: int) -> list[str]:
    """The step table (width and point time against R − 1) and the chosen R, measured and
    expected."""
    expected = {r: expected_factor(r) for r in range(2, max_r + 1)}
    out = ["| R | measured width vs R−1 | expected width vs R−1 (normal noise) | point time vs R−1 |",
           "|---:|---:|---:|---:|"]  # fmt: skip
    for r in range(3, max_r + 1):
        m = f"{100 * (measured[r] / measured[r - 1] - 1):+.0f} %" if r - 1 in measured else "—"
        e = f"{100 * (expected[r] / expected[r - 1] - 1):+.0f} %"
        out.append(f"| {r} | {m} | {e} | +{100 / (r - 1):.0f} % |")
    return [*out, "", f"Chosen R (each step narrows ≥ {MARGIN} × the point time it adds): measured "
            f"{choose(measured)}, expected for normal noise {choose(expected)}"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--artifact", type=Path, help="tabulate this result.json (no run)")
    ap.add_argument("--job", help="job id (ixci plan --format json)")
    ap.add_argument("--scenario", default="local-short", help="scenario whose points repeat")
    ap.add_argument("--repeats", type=int, default=8, help="N repeats measured (≥ 5)")
    ap.add_argument("--max-r", type=int, default=5, help="tabulate R = 1 … this")
    ap.add_argument("--catalog", default=str(ROOT))
    ap.add_argument("--runtime", default="process")
    ap.add_argument("--port", type=int)
    ap.add_argument("--model-cache", default=str(Path.home() / ".cache" / "ixci" / "models"))
    ap.add_argument("--keep", type=Path, help="copy the artifact here")
    args = ap.parse_args()
    if args.artifact:
        doc = json.loads(args.artifact.read_text())
    else:
        if not args.job:
            ap.error("--job or --artifact is required")
        with tempfile.TemporaryDirectory() as tmp:
            path = run(args, Path(tmp))
            doc = json.loads(path.read_text())
            if args.keep:
                shutil.copy(path, args.keep)
    print(table(doc, args.max_r), end="")


if __name__ == "__main__":
    main()
