"""Write the damaged-artifact corpus in tests/data/damaged/ (run once; the output is committed).

Each case is a folder `<case>/result.json` (or a zip), the layout `actions/download-artifact`
gives; `EXPECTED.json` maps each case to the skip category collect must report. The `good-*`
cases are valid artifacts that must be accepted from the same folder.

    python tests/collect/make_damaged.py
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collect.factory import make_job, make_result

OUT = Path(__file__).resolve().parents[1] / "data" / "damaged"
RUN_ID = "2001"

Doc = dict[str, Any]


def _job(**kw: Any) -> Doc:
    return make_job(name="damaged", tp=2, concurrencies=(1, 8, 32), **kw)


def base() -> Doc:
    return make_result(_job(), run_id=RUN_ID)


def mutate(fn: Callable[[Doc], None], job: Doc | None = None) -> bytes:
    doc = copy.deepcopy(make_result(job, run_id=RUN_ID) if job else base())
    fn(doc)
    return json.dumps(doc, indent=1).encode()


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def fn(doc: Doc) -> None:
        *head, last = path.split(".")
        node: Any = doc
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return fn


_DELETE = object()
GOOD = json.dumps(base(), indent=1).encode()


def _text_cases() -> dict[str, tuple[bytes, str]]:
    nan = GOOD.replace(b'"error_rate": 0.0', b'"error_rate": NaN', 1)
    inf = GOOD.replace(b'"duration_s": 60.0', b'"duration_s": Infinity', 1)
    return {
        "truncated": (GOOD[: len(GOOD) // 2], "truncated"),
        "truncated-tail": (GOOD[:-3], "truncated"),
        "empty": (b"", "empty"),
        "html-error-page": (b"<html><body>502 Bad Gateway</body></html>\n", "not_json"),
        "nan": (nan, "nan"),
        "infinity": (inf, "nan"),
        "latin1": ('{"kind": "ixci.result", "note": "café"}'.encode("latin-1"), "not_utf8"),
        "top-level-list": (b"[1, 2, 3]\n", "wrong_kind"),
    }


def _doc_cases() -> dict[str, tuple[bytes, str]]:
    def dup_point(d: Doc) -> None:
        d["points"][1]["id"] = d["points"][0]["id"]

    def tput(d: Doc) -> None:
        m = d["points"][1]["metrics"]
        m["output_throughput"] *= 3
        m["total_token_throughput"] = m["input_throughput"] + m["output_throughput"]

    def ok_with_failed_point(d: Doc) -> None:
        d["points"][2]["status"] = "failed"
        d["points"][2]["failure_class"] = "crash"

    disagg = _job(disagg=(2, 4))
    return {
        "wrong-kind": (mutate(_set("kind", "guidellm.report")), "wrong_kind"),
        "schema-version-2": (mutate(_set("schema_version", 2)), "schema_version"),
        "no-schema-version": (mutate(_set("schema_version", _DELETE)), "schema_version"),
        "missing-points": (mutate(_set("points", _DELETE)), "schema"),
        "missing-ttft": (mutate(_set("points.0.metrics.ttft", _DELETE)), "schema"),
        "concurrency-string": (mutate(_set("points.1.concurrency", "eight")), "schema"),
        "negative-throughput": (mutate(_set("points.0.metrics.output_throughput", -5.0)), "schema"),
        "unknown-top-field": (mutate(_set("surprise", True)), "schema"),
        "bad-status": (mutate(_set("status", "great")), "schema"),
        "bad-job-id": (mutate(_set("job.id", "job-1")), "schema"),
        "bad-failure-class": (mutate(_set("failure_class", "gremlins")), "schema"),
        "gpu-names-too-many": (
            mutate(_set("provenance.gpu_names", ["NVIDIA H100"] * 8)),
            "gpu_count",
        ),
        "telemetry-too-many-gpus": (mutate(_set("points.0.telemetry.gpus", 8)), "gpu_count"),
        "gpus-not-multiple-of-tp": (mutate(_set("job.topology.gpus", 3)), "gpu_count"),
        "disagg-pools-disagree": (
            mutate(_set("job.topology.decode.gpus", 8), job=disagg),
            "gpu_count",
        ),
        "point-not-planned": (mutate(_set("points.0.id", "p-000000000000")), "inconsistent"),
        "point-concurrency-differs": (mutate(_set("points.1.concurrency", 9)), "inconsistent"),
        "duplicate-point": (mutate(dup_point), "inconsistent"),
        "throughput-identity": (mutate(tput), "inconsistent"),
        "ok-with-failed-point": (mutate(ok_with_failed_point), "inconsistent"),
        "failed-without-class": (mutate(_set("status", "failed")), "inconsistent"),
        "other-run": (
            json.dumps(make_result(_job(precision="bf16"), run_id="1999")).encode(),
            "wrong_run",
        ),
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    expected: dict[str, str] = {}
    for case, (data, category) in {**_text_cases(), **_doc_cases()}.items():
        (OUT / case).mkdir(parents=True)
        (OUT / case / "result.json").write_bytes(data)
        expected[case] = category
    (OUT / "corrupt-zip").mkdir()
    (OUT / "corrupt-zip" / "result-j-0123456789ab.zip").write_bytes(b"PK\x03\x04 not really a zip")
    expected["corrupt-zip"] = "corrupt_zip"
    (OUT / "zip-without-result").mkdir()
    (OUT / "zip-without-result" / "result-j-ba9876543210.zip").write_bytes(
        _zip({"server.log": b"hello\n"})
    )
    expected["zip-without-result"] = "no_result"
    goods = {
        "good-tp2": make_result(make_job(name="good", tp=2), run_id=RUN_ID),
        "good-partial": make_result(
            make_job(name="good", tp=4), run_id=RUN_ID, statuses={2: "failed"}
        ),
    }
    for case, doc in goods.items():
        (OUT / case).mkdir()
        (OUT / case / "result.json").write_text(json.dumps(doc, indent=1))
        expected[case] = "accepted"
    zdoc = make_result(make_job(name="good", tp=8, disagg=(2, 6)), run_id=RUN_ID)
    (OUT / "good-zip").mkdir()
    (OUT / "good-zip" / f"result-{zdoc['job']['id']}.zip").write_bytes(
        _zip({"result.json": json.dumps(zdoc).encode(), "server.log": b"ok\n"})
    )
    expected["good-zip"] = "accepted"
    (OUT / "EXPECTED.json").write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")
    print(f"wrote {len(expected)} cases to {OUT}")


if __name__ == "__main__":
    main()
