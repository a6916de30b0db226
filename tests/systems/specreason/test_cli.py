"""``tenfold specreason solve/eval`` with the backends swapped for scripted fakes."""

from __future__ import annotations

import json

import pytest

from tenfold.cli import main
from tenfold.errors import UnknownNameError
from tenfold.llm import LLMBackend, ScriptedBackend
from tenfold.systems.specreason import cli as sr_cli

S1, S2_BAD, S2 = "Add 25: 17 + 25 = 42.", "Multiply by 3: 42 * 3 = 127.", "Multiply by 3: 42 * 3 = 126."
S3 = "The answer is \\boxed{126}."


def _fakes(monkeypatch: pytest.MonkeyPatch, small: list[str], base: list[str]) -> None:
    backends = {"S": ScriptedBackend(small), "B": ScriptedBackend(base)}

    def pick(spec: str, pair: str = "arith-v1") -> LLMBackend:
        return backends[spec]

    monkeypatch.setattr(sr_cli, "_backend", pick)


def test_solve_prints_marks(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _fakes(monkeypatch, [S1, S2_BAD, S3], ["9", "3", S2, "8"])
    assert main(["specreason", "solve", "Start with 17. Add 25, then multiply by 3. What is the result?",
                 "--small", "S", "--base", "B", "--threshold", "7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f" 1 [+] score 9 small | {S1}"
    assert lines[1] == f" 2 [x] score 3 base  | {S2}"
    assert lines[2] == f"   rejected draft      | {S2_BAD}"
    assert lines[3] == f" 3 [+] score 8 small | {S3}"
    assert lines[4].startswith("answer: 126  stop: answer  accept_rate: 0.67  tokens: 28")


def test_solve_with_artifact_compat_sends_the_raw_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenfold.systems.specreason.prompts import math_prompt

    _fakes(monkeypatch, [S3], ["10"])  # str.isdigit: "10" scores 10 and is accepted
    small, base = sr_cli._backend("S"), sr_cli._backend("B")
    assert main(["specreason", "solve", "Start with 126.", "--small", "S", "--base", "B", "--artifact-compat"]) == 0
    assert isinstance(small, ScriptedBackend) and isinstance(base, ScriptedBackend)
    raw = math_prompt("Start with 126.", artifact_compat=True)
    assert small.calls[0].messages == ({"role": "user", "content": raw},)
    assert [c.kind for c in base.calls] == ["next_token"]  # accepted: no base step


def test_eval_reports_accuracy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.systems.specreason.tasks import held_out

    p = next(held_out(1, seed=1, exclude=set()))
    _fakes(monkeypatch, p.steps, ["9"] * len(p.steps))
    assert main(["specreason", "eval", "--n", "1", "--small", "S", "--base", "B"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["problems"] == 1 and summary["accuracy"] == 1.0 and summary["acceptance_rate"] == 1.0


def test_bad_names_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnknownNameError, match="tiny-base"):
        sr_cli._backend("tiny-huge")
    assert main(["specreason", "solve", "x", "--small", "http://127.0.0.1:9/v1", "--base", "smollm2",
                 "--threshold", "11"]) == 2
    assert "config field 'threshold' = 11.0: must be in [0.0, 10.0]" in capsys.readouterr().err


def test_serve_puts_the_tiny_base_behind_the_openai_api() -> None:
    """`tenfold specreason serve` as a real process; the judge call goes through the real client."""
    import subprocess
    import sys
    import time

    from tenfold.llm import OpenAIBackend, free_port
    from tenfold.systems.specreason.loop import judge_messages
    from tenfold.systems.specreason.pair import load_pair
    from tenfold.systems.specreason.prompts import math_prompt

    port = free_port()
    from pathlib import Path

    tenfold = str(Path(sys.executable).parent / "tenfold")
    proc = subprocess.Popen([tenfold, "specreason", "serve", "--model", "tiny-base", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        remote = OpenAIBackend(f"http://127.0.0.1:{port}/v1")
        deadline = time.monotonic() + 60
        while not remote.health():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "server not healthy within 60 s"
            time.sleep(0.2)
        prompt = math_prompt("Start with 17. Add 25. What is the result?")
        messages = judge_messages(prompt, [], "Add 25: 17 + 25 = 42.")
        flags = {"add_generation_prompt": False, "continue_final_message": True}
        got = remote.next_token(messages, k=10, **flags)
        _, base = load_pair()
        want = base.next_token(messages, k=10, **flags)
        assert len(got.top) == 10
        assert [t.token for t in got.top] == [t.token for t in want.top]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
