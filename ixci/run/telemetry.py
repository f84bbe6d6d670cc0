"""GPU telemetry: inventory and idle check (preflight), a ≥ 1 Hz sampler of power, clocks,
memory and utilisation per GPU, and energy integrated over a point's measured window.

Energy (reference/metrics.md): E = Σ over GPUs of the trapezoidal integral of power over the
window [t0, t1], with linear interpolation at both ends. `power_valid` is false, with reasons,
on missing GPUs, gaps > 3 s, or a window not bracketed by samples. Times are Unix seconds.
NVIDIA: `nvidia-smi --query-gpu=... -lms 500` streams CSV into a file (kept as an artifact).
AMD: `amd-smi metric --json` polled every 0.5 s (shape from the amd-smi 6.x documentation;
not exercised on real AMD hardware here).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ixci import cmd
from ixci.engines.base import Component
from ixci.errors import CommandFailed, PreflightFailed
from ixci.job import ROLES, Pool

NVIDIA_FIELDS = ("timestamp", "index", "power.draw", "utilization.gpu", "memory.used", "clocks.sm")
MAX_GAP_S = 3.0
CSV_HEADER = "t_unix,gpu,power_w,util_percent,memory_used_mib,sm_clock_mhz\n"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One reading of one GPU (t: Unix seconds; W, %, MiB, MHz; None when not reported)."""

    t: float
    gpu: int
    power_w: float | None
    util_percent: float | None = None
    memory_used_mib: float | None = None
    sm_clock_mhz: float | None = None


@dataclass(frozen=True, kw_only=True)
class Gpu:
    """One accelerator as seen at preflight."""

    index: int
    name: str
    driver: str | None
    util_percent: float | None
    memory_used_mib: float | None
    processes: int = 0
    memory_total_mib: float | None = None


def _num(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]", ""


def parse_nvidia_line(line: str) -> Sample | None:
    """One `nvidia-smi --query-gpu=<NVIDIA_FIELDS> --format=csv,noheader,nounits` line."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(NVIDIA_FIELDS):
        return None
    try:
        t = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        gpu = int(parts[1])
    except ValueError:
        return None
    return Sample(
        t=t,
        gpu=gpu,
        power_w=_num(parts[2]),
        util_percent=_num(parts[3]),
        memory_used_mib=_num(parts[4]),
        sm_clock_mhz=_num(parts[5]),
    )


def parse_csv_line(line: str) -> Sample | None:
    """One line of ixci's own telemetry CSV (CSV_HEADER)."""
    parts = line.strip().split(",")
    if len(parts) != 6 or parts[0] == "t_unix":
        return None
    try:
        return Sample(
            t=float(parts[0]),
            gpu=int(parts[1]),
            power_w=_num(parts[2]),
            util_percent=_num(parts[3]),
            memory_used_mib=_num(parts[4]),
            sm_clock_mhz=_num(parts[5]),
        )
    except ValueError:
        return None


def _value(node: Any) -> float | None:
    if isinstance(node, Mapping):
        node = node.get("value")
    return _num(str(node)) if node is not None else None


def parse_amd_json(text: str, t: float) -> list[Sample]:
    """`amd-smi metric --power --clock --usage --mem-usage --json` → one Sample per GPU."""
    data = json.loads(text)
    out = []
    for entry in data if isinstance(data, list) else [data]:
        power = entry.get("power", {})
        watts = _value(power.get("socket_power")) or _value(power.get("average_socket_power"))
        clock = entry.get("clock", {}).get("gfx_0", {})
        out.append(
            Sample(
                t=t,
                gpu=int(entry.get("gpu", 0)),
                power_w=watts,
                util_percent=_value(entry.get("usage", {}).get("gfx_activity")),
                memory_used_mib=_value(entry.get("mem_usage", {}).get("used_vram")),
                sm_clock_mhz=_value(clock.get("clk") if isinstance(clock, Mapping) else None),
            )
        )
    return out


# ----------------------------------------------------------------------------- inventory


