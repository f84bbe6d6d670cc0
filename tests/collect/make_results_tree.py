"""Write tests/data/results/: a results-branch tree made by the real `ixci.results.publish` (for site tests).

Three runs through a bare git remote: a nightly on 2026-11-26 (two SKUs, a disaggregated
config, a failed job), a narrower run on 2026-11-27 (shown as partial, not replacing
curves) and a full run on 2026-11-28 with a newer image. The checked-out branch (without
.git and site/) is copied to tests/data/results/. Artifacts come from factory.py until real
`ixci run-job` artifacts exist.

    python tests/collect/make_results_tree.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collect.factory import make_job, make_result
from ixci.results.aggregate import Economics
from ixci.results.collect import collect
from ixci.results.publish import publish

OUT = Path(__file__).resolve().parents[1] / "data" / "results"
ECON = Economics(
    usd_per_gpu_hour={
        "h100": {"hyperscaler": 1.30, "neocloud": 1.69, "rental_3y": 1.30},
        "h200": {"hyperscaler": 1.41, "neocloud": 1.74, "rental_3y": 1.60},
    },
    all_in_kw={"h100": 1.73, "h200": 1.73},
)


def jobs(image: str, concs: tuple[int, ...]) -> list[dict]:
    return [
        make_job(
            name="gptoss-h100",
            model="gpt-oss-120b",
            sku="h100",
            tp=1,
            image=image,
            concurrencies=concs,
        ),
        make_job(
            name="gptoss-h100",
            model="gpt-oss-120b",
            sku="h100",
            tp=2,
            image=image,
            concurrencies=concs,
        ),
        make_job(
            name="gptoss-h200",
            model="gpt-oss-120b",
            sku="h200",
            tp=1,
            image=image,
            concurrencies=concs,
        ),
        make_job(
            name="dsr1-disagg",
            model="deepseek-r1",
            sku="h200",
            framework="dynamo-sglang",
            tp=4,
            disagg=(4, 8),
            image=image,
            concurrencies=concs,
        ),
    ]


def publish_run(
    remote: Path,
    tmp: Path,
    run_id: str,
    date: str,
    image: str,
    concs: tuple[int, ...],
    scale: float,
    failed: int | None = None,
) -> None:
    src = tmp / run_id
    for i, job in enumerate(jobs(image, concs)):
        statuses = {k: "failed" for k in range(len(concs))} if i == failed else {}
        doc = make_result(
            job, run_id=run_id, date=date, scale=scale * (1 + 0.1 * i), statuses=statuses
        )
        (src / f"result-{job['id']}").mkdir(parents=True)
        (src / f"result-{job['id']}" / "result.json").write_text(json.dumps(doc))
    col = collect([src], run_id=run_id)
    publish(col, repo=str(remote), run_id=run_id, workdir=tmp / "clone", economics=ECON, site=False)


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        remote = tmp / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
        publish_run(
            remote,
            tmp,
            "19000001",
            "2026-11-26",
            "vllm/vllm-openai:v0.11.0",
            (1, 4, 16, 64),
            1.0,
            failed=2,
        )
        publish_run(remote, tmp, "19000002", "2026-11-27", "vllm/vllm-openai:v0.11.0", (1, 4), 1.02)
        publish_run(
            remote,
            tmp,
            "19000003",
            "2026-11-28",
            "vllm/vllm-openai:v0.11.1",
            (1, 4, 16, 64, 128),
            1.08,
        )
        check = tmp / "check"
        subprocess.run(
            ["git", "clone", "-q", "--branch", "results", str(remote), str(check)], check=True
        )
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(check, OUT, ignore=shutil.ignore_patterns(".git", "site"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
