"""The ``LLMBackend`` protocol and the small dataclasses every backend returns.

A backend generates text for a prompt or a chat, reports next-token top-k logprobs, counts
tokens with the model's own tokenizer, and accounts for every call in a :class:`Usage`:
how many prompt tokens were computed (prefill), how many came from a cached prefix (no
compute), how many were decoded, and how long the call took. Callers (specreason's judge,
marconi's cache client, ragserve's generator) depend only on this module, so an
in-process model, a remote OpenAI-compatible server and the scripted fake are
interchangeable::

    backend: LLMBackend = TransformersBackend.load("smollm2")
    gen = backend.chat([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=16))
    gen.text, gen.finish_reason, gen.usage.prefill_tokens, gen.usage.cached_tokens

Implementations: ``TransformersBackend`` (in-process), ``OpenAIBackend`` (vLLM, SGLang,
``tenfold llm serve``), ``TinyGPTBackend`` (trainable tiny model), ``ScriptedBackend`` (fake).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from tenfold.core.api import api
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import BackendError, ConfigError

__all__ = [
    "FinishReason",
    "Generation",
    "GenerationStream",
    "LLMBackend",
    "Message",
    "NextToken",
    "SamplingParams",
    "TokenLogprob",
    "Usage",
    "check_context",
    "check_messages",
]

FinishReason = Literal["stop", "length"]
"""``stop``: an end-of-sequence token or a stop string ended the text; ``length``: max_tokens."""

Message = Mapping[str, str]
"""One chat turn: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class SamplingParams(Config):
    """How one call decodes. ``temperature == 0`` is greedy (and ignores ``seed``)."""

    max_tokens: int = 64
    """Most tokens to decode; >= 1."""
    temperature: float = 0.0
    """Softmax temperature; 0 means greedy argmax."""
    top_p: float = 1.0
    """Nucleus sampling mass, in (0, 1]."""
    seed: int | None = None
    """Seed of the sampler's generator; the same seed gives the same sampled text."""
    stop: tuple[str, ...] = ()
    """Stop strings: the text ends before the first one that appears (it is not included)."""
    logprobs: bool = False
    """Also return the logprob of every decoded token (``Generation.token_logprobs``)."""
    top_logprobs: int = 0
    """Also return this many top candidates for every decoded token (0: none; at most 20);
    > 0 implies ``logprobs``."""

    def __post_init__(self) -> None:
        check_positive("max_tokens", self.max_tokens)
        check_range("temperature", self.temperature, lo=0.0)
        check_range("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        check_range("top_logprobs", self.top_logprobs, lo=0, hi=20)
        if any(not s for s in self.stop):
            raise ConfigError("stop", self.stop, "stop strings must be non-empty")


@api(stability="beta")
@dataclass(frozen=True)
class Usage:
    """Accounting for one call. ``prompt_tokens = prefill_tokens + cached_tokens``."""

    prefill_tokens: int = 0
    """Prompt tokens the model computed in this call."""
    cached_tokens: int = 0
    """Prompt tokens whose KV came from a cached prefix (not recomputed)."""
    decode_tokens: int = 0
    """Tokens generated (each one a decode step)."""
    seconds: float = 0.0
    """Wall-clock seconds of the call (scripted seconds for the fake)."""

    @property
    def prompt_tokens(self) -> int:
        return self.prefill_tokens + self.cached_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prefill_tokens + other.prefill_tokens,
            self.cached_tokens + other.cached_tokens,
            self.decode_tokens + other.decode_tokens,
            self.seconds + other.seconds,
        )


@dataclass(frozen=True)
class TokenLogprob:
    """One candidate token and its log-probability under the model (before temperature)."""

    token: str
    logprob: float


@dataclass(frozen=True)
class Generation:
    """The result of one generation call."""

    text: str
    """The decoded continuation, cut before any stop string."""
    finish_reason: FinishReason
    usage: Usage
    token_ids: tuple[int, ...] | None = None
    """Generated token ids, when the backend knows them (remote servers may not say)."""
    token_logprobs: tuple[TokenLogprob, ...] = field(default=())
    """Per generated token, that token and its logprob (when ``SamplingParams.logprobs``)."""
    top_logprobs: tuple[tuple[TokenLogprob, ...], ...] = field(default=())
    """Per generated token, its top ``SamplingParams.top_logprobs`` candidates, best first."""


@dataclass(frozen=True)
class NextToken:
    """Top-k candidates for the single next token, best first, with the call's usage."""

    top: tuple[TokenLogprob, ...]
    usage: Usage


@api(stability="beta")
@runtime_checkable
class LLMBackend(Protocol):
    """What every language-model backend offers."""

    @property
    def name(self) -> str:
        """The model name (registry name, path or server model id)."""
        ...

    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus generated) one sequence may hold."""
        ...

    @property
    def supports_prefix_cache(self) -> bool:
        """True when calls reuse the KV of earlier prompts' common prefixes."""
        ...

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        """Continue raw text ``prompt`` (no chat template)."""
        ...

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> Generation:
        """Answer a chat; ``continue_final_message`` extends the last (assistant) turn in place."""
        ...

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        """Top-``k`` next-token logprobs for raw text or a chat (``chat_flags`` as in :meth:`chat`)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes with the model's own tokenizer (no special tokens)."""
        ...


def check_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Validate chat messages; return them as plain dicts. Raises BackendError naming the bad turn."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise BackendError(f"messages must be a non-empty list of {{role, content}} objects, got {messages!r:.80}")
    out: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise BackendError(f"messages[{i}] must be an object with 'role' and 'content', got {msg!r:.80}")
        role, content = msg.get("role"), msg.get("content")
        if role not in _ROLES:
            raise BackendError(f"messages[{i}].role = {role!r}; allowed: {', '.join(_ROLES)}")
        if not isinstance(content, str):
            raise BackendError(f"messages[{i}].content must be a string, got {content!r:.80}")
        out.append({"role": role, "content": content})
    return out


def check_context(prompt_tokens: int, context_window: int, model: str) -> None:
    """Raise BackendError naming both counts when a prompt leaves no room to decode."""
    if prompt_tokens >= context_window:
        raise BackendError(
            f"prompt has {prompt_tokens} tokens, but model {model!r} has a context window of "
            f"{context_window} tokens (at most {context_window - 1} prompt tokens leave room to decode)"
        )


class GenerationStream(ABC):
    """A generation read piece by piece: iterate for text pieces, then read :attr:`result`.

    Subclasses implement ``__iter__`` and set ``self._result`` when the generation ends;
    reading :attr:`result` first drains the stream.
    """

    _result: Generation | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[str]:
        """Yield text pieces; set ``self._result`` at the end."""

    @property
    def result(self) -> Generation:
        if self._result is None:
            for _ in self:
                pass
        assert self._result is not None
        return self._result
