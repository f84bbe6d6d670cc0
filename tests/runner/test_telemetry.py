"""Energy integration and validity on hand-computed samples (reference/metrics.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ixci.errors import PreflightFailed
from ixci.run.telemetry import (
    Gpu,
    Sample,
    check_idle,
    gpu_energy,
    parse_nvidia_line,
    point_telemetry,
)


def _s(t: float, w: float, gpu: int = 0) -> Sample:
    return Sample(t=t, gpu=gpu, power_w=w)


def test_trapezoid_with_interpolated_ends() -> None:
    # 100 W at t=0, 200 W at t=1, 200 W at t=2, 100 W at t=3; window [0.5, 2.5]
    samples = [_s(0, 100), _s(1, 200), _s(2, 200), _s(3, 100)]
    e = gpu_energy(samples, 0, 0.5, 2.5)
    # [0.5,1]: (150+200)/2*0.5 = 87.5; [1,2]: 200; [2,2.5]: (200+150)/2*0.5 = 87.5
    assert e.energy_j == pytest.approx(375.0)
    assert e.avg_power_w == pytest.approx(187.5)
    assert e.reasons == () and e.samples == 2


def test_point_telemetry_sums_gpus_and_divides() -> None:
    samples = [_s(t, 100, 0) for t in range(0, 11)] + [_s(t + 0.5, 300, 1) for t in range(-1, 11)]
    tele = point_telemetry(
        samples, (0, 1), 1.0, 9.0, source="nvidia-smi", output_tokens=400, input_tokens=400
    )
    assert tele["power_valid"] and tele["invalid_reasons"] == []
    assert tele["energy_j"] == pytest.approx(800 + 2400)
    assert tele["avg_power_w_per_gpu"] == pytest.approx(3200 / 8 / 2)
    assert tele["joules_per_output_token"] == pytest.approx(8.0)
    assert tele["joules_per_total_token"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        ([_s(0, 100), _s(5, 100)], "gap of 5.0 s"),
        ([_s(1, 100), _s(3, 100)], "not bracketed"),
        ([], "no power samples"),
    ],
)
def test_invalid_windows_have_reasons(samples: list[Sample], reason: str) -> None:
    tele = point_telemetry(
        samples, (0,), 0.5, 4.0, source="nvidia-smi", output_tokens=1, input_tokens=1
    )
    assert not tele["power_valid"] and tele["energy_j"] is None
    assert any(reason in r for r in tele["invalid_reasons"])


def test_missing_gpu_invalidates() -> None:
    samples = [_s(t, 100, 0) for t in range(5)]
    tele = point_telemetry(
        samples, (0, 1), 1, 3, source="nvidia-smi", output_tokens=1, input_tokens=1
    )
    assert not tele["power_valid"] and "GPU 1: no power samples" in tele["invalid_reasons"]


def test_cpu_has_no_power_with_reason() -> None:
    tele = point_telemetry(
        [], (), 0, 1, source=None, output_tokens=1, input_tokens=1, no_power_reason="cpu SKU"
    )
    assert (
        tele["power_valid"] is False
        and tele["invalid_reasons"] == ["cpu SKU"]
        and tele["gpus"] == 0
    )


def test_parse_nvidia_smi_csv() -> None:
    s = parse_nvidia_line("2026/11/28 01:02:03.456, 3, 612.40, 97, 131072, 1980")
    assert s is not None and (
        s.gpu,
        s.power_w,
        s.util_percent,
        s.memory_used_mib,
        s.sm_clock_mhz,
    ) == (3, 612.4, 97, 131072, 1980)
    assert parse_nvidia_line("2026/11/28 01:02:03.456, 0, [N/A], 0, 1, 2").power_w is None  # type: ignore[union-attr]
    assert parse_nvidia_line("garbage") is None


def test_idle_check() -> None:
    gpus = [
        Gpu(index=0, name="H100", driver="580", util_percent=0, memory_used_mib=0),
        Gpu(
            index=1, name="H100", driver="580", util_percent=95, memory_used_mib=70000, processes=1
        ),
    ]
    check_idle(gpus, [0])
    with pytest.raises(PreflightFailed, match="not idle: GPU 1"):
        check_idle(gpus, [0, 1])
    with pytest.raises(PreflightFailed, match=r"\[2\] are not visible"):
        check_idle(gpus, [2])


def test_the_power_window_is_the_metrics_window(tmp_path: Path) -> None:
    """A request the client gave up on (timeout, cut) ends at the client's deadline: it must
    not stretch the window power is integrated over, as it does not stretch the throughput's."""
    import gzip

    from ixci.loadgen.metrics import ErrorKind, RequestRecord
    from ixci.run.loaddriver import telemetry_window

    def rec(
        index: int, send: int, end: int, *, warmup: bool = False, kind: ErrorKind | None = None
    ) -> str:
        r = RequestRecord(index=index, worker=0, warmup=warmup, t_send_ns=send, t_end_ns=end,
                          ok=kind is None, error_kind=kind)  # fmt: skip
        return json.dumps(r.to_json()) + "\n"

    path = tmp_path / "requests.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(rec(0, 0, 5_000_000_000, warmup=True))  # warm-up: outside
        fh.write(rec(1, 6_000_000_000, 8_000_000_000))
        fh.write(rec(2, 6_500_000_000, 9_000_000_000))
        fh.write(rec(3, 7_000_000_000, 60_000_000_000, kind=ErrorKind.TIMEOUT))  # gave up at 60 s
    window = telemetry_window(path, offset_ns=1_000_000_000_000)
    assert window == [1006.0, 1009.0]
    empty = tmp_path / "empty.jsonl.gz"
    with gzip.open(empty, "wt") as fh:
        fh.write(rec(0, 0, 1, warmup=True))
    assert telemetry_window(empty, offset_ns=0) is None
