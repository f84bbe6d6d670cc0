"""Speculative-decoding acceptance per point: llama.cpp's per-response draft counts through the
stream parser, request records and point sums; vLLM's counters and SGLang's gauges through the
server-metrics summary; the repeats' merge; and every block against the artifact schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ixci import schemas
from ixci.engines.llamacpp import METRICS as LLAMA_METRICS
from ixci.engines.sglang import METRICS as SGLANG_METRICS
from ixci.engines.vllm import METRICS as VLLM_METRICS
from ixci.loadgen.http import Exchange
from ixci.loadgen.metrics import RequestRecord, draft_totals, record_from_json
from ixci.loadgen.sse import draft_counts, parse_stream
from ixci.run import repeats, specdec
from ixci.run.servermetrics import _Samples, mapped, parse, summary, wanted_series


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"result.schema.json{ref}"}, registry=schemas._registry())


SPEC = _validator("#/$defs/point/properties/speculative")
SERVER = _validator("#/$defs/server_metrics")


def _stream(final: dict[str, Any]) -> Exchange:
    """A llama-server chat stream: two content chunks, the finish chunk, then the usage chunk
    carrying `timings` (the shape a real llama-server sends, include_usage on)."""
    ex = Exchange()
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
    ex.blocks = [chunk % b"a", chunk % b"b",
                 b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
                 + b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"]  # fmt: skip
    ex.times = [10, 20, 30]
    return ex


def test_the_final_chunk_timings_give_the_requests_draft_counts() -> None:
    final = {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens": 5},
             "timings": {"predicted_n": 2, "draft_n": 12, "draft_n_accepted": 9}}  # fmt: skip
    p = parse_stream(_stream(final))
    assert p.error_kind is None and p.chunk_times_ns == [10, 20]
    assert p.draft == (12, 9)
    del final["timings"]
    assert parse_stream(_stream(final)).draft is None  # no drafting: nothing recorded


@pytest.mark.parametrize(
    "timings",
    [
        {"draft_n": 3, "draft_n_accepted": 4},  # more accepted than proposed
        {"draft_n": -1, "draft_n_accepted": 0},
        {"draft_n": "12", "draft_n_accepted": 9},
        {"draft_n": True, "draft_n_accepted": 0},
        {"draft_n": 1.5, "draft_n_accepted": 1},
        {"draft_n": 1 << 40, "draft_n_accepted": 0},
        {"draft_n_accepted": 3},
        [12, 9],
        None,
    ],
)
def test_hostile_draft_counts_are_dropped_never_raised(timings: Any) -> None:
    assert draft_counts(timings) is None
    final = {"choices": [], "usage": {"completion_tokens": 2}, "timings": timings}
    p = parse_stream(_stream(final))
    assert p.error_kind is None and p.draft is None


def _rec(index: int, drafted: tuple[int, int] | None, *, ok: bool = True,
         warmup: bool = False) -> RequestRecord:  # fmt: skip
    return RequestRecord(index=index, worker=0, warmup=warmup, t_send_ns=0, t_end_ns=10, ok=ok,
                         chunk_times_ns=(5, 10), output_tokens=2,
                         draft_tokens=drafted[0] if drafted else None,
                         draft_accepted=drafted[1] if drafted else None)  # fmt: skip


def test_records_keep_draft_counts_and_the_point_sums_the_measured_ones() -> None:
    rec = _rec(0, (12, 9))
    back = record_from_json(json.loads(json.dumps(rec.to_json())))
    assert (back.draft_tokens, back.draft_accepted) == (12, 9)
    assert "draft_tokens" not in _rec(1, None).to_json()  # no key without drafting
    records = [rec, _rec(1, (8, 2)), _rec(2, (100, 100), warmup=True),
               _rec(3, (50, 50), ok=False), _rec(4, None)]  # fmt: skip
    totals = draft_totals(records)
    assert totals == {"draft_tokens": 20, "accepted_tokens": 11, "requests": 2}
    block = specdec.point_block(totals, None)
    assert block is not None and block["acceptance_rate"] == 0.55
    assert block["mean_accepted_length"] is None and block["requests"] == 2
    SPEC.validate(block)
    assert draft_totals([_rec(0, None)]) is None and specdec.point_block(None, None) is None


def _summary(mapping: Any, scrapes: list[str]) -> dict[str, Any]:
    """The point record of these scrapes, as the sampler builds it (schema-checked)."""
    data = _Samples()
    for text in scrapes:
        values, raw = mapped(mapping, parse(text.encode(), wanted_series(mapping)))
        data.values.append(values)
        data.raw.update(raw)
    record = summary(mapping, data, interval_s=1.0)
    SERVER.validate(record)
    return record


def _vllm(drafts: int, proposed: int, accepted: int) -> str:
    return (
        "# TYPE vllm:spec_decode_num_drafts_total counter\n"
        f'vllm:spec_decode_num_drafts_total{{engine="0",model_name="m"}} {drafts}\n'
        f'vllm:spec_decode_num_draft_tokens_total{{engine="0",model_name="m"}} {proposed}\n'
        f'vllm:spec_decode_num_accepted_tokens_total{{engine="0",model_name="m"}} {accepted}\n'
        'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 7\n'
        'vllm:num_requests_waiting{model_name="m"} 0\n'
    )


def test_vllm_counter_deltas_give_rate_and_mean_accepted_length() -> None:
    # 40 draft rounds of 3 tokens over the point, 90 of the 120 accepted
    record = _summary(
        VLLM_METRICS, [_vllm(100, 300, 150), _vllm(120, 360, 195), _vllm(140, 420, 240)]
    )
    block = specdec.point_block(None, record)
    assert block is not None
    assert (block["drafts"], block["draft_tokens"], block["accepted_tokens"]) == (40, 120, 90)
    assert block["acceptance_rate"] == 0.75 and block["mean_accepted_length"] == 3.25
    assert "vllm:spec_decode_num_draft_tokens_total" in block["source"]
    SPEC.validate(block)


def test_sglang_gauges_are_averaged_over_the_point() -> None:
    text = (
        'sglang:spec_accept_rate{{tp_rank="0"}} {r}\nsglang:spec_accept_length{{tp_rank="0"}} {n}\n'
    )
    record = _summary(SGLANG_METRICS, [text.format(r=0.6, n=2.8), text.format(r=0.8, n=3.2)])
    block = specdec.point_block(None, record)
    assert block is not None and block["draft_tokens"] is None
    assert block["acceptance_rate"] == pytest.approx(0.7) and block["mean_accepted_length"] == 3.0
    SPEC.validate(block)
    hostile = _summary(SGLANG_METRICS, [text.format(r=7, n=-2)])
    block = specdec.point_block(None, hostile)
    assert (
        block is not None
        and block["acceptance_rate"] is None
        and block["mean_accepted_length"] is None
    )


def test_a_server_that_does_not_draft_misses_no_spec_series() -> None:
    plain = _summary(VLLM_METRICS, ['vllm:num_requests_waiting{model_name="m"} 0\n'] * 2)
    assert not [m for m in plain["missing"] if m.startswith("spec_")]
    assert specdec.point_block(None, plain) is None
    partial = _summary(VLLM_METRICS, ['vllm:spec_decode_num_drafts_total{engine="0"} 4\n'] * 2)
    assert "spec_accepted_tokens" in partial["missing"]  # drafting, but a series is gone
    assert not [m for m in _summary(LLAMA_METRICS, ["llamacpp:requests_processing 0\n"])["missing"]
                if m.startswith("spec_")]  # fmt: skip


def test_repeats_sum_draft_counts_and_recompute_the_rate() -> None:
    def measured(accepted: int) -> dict[str, Any]:
        block = specdec.block("llama.cpp response timings", draft_tokens=100,
                              accepted_tokens=accepted, drafts=None, requests=4)  # fmt: skip
        return {"valid": True, "invalid_reasons": [], "failure_class": None, "metrics": {"completed": 4},
                "client": None, "telemetry": None, "started_at": "t", "finished_at": "t",
                "speculative": block}  # fmt: skip

    entry = repeats.fold({}, measured(60), repeat=1, planned=2)
    entry = repeats.fold(entry, measured(80), repeat=2, planned=2)
    assert entry["speculative"]["draft_tokens"] == 200 and entry["speculative"]["requests"] == 8
    assert entry["speculative"]["acceptance_rate"] == 0.7
    assert [r["speculative"]["acceptance_rate"] for r in entry["repeats"]] == [0.6, 0.8]


def test_a_draft_is_a_prefix_of_the_targets_layers_or_a_local_file(tmp_path: Any) -> None:
    import gguf

    from ixci.engines.modelgen import ModelGenError, make_tiny_gguf
    from ixci.engines.resolve import resolve_draft
    from ixci.errors import InvalidJob

    full = make_tiny_gguf(tmp_path / "full.gguf", layers=3)
    draft = make_tiny_gguf(tmp_path / "draft.gguf", layers=3, keep_layers=1)
    assert draft.layers == 1 and draft.params < full.params

    def tensors(path: Any) -> dict[str, Any]:
        return {t.name: t.data.tobytes() for t in gguf.GGUFReader(str(path)).tensors}

    mine, theirs = tensors(draft.gguf), tensors(full.gguf)
    assert set(mine) < set(theirs) and all(mine[k] == theirs[k] for k in mine)  # the same weights
    with pytest.raises(ModelGenError, match="keep_layers=4"):
        make_tiny_gguf(tmp_path / "bad.gguf", layers=3, keep_layers=4)
    job = {"spec_decoding": {"method": "draft-model", "draft_model": "local:draft.gguf"}}
    assert resolve_draft(job, cache=tmp_path) == str(tmp_path / "draft.gguf")
    assert (
        resolve_draft({"spec_decoding": {"draft_model": "org/name"}}, cache=tmp_path) == "org/name"
    )
    assert resolve_draft({}, cache=tmp_path) is None
    missing = {"spec_decoding": {"draft_model": "local:none.gguf"}}
    with pytest.raises(InvalidJob, match=r"none\.gguf does not exist") as err:
        resolve_draft(missing, cache=tmp_path)
    assert "--model-cache" in (err.value.hint or "")
    assert resolve_draft(missing, cache=tmp_path, check=False) == str(tmp_path / "none.gguf")


def test_llama_cpp_rate_from_responses_mean_length_from_its_counters() -> None:
    def scrape(drafts: int, proposed: int, accepted: int) -> str:
        return (f"llamacpp:spec_decode_num_drafts_total {drafts}\n"
                f"llamacpp:spec_decode_num_draft_tokens_total {proposed}\n"
                f"llamacpp:spec_decode_num_accepted_tokens_total {accepted}\n")  # fmt: skip

    record = _summary(LLAMA_METRICS, [scrape(0, 0, 0), scrape(50, 200, 150)])
    block = specdec.point_block(
        {"draft_tokens": 180, "accepted_tokens": 135, "requests": 8}, record
    )
    assert block is not None and block["acceptance_rate"] == 0.75  # the measured requests
    assert block["mean_accepted_length"] == 4.0  # 1 + 150 / 50, warm-ups included
    assert block["source"].endswith("mean accepted length from /metrics counter deltas")
    SPEC.validate(block)
    idle = _summary(LLAMA_METRICS, [scrape(0, 0, 0)] * 2)  # a server that does not draft
    assert specdec.point_block(None, idle) is None
