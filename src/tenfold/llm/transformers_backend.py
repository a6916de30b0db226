"""``TransformersBackend``: a Hugging Face causal LM run in-process on the CPU.

The model comes from :func:`~tenfold.llm.models.resolve_model` (``smollm2``, ``gemma3-270m``,
a local HF directory or a GGUF file). Decoding is the shared loop of
:mod:`tenfold.llm.decoding`: greedy or seeded sampling, stop strings, top-k logprobs, and a
prefix KV cache: each call stores the KV of its sequence, and a later prompt sharing a
prefix prefills only the tokens after it (counted as ``Usage.cached_tokens``).

Chat prompts are rendered with the tokenizer's own chat template (with transformers'
``add_generation_prompt`` and ``continue_final_message``), then tokenized without adding
special tokens again; raw completions are tokenized with the tokenizer's defaults.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tenfold.core.api import api
from tenfold.core.assets import set_hub_offline
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import BackendError

from .backend import Generation, Message, NextToken, SamplingParams, check_messages
from .models import ResolvedModel, resolve_model

if TYPE_CHECKING:
    import torch

    from .decoding import DecodeStream, PrefixKVCache

__all__ = ["TransformersBackend", "TransformersConfig"]


@dataclass(frozen=True)
class TransformersConfig(Config):
    """How a TransformersBackend loads and runs its model."""

    threads: int = 1
    """torch CPU threads (process-wide). On the 2-core target machines, shared with other work,
    1 thread measured 3-4x faster than 2 (prefill and decode); use 2 on an idle machine."""
    prefix_cache_entries: int = 8
    """Sequences whose KV is kept for prefix reuse; 0 turns reuse off."""
    context_window: int | None = None
    """Cap on tokens per sequence; None: the model's ``max_position_embeddings``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Weights and activations dtype; float32 keeps greedy decoding reproducible."""

    def __post_init__(self) -> None:
        check_positive("threads", self.threads)
        check_range("prefix_cache_entries", self.prefix_cache_entries, lo=0)
        if self.context_window is not None:
            check_range("context_window", self.context_window, lo=2)


