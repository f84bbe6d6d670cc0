"""GitHub REST calls against recorded responses in the documented shapes (no network).

Recorded shapes (tests/data/github/): `GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts`
pages through `Link: <…&page=2>; rel="next"`; an expired artifact is listed with
`"expired": true` and its download answers 410; a live download answers 302 to a blob URL.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import requests
import responses
from click.testing import CliRunner

from collect.factory import make_job, make_result
from ixci.cli import cli
from ixci.errors import GitHubError
from ixci.github import github_api

DATA = Path(__file__).resolve().parents[1] / "data" / "github"
API = "https://api.github.com"
RUN = f"{API}/repos/acme/bench/actions/runs/4242/artifacts"


def page(n: int) -> dict:
    return json.loads((DATA / f"artifacts-page{n}.json").read_text())


def zipped(doc: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("result.json", json.dumps(doc))
        zf.writestr("server.log", "ready\n")
    return buf.getvalue()


def register_run(rsps: responses.RequestsMock) -> dict[str, dict]:
    """The recorded run: 2 pages, 3 result artifacts (one expired, one 410 on download), 1 other."""
    rsps.get(
        RUN,
        json=page(1),
        match=[responses.matchers.query_param_matcher({"per_page": "100"})],
        headers={
            "Link": f'<{RUN}?per_page=100&page=2>; rel="next", <{RUN}?per_page=100&page=2>; rel="last"'
        },
    )
    rsps.get(
        RUN,
        json=page(2),
        match=[responses.matchers.query_param_matcher({"per_page": "100", "page": "2"})],
        headers={
            "Link": f'<{RUN}?per_page=100&page=1>; rel="prev", <{RUN}?per_page=100&page=1>; rel="first"'
        },
    )
    docs = {}
    for art in page(1)["artifacts"] + page(2)["artifacts"]:
        if art["expired"]:
            continue
        url = art["archive_download_url"]
        if art["name"] == "result-j-00000000dead":  # listed live, gone by download time
            rsps.get(url, status=410, json={"message": "Artifact has expired"})
            continue
        if art["name"].startswith("result-"):
            job = make_job(name=art["name"], tp=1)
            doc = make_result(job, run_id="4242")
            docs[art["name"]] = doc
            blob = f"https://pipelines.actions.githubusercontent.com/blob/{art['id']}"
            rsps.get(url, status=302, headers={"Location": blob})
            rsps.get(blob, body=zipped(doc), content_type="application/zip")
    return docs


@responses.activate
def test_list_follows_link_pagination() -> None:
    register_run(responses.mock)
    with requests.Session() as s:
        arts = github_api.ArtifactClient(s, "tok").list_artifacts("acme/bench", 4242)
    assert [a.name for a in arts] == [
        a["name"] for a in page(1)["artifacts"] + page(2)["artifacts"]
    ]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"
    assert [a.expired for a in arts].count(True) == 1


@responses.activate
def test_expired_artifacts_raise_expired() -> None:
    register_run(responses.mock)
    with requests.Session() as s:
        client = github_api.ArtifactClient(s, "tok")
        arts = {a.name: a for a in client.list_artifacts("acme/bench", 4242)}
        with pytest.raises(github_api.ArtifactExpired, match="expired"):
            client.download(arts["result-j-0000000aa11e"], Path("/nonexistent/never-written.zip"))
        with pytest.raises(github_api.ArtifactExpired, match="410"):
            client.download(arts["result-j-00000000dead"], Path("/nonexistent/never-written.zip"))


@responses.activate
def test_errors_are_github_errors_with_a_hint() -> None:
    responses.get(
        RUN,
        status=403,
        json={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1764300000"},
    )
    with requests.Session() as s, pytest.raises(GitHubError) as err:
        github_api.ArtifactClient(s, None).list_artifacts("acme/bench", 4242)
    assert "HTTP 403" in err.value.message and "rate limit" in (err.value.hint or "")
    with pytest.raises(GitHubError, match="owner/name"):
        github_api.check_repo("not a repo")


@responses.activate
def test_cli_collect_from_a_workflow_run(tmp_path: Path) -> None:
    docs = register_run(responses.mock)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli,
        ["collect", "--repo", "acme/bench", "--run-id", "4242", "--out", str(out)],
        obj={"env": {"GITHUB_TOKEN": "tok"}},
    )
    assert res.exit_code == 0, res.output
    got = sorted(p.name for p in (out / "results").glob("*.json"))
    assert got == sorted(f"{d['job']['id']}.json" for d in docs.values())
    skipped = json.loads((out / "skipped.json").read_text())["skipped"]
    assert sorted(s["category"] for s in skipped) == ["expired", "expired"]


def api(path: str) -> re.Pattern[str]:
    """PyGithub spells the host with an explicit :443; match both spellings."""
    return re.compile(r"https://api\.github\.com(:443)?" + re.escape(path) + r"(\?.*)?$")


@responses.activate
def test_sticky_comment_is_created_then_updated() -> None:
    base = "/repos/acme/bench"
    responses.get(api(base), json=json.loads((DATA / "repo.json").read_text()))
    responses.get(api(f"{base}/issues/7"), json=json.loads((DATA / "issue-7.json").read_text()))
    comments = json.loads((DATA / "issue-7-comments.json").read_text())
    listing = responses.get(api(f"{base}/issues/7/comments"), json=comments)
    created = {
        **comments[0],
        "id": 9001,
        "body": f"{github_api.STICKY_MARKER}\nfirst",
        "url": f"{API}{base}/issues/comments/9001",
        "html_url": "https://github.com/acme/bench/pull/7#issuecomment-9001",
    }
    responses.post(api(f"{base}/issues/7/comments"), json=created, status=201)
    res = github_api.upsert_sticky_comment("acme/bench", 7, "first", token="tok")
    assert res.action == "created" and res.comment_id == 9001
    posted = json.loads(responses.calls[-1].request.body)
    assert posted["body"].startswith(github_api.STICKY_MARKER)
    assert responses.calls[-1].request.headers["Authorization"] == "token tok"

    responses.remove(listing)
    responses.get(api(f"{base}/issues/7/comments"), json=[*comments, created])
    responses.patch(api(f"{base}/issues/comments/9001"), json={**created, "body": "second"})
    res = github_api.upsert_sticky_comment("acme/bench", 7, "second", token="tok")
    assert res.action == "updated" and res.comment_id == 9001
    assert (
        json.loads(responses.calls[-1].request.body)["body"]
        == f"{github_api.STICKY_MARKER}\nsecond"
    )
    methods = [c.request.method for c in responses.calls]
    assert methods.count("POST") == 1 and methods.count("PATCH") == 1  # one sticky comment


@responses.activate
def test_an_artifact_name_that_would_leave_the_download_folder_is_skipped(tmp_path: Path) -> None:
    """A recorded listing (documented shape) whose name is a path: never used as one."""
    listing = page(1)
    evil = dict(listing["artifacts"][0], id=99, name="result-../../../escaped")
    evil["archive_download_url"] = f"{API}/repos/acme/bench/actions/artifacts/99/zip"
    responses.get(RUN, json={"total_count": 1, "artifacts": [evil]})
    res = CliRunner().invoke(
        cli,
        ["collect", "--repo", "acme/bench", "--run-id", "4242", "--out", str(tmp_path / "out")],
        obj={"env": {"GITHUB_TOKEN": "tok"}},
    )
    assert res.exit_code == 0, res.output
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())["skipped"]
    assert [s["category"] for s in skipped] == ["unsafe_value"]
    assert len(responses.calls) == 1  # listed, never downloaded
    assert not list(tmp_path.rglob("escaped*"))
