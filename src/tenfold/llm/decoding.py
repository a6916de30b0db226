"""The decode loop shared by the in-process backends, and their prefix KV cache.

Imported only by torch code (``transformers_backend``, ``tiny_gpt``), so it may import
torch at module level. A model is reached through :class:`StepModel`: one forward over new
token ids given an optional KV cache, and a way to copy a cache cut to its first ``n``
tokens. :class:`DecodeStream` runs prefill, then one decode step per token, checks stop
strings on the decoded text, and yields the text as it becomes final, so the server can
stream real tokens. :class:`PrefixKVCache` keeps the KV of recent sequences keyed by their
token ids; a new prompt reuses the longest common prefix and prefills only the rest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import torch

from tenfold.errors import BackendError

from .backend import (
    FinishReason,
    Generation,
    GenerationStream,
    NextToken,
    SamplingParams,
    TokenLogprob,
    Usage,
    check_context,
)

__all__ = ["DecodeStream", "PrefixKVCache", "StepModel", "next_token", "top_k_logprobs"]

C = TypeVar("C")


class StepModel(Protocol[C]):
    """The few operations the decode loop needs from a model."""

    eos_ids: frozenset[int]

    def forward(self, ids: Sequence[int], cache: C | None) -> tuple[torch.Tensor, C]:
        """Run ``ids`` after ``cache``; return the last position's logits ``(V,)`` and the grown cache."""
        ...

    def crop(self, cache: C, n: int) -> C:
        """A copy of ``cache`` holding only its first ``n`` tokens (the original is not changed)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens skipped)."""
        ...

    def token_text(self, token_id: int) -> str:
        """The text of one token, as logprob entries show it."""
        ...


@dataclass
class _Entry(Generic[C]):
    ids: tuple[int, ...]
    cache: C


class PrefixKVCache(Generic[C]):
    """LRU of past KV keyed by the token ids it covers.

    NOTE: lookups copy the matched cache (cut to the common prefix) because decoding grows a
    cache in place; the cost is one copy of the prefix's KV (SmolLM2: 46 KB per token).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, ...], _Entry[C]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def usage(self) -> float:
        """Filled entries over capacity, 0..1 (0 when the cache is off)."""
        return len(self._entries) / self.max_entries if self.max_entries > 0 else 0.0

    def lookup(self, ids: Sequence[int], model: StepModel[C]) -> tuple[int, C | None]:
        """Longest reusable prefix of ``ids``: (its length, a private copy of its KV) or (0, None).

        At least the last prompt token is always recomputed, since its logits start decoding.
        """
        best_len, best_key = 0, None
        limit = len(ids) - 1
        for key in self._entries:
            n = 0
            for a, b in zip(key, ids[:limit], strict=False):
                if a != b:
                    break
                n += 1
            if n > best_len:
                best_len, best_key = n, key
        if best_key is None:
            return 0, None
        entry = self._entries[best_key]
        self._entries.move_to_end(best_key)
        return best_len, model.crop(entry.cache, best_len)

    def store(self, ids: Sequence[int], cache: C) -> None:
        """Keep ``cache`` (covering exactly ``ids``); entries it extends are dropped as redundant."""
        if self.max_entries <= 0 or not ids:
            return
        key = tuple(ids)
        for old in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            del self._entries[old]
        self._entries[key] = _Entry(key, cache)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def top_k_logprobs(logits: torch.Tensor, k: int, model: StepModel[C]) -> tuple[TokenLogprob, ...]:
    """The ``k`` most likely next tokens under raw ``logits`` ``(V,)``, best first."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (V,)
    values, indices = torch.topk(logp, min(k, logp.shape[-1]))  # (k,), (k,)
    return tuple(
        TokenLogprob(model.token_text(int(i)), float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)
    )


