"""GitHub's REST API: workflow-run artifacts, the pull-request gate's reads and writes, the
repository settings `ixci gha doctor` checks (requests), the sticky PR comment and the alert
issues (PyGithub).

The only module that talks to GitHub. The HTTP session, token and API URL are parameters
(only `cli` reads the environment; under Actions the URL is `$GITHUB_API_URL`). Shapes follow
GitHub's REST documentation: lists page through `Link` headers (`rel="next"`); an artifact has
`expired`, and downloading an expired one answers 410 Gone. Every value read from a response
is untrusted: commit SHAs, logins and states are checked before anything uses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ixci.errors import GitHubError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
STICKY_MARKER = "<!-- ixci:benchmark-comparison -->"
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def api_headers(token: str | None) -> dict[str, str]:
    """The headers of every REST call: GitHub's JSON media type, the pinned API version, and
    the token when there is one."""
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


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
        self.headers = api_headers(token)

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


def _raise_for(
    resp: requests.Response, what: str, *, needs: str = "`actions: read` on the repository"
) -> None:
    if resp.ok:
        return
    try:
        body = resp.json()
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        message = resp.text[:200]
    hint = None
    if resp.status_code in (401, 403, 404):
        hint = f"set GITHUB_TOKEN to a token with {needs}"
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


# --- alert issues: one per configuration or SKU (PyGithub) ----------------------------------

ALERT_LABEL = "ixci-alert"
_CLOSING = "No open alert any more (the data is back and no regression is open): closing."
_ALERT_KEY = re.compile(
    r"<!-- ixci:alert (config:c-[0-9a-f]{12}|sku:[A-Za-z0-9][A-Za-z0-9._-]{0,63}) -->"
)


@dataclass(frozen=True, kw_only=True)
class AlertIssue:
    """An issue that should be open: `key` is `config:<config id>` or `sku:<name>`."""

    key: str
    title: str
    body: str


@dataclass(frozen=True, kw_only=True)
class IssueAction:
    """What the sync did to one issue: created | reopened | updated | unchanged | closed."""

    key: str
    action: str
    number: int
    url: str


def alert_marker(key: str) -> str:
    """The hidden line that identifies an alert issue (matched with a strict pattern)."""
    marker = f"<!-- ixci:alert {key} -->"
    if not _ALERT_KEY.fullmatch(marker):
        raise ValueError(f"not an alert key: {key!r}")
    return marker


def sync_alert_issues(
    repo: str,
    wanted: list[AlertIssue],
    *,
    token: str,
    closing: Mapping[str, str],
    api_url: str = API_URL,
    label: str = ALERT_LABEL,
) -> list[IssueAction]:
    """Make the labelled alert issues of `repo` match `wanted`: each key has at most one issue
    (found by its marker; a closed one is reopened, never duplicated), its body is updated when it
    changed, and an open alert issue whose key is not wanted is closed with the comment
    `closing[key]` (or a generic one). Bodies of other issues are untrusted: only the marker
    pattern is read from them."""
    from github import Auth, Github, GithubException

    gh = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"))
    try:
        target = gh.get_repo(check_repo(repo))
        existing = _alert_issues(target.get_issues(state="all", labels=[label]))
        actions = [_upsert(target, existing.get(w.key), w, label) for w in wanted]
        keep = {w.key for w in wanted}
        for key, issue in sorted(existing.items()):
            if key not in keep and issue.state == "open":
                issue.create_comment(closing.get(key, _CLOSING))
                issue.edit(state="closed", state_reason="completed")
                actions.append(IssueAction(key=key, action="closed", number=issue.number,
                                           url=issue.html_url))  # fmt: skip
        return actions
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        raise GitHubError(
            f"syncing alert issues in {repo}: HTTP {exc.status} {message}",
            hint="the token needs `issues: write` on the repository",
        ) from exc
    finally:
        gh.close()


def _alert_issues(issues: Any) -> dict[str, Any]:
    """key → its issue (an open one before a closed one, then the oldest); PRs are skipped."""
    found: dict[str, Any] = {}
    for issue in issues:
        if "/pull/" in (issue.html_url or ""):  # a pull request (read without another request)
            continue
        match = _ALERT_KEY.search(issue.body or "")
        if match is None:
            continue
        key, old = match.group(1), found.get(match.group(1))
        if old is None or (old.state != "open" and issue.state == "open"):
            found[key] = issue
    return found


def _upsert(target: Any, issue: Any, want: AlertIssue, label: str) -> IssueAction:
    body = f"{alert_marker(want.key)}\n{want.body}"
    if issue is None:
        made = target.create_issue(title=want.title, body=body, labels=[label])
        return IssueAction(key=want.key, action="created", number=made.number, url=made.html_url)
    action = "unchanged"
    if issue.state != "open":
        issue.edit(state="open", title=want.title, body=body)
        issue.create_comment("The alert is raised again; the description has the details.")
        action = "reopened"
    elif issue.body != body or issue.title != want.title:
        issue.edit(title=want.title, body=body)
        action = "updated"
    return IssueAction(key=want.key, action=action, number=issue.number, url=issue.html_url)


# --- repository reads and writes for the gate and the doctor (requests) ---------------------

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
#: A GitHub login: alphanumerics and single hyphens, at most 39; apps end in `[bot]`.
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?$")
STATUS_STATES = frozenset({"error", "failure", "pending", "success"})
#: GitHub caps a commit status description at 140 characters.
STATUS_DESCRIPTION_MAX = 140


@dataclass(frozen=True, kw_only=True)
class PullState:
    """A pull request as `GET /repos/{owner}/{repo}/pulls/{number}` reports it now."""

    number: int
    state: str  # open | closed
    draft: bool
    head_sha: str
    base_sha: str
    head_repository: str | None  # None: the fork was deleted
    labels: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Review:
    """One pull-request review (`GET …/pulls/{number}/reviews`), in the API's (chronological) order."""

    login: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str | None
    submitted_at: str | None