class _HFStep:
    """The decoding loop's view of a Hugging Face model (a :class:`~tenfold.llm.decoding.StepModel`)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif isinstance(gen_eos, list):
            eos.update(gen_eos)
        self.eos_ids = frozenset(eos)
        # transformers 5.25 renamed the KV-cache argument and output field ``past_key_values``
        # to ``cache`` (the old name warns until 5.40); use whichever this version's forward takes.
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def forward(self, ids: Sequence[int], cache: Any) -> tuple[torch.Tensor, Any]:
        import torch
        from transformers import DynamicCache

        if cache is None:
            cache = DynamicCache(config=self.model.config)
        input_ids = torch.tensor([list(ids)], dtype=torch.long)  # (1, T)
        # logits_to_keep=1: only the last position's logits, not (T, 49k) for the whole prompt.
        try:
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1, **{self._cache_arg: cache})
        except RuntimeError as exc:
            raise BackendError(f"the model's forward pass failed on {len(ids)} tokens: {exc}") from exc
        return out.logits[0, -1], getattr(out, self._cache_arg)  # (V,), cache

    def crop(self, cache: Any, n: int) -> Any:
        copied = copy.deepcopy(cache)
        extra = copied.get_seq_length() - n
        if extra > 0:
            try:
                copied.crop(-extra)  # transformers 5: a negative count removes that many tokens
            except RuntimeError as exc:  # e.g. a sliding-window layer past its window
                raise BackendError(f"cannot reuse a cached prefix of {n} tokens: {exc}") from exc
        return copied

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def token_text(self, token_id: int) -> str:
        return str(self.tokenizer.decode([token_id]))


def _sliding_window(config: Any) -> int | None:
    """The sliding-window size if any attention layer of ``config`` slides, else None."""
    config = getattr(config, "text_config", None) or config
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        slides = any("sliding" in str(t) for t in layer_types)
    else:
        slides = bool(getattr(config, "use_sliding_window", True))
    return int(window) if slides and isinstance(window, int) and window > 0 else None


@api(stability="beta")
class TransformersBackend:
    """An in-process Hugging Face causal LM behind :class:`~tenfold.llm.LLMBackend`."""

    def __init__(
        self,
        model: str | Path | ResolvedModel = "smollm2",
        config: TransformersConfig | None = None,
        *,
        cache_root: Path | None = None,
    ) -> None:
        self.config = config or TransformersConfig()
        self.model_info = model if isinstance(model, ResolvedModel) else resolve_model(model, cache_root)
        set_hub_offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .decoding import PrefixKVCache

        torch.set_num_threads(self.config.threads)
        hf_dir = str(self.model_info.hf_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        dtype = torch.float32 if self.config.dtype == "float32" else torch.bfloat16
        hf_model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=dtype)
        hf_model.eval()  # type: ignore[no-untyped-call]
        self._step = _HFStep(hf_model, self.tokenizer)
        window = int(getattr(hf_model.config, "max_position_embeddings", 2048))
        if self.config.context_window is not None:
            window = min(window, self.config.context_window)
        self._window = window
        self._prefix: PrefixKVCache[Any] = PrefixKVCache(self.config.prefix_cache_entries)
        self.sliding_window = _sliding_window(hf_model.config)
        """The model's attention window when some layer slides (then no prefix reuse), else None."""

    # -- LLMBackend ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model_info.name

    @property
    def context_window(self) -> int:
        return self._window

    @property
    def supports_prefix_cache(self) -> bool:
        # A sliding-window layer's cache keeps only its last window of tokens and cannot be cropped
        # back to a shorter prefix, so prefix reuse is off for such models (gemma3).
        return self.config.prefix_cache_entries > 0 and self.sliding_window is None

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        return self.stream_complete(prompt, params).result

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> Generation:
        return self.stream_chat(
            messages, params, add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message
        ).result

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        from .decoding import next_token

        check_range("k", k, lo=1, hi=100)
        ids = self._encode(prompt) if isinstance(prompt, str) else self._encode_chat(prompt, **chat_flags)
        prefix = self._prefix if self.supports_prefix_cache else None
        return next_token(self._step, ids, k, context_window=self._window, model_name=self.name, prefix_cache=prefix)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    # -- extras -------------------------------------------------------------------------------
    def render_chat(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True, continue_final_message: bool = False
    ) -> str:
        """The prompt text the chat template makes of ``messages``."""
        turns = check_messages(messages)
        if not self.model_info.chat:
            raise BackendError(
                f"model {self.name!r} has no chat template (a base model); use complete() with raw text"
            )
        if continue_final_message and turns[-1]["role"] != "assistant":
            raise BackendError("continue_final_message=True needs the last message to have role 'assistant'")
        if continue_final_message and add_generation_prompt:
            add_generation_prompt = False  # the two contradict; continuing the final turn wins
        return str(
            self.tokenizer.apply_chat_template(
                turns,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
            )
        )

    def stream_complete(self, prompt: str, params: SamplingParams | None = None) -> DecodeStream[Any]:
        """Like :meth:`complete`, but iterable for text pieces as they are decoded."""
        return self._stream(self._encode(prompt), params or SamplingParams())

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> DecodeStream[Any]:
        """Like :meth:`chat`, but iterable for text pieces as they are decoded."""
        ids = self._encode_chat(
            messages, add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message
        )
        return self._stream(ids, params or SamplingParams())

    def clear_prefix_cache(self) -> None:
        """Forget every cached prefix (the next call prefills its whole prompt)."""
        self._prefix.clear()

    def cached_sequences(self) -> int:
        """How many sequences' KV the prefix cache holds."""
        return len(self._prefix)

    def prefix_cache_usage(self) -> float:
        """Filled prefix-cache entries over capacity, 0..1 (reported by the server's /metrics)."""
        return self._prefix.usage

    # -- internals ----------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text).input_ids)

    def _encode_chat(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True, continue_final_message: bool = False
    ) -> list[int]:
        text = self.render_chat(
            messages, add_generation_prompt=add_generation_prompt, continue_final_message=continue_final_message
        )
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _stream(self, ids: list[int], params: SamplingParams) -> DecodeStream[Any]:
        from .decoding import DecodeStream

        return DecodeStream(
            self._step,
            ids,
            params,
            context_window=self._window,
            model_name=self.name,
            prefix_cache=self._prefix if self.supports_prefix_cache else None,
        )
