"""``tenfold llm`` verbs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenfold.cli import main
from tenfold.llm import free_port
from tenfold.llm.server import bind
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
    assert main(["llm", "serve", "--engine", "vllm", "--port", str(free_port())]) == 1
    assert "make setup-vllm" in capsys.readouterr().err


def test_a_missing_model_file_says_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm", "generate", "--model", "/nonexistent.gguf", "hi"]) == 1
    assert "model file or directory /nonexistent.gguf not found" in capsys.readouterr().err


def test_serve_rejects_an_out_of_range_port_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["llm", "serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "argument --port: invalid port 70000: must be in 0..65535" in capsys.readouterr().err


def test_serve_on_a_taken_port_exits_1_naming_it_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tenfold.llm.transformers_backend as tb

    def no_load(*_a: object, **_k: object) -> None:
        raise AssertionError("the model must not be loaded when the port is taken")

    monkeypatch.setattr(tb, "TransformersBackend", no_load)
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        assert main(["llm", "serve", "--port", str(port)]) == 1
    finally:
        taken.close()
    out, err = capsys.readouterr()
    assert f"tenfold: error: cannot listen on 127.0.0.1:{port}: " in err
    assert f"is port {port} in use?" in err
    assert "serving" not in out and "tenfold llm serve:" not in out