def check_sha(value: object, what: str) -> str:
    """`value` if it is a full lower-case commit SHA, else `GitHubError` naming `what`."""
    if not isinstance(value, str) or not SHA_RE.match(value):
        raise GitHubError(f"{what}: {value!r} is not a 40-hex commit SHA")
    return value


def check_login(value: object, what: str) -> str:
    """`value` if it is a GitHub login (or an app's `name[bot]`), else `GitHubError`."""
    if not isinstance(value, str) or not LOGIN_RE.match(value):
        raise GitHubError(f"{what}: {value!r} is not a GitHub login")
    return value


class RestClient:
    """JSON requests against one API root with one `requests.Session` (paged reads follow `Link`)."""

    def __init__(
        self, session: requests.Session, token: str | None, *, api_url: str = API_URL,
        timeout: float = 30.0,
    ) -> None:  # fmt: skip
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.headers = api_headers(token)

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> requests.Response:  # fmt: skip
        """One request to `api_url + path` (or to a full `Link` URL); network errors → GitHubError."""
        url = path if path.startswith(("http://", "https://")) else f"{self.api_url}{path}"
        try:
            return self.session.request(
                method, url, headers=self.headers, params=params, json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise GitHubError(f"{method} {url} failed: {exc}") from exc

    def get_json(self, path: str, what: str, *, needs: str, optional: bool = False) -> Any:
        """The decoded body of a GET; `None` for 404 when `optional`; else GitHubError."""
        resp = self.request("GET", path)
        if optional and resp.status_code == 404:
            return None
        _raise_for(resp, what, needs=needs)
        return _decode(resp, what)

    def get_pages(self, path: str, what: str, *, needs: str, key: str | None = None) -> list[Any]:
        """Every item of a paged list (100 per page); `key` names the list in wrapped bodies."""
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": 100}
        items: list[Any] = []
        while url:
            resp = self.request("GET", url, params=params)
            _raise_for(resp, what, needs=needs)
            body = _decode(resp, what)
            page = body.get(key) if key and isinstance(body, dict) else body
            if not isinstance(page, list):
                raise GitHubError(f"{what}: the response is not a list")
            items.extend(page)
            url = resp.links.get("next", {}).get("url")
            params = None  # the next link already carries the query
        return items


def _decode(resp: requests.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise GitHubError(f"{what}: the response is not JSON") from exc


class RepoClient(RestClient):
    """What the gate reads and writes in one repository (`owner/name`)."""

    def __init__(self, session: requests.Session, token: str | None, repo: str, **kw: Any) -> None:
        super().__init__(session, token, **kw)
        self.repo = check_repo(repo)
        self.base = f"/repos/{self.repo}"

    def pull(self, number: int) -> PullState:
        """The pull request now (head, draft, labels): the event payload may be stale."""
        what = f"reading pull request {self.repo}#{number}"
        body = self.get_json(
            f"{self.base}/pulls/{int(number)}", what, needs="`pull-requests: read`"
        )
        if not isinstance(body, dict):
            raise GitHubError(f"{what}: the response is not an object")
        head, base = body.get("head") or {}, body.get("base") or {}
        head_repo = head.get("repo") if isinstance(head, dict) else None
        return PullState(
            number=int(number),
            state=str(body.get("state", "")),
            draft=body.get("draft") is True,
            head_sha=check_sha(
                head.get("sha") if isinstance(head, dict) else None, f"{what}: head.sha"
            ),
            base_sha=check_sha(
                base.get("sha") if isinstance(base, dict) else None, f"{what}: base.sha"
            ),
            head_repository=str(head_repo["full_name"]) if isinstance(head_repo, dict) else None,
            labels=tuple(
                str(lb.get("name", "")) for lb in body.get("labels") or [] if isinstance(lb, dict)
            ),
        )

    def permission(self, login: str) -> tuple[str, str]:
        """`(permission, role_name)` of `login` here: permission is admin|write|read|none
        (maintain reads as write, triage as read); role_name is the finer role. A user who is not
        a collaborator (404) has ("none", "")."""
        what = f"reading {login}'s permission on {self.repo}"
        path = f"{self.base}/collaborators/{quote(check_login(login, what), safe='')}/permission"
        body = self.get_json(path, what, needs="`metadata: read`", optional=True)
        if body is None:  # 404: not a collaborator (or no such user)
            return "none", ""
        if not isinstance(body, dict):
            raise GitHubError(f"{what}: the response is not an object")
        return str(body.get("permission", "none")), str(body.get("role_name", ""))

    def reviews(self, number: int) -> list[Review]:
        """Every review of the pull request, oldest first (the API's order)."""
        what = f"listing the reviews of {self.repo}#{number}"
        out = []
        for item in self.get_pages(f"{self.base}/pulls/{int(number)}/reviews", what,
                                   needs="`pull-requests: read`"):  # fmt: skip
            user = item.get("user") if isinstance(item, dict) else None
            if not isinstance(user, dict) or not isinstance(user.get("login"), str):
                continue  # a review by a deleted account ("ghost") approves nothing
            commit = item.get("commit_id")
            out.append(
                Review(
                    login=user["login"],
                    state=str(item.get("state", "")),
                    commit_id=commit if isinstance(commit, str) and SHA_RE.match(commit) else None,
                    submitted_at=item.get("submitted_at"),
                )
            )
        return out

    def set_status(
        self, sha: str, *, state: str, description: str, context: str, target_url: str | None
    ) -> None:
        """Create a commit status (`POST …/statuses/{sha}`); the description is cut to 140."""
        if state not in STATUS_STATES:
            raise ValueError(f"unknown commit status state {state!r}")
        body: dict[str, Any] = {
            "state": state,
            "context": context,
            "description": shorten(description, STATUS_DESCRIPTION_MAX),
        }
        if target_url:
            body["target_url"] = target_url
        resp = self.request("POST", f"{self.base}/statuses/{check_sha(sha, 'status')}", body=body)
        _raise_for(resp, f"setting {context} on {sha[:12]}", needs="`statuses: write`")

    def dispatch(self, workflow: str, *, ref: str, inputs: Mapping[str, str]) -> None:
        """`POST …/actions/workflows/{workflow}/dispatches`: start `workflow` on `ref`."""
        path = f"{self.base}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        resp = self.request("POST", path, body={"ref": ref, "inputs": dict(inputs)})
        _raise_for(resp, f"dispatching {workflow} on {ref}", needs="`actions: write`")

    def remove_label(self, number: int, name: str) -> bool:
        """Remove a label from the pull request; False when it was not there (404)."""
        path = f"{self.base}/issues/{int(number)}/labels/{quote(name, safe='')}"
        resp = self.request("DELETE", path)
        if resp.status_code == 404:
            return False
        _raise_for(
            resp, f"removing the label {name!r} from #{number}", needs="`pull-requests: write`"
        )
        return True


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
