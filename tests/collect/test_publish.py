"""publish against real git: a bare repository as the remote, private clones in tmp_path."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
from pathlib import Path

import pytest

from collect.factory import make_job, make_result
from ixci.errors import PublishError
from ixci.results.aggregate import Economics, to_columnar
from ixci.results.collect import collect
from ixci.results.pointstore import JOBS_DIR, POINTS_DIR, read_points
from ixci.results.publish import DERIVED_FILES, build_derived, publish

DAMAGED = Path(__file__).resolve().parents[1] / "data" / "damaged"
ECON = Economics(
    usd_per_gpu_hour={"h100": {"hyperscaler": 1.30, "neocloud": 1.69}}, all_in_kw={"h100": 1.73}
)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(path))
    return path


def artifacts(root: Path, docs: list[dict]) -> Path:
    for doc in docs:
        folder = root / f"result-{doc['job']['id']}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(doc))
    return root


def checkout(remote: Path, dest: Path, branch: str = "results") -> Path:
    git("clone", "-q", "--branch", branch, str(remote), str(dest))
    return dest


def points(tree: Path) -> list[dict]:
    table = to_columnar(read_points(tree))
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def assert_derived_fresh(tree: Path) -> None:
    """The committed derived files are byte-equal to a rebuild from runs/ alone."""
    fresh = build_derived(tree)
    stored = [*(tree / POINTS_DIR).glob("*.parquet"), *(tree / JOBS_DIR).glob("*.parquet")]
    on_disk = {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in [*(tree / d for d in DERIVED_FILES), *stored]
    }
    assert set(fresh) == set(on_disk)
    for rel, data in fresh.items():
        assert on_disk[rel] == data, rel


def test_publish_twice_is_a_no_op(tmp_path: Path, remote: Path) -> None:
    jobs = [make_job(tp=1), make_job(tp=2, concurrencies=(1, 8))]
    col = collect(
        [artifacts(tmp_path / "a", [make_result(j, run_id="101") for j in jobs])], run_id="101"
    )
    first = publish(
        col, repo=str(remote), run_id="101", workdir=tmp_path / "w", economics=ECON, site=False
    )
    assert first.changed and first.pushed and first.run_path == "runs/2026/11/28/101"
    tip = git("rev-parse", "results", cwd=remote)
    again = publish(
        col, repo=str(remote), run_id="101", workdir=tmp_path / "w2", economics=ECON, site=False
    )
    assert not again.changed and again.commit is None
    assert git("rev-parse", "results", cwd=remote) == tip
    tree = checkout(remote, tmp_path / "check")
    assert len(points(tree)) == 5
    assert_derived_fresh(tree)
    index = json.loads((tree / "index.json").read_text())
    assert index["runs"][0]["status"] == "complete"
    assert set(index["jobs"]) == {j["id"] for j in jobs}
    assert "usd_per_mtok_neocloud" in index["columns"]


def test_published_run_is_never_rewritten(tmp_path: Path, remote: Path) -> None:
    job = make_job()
    col = collect([artifacts(tmp_path / "a", [make_result(job, run_id="7")])])
    publish(col, repo=str(remote), run_id="7", workdir=tmp_path / "w", site=False)
    other = collect([artifacts(tmp_path / "b", [make_result(job, run_id="7", scale=2.0)])])
    with pytest.raises(PublishError, match="already published"):
        publish(other, repo=str(remote), run_id="7", workdir=tmp_path / "w", site=False)


def test_no_push_leaves_the_remote_alone(tmp_path: Path, remote: Path) -> None:
    col = collect([artifacts(tmp_path / "a", [make_result(make_job(), run_id="8")])])
    res = publish(col, repo=str(remote), run_id="8", workdir=tmp_path / "w", push=False, site=False)
    assert res.changed and not res.pushed and res.commit
    assert git("for-each-ref", cwd=remote).strip() == ""
    assert (tmp_path / "w" / "runs/2026/11/28/8/run.json").is_file()


def test_narrower_newer_run_does_not_truncate_the_curve(tmp_path: Path, remote: Path) -> None:
    def run(run_id: str, date: str, concs: tuple[int, ...], lost: tuple[int, ...] = ()) -> None:
        job = make_job(concurrencies=concs)
        doc = make_result(job, run_id=run_id, date=date, statuses=dict.fromkeys(lost, "failed"))
        col = collect([artifacts(tmp_path / run_id, [doc])])
        publish(col, repo=str(remote), run_id=run_id, workdir=tmp_path / "w", site=False)

    run("r1", "2026-11-01", (1, 4, 16))
    run("r2", "2026-11-02", (1, 4, 16), lost=(2,))  # a narrow sweep: c=16 failed
    tree = checkout(remote, tmp_path / "c1")
    latest = json.loads((tree / "data" / "latest.json").read_text())
    assert {r[latest["columns"].index("run_id")] for r in latest["rows"]} == {"r1"}
    index = json.loads((tree / "index.json").read_text())
    curve = index["configs"][0]["curves"][0]
    assert curve["latest_run"] == "r1" and curve["partial_runs"] == ["r2"]
    assert [r["narrower_than_latest"] for r in index["runs"]] == [False, True]
    run("r3", "2026-11-03", (1, 4, 16, 64))  # covers r1's points: replaces the curve
    tree = checkout(remote, tmp_path / "c2")
    latest = json.loads((tree / "data" / "latest.json").read_text())
    assert {r[latest["columns"].index("run_id")] for r in latest["rows"]} == {"r3"}
    assert len(latest["rows"]) == 4
    assert not (tree / "data" / "history").exists()  # history is the partitions, not copies
    assert len(points(tree)) == 3 + 3 + 4


def test_damaged_artifacts_are_skipped_and_good_ones_published(
    tmp_path: Path, remote: Path
) -> None:
    col = collect([DAMAGED], run_id="2001")
    res = publish(col, repo=str(remote), run_id="2001", workdir=tmp_path / "w", site=False)
    assert res.changed
    tree = checkout(remote, tmp_path / "c")
    run = tree / res.run_path
    expected = json.loads((DAMAGED / "EXPECTED.json").read_text())
    assert len(list((run / "results").glob("*.json"))) == sum(
        v == "accepted" for v in expected.values()
    )
    skipped = json.loads((run / "skipped.json").read_text())["skipped"]
    assert len(skipped) == sum(v != "accepted" for v in expected.values())
    assert {r["job_id"] for r in points(tree)} == {a.job_id for a in col.accepted}


# --- K concurrent publishers ---------------------------------------------------------------

K, RUNS = 8, 5


def _publisher(args: tuple[int, str, str]) -> list[tuple[str, str | None, bool]]:
    k, remote, base = args
    out = []
    for r in range(RUNS):
        run_id = f"k{k}-r{r}"
        jobs = [
            make_job(name=f"p{k}", tp=1, concurrencies=(1, 4, 16)),
            make_job(name="shared", tp=2),
        ]
        date = f"2026-11-{1 + r:02d}"
        src = artifacts(
            Path(base) / run_id, [make_result(j, run_id=run_id, date=date) for j in jobs]
        )
        res = publish(
            collect([src], run_id=run_id),
            repo=remote,
            run_id=run_id,
            workdir=Path(base) / f"clone-{k}",
            economics=ECON,
            site=False,
        )
        out.append((run_id, res.commit, res.pushed))
    return out


def test_concurrent_publishers_lose_nothing(tmp_path: Path, remote: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(K) as pool:
        results = [
            x
            for chunk in pool.map(_publisher, [(k, str(remote), str(tmp_path)) for k in range(K)])
            for x in chunk
        ]
    assert len(results) == K * RUNS and all(pushed for _, _, pushed in results)
    tip = git("rev-parse", "results", cwd=remote).strip()
    for _run, commit, _ in results:  # no lost commit: every pushed commit is in the history
        assert commit is not None
        subprocess.run(["git", "merge-base", "--is-ancestor", commit, tip], cwd=remote, check=True)
    assert int(git("rev-list", "--count", tip, cwd=remote)) == K * RUNS
    tree = checkout(remote, tmp_path / "final")
    rows = points(tree)
    keys = [(r["run_id"], r["job_id"], r["point_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == K * RUNS * (3 + 3)  # every row exactly once
    assert {r["run_id"] for r in rows} == {run_id for run_id, _, _ in results}
    assert_derived_fresh(tree)
    # re-publishing any run changes nothing
    run_id = "k3-r2"
    again = publish(
        collect([tmp_path / run_id], run_id=run_id),
        repo=str(remote),
        run_id=run_id,
        workdir=tmp_path / "clone-again",
        economics=ECON,
        site=False,
    )
    assert not again.changed
    assert git("rev-parse", "results", cwd=remote).strip() == tip


def test_cli_publish_in_a_real_process(tmp_path: Path, remote: Path) -> None:
    ixci = shutil.which("ixci")
    assert ixci, "the ixci console script is installed with the package"
    src = artifacts(tmp_path / "a", [make_result(make_job(), run_id="55")])

    def run(repo: Path) -> subprocess.CompletedProcess[str]:
        argv = [
            ixci,
            "publish",
            str(src),
            "--repo",
            str(repo),
            "--run-id",
            "55",
            "--no-site",
            "--catalog",
            str(tmp_path),
        ]
        return subprocess.run(argv, capture_output=True, text=True)

    first = run(remote)
    assert first.returncode == 0, first.stderr
    assert "pushed" in first.stdout
    second = run(remote)
    assert second.returncode == 0 and "nothing to do" in second.stdout
    bad = run(tmp_path / "nope.git")
    assert bad.returncode == 5, bad.stderr  # the failing git command, with its output
    assert bad.stderr.startswith("error: command failed") and "nope.git" in bad.stderr
