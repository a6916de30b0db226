"""The shared decode loop and prefix KV cache, on a toy step model whose 'KV' is the token list."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.llm import SamplingParams
from tenfold.llm.decoding import DecodeStream, PrefixKVCache

VOCAB = 12
EOS = 0


class ToyModel:
    """Logits are a fixed function of the whole sequence so far; its cache is that sequence."""

    eos_ids = frozenset({EOS})

    def __init__(self) -> None:
        self.computed = 0  # tokens run through forward, i.e. prefill + decode work

    def forward(self, ids: Sequence[int], cache: list[int] | None) -> tuple[torch.Tensor, list[int]]:
        seq = [*(cache or []), *ids]
        self.computed += len(ids)
        gen = torch.Generator().manual_seed(hash(tuple(seq)) % (2**31))
        logits = torch.randn(VOCAB, generator=gen)
        logits[EOS] -= 3.0  # end rarely
        return logits, seq

    def crop(self, cache: list[int], n: int) -> list[int]:
        return list(cache[:n])

    def decode(self, ids: Sequence[int]) -> str:
        return "".join("abcdefghijkl"[i] for i in ids if i != EOS)

    def token_text(self, token_id: int) -> str:
        return "abcdefghijkl"[token_id]


def run(model: ToyModel, prompt: list[int], params: SamplingParams, cache: PrefixKVCache[list[int]] | None,
        ) -> DecodeStream[list[int]]:
    return DecodeStream(model, prompt, params, context_window=64, model_name="toy", prefix_cache=cache)


prompts = st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(st.lists(prompts, min_size=1, max_size=5), st.integers(1, 8))
def test_prefix_cache_never_changes_the_output_and_counts_the_longest_shared_prefix(
    history: list[list[int]], max_tokens: int
) -> None:
    params = SamplingParams(max_tokens=max_tokens)
    cold, warm = ToyModel(), ToyModel()
    cache: PrefixKVCache[list[int]] = PrefixKVCache(max_entries=8)
    seen: list[list[int]] = []
    for prompt in history:
        a = run(cold, prompt, params, None).result
        b = run(warm, prompt, params, cache).result
        assert a.token_ids == b.token_ids
        assert a.text == b.text
        assert a.usage.cached_tokens == 0
        best = 0
        for old in seen:
            n = 0
            while n < min(len(old), len(prompt) - 1) and old[n] == prompt[n]:
                n += 1
            best = max(best, n)
        assert b.usage.cached_tokens == best
        assert b.usage.prefill_tokens == len(prompt) - best
        assert b.token_ids is not None
        seen.append(prompt + list(b.token_ids[:-1]) if b.finish_reason == "length" else prompt + list(b.token_ids))
    assert warm.computed <= cold.computed


@settings(max_examples=30, deadline=None)
@given(prompts, st.lists(st.text("abcdefghijkl", min_size=1, max_size=3), max_size=2), st.integers(0, 3))
def test_streamed_pieces_join_to_the_text_and_never_hold_a_stop_string(
    prompt: list[int], stops: list[str], seed: int
) -> None:
    params = SamplingParams(max_tokens=20, temperature=1.0, seed=seed, stop=tuple(stops))
    stream = run(ToyModel(), prompt, params, None)
    pieces = list(stream)
    result = stream.result
    assert "".join(pieces) == result.text
    assert not any(s in result.text for s in stops)
    full = run(ToyModel(), prompt, SamplingParams(max_tokens=20, temperature=1.0, seed=seed), None).result
    assert full.text.startswith(result.text)
    if result.finish_reason == "stop" and stops and len(full.text) > len(result.text):
        assert any(full.text[len(result.text):].startswith(s) for s in stops)


def test_the_lru_keeps_the_most_recent_entries_and_drops_extended_ones() -> None:
    model = ToyModel()
    cache: PrefixKVCache[list[int]] = PrefixKVCache(max_entries=2)
    cache.store([1, 2], [1, 2])
    cache.store([1, 2, 3], [1, 2, 3])  # extends [1, 2], which is dropped
    assert len(cache) == 1
    cache.store([4], [4])
    cache.store([5], [5])  # evicts the oldest, [1, 2, 3]
    assert cache.lookup([1, 2, 3, 9], model) == (0, None)
    assert cache.lookup([5, 7], model) == (1, [5])
    assert cache.usage == 1.0
