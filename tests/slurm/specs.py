"""ServeSpecs for the Slurm tests, built through the real llama.cpp adapter."""

from __future__ import annotations

import sys
from dataclasses import replace

from ixci.engines.base import Component, EngineJob, ServeSpec
from ixci.engines.llamacpp import serve_spec
from ixci.modelgen import TinyModel


def llama_job(tiny: TinyModel, port: int, *, slots: int = 2) -> EngineJob:
    return EngineJob(job_id="j-slurmtest0001", framework="llamacpp", image="localhost/ixci/llama-server:b11434",
                     model_key="tiny-llama", model_path=str(tiny.gguf), served_name="tiny",
                     precision="fp32", port=port, device="cpu", max_concurrency=slots,
                     max_model_len=512, engine_args={"threads": 1})  # fmt: skip


def llama_spec(server: str, tiny: TinyModel, port: int) -> ServeSpec:
    spec = serve_spec(llama_job(tiny, port))
    comp = spec.components[0]
    return replace(spec, components=(replace(comp, argv=(server, *comp.argv[1:]), gpus=1),))


def disagg_spec(server: str, tiny: TinyModel, ports: list[int]) -> ServeSpec:
    """A router (sglang-router, round robin) in front of 1 prefill + 2 decode llama-servers.

    llama.cpp cannot hand a KV cache from a prefill server to a decode server, so the router
    balances over the decode workers round-robin while the prefill worker serves health only.
    """
    router_port, *worker_ports = ports
    roles = ["prefill", "decode", "decode"]
    workers = []
    for i, (role, port) in enumerate(zip(roles, worker_ports, strict=True)):
        base = llama_spec(server, tiny, port).components[0]
        name = f"{role}-{i if role == 'prefill' else i - 1}"
        workers.append(replace(base, name=name, role=role, gpus=1, port=port))
    decode_urls = [f"http://127.0.0.1:{w.port}" for w in workers if w.role == "decode"]
    router = Component(
        name="router", role="frontend", gpus=0, port=router_port,
        argv=(sys.executable, "-m", "sglang_router.launch_router", "--host", "127.0.0.1",
              "--port", str(router_port), "--policy", "round_robin", "--worker-urls", *decode_urls),
    )  # fmt: skip
    base = llama_spec(server, tiny, router_port)
    return replace(base, components=(router, *workers), port=router_port,
                   notes=("llama.cpp has no KV hand-off: round-robin over the decode workers",))  # fmt: skip
