"""Session traces: the synthetic generator, the Mooncake and conversation readers, prompts."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ixci.loadgen.dataset import _WORDS
from ixci.loadgen.session_prompts import Contents, session_prompts
from ixci.loadgen.traces import (
    IntRange,
    SessionsWorkload,
    SyntheticSpec,
    TraceError,
    read_conversations,
    read_mooncake,
    synthetic,
)

SPEC = SyntheticSpec(
    sessions=20,
    turns=IntRange(2, 6),
    system_prompt_tokens=40,
    first_turn_tokens=IntRange(5, 9),
    new_tokens=IntRange(3, 7),
    output_tokens=IntRange(2, 4),
    pause_mean_s=0.5,
    pause_max_s=0.7,
)


def test_synthetic_is_seeded_and_follows_its_distributions() -> None:
    a, b, c = synthetic(SPEC, 7), synthetic(SPEC, 7), synthetic(SPEC, 8)
    assert a == b and a != c
    assert len(a) == 20
    for s in a:
        assert 2 <= len(s.turns) <= 6
        assert s.turns[0].new[0].length == 40 and 5 <= s.turns[0].new[1].length <= 9
        assert s.turns[0].pause_s == 0.0
        for t in s.turns[1:]:
            assert len(t.new) == 1 and 3 <= t.new_tokens <= 7 and 0 <= t.pause_s <= 0.7
        assert all(2 <= t.output_tokens <= 4 for t in s.turns)
    assert len({s.turns[0].new[0] for s in a}) == 1  # one system prompt shared by every session


def test_turn_prompt_is_the_whole_conversation_so_far() -> None:
    contents = Contents(_WORDS, as_ids=False)
    s = synthetic(SPEC, 3)[0]
    prompts = session_prompts(s, contents)
    assert [len(p) for p in prompts] == s.prompt_lengths()
    for k in range(1, len(prompts)):
        before = prompts[k - 1]
        assert prompts[k][: len(before)] == before  # prefix: the engine's cache can hit
        # then the previous answer's stand-in, then the new content
        assert len(prompts[k]) == len(before) + s.turns[k - 1].output_tokens + s.turns[k].new_tokens
    other = session_prompts(synthetic(SPEC, 3)[1], contents)
    assert other[0][:40] == prompts[0][:40] and other[0][40:] != prompts[0][40:]


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_mooncake_blocks_with_equal_hash_ids_share_tokens(tmp_path: Path) -> None:
    trace = _jsonl(
        tmp_path / "mc.jsonl",
        [
            {"timestamp": 1000, "input_length": 10, "output_length": 3, "hash_ids": [7, 8, 9]},
            {"timestamp": 1500, "input_length": 9, "output_length": 2, "hash_ids": [7, 8, 5]},
        ],
    )
    a, b = read_mooncake(trace, block_tokens=4)
    assert (a.start_s, b.start_s) == (0.0, 0.5)
    assert [seg.length for seg in a.turns[0].new] == [4, 4, 2]
    pa, pb = (session_prompts(s, Contents(_WORDS, as_ids=False))[0] for s in (a, b))
    assert len(pa) == 10 and len(pb) == 9
    assert pa[:8] == pb[:8] and pa[8:] != pb[8:]


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        (b"{not json", "mc.jsonl:2: not a JSON object"),
        (b"[1, 2]", "mc.jsonl:2: a JSON list, not an object"),
        (
            orjson.dumps({"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1]}),
            "mc.jsonl:2: field 'hash_ids': 1 ids for input_length 5 (blocks of 4 tokens need 2)",
        ),
        (
            orjson.dumps({"timestamp": 0, "input_length": -5, "output_length": 1, "hash_ids": []}),
            "mc.jsonl:2: field 'input_length': expected an integer",
        ),
        (
            orjson.dumps(
                {"timestamp": "soon", "input_length": 4, "output_length": 1, "hash_ids": [1]}
            ),
            "mc.jsonl:2: field 'timestamp': expected a number >= 0",
        ),
        (
            orjson.dumps(
                {"timestamp": 0, "input_length": 4, "output_length": True, "hash_ids": [1]}
            ),
            "mc.jsonl:2: field 'output_length': expected an integer",
        ),
        (
            orjson.dumps(
                {"timestamp": 0, "input_length": 4, "output_length": 1, "hash_ids": ["x"]}
            ),
            "mc.jsonl:2: field 'hash_ids': expected a list of integers",
        ),
    ],
)
def test_mooncake_bad_lines_name_file_line_and_field(
    tmp_path: Path, line: bytes, expect: str
) -> None:
    good = orjson.dumps({"timestamp": 0, "input_length": 4, "output_length": 1, "hash_ids": [1]})
    path = tmp_path / "mc.jsonl"
    path.write_bytes(good + b"\n" + line + b"\n")
    with pytest.raises(TraceError) as exc:
        read_mooncake(path, block_tokens=4)
    assert expect in exc.value.message
    assert exc.value.exit_code == 3


def test_trace_size_and_emptiness_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    with pytest.raises(TraceError, match="the trace is empty"):
        read_conversations(empty)
    with pytest.raises(TraceError, match="cannot read the trace"):
        read_conversations(tmp_path / "missing.jsonl")
    import ixci.loadgen.traces as traces

    monkeypatch.setattr(traces, "MAX_TRACE_BYTES", 10)
    big = _jsonl(
        tmp_path / "big.jsonl", [{"id": "a", "turns": [{"new_tokens": 1, "output_tokens": 1}]}]
    )
    with pytest.raises(TraceError, match="bytes > the"):
        read_conversations(big)


def test_conversations_reader(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "id": "a",
                "shared_prefix_tokens": 6,
                "turns": [
                    {"new_tokens": 4, "output_tokens": 2},
                    {"new_tokens": 3, "output_tokens": 5, "pause_s": 1.5},
                ],
            },
            {
                "id": "b",
                "start_s": 2,
                "shared_prefix_tokens": 6,
                "turns": [{"new_tokens": 1, "output_tokens": 1}],
            },
        ],
    )
    a, b = read_conversations(path)
    assert a.prompt_lengths() == [10, 15] and a.turns[1].pause_s == 1.5 and b.start_s == 2.0
    pa, pb = (
        session_prompts(a, Contents(_WORDS, as_ids=False)),
        session_prompts(b, Contents(_WORDS, as_ids=False)),
    )
    assert pa[0][:6] == pb[0][:6]  # the shared prefix is one content


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        ({"id": "a", "turns": []}, "c.jsonl:1: field 'turns': expected a list of 1 to 1000 turns"),
        (
            {"id": "a", "turns": [{"new_tokens": 0, "output_tokens": 1}]},
            "c.jsonl:1: turns[0]: field 'new_tokens': expected an integer in [1, 2097152], got 0",
        ),
        (
            {"id": "a", "turns": [{"new_tokens": 1, "output_tokens": 1, "pause_s": -1}]},
            "c.jsonl:1: turns[0]: field 'pause_s': expected a number >= 0",
        ),
        (
            {"id": {"x": 1}, "turns": [{"new_tokens": 1, "output_tokens": 1}]},
            "c.jsonl:1: field 'id'",
        ),
        ({"id": "a", "turns": ["x"]}, "c.jsonl:1: turns[0]: expected an object"),
    ],
)
def test_conversation_bad_lines(tmp_path: Path, row: object, expect: str) -> None:
    with pytest.raises(TraceError) as exc:
        read_conversations(_jsonl(tmp_path / "c.jsonl", [row]))
    assert expect in exc.value.message


def test_repeated_conversation_id_is_refused(tmp_path: Path) -> None:
    row = {"id": "a", "turns": [{"new_tokens": 1, "output_tokens": 1}]}
    with pytest.raises(TraceError, match=r"c\.jsonl:2: field 'id': 'a' repeats"):
        read_conversations(_jsonl(tmp_path / "c.jsonl", [row, row]))


def test_workload_block_round_trips_and_caps_file_sessions(tmp_path: Path) -> None:
    block = {
        "kind": "sessions",
        "trace": "synthetic",
        "sessions": 3,
        "turns": {"min": 2, "max": 2},
        "system-prompt-tokens": 5,
        "output-tokens": 4,
        "tool-pause-s": {"mean": 0.1, "max": 1},
    }
    w = SessionsWorkload.from_profile(block)
    assert SessionsWorkload.from_profile(w.to_json()) == w
    assert len(w.sessions(root=tmp_path, seed=1)) == 3
    _jsonl(
        tmp_path / "c.jsonl",
        [{"id": str(i), "turns": [{"new_tokens": 1, "output_tokens": 1}]} for i in range(5)],
    )
    f = SessionsWorkload.from_profile(
        {"kind": "sessions", "trace": "conversations", "file": "c.jsonl", "max-sessions": 2}
    )
    assert [s.id for s in f.sessions(root=tmp_path, seed=0)] == ["0", "1"]
    with pytest.raises(TraceError, match="needs a `file`"):
        SessionsWorkload.from_profile({"kind": "sessions", "trace": "mooncake"}).sessions(
            root=tmp_path, seed=0
        )


def _body(request: bytes) -> dict:
    return orjson.loads(request.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize(
    ("as_ids", "endpoint"), [(True, "completions"), (False, "completions"), (False, "chat")]
)
def test_turn_payloads_are_the_conversation_so_far(as_ids: bool, endpoint: str) -> None:
    """Requests built lazily, turn by turn, carry exactly the reference prompts."""
    from ixci.loadgen.dialect import Endpoint, get_dialect
    from ixci.loadgen.http import Target
    from ixci.loadgen.session_prompts import RequestTemplate, TurnPayloads

    sessions = synthetic(SPEC, 5)[:3]
    contents = Contents(range(100, 900) if as_ids else _WORDS, as_ids=as_ids)
    template = RequestTemplate(
        dialect=get_dialect("vllm"),
        endpoint=Endpoint(endpoint),
        model="m",
        extra={"temperature": 0},
        target=Target.parse("http://127.0.0.1:9"),
        headers={},
        as_ids=as_ids,
    )
    at = [(i, j) for i, s in enumerate(sessions) for j in range(len(s.turns))]
    payloads = TurnPayloads(sessions=sessions, at=at, contents=contents, template=template)
    assert len(payloads) == len(at)
    for k, (i, j) in enumerate(at):
        body = _body(payloads[k])
        want = session_prompts(sessions[i], contents)[j]
        got = body["messages"][0]["content"] if endpoint == "chat" else body["prompt"]
        assert got == (want if as_ids else " ".join(want))
        assert body["max_tokens"] == sessions[i].turns[j].output_tokens and body["temperature"] == 0


def test_cached_tokens_come_from_the_usage_not_from_generated_text() -> None:
    from ixci.loadgen.http import Exchange
    from ixci.loadgen.sessions import cached_tokens

    ex = Exchange()
    ex.blocks = [b'data: {"choices":[{"text":"\\"cached_tokens\\":999"}]}\n\n']
    assert cached_tokens(ex) is None  # the model writing the key in its answer is not a report
    ex.blocks.append(
        b'data: {"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":7}}}\n\n'
    )
    assert cached_tokens(ex) == 7
    ex.blocks = [b'data: {"timings":{"cache_n":5,"prompt_n":2}}\n\n']  # llama.cpp's own field
    assert cached_tokens(ex) == 5
