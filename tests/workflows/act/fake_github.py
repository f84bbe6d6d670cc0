"""A stand-in for GitHub's REST API on 127.0.0.1: recorded responses, every request recorded.

The workflows reach it through `GITHUB_API_URL` (act's `--env`). Nothing here decides anything
about ixci: GET routes answer with the JSON documents of a recorded cassette
(tests/data/act/github/*.json, in the shapes GitHub documents), and writes answer as GitHub
does — `POST /repos/{o}/{r}/statuses/{sha}` 201 with the status, `POST .../dispatches` 204,
`POST /repos/{o}/{r}/issues/{n}/comments` 201 with the comment, `PATCH
/repos/{o}/{r}/issues/comments/{id}` 200. Every request (method, path, query, body, whether
it carried the expected token) is kept in `requests` for the test to assert. Unknown routes
answer 404 in GitHub's error shape and are recorded too, so a test sees what was asked.

Cassette format: {"GET /repos/ixci-dev/ixci/pulls/7": {...json...}, ...}; a value
{"status": 404, "body": {...}} gives another status.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DOCS = "https://docs.github.com/rest"
NOW = "2026-12-04T12:00:00Z"


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorized: bool
    status: int


class FakeGitHub:
    """The server; use `serve(cassette, token)` as a context manager."""

    def __init__(self, responses: Mapping[str, Any], token: str, owner_repo: str) -> None:
        self.responses = dict(responses)
        self.token = token
        self.owner_repo = owner_repo
        self.requests: list[Request] = []
        self.comments: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def find(self, method: str, pattern: str) -> list[Request]:
        """Recorded requests with this method whose path matches the regular expression."""
        with self._lock:
            return [
                r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)
            ]

    # --- answering --------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        key = f"{method} {path}"
        if key in self.responses:
            value = self.responses[key]
            if isinstance(value, dict) and set(value) == {"status", "body"}:
                return int(value["status"]), value["body"]
            return 200, value
        repo = re.escape(self.owner_repo)
        if method == "POST" and re.fullmatch(rf"/repos/{repo}/statuses/[0-9a-f]{{40}}", path):
            return 201, {"id": len(self.requests) + 1, "state": body.get("state"),
                         "context": body.get("context", "default"),
                         "description": body.get("description"),
                         "target_url": body.get("target_url"), "created_at": NOW,
                         "updated_at": NOW}  # fmt: skip
        if method == "POST" and re.fullmatch(
            rf"/repos/{repo}/actions/workflows/[^/]+/dispatches", path
        ):
            return 204, None
        issue = re.fullmatch(rf"/repos/{repo}/issues/(\d+)/comments", path)
        if issue and method == "GET":
            with self._lock:
                return 200, [c for c in self.comments if c["issue_number"] == int(issue[1])]
        if issue and method == "POST":
            return 201, self._new_comment(int(issue[1]), str(body.get("body", "")))
        edit = re.fullmatch(rf"/repos/{repo}/issues/comments/(\d+)", path)
        if edit and method == "PATCH":
            return self._edit_comment(int(edit[1]), str(body.get("body", "")))
        return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}

    def _new_comment(self, number: int, text: str) -> dict[str, Any]:
        with self._lock:
            cid = 9000 + len(self.comments) + 1
            comment = {
                "id": cid, "node_id": f"IC_{cid}", "issue_number": number, "body": text,
                "url": f"{self.url}/repos/{self.owner_repo}/issues/comments/{cid}",
                "html_url": f"https://github.com/{self.owner_repo}/pull/{number}#issuecomment-{cid}",
                "issue_url": f"{self.url}/repos/{self.owner_repo}/issues/{number}",
                "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
                "created_at": NOW, "updated_at": NOW, "author_association": "NONE",
            }  # fmt: skip
            self.comments.append(comment)
            return comment

    def _edit_comment(self, cid: int, text: str) -> tuple[int, Any]:
        with self._lock:
            for comment in self.comments:
                if comment["id"] == cid:
                    comment["body"] = text
                    return 200, comment
        return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                auth = self.headers.get("Authorization", "")
                authorized = auth in {f"token {fake.token}", f"Bearer {fake.token}"}
                if authorized:
                    status, answer = fake.answer(self.command, parts.path, body)
                else:
                    status, answer = 401, {"message": "Requires authentication",
                                           "documentation_url": DOCS, "status": "401"}  # fmt: skip
                with fake._lock:
                    fake.requests.append(Request(self.command, parts.path, parse_qs(parts.query),
                                                 body, authorized, status))  # fmt: skip
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    @contextmanager
    def running(self) -> Iterator[FakeGitHub]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=10)


def load_cassette(path: Path, **values: str) -> dict[str, Any]:
    """A cassette file with `{name}` placeholders in keys and string values filled in."""
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    data = json.loads(text)
    assert isinstance(data, dict)
    return data