def nvidia_inventory(indices: Sequence[int] | None = None) -> list[Gpu]:
    """GPUs from nvidia-smi (all, or `indices`) with driver, load and process count."""
    argv = [
        "nvidia-smi",
        "--query-gpu=index,name,driver_version,utilization.gpu,memory.used,uuid,memory.total",
        "--format=csv,noheader,nounits",
    ]
    rows = [
        r.split(", ") for r in cmd.run(argv, timeout=60).stdout.strip().splitlines() if r.strip()
    ]
    apps = cmd.run(
        ["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"],
        timeout=60,
        check=False,
    )
    busy = [line.split(",")[0].strip() for line in apps.stdout.splitlines() if line.strip()]
    gpus = [
        Gpu(
            index=int(r[0]),
            name=r[1],
            driver=r[2],
            util_percent=_num(r[3]),
            memory_used_mib=_num(r[4]),
            processes=busy.count(r[5].strip()),
            memory_total_mib=_num(r[6]) if len(r) >= 7 else None,
        )
        for r in rows
        if len(r) >= 6
    ]
    return [g for g in gpus if indices is None or g.index in indices]


def amd_inventory(indices: Sequence[int] | None = None) -> list[Gpu]:
    """GPUs from `amd-smi static --asic --driver --json` and `amd-smi metric --usage`."""
    static = json.loads(
        cmd.run(["amd-smi", "static", "--asic", "--driver", "--json"], timeout=60).stdout
    )
    gpus = []
    for entry in static if isinstance(static, list) else [static]:
        index = int(entry.get("gpu", 0))
        name = str(entry.get("asic", {}).get("market_name", "AMD GPU"))
        driver = entry.get("driver", {}).get("version")
        gpus.append(
            Gpu(
                index=index,
                name=name,
                driver=str(driver) if driver else None,
                util_percent=None,
                memory_used_mib=None,
            )
        )
    return [g for g in gpus if indices is None or g.index in indices]


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def sku_name_problem(reported: str, *, sku: str, names: Sequence[str]) -> str | None:
    """Why a GPU reporting `reported` is not the catalog SKU `sku`, or None when it is.

    With `names` (the SKU's `gpu-names`), the reported name must be one of them (ignoring case
    and repeated spaces); without, the SKU's key must appear as a word of it (`h100` in
    "NVIDIA H100 80GB HBM3", `mi355x` in "AMD Instinct MI355X")."""
    if names:
        if _norm(reported) in {_norm(n) for n in names}:
            return None
        return f"reports {reported!r}, not one of the names of SKU {sku} ({', '.join(names)})"
    if sku.lower() in _norm(reported).replace("-", " ").split():
        return None
    return f"reports {reported!r}, which does not name SKU {sku}"


def check_sku(
    gpus: Sequence[Gpu], wanted: Sequence[int], *, sku: str, names: Sequence[str],
    memory_gb: float | None, tolerance: float = 0.08,
) -> None:  # fmt: skip
    """Raise `PreflightFailed` unless every wanted GPU is the job's SKU: its reported name (see
    `sku_name_problem`) and, where reported, its memory within `tolerance` of the SKU's
    `memory-gb` (compared in GiB, as the datasheets' "80 GB"/"141 GB" are)."""
    problems = []
    for g in (x for x in gpus if x.index in wanted):
        why = sku_name_problem(g.name, sku=sku, names=names)
        if why:
            problems.append(f"GPU {g.index} {why}")
        elif memory_gb and g.memory_total_mib:
            gib = g.memory_total_mib / 1024
            if abs(gib - memory_gb) > tolerance * memory_gb:
                problems.append(
                    f"GPU {g.index} ({g.name}) has {gib:.1f} GiB; SKU {sku} has {memory_gb:g} GB"
                )
    if problems:
        raise PreflightFailed(
            f"the GPUs of this host are not SKU {sku}: " + "; ".join(problems),
            hint=f"run the job on a runner of SKU {sku} (its labels in matrix/runners.yaml), or, "
            f"if this GPU is that SKU, add its reported name to gpu-names of {sku} in "
            "matrix/hardware.yaml",
        )


