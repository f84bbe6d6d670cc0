"""ServeSpecs for the Slurm tests, built through the real llama.cpp adapter."""

from __future__ import annotations

from dataclasses import replace

from ixci.engines.base import EngineJob, PoolJob, ServeSpec
from ixci.engines.llamacpp import serve_spec
from ixci.engines.modelgen import TinyModel
from ixci.job import Router
from tests.runner.jobs import engine_job_of


def llama_job(tiny: TinyModel, port: int, *, slots: int = 2) -> EngineJob:
    return engine_job_of(job_id="j-slurmtest0001", framework="llamacpp", image="localhost/ixci/llama-server:b11434",
                     model_key="tiny-llama", model_path=str(tiny.gguf), served_name="tiny",
                     precision="fp32", port=port, device="cpu", max_concurrency=slots,
                     max_model_len=512, engine_args={"threads": 1})  # fmt: skip


def llama_spec(server: str, tiny: TinyModel, port: int) -> ServeSpec:
    spec = serve_spec(llama_job(tiny, port))
    comp = spec.components[0]
    return replace(spec, components=(replace(comp, argv=(server, *comp.argv[1:]), gpus=1),))


def disagg_spec(server: str, tiny: TinyModel, port: int) -> ServeSpec:
    """The adapter's disaggregated deployment: sglang-router on `port` (round robin over the
    decode workers: llama.cpp has no KV hand-off) in front of 1 prefill + 2 decode servers on
    port+1 .. port+3; `server` is the llama-server executable."""
    prefill, decode = (
        PoolJob(role="prefill", workers=1, tp=1),
        PoolJob(role="decode", workers=2, tp=1),
    )
    job = llama_job(tiny, port).with_topology(
        kv_transfer="none", router=Router(name="sglang-router", version="0.3.2"),
        prefill=prefill, decode=decode, disaggregated=True, gpus=prefill.gpus + decode.gpus,
    )  # fmt: skip
    spec = serve_spec(job)
    comps = tuple(
        replace(c, argv=(server, *c.argv[1:])) if c.argv[0] == "llama-server" else c
        for c in spec.components
    )
    return replace(spec, components=comps)


def free_port_block(count: int) -> int:
    """A base port such that base .. base+count-1 are all free on every interface now (the
    disaggregated adapter puts the router on `port` and worker k on `port + k`)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no block of {count} free ports found")
