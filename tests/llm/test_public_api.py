"""tenfold.llm's public surface, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import tenfold.llm


def test_all_matches_the_public_names() -> None:
    public = {n for n in dir(tenfold.llm) if not n.startswith("_")}
    modules = {"backend", "cli", "decoding", "models", "openai_backend", "scripted", "server", "tiny_gpt",
               "transformers_backend", "vllm", "annotations", "importlib", "TYPE_CHECKING", "Any"}
    assert set(tenfold.llm.__all__) == (public - modules) | tenfold.llm._LAZY
    for name in tenfold.llm.__all__:
        assert getattr(tenfold.llm, name) is not None


def test_import_does_not_load_heavy_libraries() -> None:
    code = ("import sys, tenfold.llm, tenfold.llm.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'fastapi', 'httpx', 'openai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