def check_idle(
    gpus: Sequence[Gpu],
    wanted: Sequence[int],
    *,
    max_util: float = 10.0,
    max_mem_mib: float = 2048.0,
) -> None:
    """Raise `PreflightFailed` unless every wanted GPU is present and idle."""
    by_index = {g.index: g for g in gpus}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise PreflightFailed(
            f"GPUs {missing} are not visible (found {sorted(by_index)})",
            hint="check the runner's labels and CUDA/HIP_VISIBLE_DEVICES",
        )
    busy = [
        g
        for g in (by_index[i] for i in wanted)
        if g.processes or (g.util_percent or 0) > max_util or (g.memory_used_mib or 0) > max_mem_mib
    ]
    if busy:
        desc = ", ".join(
            f"GPU {g.index}: {g.util_percent}% util, {g.memory_used_mib} MiB, {g.processes} procs"
            for g in busy
        )
        raise PreflightFailed(
            f"GPUs are not idle: {desc}", hint="another job or a leftover server holds them"
        )


# ----------------------------------------------------------------------------- sampling


class Sampler:
    """Background power sampler writing ixci's telemetry CSV (`path`). Start/stop are idempotent.

    `vendor` "cpu" (or no GPUs) samples nothing and `source` is None.
    """

    def __init__(
        self, vendor: str, gpus: Sequence[int], path: Path, *, interval_ms: int = 500
    ) -> None:
        self.vendor = vendor
        self.gpus = tuple(gpus)
        self.path = path
        self.interval_ms = interval_ms
        self.source: str | None = (
            {"nvidia": "nvidia-smi", "amd": "amd-smi"}.get(vendor) if gpus else None
        )
        self._proc: Any = None
        self._raw: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin sampling (no-op without a source)."""
        if self.source is None or self._thread is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(CSV_HEADER)
        if self.vendor == "nvidia":
            raw_path = self.path.with_suffix(".nvidia-smi.csv")
            self._raw = raw_path.open("wb")
            argv = [
                "nvidia-smi",
                f"--query-gpu={','.join(NVIDIA_FIELDS)}",
                "--format=csv,noheader,nounits",
                "-lms",
                str(self.interval_ms),
                "-i",
                ",".join(str(g) for g in self.gpus),
            ]
            self._proc = cmd.spawn(argv, stdout=self._raw, stderr=None)
            self._thread = threading.Thread(target=self._follow, args=(raw_path,), daemon=True)
        else:
            self._thread = threading.Thread(target=self._poll_amd, daemon=True)
        self._thread.start()

    def _add(self, samples: Iterable[Sample]) -> None:
        rows = []
        with self._lock:
            for s in samples:
                if s.gpu in self.gpus:
                    self._samples.append(s)
                    rows.append(
                        f"{s.t:.3f},{s.gpu},{_fmt(s.power_w)},{_fmt(s.util_percent)},"
                        f"{_fmt(s.memory_used_mib)},{_fmt(s.sm_clock_mhz)}\n"
                    )
        if rows:
            with self.path.open("a") as fh:
                fh.writelines(rows)

    def _follow(self, raw_path: Path) -> None:
        pos = 0
        buf = b""
        while True:
            stopping = self._stop.is_set()
            with raw_path.open("rb") as fh:
                fh.seek(pos)
                chunk = fh.read()
                pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            self._add(
                s
                for s in (parse_nvidia_line(x.decode("utf-8", "replace")) for x in lines)
                if s is not None
            )
            if stopping:
                return
            self._stop.wait(0.1)

    def _poll_amd(self) -> None:
        argv = ["amd-smi", "metric", "--power", "--clock", "--usage", "--mem-usage", "--json"]
        while not self._stop.is_set():
            # a failed poll shows up as a gap, which invalidates the window
            with contextlib.suppress(CommandFailed, ValueError):
                self._add(parse_amd_json(cmd.run(argv, timeout=10).stdout, time.time()))
            self._stop.wait(self.interval_ms / 1000)

    def samples(self) -> list[Sample]:
        """A copy of every sample so far."""
        with self._lock:
            return list(self._samples)

    def wait_past(self, t: float, *, timeout_s: float = 3.0) -> None:
        """Block until every GPU has a sample at or after `t` (or `timeout_s` passes)."""
        deadline = time.monotonic() + timeout_s
        while self.source is not None and time.monotonic() < deadline:
            latest: dict[int, float] = {}
            for s in self.samples():
                latest[s.gpu] = max(latest.get(s.gpu, 0.0), s.t)
            if all(latest.get(g, 0.0) >= t for g in self.gpus):
                return
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the sampler process/thread and flush the last samples."""
        if self._proc is not None:
            cmd.terminate_group(self._proc, grace=2.0)
            self._proc = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._raw is not None:
            self._raw.close()
            self._raw = None


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


