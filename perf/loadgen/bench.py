#!/usr/bin/env python3
"""Side-by-side benchmark of ixci's client against anchor clients (not part of the tests).

The stub server (ground truth at write time) runs pinned to one core, each client pinned to
another; clients are interleaved A B A B; before each run the script waits for an idle machine
(1-minute load average below --idle-load, at most --idle-wait s). Two modes per concurrency:
  ceiling:  zero server delay, 8 events per write, OSL 1024 → output tok/s, client CPU µs/token
  accuracy: truth TTFT 100 ms, 20 ms between tokens → TTFT/ITL error vs truth (mean, p99)
Anchors come from perf/loadgen/install_anchors.sh (ANCHORS_DIR, default ~/.cache/ixci/anchors).

  python perf/loadgen/bench.py --concurrency 64 256 1024 --clients ixci vllm --repeats 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
IXCI_WORKERS = 1
ANCHORS = Path(os.environ.get("ANCHORS_DIR", Path.home() / ".cache/ixci/anchors"))


def make_tokenizer(folder: Path) -> Path:
    """A local HF tokenizer folder (anchors need one; nothing is fetched)."""
    from ixci.engines import modelgen

    folder.mkdir(parents=True, exist_ok=True)
    modelgen.train_tokenizer(2048).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 20})
    )
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 2048}))
    return folder


def http(url: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def wait_idle(limit: float, max_wait: float) -> float:
    t0 = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - t0 < max_wait:
        time.sleep(2)
    return os.getloadavg()[0]


def run_timed(argv: list[str], log: Path) -> tuple[float, float, int, float]:
    """Run argv; return (wall s, CPU s of the client process tree, exit code, peak RSS MiB of
    its largest process)."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        _, status, ru = os.wait4(proc.pid, 0)
    rss = ru.ru_maxrss / 1024  # KiB on Linux; wait4 gives the waited process itself
    return (
        time.perf_counter() - t0,
        ru.ru_utime + ru.ru_stime,
        os.waitstatus_to_exitcode(status),
        rss,
    )


def client_ixci(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path, *extra: str, tree: str | None = None
) -> tuple[list[str], callable]:
    exe = (
        # another source tree (--ixci-tree): -P keeps the working directory off sys.path
        [
            "env",
            "PYTHONPATH=" + os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]),
            sys.executable,
            "-P",
            "-c",
            "import sys; from ixci.cli import main; sys.argv[0] = 'ixci'; main()",
        ]
        if tree is not None
        else [shutil.which("ixci")]
        if shutil.which("ixci")
        else [
            sys.executable,
            "-c",
            "import sys; from ixci.cli import main; sys.argv[0] = 'ixci'; main()",
        ]
    )
    argv = [
        *exe,
        "loadgen",
        "--url",
        url,
        "--model",
        "stub",
        "--isl",
        "128",
        "--osl",
        str(osl),
        "--concurrency",
        str(c),
        "--num-requests",
        str(n),
        "--warmup-requests",
        "0",
        "--workers",
        str(IXCI_WORKERS),
        "--dialect",
        "vllm",
        "--tokenizer",
        str(tok / "tokenizer.json"),
        "--output",
        str(out),
        *extra,
    ]

    def read() -> dict:
        doc = json.loads(out.read_text())
        m, c = doc["metrics"], doc["client"]
        drain = c.get("drain_s", 0.0)  # parsing left after the window: work the window leaves out
        return {
            "client_cpu_percent": c["cpu_percent"],
            "client_loop_lag_p99_ms": c["loop_lag_p99_s"] * 1e3,
            "client_saturated": c["saturated"],
            "receive_stamps": c.get("receive_stamps"),
            "out_tok_s": m["output_throughput"],
            "tokens": m["total_output_tokens"],
            "sustained_tok_s": m["total_output_tokens"] / (m["duration_s"] + drain)
            if m["duration_s"]
            else 0.0,
            "drain_s": drain,
            "unparsed_at_end": c.get("unparsed_at_end"),
            "max_unparsed_mib": c.get("max_unparsed_bytes", 0) / 2**20,
            "ttft_mean": m["ttft"]["mean"],
            "ttft_p99": m["ttft"]["p99"],
            "itl_mean": m["itl"]["mean"],
            "itl_p99": m["itl"]["p99"],
            "completed": m["completed"],
        }

    return argv, read


