"""Traces: the JSONL schema (any producer), errors with file:line, generators, ShareGPT."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tenfold.errors import ConfigError, TraceError
from tenfold.systems.marconi.traces import (
    agent_trace,
    chat_trace,
    iter_sharegpt_records,
    load_trace,
    save_trace,
    sharegpt_trace,
    sysprompt_trace,
)
from tenfold.systems.marconi.ttft import LinearTTFT, StepTTFT, load_profile_csv


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_foreign_trace_loads_in_timestamp_order(tmp_path: Path) -> None:
    rows = [
        {"session_id": 7, "turn_id": 0, "ts": 2.0, "input_tokens": [1, 2], "output_tokens": [3]},
        {"session_id": "x", "turn_id": 0, "ts": 1.0, "input_tokens": [5], "output_tokens": [], "extra": "ok"},
        {"session_id": 7, "turn_id": 1, "ts": 3.5, "input_tokens": [1, 2, 3, 4], "output_tokens": [9]},
    ]
    trace = load_trace(_write(tmp_path / "foreign.jsonl", rows))
    assert [(r.session_id, r.turn_id) for r in trace.requests] == [("x", 0), ("7", 0), ("7", 1)]
    again = load_trace(save_trace(trace, tmp_path / "out.jsonl"))
    assert again.requests == trace.requests


@pytest.mark.parametrize(("row", "message"), [
    ('{"session_id": 1, "turn_id": 0', "not valid JSON"),
    ({"session_id": 1, "turn_id": 0, "ts": 0}, "missing field(s) 'input_tokens', 'output_tokens'"),
    ({"session_id": 1, "turn_id": 0, "ts": 0, "input_tokens": [1, -2], "output_tokens": []}, "bad token id -2"),
    ({"session_id": 1, "turn_id": 0, "ts": 0, "input_tokens": "12", "output_tokens": []}, "must be a list"),
    ({"session_id": 1, "turn_id": -1, "ts": 0, "input_tokens": [], "output_tokens": []}, "bad turn_id -1"),
    ({"session_id": 1, "turn_id": 1, "ts": 0.5, "input_tokens": [], "output_tokens": []}, "ts 0.5 decreases"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    good = {"session_id": 1, "turn_id": 0, "ts": 1.0, "input_tokens": [1], "output_tokens": [2]}
    path = _write(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert f"{path}:2: " in str(info.value) and message in str(info.value)


def test_chat_generator_parameters() -> None:
    trace = chat_trace(30, seed=1)
    assert trace.n_sessions == 30
    per_session: dict[str, list[int]] = {}
    for r in trace.requests:
        per_session.setdefault(r.session_id, []).append(r.turn_id)
        assert 125 <= len(r.output_tokens) <= 375
    assert all(10 <= len(t) <= 20 for t in per_session.values())
    s0 = [r for r in trace.requests if r.session_id == "s0"]
    for prev, cur in itertools.pairwise(s0):
        assert cur.input_tokens[: len(prev.tokens)] == prev.tokens  # history is an exact prefix
        assert 40 <= len(cur.input_tokens) - len(prev.tokens) <= 120
    assert chat_trace(30, seed=1) == trace
    with pytest.raises(ConfigError, match="'sps' = 0"):
        chat_trace(3, sps=0)


def test_sysprompt_and_agent_generators() -> None:
    sp = sysprompt_trace(20, seed=2)
    firsts = {r.input_tokens[:1000] for r in sp.requests if r.turn_id == 0}
    assert len(firsts) <= 5 and all(len(f) == 1000 for f in firsts)
    ag = agent_trace(3, seed=2)
    assert all(r.input_tokens[:2000] == ag.requests[0].input_tokens[:2000]
               for r in ag.requests if r.session_id == ag.requests[0].session_id)
    assert all(len(r.output_tokens) == 150 for r in ag.requests)
    assert max(r.turn_id for r in ag.requests) < 50


def test_sharegpt_reader_survives_truncation_and_builds_sessions(tmp_path: Path) -> None:
    convs = [
        {"id": "a", "conversations": [{"from": "human", "value": "hi there you"},
                                      {"from": "gpt", "value": "hello"}] * 10},
        {"id": "short", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]},
        {"id": "b", "conversations": [{"from": "human", "value": "a b"}, {"from": "gpt", "value": "c"}] * 10},
    ]
    text = "[" + ", ".join(json.dumps(c) for c in convs) + ', {"id": "trunc", "conversations": [{"fr'
    path = tmp_path / "sharegpt.json"
    path.write_text(text)
    assert [r["id"] for r in iter_sharegpt_records(path)] == ["a", "short", "b"]

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [[len(w) for w in t.split()] for t in texts]

    trace = sharegpt_trace(5, sps=0.5, path=path, tokenize=tokenize)
    assert trace.n_sessions == 2 and len(trace) == 20
    a = [r for r in trace.requests if r.session_id == "sg0"]
    assert a[0].input_tokens == (2, 5, 3) and a[0].output_tokens == (5,)
    assert a[1].input_tokens == (2, 5, 3, 5, 2, 5, 3)
    assert a[1].ts == pytest.approx(2 / 1.5)  # two spaces typed at 90 words per minute
    b0 = next(r for r in trace.requests if r.session_id == "sg1")
    assert b0.ts == 2.0  # session 1 starts at 1/sps


def test_ttft_models(tmp_path: Path) -> None:
    lin = LinearTTFT.fit([100, 200, 300], [12.0, 22.0, 32.0])
    assert lin(250) == pytest.approx(27.0) and lin(0) == 0.0
    floored = LinearTTFT(-50.0, 0.1, floor_ms=5.0)
    assert floored(10) == 5.0
    step = StepTTFT((100, 200, 400), (10.0, 20.0, 40.0))
    assert [step(1), step(100), step(101), step(400), step(600)] == [10.0, 10.0, 20.0, 40.0, 60.0]
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("tokens,ms\n64,5\n128,9\n")
    assert load_profile_csv(csv_path) == ([64, 128], [5.0, 9.0])
    csv_path.write_text("tokens,ms\n64,5\nabc,9\n")
    with pytest.raises(TraceError, match=f"{csv_path}:3: "):
        load_profile_csv(csv_path)


@pytest.mark.slow  # loading the tokenizer from the GGUF takes about 30 s on 2 cores
def test_packaged_sharegpt_and_smollm2_tokenizer() -> None:
    from tenfold.core.assets import asset_path
    from tenfold.systems.marconi.traces import smollm2_tokenizer

    records = list(iter_sharegpt_records(asset_path("sharegpt-v3")))
    assert len(records) == 17_671  # the truncated file, read record by record
    assert sum(1 for r in records if len(r.get("conversations", [])) >= 20) == 524
    ids = smollm2_tokenizer()(["What is the capital of France?", ""])
    assert len(ids) == 2 and ids[1] == [] and 3 <= len(ids[0]) <= 12
    assert all(0 <= t < 49_152 for t in ids[0])
