"""GitHub's REST API for the gate, played from recorded responses (tests/data/github/gate/).

GitHub's API cannot run here, so the gate is tested against responses recorded in the shapes
GitHub documents (pulls, reviews, collaborator permission, statuses, workflow dispatches, issue
labels). Every write is kept, so a test asserts exactly what the gate did to the repository.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import responses

from ixci.github.github_api import RepoClient

from .simulate import ROOT

API = "https://api.github.test"
REPO = "ixci-dev/ixci"
GATE_DATA = ROOT / "tests" / "data" / "github" / "gate"


@dataclass
class Write:
    method: str
    path: str
    body: Any


@dataclass
class RecordedApi:
    """Which recorded file answers each read; `writes` collects every POST/DELETE in order."""

    pull: str = "pull-42.json"
    reviews: str = "reviews-42.approved-head.json"
    writes: list[Write] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)

    def install(self, rsps: responses.RequestsMock) -> None:
        base = re.escape(f"{API}/repos/{REPO}")
        rsps.add_callback(responses.GET, re.compile(rf"{base}/pulls/\d+$"), self._file(self.pull))
        rsps.add_callback(
            responses.GET,
            re.compile(rf"{base}/pulls/\d+/reviews(\?.*)?$"),
            self._file(self.reviews),
        )
        rsps.add_callback(
            responses.GET, re.compile(rf"{base}/collaborators/[^/]+/permission$"), self._permission
        )
        for method in (responses.POST, responses.DELETE):
            rsps.add_callback(method, re.compile(rf"{base}/.*"), self._write)

    def _file(self, name: str) -> Any:
        def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            self.reads.append(str(request.path_url))
            return 200, {"Content-Type": "application/json"}, (GATE_DATA / name).read_text()

        return answer

    def _permission(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        login = str(request.path_url).split("/collaborators/")[1].split("/")[0]
        self.reads.append(str(request.path_url))
        path = GATE_DATA / f"permission-{login}.json"
        if not path.is_file():
            return 404, {}, json.dumps({"message": "Not Found"})
        return 200, {"Content-Type": "application/json"}, path.read_text()

    def _write(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body) if request.body else None
        path = str(request.path_url).removeprefix(f"/repos/{REPO}")
        self.writes.append(Write(str(request.method), path, body))
        if "/dispatches" in path:
            return 204, {}, ""
        if request.method == "DELETE":
            return 200, {}, (GATE_DATA / "labels-after-removal.json").read_text()
        return (
            201,
            {"Content-Type": "application/json"},
            json.dumps({"state": (body or {}).get("state")}),
        )

    # ---- what the gate did ----

    def statuses(self) -> list[tuple[str, dict[str, Any]]]:
        return [(w.path.split("/")[-1], w.body) for w in self.writes if "/statuses/" in w.path]

    def dispatches(self) -> list[dict[str, Any]]:
        return [w.body for w in self.writes if w.path.endswith("/dispatches")]

    def removed_labels(self) -> list[str]:
        return [w.path.rsplit("/", 1)[-1] for w in self.writes if w.method == "DELETE"]


def client() -> RepoClient:
    return RepoClient(requests.Session(), "test-token", REPO, api_url=API)


def data(name: str) -> Path:
    return GATE_DATA / name