def client_vllm(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    # vLLM's "ITL" is the gap between consecutive content chunks (what we compare); its TPOT is the
    # per-request (latency - TTFT) / (tokens - 1). Tokens from the usage chunk.
    argv = [
        str(ANCHORS / "vllm/bin/vllm"),
        "bench",
        "serve",
        "--backend",
        "openai",
        "--base-url",
        url,
        "--endpoint",
        "/v1/completions",
        "--model",
        "stub",
        "--tokenizer",
        str(tok),
        "--dataset-name",
        "random",
        "--random-input-len",
        "128",
        "--random-output-len",
        str(osl),
        "--num-prompts",
        str(n),
        "--max-concurrency",
        str(c),
        "--request-rate",
        "inf",
        "--ignore-eos",
        "--percentile-metrics",
        "ttft,tpot,itl",
        "--metric-percentiles",
        "99",
        "--disable-tqdm",
        "--num-warmups",
        "0",
        "--save-result",
        "--result-dir",
        str(out.parent),
        "--result-filename",
        out.name,
    ]

    def read() -> dict:
        m = json.loads(out.read_text())
        return {
            "out_tok_s": m["output_throughput"],
            "tokens": m["total_output_tokens"],
            "ttft_mean": m["mean_ttft_ms"] / 1e3,
            "ttft_p99": m["p99_ttft_ms"] / 1e3,
            "itl_mean": m["mean_itl_ms"] / 1e3,
            "itl_p99": m["p99_itl_ms"] / 1e3,
            "completed": m["completed"],
        }

    return argv, read


def client_sglang(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    # "random-ids": random token ids (plain "random" samples ShareGPT text, a download). ignore_eos is
    # on by default (--disable-ignore-eos turns it off). It asks for no usage chunk, so its token count
    # is the requested OSL per completed request. No warm-up request (default 1), as for the others.
    # SGLang's "ITL" is the gap between consecutive content chunks (what we compare); its TPOT is
    # the per-request (latency - TTFT) / (tokens - 1).
    argv = [
        str(ANCHORS / "sglang/bin/python"),
        "-m",
        "sglang.bench_serving",
        "--backend",
        "vllm",
        "--base-url",
        url,
        "--model",
        "stub",
        "--tokenizer",
        str(tok),
        "--dataset-name",
        "random-ids",
        "--random-input-len",
        "128",
        "--random-output-len",
        str(osl),
        "--random-range-ratio",
        "1",
        "--num-prompts",
        str(n),
        "--max-concurrency",
        str(c),
        "--request-rate",
        "inf",
        "--warmup-requests",
        "0",
        "--disable-tqdm",
        "--output-file",
        str(out),
    ]

    def read() -> dict:
        m = json.loads(out.read_text().splitlines()[-1])
        return {
            "out_tok_s": m["output_throughput"],
            "tokens": m["total_output_tokens"],
            "ttft_mean": m["mean_ttft_ms"] / 1e3,
            "ttft_p99": m["p99_ttft_ms"] / 1e3,
            "itl_mean": m["mean_itl_ms"] / 1e3,
            "itl_p99": m["p99_itl_ms"] / 1e3,
            "completed": m["completed"],
        }

    return argv, read


def client_sglang_rust(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    argv = [
        str(ANCHORS / "sglang/bin/python"),
        "-m",
        "sglang.benchmark.rust_client",
        "--backend",
        "vllm",
        "--base-url",
        url,
        "--model",
        "stub",
        "--tokenizer",
        str(tok),
        "--dataset-name",
        "random-ids",
        "--random-input-len",
        "128",
        "--random-output-len",
        str(osl),
        "--random-range-ratio",
        "1",
        "--num-prompts",
        str(n),
        "--max-concurrency",
        str(c),
        "--request-rate",
        "inf",
        "--warmup-requests",
        "0",
        "--worker-threads",
        "1",
        "--disable-tqdm",
        "--output-file",
        str(out),
    ]
    return argv, client_sglang(url, c, n, osl, out, tok)[1]


def hf_cache_for(tok: Path, repo: str = "ixci/stub-tokenizer") -> tuple[Path, str]:
    """An offline Hugging Face cache holding `tok` as `repo` (refs/main → a snapshot that links to it).

    AIPerf 0.13 under HF_HUB_OFFLINE=1 resolves every tokenizer name with
    snapshot_download(local_files_only=True), which rejects a folder path as a repo id
    (HFValidationError; its dataset workers force offline mode even when the parent is online),
    so it only loads a tokenizer that sits in the cache. Nothing is fetched."""
    hub = tok.parent / "hf-hub"
    model = hub / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (model / "refs").mkdir(parents=True, exist_ok=True)
    (model / "snapshots").mkdir(exist_ok=True)
    (model / "refs" / "main").write_text(commit)
    snap = model / "snapshots" / commit
    if not snap.exists():
        snap.symlink_to(tok.resolve(), target_is_directory=True)
    return hub, repo


def client_aiperf(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    # AIPerf's "inter_token_latency" is per request (latency - TTFT) / (tokens - 1), a TPOT; its
    # "inter_chunk_latency" is the gap between consecutive content chunks, which is what we use.
    # --use-server-token-count: tokens from the usage chunk (its client-side count would
    # re-tokenize the stub's " tok" text, 2 tokens each with this tokenizer). Summary export only
    # (no per-record JSONL), like the other anchors' result files; workers/record processors at
    # AIPerf's defaults.
    hub, repo = hf_cache_for(tok)
    argv = [
        "env",
        f"HF_HUB_CACHE={hub}",
        str(ANCHORS / "aiperf/bin/aiperf"),
        "profile",
        "--model",
        "stub",
        "--url",
        url,
        "--endpoint-type",
        "completions",
        "--streaming",
        "--tokenizer",
        repo,
        "--isl",
        "128",
        "--isl-stddev",
        "0",
        "--osl",
        str(osl),
        "--osl-stddev",
        "0",
        "--extra-inputs",
        "ignore_eos:true",
        "--use-server-token-count",
        "--concurrency",
        str(c),
        "--request-count",
        str(n),
        "--ui-type",
        "none",
        "--no-server-metrics",
        "--no-gpu-telemetry",
        "--export-level",
        "summary",
        "--artifact-dir",
        str(out.parent),
        "--profile-export-prefix",
        out.stem,
    ]  # → out

    def read() -> dict:
        m = json.loads(out.read_text())
        return {
            "out_tok_s": m["output_token_throughput"]["avg"],
            "tokens": int(m["total_output_tokens"]["avg"]),
            "ttft_mean": m["time_to_first_token"]["avg"] / 1e3,
            "ttft_p99": m["time_to_first_token"]["p99"] / 1e3,
            "itl_mean": m["inter_chunk_latency"]["avg"] / 1e3,
            "itl_p99": m["inter_chunk_latency"]["p99"] / 1e3,
            "completed": int(m["request_count"]["avg"]),
        }

    return argv, read


def client_guidellm(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    # GuideLLM 0.8.1 has `guidellm run` (no `benchmark` command). Synthetic output_tokens sets
    # max_tokens plus ignore_eos; output tokens come from the usage chunk. Its per-request records keep
    # only the first and last token times, so no chunk-gap figure exists: "inter_token_latency_ms" is
    # per request (last - first token) / (tokens - 1) (aggregated token-weighted; its p99 is a p99 of
    # per-request averages, blind to single late chunks) and is the closest to ours; its
    # "time_per_output_token_ms" is (last token - request start) / tokens, TTFT included. Workers at
    # GuideLLM's default (10 processes).
    argv = [
        str(ANCHORS / "guidellm/bin/guidellm"),
        "run",
        "--backend",
        f"kind=openai_http,target={url},model=stub,request_format=/v1/completions,stream=true",
        "--profile",
        f"kind=concurrent,streams={c}",
        "--constraint",
        f"kind=max_requests,count={n}",
        "--tokenizer",
        f"kind=huggingface_auto,model={tok}",
        "--data",
        f"kind=synthetic_text,prompt_tokens=128,output_tokens={osl}",
        "--output",
        f"kind=json,path={out}",
        "--disable-console",
    ]

    def read() -> dict:
        m = json.loads(out.read_text())["benchmarks"][0]["metrics"]
        ttft, itl = (
            m["time_to_first_token_ms"]["successful"],
            m["inter_token_latency_ms"]["successful"],
        )
        return {
            "out_tok_s": m["output_tokens_per_second"]["successful"]["mean"],
            "tokens": int(m["output_token_count"]["successful"]["total_sum"]),
            "ttft_mean": ttft["mean"] / 1e3,
            "ttft_p99": ttft["percentiles"]["p99"] / 1e3,
            "itl_mean": itl["mean"] / 1e3,
            "itl_p99": itl["percentiles"]["p99"] / 1e3,
            "completed": m["request_totals"]["successful"],
        }

    return argv, read


def client_ixci_client_stamps(
    url: str, c: int, n: int, osl: int, out: Path, tok: Path
) -> tuple[list[str], callable]:
    """ixci stamping each read when it takes it (the comparison for its kernel stamps)."""
    return client_ixci(url, c, n, osl, out, tok, "--client-stamps")


CLIENTS = {
    "ixci": client_ixci,
    "ixci-client-stamps": client_ixci_client_stamps,
    "vllm": client_vllm,
    "sglang": client_sglang,
    "sglang-rust": client_sglang_rust,
    "aiperf": client_aiperf,
    "guidellm": client_guidellm,
}


def build_stub(work: Path) -> list[str]:
    """Compile stub.c (kernel arrival stamps, no event-loop queueing in the truth)."""
    exe = work / "stub"
    cc = shutil.which(os.environ.get("CC", "cc")) or sys.exit(
        "perf/loadgen: a C compiler (cc) is needed for the C stub; or pass --stub python"
    )
    subprocess.run([cc, "-O2", "-Wall", "-o", str(exe), str(HERE / "stub.c"), "-lm"], check=True)
    return [str(exe)]


def start_stub(cpu: str, stub: list[str], args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        ["taskset", "-c", cpu, *stub, "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument(
        "--clients",
        nargs="+",
        default=["ixci", "vllm"],
        help=f"of {', '.join(CLIENTS)}, and ixci@NAME for each --ixci-tree",
    )
    p.add_argument(
        "--modes", nargs="+", default=["ceiling", "accuracy"], choices=["ceiling", "accuracy"]
    )
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--requests-per-slot", type=int, default=2)
    p.add_argument("--ceiling-osl", type=int, default=1024)
    p.add_argument("--accuracy-osl", type=int, default=64)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--idle-load", type=float, default=1.0)
    p.add_argument("--idle-wait", type=float, default=60.0)
    p.add_argument("--json-out", type=Path)
    p.add_argument(
        "--report", type=Path, metavar="JSON", help="only print the tables of a saved --json-out"
    )
    p.add_argument(
        "--stub",
        choices=["c", "python"],
        default="c",
        help="c: stub.c, truth from kernel receive stamps (default); python: stub_server.py",
    )
    p.add_argument(
        "--ixci-workers", type=int, default=1, help="ixci worker processes (one per client CPU)"
    )
    p.add_argument(
        "--ixci-tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run ixci from another source tree (e.g. an export of an older commit) as "
        "client ixci@NAME; name it in --clients",
    )
    p.add_argument(
        "--stub-procs",
        type=int,
        default=1,
        help="C stub processes sharing the port (SO_REUSEPORT), ceiling mode only; give --server-cpu "
        "as many CPUs (e.g. 0-7) so the stub is not the limit of a many-worker client",
    )
    a = p.parse_args()
    for spec in a.ixci_tree:
        name, _, tree = spec.partition("=")
        if not name or not Path(tree).is_dir():
            p.error(f"--ixci-tree {spec}: give NAME=PATH, PATH a source tree holding ixci/")
        CLIENTS[f"ixci@{name}"] = functools.partial(client_ixci, tree=tree)
    if a.clients and not a.report and (unknown := set(a.clients) - set(CLIENTS)):
        p.error(f"unknown clients {sorted(unknown)}; known: {', '.join(CLIENTS)}")
    if a.report:
        saved = json.loads(a.report.read_text())
        report(saved, list(dict.fromkeys(r["client"] for r in saved)))
        return
    global IXCI_WORKERS
    IXCI_WORKERS = a.ixci_workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the stub
    work = Path(tempfile.mkdtemp(prefix="ixci-bench-"))
    tok = make_tokenizer(work / "tokenizer")
    stub_cmd = build_stub(work) if a.stub == "c" else [sys.executable, str(HERE / "stub_server.py")]
    rows = []
    for mode in a.modes:
        stub_args = (
            ["--ttft-ms", "0", "--itl-ms", "0", "--events-per-write", "8"]
            if mode == "ceiling"
            else ["--ttft-ms", "100", "--itl-ms", "20"]
        )
        if mode == "ceiling" and a.stub == "c" and a.stub_procs > 1:
            stub_args += ["--procs", str(a.stub_procs)]
        osl = a.ceiling_osl if mode == "ceiling" else a.accuracy_osl
        stub, url = start_stub(a.server_cpu, stub_cmd, stub_args)
        try:
            for c in a.concurrency:
                n = a.requests_per_slot * c
                for rep in range(a.repeats):
                    for name in a.clients:  # interleaved A B A B
                        load = wait_idle(a.idle_load, a.idle_wait)
                        http(url + "/reset", "POST")
                        out = work / f"{mode}-{c}-{name}-{rep}.json"
                        argv, read = CLIENTS[name](url, c, n, osl, out, tok)
                        wall, cpu, rc, rss = run_timed(
                            ["taskset", "-c", a.client_cpu, *argv], out.with_suffix(".log")
                        )
                        truth = http(url + "/truth")
                        row = {
                            "mode": mode,
                            "stub": a.stub,
                            "concurrency": c,
                            "client": name,
                            "repeat": rep,
                            "rc": rc,
                            "load": round(load, 2),
                            "wall_s": wall,
                            "cpu_s": cpu,
                            "peak_rss_mib": rss,
                            "truth": truth,
                            # the setup, so a saved row says how it was measured
                            "workers": IXCI_WORKERS if name.startswith("ixci") else None,
                            "client_cpu": a.client_cpu,
                            "server_cpu": a.server_cpu,
                            "stub_procs": a.stub_procs,
                        }
                        if rc == 0 and out.exists():
                            row.update(read())
                            row["cpu_us_per_token"] = cpu / max(1, row["tokens"]) * 1e6
                            row["whole_process_tok_s"] = (
                                row["tokens"] / wall
                            )  # start-up and drain included
                            tt, ti = truth["ttft"], truth["itl"]
                            row["ttft_err_mean_ms"] = _err(row["ttft_mean"], tt["mean"])
                            row["ttft_err_p99_ms"] = _err(row["ttft_p99"], tt["p99"])
                            row["itl_err_p99_ms"] = _err(row["itl_p99"], ti["p99"])
                            row["tokens_exact"] = row["tokens"] == truth["tokens"]
                        else:
                            row["log"] = out.with_suffix(".log").read_text()[-800:]
                        rows.append(row)
                        print(
                            json.dumps({k: v for k, v in row.items() if k not in ("truth", "log")}),
                            flush=True,
                        )
                        if "log" in row:
                            print(row["log"], file=sys.stderr)
        finally:
            stub.terminate()
            stub.wait()
    report(rows, a.clients)
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=1))


def _err(got: float | None, truth: float) -> float:
    """Error in ms; NaN when the client withheld the metric (ixci: stamps possibly coalesced)."""
    return float("nan") if got is None else (got - truth) * 1e3


def best(rows: list[dict], **kw: object) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items()) and "out_tok_s" in r]


def report(rows: list[dict], clients: list[str]) -> None:
    print(
        "\nmode      conc  client              out tok/s  CPU µs/tok  TTFT err mean/p99 ms  ITL p99 err ms  tokens exact  sustained ratio vs anchors"
    )
    for mode in ("ceiling", "accuracy"):
        for c in sorted({r["concurrency"] for r in rows}):
            med = {}
            for name in clients:
                rs = best(rows, mode=mode, concurrency=c, client=name)
                if not rs:
                    continue
                pick = sorted(rs, key=lambda r: r["out_tok_s"])[len(rs) // 2]  # the median run
                med[name] = pick
            for name, r in med.items():
                ratios = _ratios(med) if name == "ixci" else ""
                print(
                    f"{mode:9} {c:5} {name:18} {r['out_tok_s']:10.0f} {r['cpu_us_per_token']:11.2f} "
                    f"{r['ttft_err_mean_ms']:9.2f} / {r['ttft_err_p99_ms']:6.2f} {r['itl_err_p99_ms']:14.2f}  "
                    f"{r['tokens_exact']!s:12}  {ratios}"
                )
    # The acceptance is per run: each repeat interleaves the clients back to back, so ratios and
    # errors are given for every repeat, not only the median.
    print(
        "\nixci per repeat — ceiling: window out tok/s, and the sustained ratio to each anchor in the same repeat; accuracy: errors (ms)"
    )
    for c in sorted({r["concurrency"] for r in rows}):
        for rep in sorted({r["repeat"] for r in rows}):
            got = {r["client"]: r for r in best(rows, mode="ceiling", concurrency=c, repeat=rep)}
            if "ixci" in got:
                x = got["ixci"]
                print(f"ceiling  {c:5} repeat {rep}: {x['out_tok_s']:10.0f} tok/s  {_ratios(got)}")
                if (
                    "sustained_tok_s" in x
                ):  # all parsing counted: the window plus the drain after it
                    print(
                        f"         sustained {x['sustained_tok_s']:10.0f} tok/s (drain {x['drain_s']:.2f} s, "
                        f"{x['unparsed_at_end']} unparsed at the end, backlog max {x['max_unparsed_mib']:.1f} MiB), "
                        f"whole process {x['whole_process_tok_s']:.0f} tok/s, peak RSS {x['peak_rss_mib']:.0f} MiB"
                    )
            acc = [
                r
                for r in best(rows, mode="accuracy", concurrency=c, repeat=rep)
                if r["client"] == "ixci"
            ]
            for r in acc:
                print(
                    f"accuracy {c:5} repeat {rep}: TTFT {r['ttft_err_mean_ms']:+.3f} / {r['ttft_err_p99_ms']:+.3f}  "
                    f"ITL p99 {r['itl_err_p99_ms']:+.3f}  tokens exact {r['tokens_exact']}  "
                    f"stamps {r.get('receive_stamps')}  saturated {r.get('client_saturated')}"
                )


def _ratios(by_client: dict[str, dict]) -> str:
    """ixci's sustained out tok/s (all its parsing counted: the window plus the drain after it)
    over each other client's, e.g. '1.16x sglang-rust 3.58x vllm'. The window figure alone
    leaves out parsing deferred past the window (up to two thirds of the work when saturated);
    an ixci too old to report its drain is compared by its window figure, marked '(window)'."""
    me = by_client["ixci"]
    own = me.get("sustained_tok_s") or me["out_tok_s"]
    tag = "" if me.get("sustained_tok_s") else " (window)"
    # another ixci tree (ixci@NAME) reports its drain too: sustained against sustained
    return " ".join(
        f"{own / (o.get('sustained_tok_s') or o['out_tok_s']):.2f}x {k}{tag}"
        for k, o in by_client.items()
        if k != "ixci"
    )


if __name__ == "__main__":
    main()
