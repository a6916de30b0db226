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
