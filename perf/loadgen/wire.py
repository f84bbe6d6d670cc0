#!/usr/bin/env python3
"""ixci's TTFT and ITL against the wire: a packet capture of the loopback traffic as the truth.

Not a test. The C stub (accuracy settings: first token after `--ttft-ms`, then one every
`--itl-ms`) serves `ixci loadgen` while `tcpdump` captures the port on `lo` with nanosecond
stamps. From the capture, per connection: a request is sent when its first segment leaves the
client; each content event arrives with the segment that carries its end (`\\n\\n`), as a read
does for the client. Wire TTFT = first content event − request; wire ITL = the gaps between a
response's content events. Their mean and percentiles (numpy, linear) are set beside ixci's
published figures for the same run: the errors are ixci's. The stamps of the capture and of
the client's kernel receive path are taken on the same host, microseconds apart on loopback.

`--load N` runs N spinning processes on the client's CPUs during the run (a competing load):
ixci must then be within the bounds or mark the metric invalid (`timing.invalid`), never
publish a wrong figure silently. tcpdump must be installed (`apt-get install tcpdump`) and may
need root; the capture's kernel drops are reported and a run with drops is flagged.

    python perf/loadgen/wire.py --concurrency 1024 --requests-per-slot 2 --json-out wire.json
    python perf/loadgen/wire.py --concurrency 1024 --load 2 --json-out wire-load.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the stub, the tokenizer and the idle gate)

_PCAP_NS = 0xA1B23C4D
_DLT_EN10MB, _DLT_LINUX_SLL, _DLT_RAW = 1, 113, 101
_QUANTILES = {"median": 50.0, "p90": 90.0, "p99": 99.0}


@dataclass
class Conn:
    """One TCP connection's traffic, client → server requests and server → client bytes."""

    sends: deque[int] = field(default_factory=deque)  # capture ns of each request's first segment
    buf: bytes = b""  # server bytes after the last complete event
    content: list[int] = field(default_factory=list)  # this response's content event times
    sent: int | None = None  # its request's send time
    next_seq: int | None = None  # the next client byte expected (a retransmit is not a send)


def packets(path: Path) -> tuple[list[tuple[int, int, int, int, bytes]], int]:
    """(capture ns, source port, destination port, TCP sequence, payload) of every TCP segment
    with a payload in a nanosecond pcap file, and the link type."""
    raw = path.read_bytes()
    magic, _, _, _, _, _snaplen, link = struct.unpack_from("<IHHiIII", raw, 0)
    if magic != _PCAP_NS:
        sys.exit(
            f"{path}: not a nanosecond pcap (magic {magic:#x}); run tcpdump with --time-stamp-precision=nano"
        )
    out, off = [], 24
    while off + 16 <= len(raw):
        sec, nsec, incl, _orig = struct.unpack_from("<IIII", raw, off)
        frame = raw[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = {_DLT_EN10MB: 14, _DLT_LINUX_SLL: 16, _DLT_RAW: 0}.get(link)
        if ip is None:
            sys.exit(f"{path}: link type {link} not handled")
        if link != _DLT_RAW and frame[ip - 2 : ip] != b"\x08\x00":
            continue  # not IPv4
        if len(frame) < ip + 20 or frame[ip + 9] != 6:
            continue  # not TCP
        ihl = (frame[ip] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, ip + 2)[0]
        tcp = ip + ihl
        sport, dport, seq = struct.unpack_from("!HHI", frame, tcp)
        doff = (frame[tcp + 12] >> 4) * 4
        payload = frame[tcp + doff : ip + total]
        if payload:
            out.append((sec * 1_000_000_000 + nsec, sport, dport, seq, payload))
    return out, link


_CONTENT = re.compile(rb'"text":"[^"]')


def wire_truth(path: Path, server_port: int) -> dict[str, list[float]]:
    """Per-request wire TTFT and per-gap wire ITL (seconds) from a capture of the stub's port."""
    conns: dict[int, Conn] = defaultdict(Conn)
    ttft: list[float] = []
    itl: list[float] = []
    segments, _ = packets(path)
    for t, sport, dport, seq, payload in segments:
        if dport == server_port:  # client → server: a request begins with its method
            c = conns[sport]
            if c.next_seq in (None, seq) and payload[:5] in (b"POST ", b"GET /"):  # not a resend
                c.sends.append(t)
            c.next_seq = (seq + len(payload)) & 0xFFFFFFFF
            continue
        if sport != server_port:
            continue
        c = conns[dport]
        data = c.buf + payload
        *events, c.buf = data.split(b"\n\n")
        for event in events:
            if c.sent is None and c.sends:
                c.sent = c.sends.popleft()
            if _CONTENT.search(event):
                c.content.append(t)
            elif b"[DONE]" in event:
                if c.sent is not None and c.content:
                    ttft.append((c.content[0] - c.sent) * 1e-9)
                    itl.extend(np.diff(np.asarray(c.content, dtype=np.int64)) * 1e-9)
                c.content, c.sent = [], None
    return {"ttft": ttft, "itl": itl}


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    out = {"n": int(arr.size), "mean": float(arr.mean())}
    for name, q in _QUANTILES.items():
        out[name] = float(np.percentile(arr, q, method="linear"))
    return out


def spinners(cpus: str, n: int) -> list[subprocess.Popen[bytes]]:
    """n busy processes on `cpus`: the competing load."""
    spin = "while True: pass"
    return [subprocess.Popen(["taskset", "-c", cpus, sys.executable, "-c", spin]) for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", type=int, default=1024)
    p.add_argument("--requests-per-slot", type=int, default=2)
    p.add_argument("--osl", type=int, default=64)
    p.add_argument("--ttft-ms", type=float, default=100.0)
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--load", type=int, default=0, help="spinning processes on the client CPUs")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--idle-load", type=float, default=1.0)
    p.add_argument("--idle-wait", type=float, default=60.0)
    p.add_argument("--json-out", type=Path)
    a = p.parse_args()
    tcpdump = shutil.which("tcpdump") or sys.exit("needs tcpdump (apt-get install tcpdump)")
    work = Path(tempfile.mkdtemp(prefix="ixci-wire-"))
    tok = bench.make_tokenizer(work / "tokenizer")
    stub_args = ["--ttft-ms", str(a.ttft_ms), "--itl-ms", str(a.itl_ms)]
    stub, url = bench.start_stub(a.server_cpu, bench.build_stub(work), stub_args)
    port = int(url.rsplit(":", 1)[1])
    rows = []
    try:
        for rep in range(a.repeats):
            load = bench.wait_idle(a.idle_load, a.idle_wait)
            rows.append(one_run(a, work, tok, url, port, tcpdump, rep, load))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stub.terminate()
        stub.wait()
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=1))


