"""The local llama-server image (built by docker/llama-server/build, no registry) serves the
tiny model under docker and podman with host networking, and leaves no container behind."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from ixci.engines import modelgen
from tests.conftest import REPO, missing
from tests.infra.llama import post


def _catalog_image() -> str:
    tags = subprocess.run(
        ["python3", str(REPO / ".ci" / "llama-image-tags")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return tags[0]


def _wait_health(base: str, cli: str, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    logs = subprocess.run([cli, "logs", name], capture_output=True, text=True, check=False)
    raise AssertionError(f"container {name} not healthy:\n{logs.stdout}{logs.stderr}")


def _serve_in_container(cli: str, tiny: modelgen.TinyModel, port: int) -> None:
    image = _catalog_image()
    if subprocess.run(
        [cli, "image", "inspect", image], capture_output=True, check=False
    ).returncode:
        missing(f"{cli} image {image} not built", "docker/llama-server/build " + image)
    name = f"ixci-test-{uuid.uuid4().hex[:10]}"
    model_dir = str(tiny.gguf.parent)
    argv = [cli, "run", "-d", "--name", name, "--network", "host", "--label", "ixci.test=1",
            "-v", f"{model_dir}:{model_dir}:ro", image,
            "llama-server", "-m", str(tiny.gguf), "--host", "127.0.0.1", "--port", str(port),
            "-c", "1024", "-t", "1"]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_health(base, cli, name)
        out = post(
            base + "/v1/completions", {"prompt": "def f(x):", "max_tokens": 5, "ignore_eos": True}
        )
        assert out["usage"]["completion_tokens"] == 5
    finally:
        subprocess.run([cli, "rm", "-f", name], capture_output=True, check=False, timeout=120)
    left = subprocess.run([cli, "ps", "-aq", "--filter", f"name={name}"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert left.stdout.strip() == ""


@pytest.mark.docker
def test_docker_image_serves_tiny_model(
    docker_available: str, tiny_gguf: modelgen.TinyModel, free_port: int
) -> None:
    _serve_in_container(docker_available, tiny_gguf, free_port)


@pytest.mark.docker
def test_podman_image_serves_tiny_model(
    podman_available: str, tiny_gguf: modelgen.TinyModel, free_port: int
) -> None:
    _serve_in_container(podman_available, tiny_gguf, free_port)


def test_image_tag_matches_catalog() -> None:
    """Every llama.cpp recipe names an image that .ci builds (tags come from matrix/)."""
    tags = set(subprocess.run(["python3", str(REPO / ".ci" / "llama-image-tags")],
                              capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    assert all(t.startswith("localhost/ixci/llama-server:") for t in tags)
    for recipe in (REPO / "matrix" / "recipes").glob("*llamacpp*.yaml"):
        text = recipe.read_text()
        if "localhost/ixci/llama-server" in text:
            assert any(t in text for t in tags), recipe
