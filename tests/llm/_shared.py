"""Models shared by the llm tests and the conformance suite, each built once per test session.

SmolLM2 is converted from its GGUF on first use (into ``$TENFOLD_CACHE_DIR``, default
``~/.cache/tenfold``), about 45 s on 2 cores from an empty cache, then loaded in seconds.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from tenfold.llm import (
    CharTokenizer,
    GPTConfig,
    ResolvedModel,
    ServerProcess,
    TinyGPT,
    TinyGPTBackend,
    TrainConfig,
    TransformersBackend,
    free_port,
    resolve_model,
    train_tiny_gpt,
)

TINY_CORPUS = "".join(
    f"Question: what is {a} plus {b}? Answer: {a + b}.\n" for a in range(12) for b in range(12)
)


@functools.cache
def smollm2_model() -> ResolvedModel:
    return resolve_model("smollm2")


@functools.cache
def smollm2_backend() -> TransformersBackend:
    return TransformersBackend(smollm2_model())  # 1 torch thread: the default, fastest on shared cores


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block on ``n`` torch threads; tiny models lose time to thread hand-offs on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def tiny_trained() -> tuple[TinyGPT, CharTokenizer]:
    """A 2-layer TinyGPT trained for 60 seeded steps on a small arithmetic corpus (a few seconds)."""
    tok = CharTokenizer.from_text(TINY_CORPUS)
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=512, n_layer=2, n_head=2, n_embd=64), seed=0)
    with torch_threads(1):
        train_tiny_gpt(model, tok.encode(TINY_CORPUS), TrainConfig(steps=60, batch_size=8, seq_len=64, seed=0))
    return model, tok


def tiny_backend() -> TinyGPTBackend:
    model, tok = tiny_trained()
    return TinyGPTBackend(model, tok, name="tiny-gpt-test")


def serve_command(model: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tenfold.cli", "llm", "serve", "--model", model, "--port", str(port), *extra]


def start_transformers_server() -> ServerProcess:
    """``tenfold llm serve --engine transformers --model smollm2`` as a real subprocess."""
    smollm2_model()  # convert first, so the server's start-up is a plain load
    port = free_port()
    return ServerProcess(serve_command("smollm2", port, "--engine", "transformers"), port,
                         startup_timeout_s=240).start()


VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
