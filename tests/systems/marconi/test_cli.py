"""``tenfold marconi ...`` verbs and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenfold.cli import main


def test_gen_trace_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chat.jsonl"
    assert main(["marconi", "gen-trace", "--source", "chat", "--sessions", "5", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sessions"] == 5 and out.is_file()
    for policy in ("marconi", "sglang+", "vllm+"):
        assert main(["marconi", "replay", "--trace", str(out), "--policy", policy, "--capacity", "3GB"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["requests"] == info["requests"] and 0 <= doc["token_hit_rate"] <= 1
        assert doc["ttft_p95_ms"] is None  # no profile, no TTFT
    profile = tmp_path / "profile.csv"
    profile.write_text("tokens,ms\n100,10\n1000,100\n")
    assert main(["marconi", "replay", "--trace", str(out), "--policy", "marconi", "--capacity", "3GB",
                 "--ttft-profile", str(profile)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ttft_p50_ms"] is not None and doc["ttft_p50_ms"] > 0


def test_sweep_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chat.jsonl"
    assert main(["marconi", "gen-trace", "--source", "chat", "--sessions", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["marconi", "sweep", "--trace", str(out), "--capacities", "1GB,2GB", "--policies",
                 "sglang+,marconi"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["capacity"], r["policy"]) for r in rows] == [("1GB", "sglang+"), ("1GB", "marconi"),
                                                            ("2GB", "sglang+"), ("2GB", "marconi")]


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "lru", "--capacity", "3GB"], "unknown cache policy 'lru'; known: marconi, sglang+, static, vllm+"),
    (["--policy", "marconi", "--capacity", "3XB"], "config field 'capacity' = '3XB'"),
    (["--policy", "marconi", "--capacity", "1MB"], "must hold at least one checkpoint (26787840 bytes)"),
    (["--policy", "marconi", "--capacity", "0GB"], "must be > 0 bytes"),
    (["--policy", "marconi", "--capacity", "3GB", "--alpha", "-1"], "config field 'alpha' = -1.0"),
])
def test_bad_input_exits_2_naming_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                            message: str) -> None:
    out = tmp_path / "t.jsonl"
    out.write_text('{"session_id": 1, "turn_id": 0, "ts": 0, "input_tokens": [1], "output_tokens": [2]}\n')
    assert main(["marconi", "replay", "--trace", str(out), *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_trace_exits_1_with_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.jsonl"
    out.write_text('{"session_id": 1, "turn_id": 0, "ts": 0, "input_tokens": [1], "output_tokens": [2]}\nnope\n')
    assert main(["marconi", "replay", "--trace", str(out), "--policy", "marconi", "--capacity", "3GB"]) == 1
    assert f"{out}:2: not valid JSON" in capsys.readouterr().err


def test_check_exact(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["marconi", "check-exact", "--length", "120"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exact_within_1e-5"] and doc["model"] == "tiny hybrid, random-init"


def test_sweep_uses_the_block_size_replay_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chat.jsonl"
    assert main(["marconi", "gen-trace", "--source", "chat", "--sessions", "6", "--out", str(out)]) == 0
    capsys.readouterr()
    for bs in ("8", "32"):
        assert main(["marconi", "replay", "--trace", str(out), "--policy", "vllm+", "--capacity", "3GB",
                     "--block-size", bs]) == 0
        replayed = json.loads(capsys.readouterr().out)
        assert main(["marconi", "sweep", "--trace", str(out), "--policies", "vllm+", "--capacities", "3GB",
                     "--block-size", bs]) == 0
        (swept,) = json.loads(capsys.readouterr().out)
        assert swept["token_hit_rate"] == replayed["token_hit_rate"]


@pytest.mark.parametrize(("argv", "field"), [
    (["gen-trace", "--source", "chat", "--sessions", "0"], "sessions"),
    (["gen-trace", "--source", "chat", "--seed", "-1"], "seed"),
    (["check-exact", "--length", "2"], "length"),
    (["profile-ttft", "--lengths", "a,b"], "lengths"),
    (["profile-ttft", "--lengths", "16,8"], "lengths"),
    (["profile-ttft", "--lengths", "8,16", "--repeats", "0"], "repeats"),
    (["replay", "--policy", "static", "--capacity", "3GB", "--alpha", "inf"], "alpha"),
])
def test_bad_numbers_exit_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             argv: list[str], field: str) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"session_id":"s","turn_id":0,"ts":0,"input_tokens":[1,2],"output_tokens":[3]}\n')
    extra = ["--trace", str(trace)] if argv[0] == "replay" else ["--out", str(tmp_path / "o")]
    if argv[0] == "check-exact":
        extra = []
    assert main(["marconi", *argv, *extra]) == 2
    assert f"'{field}'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_check_exact_on_a_short_sequence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["marconi", "check-exact", "--length", "50"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(r["resume_at"] < 50 for r in doc["checks"]) and doc["exact_within_1e-5"] is True


def test_a_non_utf8_trace_and_an_out_directory_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bin.jsonl"
    bad.write_bytes(b"\xff\xfe x\n")
    assert main(["marconi", "replay", "--trace", str(bad), "--policy", "marconi", "--capacity", "3GB"]) == 1
    assert f"{bad}:1: not UTF-8 text" in capsys.readouterr().err
    assert main(["marconi", "gen-trace", "--source", "chat", "--sessions", "1", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin.jsonl"]