def next_token(
    model: StepModel[C],
    ids: Sequence[int],
    k: int,
    *,
    context_window: int,
    model_name: str,
    prefix_cache: PrefixKVCache[C] | None,
) -> NextToken:
    """Top-``k`` next-token logprobs after ``ids``: one prefill (reusing a cached prefix), no decode."""
    if not ids:
        raise BackendError("the prompt is empty: at least one token is needed to score a next token")
    check_context(len(ids), context_window, model_name)
    start = time.perf_counter()
    cached, cache = (0, None) if prefix_cache is None else prefix_cache.lookup(ids, model)
    with torch.inference_mode():
        logits, cache = model.forward(list(ids)[cached:], cache)  # (V,)
    if prefix_cache is not None:
        prefix_cache.store(ids, cache)
    top = top_k_logprobs(logits, k, model)
    return NextToken(top, Usage(len(ids) - cached, cached, 0, time.perf_counter() - start))


def _pick(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    if params.temperature == 0.0 or gen is None:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)  # (V,)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)  # (V,), (V,)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass strictly above each entry
        sorted_p[before >= params.top_p] = 0.0  # keeps the smallest set reaching top_p
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


class DecodeStream(GenerationStream, Generic[C]):
    """One generation: iterate for text pieces as they become final; then read :attr:`result`."""

    def __init__(
        self,
        model: StepModel[C],
        prompt_ids: Sequence[int],
        params: SamplingParams,
        *,
        context_window: int,
        model_name: str,
        prefix_cache: PrefixKVCache[C] | None,
    ) -> None:
        if not prompt_ids:
            raise BackendError("the prompt is empty: at least one token is needed to start decoding")
        check_context(len(prompt_ids), context_window, model_name)
        self._model = model
        self._ids = list(prompt_ids)
        self._params = params
        self._window = context_window
        self._prefix_cache = prefix_cache
        self._result: Generation | None = None

    @property
    def prompt_tokens(self) -> int:
        """Tokens in the prompt (known before decoding starts)."""
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        if self._result is not None:
            return
        start = time.perf_counter()
        model, params, prompt = self._model, self._params, self._ids
        cached, cache = (0, None) if self._prefix_cache is None else self._prefix_cache.lookup(prompt, model)
        gen: torch.Generator | None = None
        if params.temperature > 0:
            gen = torch.Generator()
            if params.seed is None:
                gen.seed()  # unseeded sampling differs from call to call, as on a server
            else:
                gen.manual_seed(params.seed)
        budget = min(params.max_tokens, self._window - len(prompt))
        hold = max((len(s) for s in params.stop), default=1) - 1
        out: list[int] = []
        chosen: list[TokenLogprob] = []
        tops: list[tuple[TokenLogprob, ...]] = []
        want_chosen = params.logprobs or params.top_logprobs > 0
        emitted = 0
        text = ""
        finish: FinishReason = "length"
        # NOTE: inference mode wraps each forward only, never a yield: the consumer's code (or
        # another server thread) runs between pieces and must not inherit it.
        with torch.inference_mode():
            logits, cache = model.forward(prompt[cached:], cache)  # prefill
        cache_ids = list(prompt)
        while len(out) < budget:
            token = _pick(logits, params, gen)
            if token in model.eos_ids:  # not counted as a decoded token, like a stop string
                finish = "stop"
                break
            if want_chosen:
                logp = torch.log_softmax(logits.float(), dim=-1)  # (V,)
                chosen.append(TokenLogprob(model.token_text(token), float(logp[token])))
            if params.top_logprobs:
                tops.append(top_k_logprobs(logits, params.top_logprobs, model))
            out.append(token)
            text = model.decode(out)
            cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                break
            safe = len(text) - hold
            while safe > emitted and text[safe - 1] == "\ufffd":  # an incomplete UTF-8 sequence
                safe -= 1
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
            if len(out) < budget:
                with torch.inference_mode():
                    logits, cache = model.forward([token], cache)  # decode step
                cache_ids.append(token)
        if text[emitted:]:
            yield text[emitted:]
        if self._prefix_cache is not None and cache is not None:
            self._prefix_cache.store(cache_ids, cache)
        usage = Usage(len(prompt) - cached, cached, len(out), time.perf_counter() - start)
        self._result = Generation(text, finish, usage, tuple(out), tuple(chosen), tuple(tops))