# ----------------------------------------------------------------------------- energy


@dataclass(frozen=True, kw_only=True)
class GpuEnergy:
    """Energy of one GPU over the window (J) and summaries of its samples inside it."""

    index: int
    energy_j: float | None
    avg_power_w: float | None
    max_power_w: float | None
    avg_sm_clock_mhz: float | None
    avg_util_percent: float | None
    max_memory_used_mib: float | None
    samples: int
    reasons: tuple[str, ...]


def _interp(a: Sample, b: Sample, t: float) -> float:
    assert a.power_w is not None and b.power_w is not None
    if b.t == a.t:
        return a.power_w
    return a.power_w + (b.power_w - a.power_w) * (t - a.t) / (b.t - a.t)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def gpu_energy(
    samples: Sequence[Sample], index: int, t0: float, t1: float, *, max_gap_s: float = MAX_GAP_S
) -> GpuEnergy:
    """Trapezoidal ∫ power dt of one GPU over [t0, t1] (J), interpolated at both ends."""
    pts = sorted(
        (s for s in samples if s.gpu == index and s.power_w is not None), key=lambda s: s.t
    )
    inside = [s for s in pts if t0 <= s.t <= t1]
    reasons: list[str] = []
    before = [s for s in pts if s.t <= t0]
    after = [s for s in pts if s.t >= t1]
    if not pts:
        reasons.append(f"GPU {index}: no power samples")
    elif not before or not after:
        reasons.append(f"GPU {index}: window not bracketed by samples")
    if reasons:
        return GpuEnergy(
            index=index,
            energy_j=None,
            avg_power_w=None,
            max_power_w=None,
            avg_sm_clock_mhz=None,
            avg_util_percent=None,
            max_memory_used_mib=None,
            samples=len(inside),
            reasons=tuple(reasons),
        )
    a, b = before[-1], after[0]
    chain = [a, *[s for s in inside if s is not a and s is not b], b]
    gaps = [(y.t - x.t) for x, y in itertools.pairwise(chain)]
    if gaps and max(gaps) > max_gap_s:
        reasons.append(f"GPU {index}: gap of {max(gaps):.1f} s between samples (> {max_gap_s:g} s)")
    # Trapezoids over the chain, clipped to [t0, t1] by linear interpolation.
    energy = 0.0
    for x, y in itertools.pairwise(chain):
        lo, hi = max(x.t, t0), min(y.t, t1)
        if hi > lo:
            energy += (_interp(x, y, lo) + _interp(x, y, hi)) / 2 * (hi - lo)
    watts = [s.power_w for s in inside if s.power_w is not None]
    return GpuEnergy(
        index=index,
        energy_j=energy,
        avg_power_w=energy / (t1 - t0) if t1 > t0 else None,
        max_power_w=max(watts) if watts else None,
        avg_sm_clock_mhz=_mean(s.sm_clock_mhz for s in inside),
        avg_util_percent=_mean(s.util_percent for s in inside),
        max_memory_used_mib=max(
            (s.memory_used_mib for s in inside if s.memory_used_mib is not None), default=None
        ),
        samples=len(inside),
        reasons=tuple(reasons),
    )


