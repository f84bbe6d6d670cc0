"""GitHub's REST API: workflow-run artifacts (requests) and the sticky PR comment (PyGithub).

The only module that talks to GitHub. The HTTP session, token and API URL are parameters
(only `cli` reads the environment). Shapes follow GitHub's REST documentation:
`GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts` pages through `Link` headers
(`rel="next"`), each artifact has `expired`; downloading an expired one answers 410 Gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ixci.errors import GitHubError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
STICKY_MARKER = "<!-- ixci:benchmark-comparison -->"
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, kw_only=True)
class ArtifactInfo:
    """One workflow-run artifact as listed by the API."""

    id: int
    name: str
    size_in_bytes: int
    expired: bool
    archive_download_url: str
    expires_at: str | None


class ArtifactExpired(GitHubError):
    """The artifact's retention ran out (listed `expired: true` or download answered 410)."""


def check_repo(repo: str) -> str:
    """Return `repo` if it looks like owner/name, else raise `GitHubError`."""
    if not _REPO_RE.match(repo):
        raise GitHubError(
            f"repository {repo!r} is not of the form owner/name", hint="e.g. --repo acme/bench"
        )
    return repo


class ArtifactClient:
    """Lists and downloads a workflow run's artifacts with one `requests.Session`."""

    def __init__(
        self,
        session: requests.Session,
        token: str | None,
        *,
        api_url: str = API_URL,
        timeout: float = 60.0,
    ) -> None:
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _get(self, url: str, **kw: Any) -> requests.Response:
        try:
            resp = self.session.get(url, headers=self.headers, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise GitHubError(f"GET {url} failed: {exc}") from exc
        return resp

    def list_artifacts(self, repo: str, run_id: int | str) -> list[ArtifactInfo]:
        """Every artifact of the run, following `Link: rel="next"` pages (100 per page)."""
        url: str | None = f"{self.api_url}/repos/{check_repo(repo)}/actions/runs/{run_id}/artifacts"
        params: dict[str, Any] | None = {"per_page": 100}
        out: list[ArtifactInfo] = []
        while url:
            resp = self._get(url, params=params)
            _raise_for(resp, f"listing artifacts of run {run_id} in {repo}")
            out.extend(_artifact(a) for a in resp.json().get("artifacts", []))
            url = resp.links.get("next", {}).get("url")
            params = None  # the next link already carries the query
        return out

    def download(self, artifact: ArtifactInfo, dest: Path) -> Path:
        """Download the artifact's zip to `dest` (a file path); `ArtifactExpired` on 410."""
        if artifact.expired:
            raise ArtifactExpired(f"artifact {artifact.name} ({artifact.id}) has expired")
        resp = self._get(artifact.archive_download_url, stream=True, allow_redirects=True)
        if resp.status_code == 410:
            raise ArtifactExpired(
                f"artifact {artifact.name} ({artifact.id}) is gone (410): expired"
            )
        _raise_for(resp, f"downloading artifact {artifact.name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as fh:
            for chunk in resp.iter_content(chunk_size=1 << 20):
                fh.write(chunk)
        return dest


def _artifact(obj: dict[str, Any]) -> ArtifactInfo:
    return ArtifactInfo(
        id=int(obj["id"]),
        name=str(obj["name"]),
        size_in_bytes=int(obj.get("size_in_bytes") or 0),
        expired=bool(obj.get("expired")),
        archive_download_url=str(obj["archive_download_url"]),
        expires_at=obj.get("expires_at"),
    )


def _raise_for(resp: requests.Response, what: str) -> None:
    if resp.ok:
        return
    try:
        message = resp.json().get("message", "")
    except ValueError:
        message = resp.text[:200]
    hint = None
    if resp.status_code in (401, 403):
        hint = "set GITHUB_TOKEN to a token with `actions: read` on the repository"
        if resp.headers.get("x-ratelimit-remaining") == "0":
            hint = (
                f"rate limit exhausted; it resets at epoch {resp.headers.get('x-ratelimit-reset')}"
            )
    raise GitHubError(f"{what}: HTTP {resp.status_code} {message}".strip(), hint=hint)


def iter_result_artifacts(
    artifacts: list[ArtifactInfo], prefix: str = "result-"
) -> Iterator[ArtifactInfo]:
    """The run's result artifacts (upload name `result-<job id>`, contracts.md §3), by name."""
    yield from sorted(
        (a for a in artifacts if a.name.startswith(prefix)), key=lambda a: (a.name, a.id)
    )


# --- the sticky PR comment (PyGithub) -----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CommentResult:
    """Which comment holds the body now and whether it was created or updated."""

    comment_id: int
    action: str  # created | updated | unchanged
    url: str


def upsert_sticky_comment(
    repo: str,
    pr: int,
    body: str,
    *,
    token: str,
    api_url: str = API_URL,
    marker: str = STICKY_MARKER,
) -> CommentResult:
    """Create or update the one PR comment that carries `marker` (a hidden HTML comment)."""
    from github import Auth, Github, GithubException

    text = body if marker in body else f"{marker}\n{body}"
    gh = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"))
    try:
        issue = gh.get_repo(check_repo(repo)).get_issue(pr)
        existing = next((c for c in issue.get_comments() if marker in (c.body or "")), None)
        if existing is None:
            made = issue.create_comment(text)
            return CommentResult(comment_id=made.id, action="created", url=made.html_url)
        if existing.body == text:
            return CommentResult(comment_id=existing.id, action="unchanged", url=existing.html_url)
        existing.edit(text)
        return CommentResult(comment_id=existing.id, action="updated", url=existing.html_url)
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        raise GitHubError(
            f"commenting on {repo}#{pr}: HTTP {exc.status} {message}",
            hint="the token needs `pull-requests: write` (or `issues: write`)",
        ) from exc
    finally:
        gh.close()
