"""Local stand-ins for the remote actions the workflows use, for runs under `act` in host mode.

Each composite action under `actions/` calls `python local_actions.py <command>` with its inputs
in `INPUT_*` environment variables (never on a command line through the shell). The behaviour
follows the documented contract of the real action, reduced to what a single-machine run needs:

* `checkout` (actions/checkout v4): fetches `repository` at `ref` (default: the run's commit for
  the run's own repository) into `path` under the workspace, from `https://github.com/<owner>/
  <name>` — which the run's git configuration redirects (`url.<base>.insteadOf`) to local bare
  repositories. `fetch-depth: 0` fetches every branch and tag. A ref that does not exist fails
  the step, as the real action does. No credentials are ever written (`persist-credentials` is
  accepted and has nothing to persist); `sparse-checkout` checks out the whole tree (a superset).
* `setup-python`: a virtual environment of the host's interpreter with its site-packages
  visible (nothing is downloaded), put first on PATH; `python-version` is reported, not enforced.
* `upload-artifact` (v4): copies the files matched by `path` (lines, globs, `!` exclusions;
  the root is the least common ancestor of the search paths) into the run's artifact folder
  `$IXCI_ACT_ARTIFACTS/<name>/`; honours `if-no-files-found`, `overwrite` and
  `include-hidden-files`; a second upload of one name without `overwrite` fails (GitHub: 409).
* `download-artifact` (v4): `name` → that artifact's files directly into `path` (missing: the
  step fails); otherwise every artifact matching `pattern` into `path/<name>/`, or merged into
  `path` with `merge-multiple`.

Artifact names and paths are untrusted: names are checked against GitHub's rules and every file
lands inside the artifact folder or the workspace.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

FORBIDDEN_NAME_CHARS = set('":<>|*?\r\n\\/')
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# a branch, tag, full ref or SHA; never an option (a leading '-') or a refspec
REF_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$")


class ActionError(Exception):
    """The step fails with this message (printed as a workflow `::error::`)."""


def _input(name: str, default: str = "") -> str:
    return os.environ.get("INPUT_" + name.upper().replace("-", "_"), default).strip() or default


def _flag(name: str, default: bool = False) -> bool:
    value = _input(name, "true" if default else "false").lower()
    if value not in {"true", "false"}:
        raise ActionError(f"input {name}: expected true or false, got {value!r}")
    return value == "true"


def _inside(base: Path, rel: str, what: str) -> Path:
    target = (base / rel).resolve() if rel else base.resolve()
    if target != base.resolve() and base.resolve() not in target.parents:
        raise ActionError(f"{what} {rel!r} leaves {base}")
    return target


def _append(env_file: str, line: str) -> None:
    with open(os.environ[env_file], "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


# --- checkout -------------------------------------------------------------------------------


def checkout() -> None:
    workspace = Path(os.environ["GITHUB_WORKSPACE"])
    repository = _input("repository", os.environ["GITHUB_REPOSITORY"])
    ref = _input("ref")
    if not ref:
        own = repository == os.environ["GITHUB_REPOSITORY"]
        ref = os.environ["GITHUB_SHA"] if own else "HEAD"
    if not REPOSITORY_RE.match(repository) or {".", ".."} & set(repository.split("/")):
        raise ActionError(f"repository {repository!r} is not of the form owner/name")
    if not REF_RE.match(ref):
        raise ActionError(f"ref {ref!r} is not a branch, tag or commit")
    depth_text = _input("fetch-depth", "1")
    if not depth_text.isdigit():
        raise ActionError(f"fetch-depth {depth_text!r} is not a number")
    depth = int(depth_text)
    target = _inside(workspace, _input("path"), "path")
    if target.exists():
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    target.mkdir(parents=True, exist_ok=True)
    url = f"{os.environ['GITHUB_SERVER_URL']}/{repository}"
    for args in (["init", "-q"], ["remote", "add", "origin", url]):
        _must(_git(*args, cwd=target), "git " + args[0])
    depth_args = [] if depth == 0 else [f"--depth={depth}"]
    if depth == 0:
        _must(
            _git(
                "fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=target
            ),
            f"fetching {repository}",
        )
    fetched = _git("fetch", "-q", "--no-tags", *depth_args, "origin", ref, cwd=target)
    if fetched.returncode != 0:
        raise ActionError(
            f"A branch or tag with the name '{ref}' could not be found in {repository}"
            f" ({fetched.stderr.strip()})"
        )
    branch = ref.removeprefix("refs/heads/")
    is_branch = _git("ls-remote", "--exit-code", "--heads", "origin", branch, cwd=target)
    if is_branch.returncode == 0 and not _is_sha(ref):
        _must(_git("checkout", "-q", "-B", branch, "FETCH_HEAD", cwd=target), "git checkout")
    else:
        _must(_git("checkout", "-q", "--detach", "FETCH_HEAD", cwd=target), "git checkout")
    sha = _git("rev-parse", "HEAD", cwd=target).stdout.strip()
    print(f"checked out {repository}@{ref} ({sha}) into {target}")
    _append("GITHUB_OUTPUT", f"commit={sha}")
    _append("GITHUB_OUTPUT", f"ref={ref}")


def _is_sha(ref: str) -> bool:
    return len(ref) == 40 and all(c in "0123456789abcdef" for c in ref.lower())


def _must(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise ActionError(f"{what} failed: {proc.stderr.strip()}")


# --- setup-python ---------------------------------------------------------------------------


def setup_python() -> None:
    wanted = _input("python-version")
    folder = Path(os.environ["RUNNER_TEMP"]) / "setup-python"
    if not (folder / "bin" / "python").exists():
        venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if wanted and not version.startswith(wanted):
        print(f"::notice title=setup-python::asked for {wanted}; this host runs Python {version}")
    _append("GITHUB_PATH", str(folder / "bin"))
    _append("GITHUB_OUTPUT", f"python-version={version}")
    _append("GITHUB_OUTPUT", f"python-path={python}")


# --- artifacts ------------------------------------------------------------------------------


def _store() -> Path:
    store = Path(os.environ["IXCI_ACT_ARTIFACTS"])
    store.mkdir(parents=True, exist_ok=True)
    return store


def _check_name(name: str) -> str:
    bad = sorted(FORBIDDEN_NAME_CHARS.intersection(name))
    if not name or bad or name in {".", ".."}:
        raise ActionError(f"artifact name {name!r} is not valid (forbidden: {bad or 'empty'})")
    return name


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _matches(workspace: Path, lines: list[str]) -> tuple[list[Path], Path | None]:
    """Files matched by the `path` lines and the upload root (least common ancestor)."""
    include = [ln for ln in lines if not ln.startswith("!")]
    exclude = [ln[1:].strip() for ln in lines if ln.startswith("!")]
    files: dict[Path, None] = {}
    searched: list[Path] = []
    for pattern in include:
        full = pattern if os.path.isabs(pattern) else str(workspace / pattern)
        magic = glob.has_magic(full)
        searched.append(Path(_glob_base(full)) if magic else Path(full))
        for hit in sorted(glob.glob(full, recursive=True)) if magic else [full]:
            p = Path(hit)
            found = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            files.update((q, None) for q in found if q.is_file())
    kept = [
        f for f in files if not any(fnmatch.fnmatch(str(f), str(workspace / x)) for x in exclude)
    ]
    if not searched:
        return [], None
    if len(searched) == 1 and not searched[0].is_dir():
        root = searched[0].parent
    else:
        root = Path(os.path.commonpath([str(s) for s in searched]))
    return kept, root


def _glob_base(pattern: str) -> str:
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return str(Path(*parts)) if parts else "/"


def upload_artifact() -> None:
    workspace = Path(os.environ["GITHUB_WORKSPACE"])
    name = _check_name(_input("name", "artifact"))
    lines = [ln.strip() for ln in _input("path").splitlines() if ln.strip()]
    if not lines:
        raise ActionError("input path is required")
    mode = _input("if-no-files-found", "warn")
    if mode not in {"warn", "error", "ignore"}:
        raise ActionError(f"if-no-files-found: {mode!r} is not one of warn, error, ignore")
    files, root = _matches(workspace, lines)
    if root is not None and not _flag("include-hidden-files"):
        files = [f for f in files if not _hidden(f, root)]
    if not files or root is None:
        message = f"No files were found with the provided path: {' '.join(lines)}. No artifacts will be uploaded."
        if mode == "error":
            raise ActionError(message)
        if mode == "warn":
            print(f"::warning::{message}")
        return
    dest = _store() / name
    if dest.exists():
        if not _flag("overwrite"):
            raise ActionError(
                "Failed to CreateArtifact: Received non-retryable error: (409) Conflict:"
                " an artifact with this name already exists on the workflow run"
            )
        shutil.rmtree(dest)
    for f in files:
        rel = f.relative_to(root)
        out = _inside(dest, str(rel), "file")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out)
    artifact_id = sum(1 for p in _store().iterdir() if p.is_dir())
    print(f"uploaded artifact {name}: {len(files)} file(s)")
    _append("GITHUB_OUTPUT", f"artifact-id={artifact_id}")


def download_artifact() -> None:
    workspace = Path(os.environ["GITHUB_WORKSPACE"])
    target = _inside(workspace, _input("path"), "path")
    name = _input("name")
    store = _store()
    if name:
        _check_name(name)
        if not (store / name).is_dir():
            raise ActionError(
                f"Unable to download artifact(s): Artifact not found for name: {name}"
            )
        _copy_tree(store / name, target)
        print(f"downloaded artifact {name} into {target}")
        return
    pattern = _input("pattern", "*")
    chosen = sorted(
        p.name for p in store.iterdir() if p.is_dir() and fnmatch.fnmatchcase(p.name, pattern)
    )
    merge = _flag("merge-multiple")
    for art in chosen:
        _copy_tree(store / art, target if merge else target / art)
    print(f"Total of {len(chosen)} artifact(s) downloaded")
    _append("GITHUB_OUTPUT", f"download-path={target}")


def _copy_tree(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(q for q in src.rglob("*") if q.is_file()):
        out = dest / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out)


COMMANDS = {
    "checkout": checkout,
    "setup-python": setup_python,
    "upload-artifact": upload_artifact,
    "download-artifact": download_artifact,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: local_actions.py {{{','.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    try:
        COMMANDS[argv[0]]()
    except ActionError as exc:
        print(f"::error title={argv[0]}::{exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