def point_telemetry(
    samples: Sequence[Sample],
    gpus: Sequence[int],
    t0: float,
    t1: float,
    *,
    source: str | None,
    output_tokens: int,
    input_tokens: int,
    no_power_reason: str | None = None,
) -> dict[str, Any]:
    """The `telemetry` object of one point (schemas/result.schema.json): energy over [t0, t1]
    (Unix s), J/token, W/GPU, validity with reasons."""
    if source is None or not gpus:
        return _no_telemetry(no_power_reason or "no GPU power telemetry available on this runner")
    per = [gpu_energy(samples, g, t0, t1) for g in gpus]
    reasons = [r for e in per for r in e.reasons]
    if t1 <= t0:
        reasons.append("empty measured window")
    total = sum(e.energy_j for e in per if e.energy_j is not None) if not reasons else None
    return {
        "power_valid": not reasons,
        "invalid_reasons": reasons,
        "source": source,
        "energy_j": total,
        "avg_power_w_per_gpu": None if (w := _per(total, t1 - t0)) is None else w / len(gpus),
        "joules_per_output_token": _per(total, output_tokens),
        "joules_per_total_token": _per(total, output_tokens + input_tokens),
        "samples": sum(e.samples for e in per),
        "gpus": len(gpus),
        "per_gpu": [_gpu_doc(e) for e in per],
    }


def _per(total: float | None, amount: float) -> float | None:
    """`total` per unit of `amount` (None without a total or with nothing to divide by)."""
    return total / amount if total is not None and amount > 0 else None


def _no_telemetry(reason: str) -> dict[str, Any]:
    return {
        "power_valid": False,
        "invalid_reasons": [reason],
        "source": None,
        "energy_j": None,
        "avg_power_w_per_gpu": None,
        "joules_per_output_token": None,
        "joules_per_total_token": None,
        "samples": 0,
        "gpus": 0,
    }


def _gpu_doc(e: GpuEnergy) -> dict[str, Any]:
    return {
        "index": e.index,
        "energy_j": e.energy_j,
        "avg_power_w": e.avg_power_w,
        "max_power_w": e.max_power_w,
        "avg_sm_clock_mhz": e.avg_sm_clock_mhz,
        "avg_util_percent": e.avg_util_percent,
        "max_memory_used_mib": e.max_memory_used_mib,
    }


CPU_NO_POWER = "cpu SKU: no GPU power telemetry (the embedded engine runs on the host CPU)"
SLURM_NO_ROLE_POWER = (
    "per-role energy needs GPU telemetry on every Slurm node; ixci samples only its own host"
)


def role_telemetry(
    tele: Mapping[str, Any],
    *,
    pools: Mapping[str, Pool | None],
    vendor: str,
    runtime: str,
    gpu_indices: Sequence[int],
    components: Sequence[Component],
) -> dict[str, dict[str, Any]]:
    """Per-role energy of a disaggregated point: each role's GPUs (count from the plan's pools)
    and the energy (J) of the GPUs its components were given, in component order as the
    one-host runtimes assign them (`runtimes.base.assign_gpus`). Energy is null with a reason
    when power is not valid, on CPU, or when the roles' GPUs are not on the sampled host."""
    reasons: list[str] = []
    if vendor == "cpu":
        reasons = [CPU_NO_POWER]
    elif runtime.startswith("slurm"):
        reasons = [SLURM_NO_ROLE_POWER]
    elif not tele.get("power_valid"):
        reasons = list(tele.get("invalid_reasons") or ["power telemetry invalid"])
    per_gpu = {g["index"]: g.get("energy_j") for g in tele.get("per_gpu") or []}
    owned: dict[str, list[int]] = {role: [] for role in ROLES}
    pos = 0
    for comp in components:
        if comp.role in owned:
            owned[comp.role] += list(gpu_indices[pos : pos + comp.gpus])
        pos += comp.gpus
    out = {}
    for role in ROLES:
        energy = [per_gpu.get(i) for i in owned[role]]
        valid = not reasons and bool(energy) and all(e is not None for e in energy)
        out[role] = {
            "gpus": pool.gpus if (pool := pools[role]) else None,
            "energy_j": sum(e for e in energy if e is not None) if valid else None,
            "power_valid": valid,
            "invalid_reasons": reasons or ([] if valid else ["no sampled GPU of this role"]),
        }
    return out