def one_run(
    a: argparse.Namespace,
    work: Path,
    tok: Path,
    url: str,
    port: int,
    tcpdump: str,
    rep: int,
    load: float,
) -> dict[str, object]:
    pcap, out = work / f"cap-{rep}.pcap", work / f"ixci-{rep}.json"
    cap = subprocess.Popen(
        [tcpdump, "-i", "lo", "-nn", "-s", "0", "-B", "262144", "--time-stamp-precision=nano",
         "-w", str(pcap), "tcp", "port", str(port)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert cap.stderr is not None
    cap.stderr.readline()  # "listening on lo …": the capture is on
    spin = spinners(a.client_cpu, a.load)
    argv = [
        "taskset", "-c", a.client_cpu, sys.executable, "-c",
        "import sys; from ixci.cli import main; sys.argv[0] = 'ixci'; sys.exit(main())",
        "loadgen", "--url", url, "--model", "stub", "--isl", "128", "--osl", str(a.osl),
        "--concurrency", str(a.concurrency),
        "--num-requests", str(a.concurrency * a.requests_per_slot),
        "--warmup-requests", "0", "--workers", str(a.workers), "--dialect", "vllm",
        "--tokenizer", str(tok / "tokenizer.json"), "--output", str(out),
    ]  # fmt: skip
    try:
        rc = subprocess.run(argv, cwd=work, stdout=subprocess.DEVNULL, check=False).returncode
    finally:
        for s in spin:
            s.kill()
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=60)
    dropped = re.search(r"(\d+) packets dropped by kernel", err)
    doc = json.loads(out.read_text())
    m, client = doc["metrics"], doc["client"]
    truth = wire_truth(pcap, port)
    wt, wi = stats(truth["ttft"]), stats(truth["itl"])
    timing = m.get("timing") or {}

    def err(got: float | None, want: float) -> float | None:
        return None if got is None else (got - want) * 1e3

    return {
        "repeat": rep,
        "concurrency": a.concurrency,
        "competing_load": a.load,
        "load_1min": round(load, 2),
        "rc": rc,
        "capture_dropped": int(dropped.group(1)) if dropped else None,
        "requests_wire": wt["n"],
        "requests_ixci": m["completed"],
        "wire_ttft_s": wt,
        "wire_itl_s": wi,
        "ixci_ttft_s": {k: m["ttft"].get(k) for k in ("mean", "median", "p90", "p99")},
        "ixci_itl_s": {k: m["itl"].get(k) for k in ("mean", "median", "p90", "p99")},
        "ttft_err_mean_ms": err(m["ttft"].get("mean"), wt["mean"]),
        "ttft_err_p99_ms": err(m["ttft"].get("p99"), wt["p99"]),
        "itl_err_p99_ms": err(m["itl"].get("p99"), wi["p99"]),
        "timing_invalid": timing.get("invalid"),
        "timing_bounds_s": {k: timing.get("bounds_s", {}).get(k) for k in ("ttft", "itl")},
        "client_saturated": client.get("saturated"),
        "saturation_reasons": client.get("saturation_reasons") or client.get("reasons"),
        "receive_stamps": client.get("receive_stamps"),
    }


if __name__ == "__main__":
    main()
