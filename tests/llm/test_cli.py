"""``tenfold llm`` verbs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenfold.cli import main
from tests.llm._shared import smollm2_model

TENFOLD = Path(sys.executable).parent / "tenfold"


def test_generate_answers_paris() -> None:
    smollm2_model()  # converted already (the conversion is timed by the models tests)
    result = subprocess.run(
        [str(TENFOLD), "llm", "generate", "--model", "smollm2", "What is the capital of France? Answer in one word."],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "[smollm2:" in result.stderr


def test_help_lists_the_llm_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["llm", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for verb in ("generate", "serve", "models"):
        assert verb in out


def test_models_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("gemma3-270m\t")
    assert "smollm2\tSmolLM2-135M-Instruct" in out


def test_an_unknown_model_exits_2_listing_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "generate", "--model", "gpt-4", "hi"]) == 2
    assert "unknown model 'gpt-4'; known: gemma3-270m, smollm2" in capsys.readouterr().err


def test_a_hub_id_exits_1_with_an_asset_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "generate", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "hi"]) == 1
    assert "tenfold never downloads models" in capsys.readouterr().err


def test_bad_sampling_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "generate", "--max-tokens", "0", "hi"]) == 2
    assert "config field 'max_tokens' = 0" in capsys.readouterr().err


def test_serve_with_vllm_missing_explains_the_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TENFOLD_VLLM_PYTHON", str(tmp_path / "no-python"))
    assert main(["llm", "serve", "--engine", "vllm", "--port", "9"]) == 1
    assert "make setup-vllm" in capsys.readouterr().err
