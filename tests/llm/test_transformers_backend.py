"""TransformersBackend on the real SmolLM2-135M-Instruct (loaded once per session)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenfold.errors import BackendError, ConfigError
from tenfold.llm import SamplingParams, TransformersBackend, TransformersConfig
from tests.llm._shared import smollm2_backend, smollm2_model

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
DOC = (
    "The Seine is a river in northern France. It flows through Paris and into the English Channel. "
    "Its drainage basin covers much of the Paris Basin, and many bridges cross it in the city. "
) * 3


@pytest.fixture
def smol() -> Iterator[TransformersBackend]:
    backend = smollm2_backend()
    backend.clear_prefix_cache()
    yield backend
    backend.clear_prefix_cache()


def test_greedy_chat_answers_paris(smol: TransformersBackend) -> None:
    gen = smol.chat(QUESTION, SamplingParams(max_tokens=12))
    assert "Paris" in gen.text
    assert gen.finish_reason == "stop"  # the model ended its turn with <|im_end|>
    assert gen.token_ids is not None
    assert len(gen.token_ids) == gen.usage.decode_tokens


def test_chat_template_is_applied(smol: TransformersBackend) -> None:
    text = smol.render_chat(QUESTION)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n"
                         "<|im_start|>assistant\n")
    cont = smol.render_chat([*QUESTION, {"role": "assistant", "content": "The answer is"}],
                            add_generation_prompt=False, continue_final_message=True)
    assert cont.endswith("<|im_start|>assistant\nThe answer is")


def test_prefix_reuse_gives_the_same_greedy_text_with_fewer_prefill_tokens(smol: TransformersBackend) -> None:
    params = SamplingParams(max_tokens=12)
    prompt = DOC + "Question: which river flows through Paris? Answer:"
    without = smol.complete(prompt, params)
    assert without.usage.cached_tokens == 0
    smol.clear_prefix_cache()
    smol.complete(DOC + "Question: how long is the river?", SamplingParams(max_tokens=1))  # caches DOC's KV
    with_cache = smol.complete(prompt, params)
    assert with_cache.token_ids == without.token_ids
    assert with_cache.text == without.text
    assert with_cache.usage.cached_tokens >= smol.count_tokens(DOC) - 2
    assert with_cache.usage.prefill_tokens < without.usage.prefill_tokens
    assert with_cache.usage.prompt_tokens == without.usage.prompt_tokens


def test_multi_turn_chat_reuses_the_previous_turn(smol: TransformersBackend) -> None:
    first = smol.chat(QUESTION, SamplingParams(max_tokens=8))
    turns = [*QUESTION, {"role": "assistant", "content": first.text}, {"role": "user", "content": "And Italy?"}]
    second = smol.chat(turns, SamplingParams(max_tokens=8))
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    assert smol.cached_sequences() >= 1


def test_prefix_cache_can_be_turned_off() -> None:
    backend = smollm2_backend()
    config = backend.config
    try:
        backend.config = TransformersConfig(prefix_cache_entries=0)
        assert not backend.supports_prefix_cache
        backend.complete("The Seine is a river in northern France.", SamplingParams(max_tokens=1))
        again = backend.complete("The Seine is a river in northern France.", SamplingParams(max_tokens=1))
        assert again.usage.cached_tokens == 0
    finally:
        backend.config = config


def test_seeded_sampling_is_reproducible_and_seed_dependent(smol: TransformersBackend) -> None:
    def sample(seed: int) -> str:
        return smol.complete("My favourite food is", SamplingParams(max_tokens=4, temperature=1.2, seed=seed)).text

    assert sample(1) == sample(1)
    assert len({sample(s) for s in (1, 2, 3)}) >= 2


def test_a_tiny_top_p_samples_the_greedy_token(smol: TransformersBackend) -> None:
    greedy = smol.complete("The sky is", SamplingParams(max_tokens=5))
    nucleus = smol.complete("The sky is", SamplingParams(max_tokens=5, temperature=1.0, top_p=1e-6, seed=5))
    assert nucleus.text == greedy.text


def test_stream_pieces_join_to_the_result(smol: TransformersBackend) -> None:
    stream = smol.stream_chat(QUESTION, SamplingParams(max_tokens=8, stop=("Paris",)))
    pieces = list(stream)
    assert "".join(pieces) == stream.result.text
    assert "Paris" not in stream.result.text
    assert stream.result.finish_reason == "stop"


def test_next_token_judge_style_returns_ten_digit_candidates(smol: TransformersBackend) -> None:
    msgs = [{"role": "user", "content": "Rate 2 + 2 = 4 for correctness from 0 to 9. Reply with one digit."},
            {"role": "assistant", "content": "My score is: "}]
    nt = smol.next_token(msgs, k=10, add_generation_prompt=False, continue_final_message=True)
    assert len(nt.top) == 10
    assert any(t.token.strip().isdigit() for t in nt.top)
    again = smol.next_token(msgs, k=10, add_generation_prompt=False, continue_final_message=True)
    assert again.usage.cached_tokens == nt.usage.prompt_tokens - 1
    assert [t.token for t in again.top] == [t.token for t in nt.top]


def test_a_prompt_over_the_context_window_names_both_counts(smol: TransformersBackend) -> None:
    text = "word " * 9000
    n = len(smol.tokenizer(text).input_ids)
    with pytest.raises(BackendError, match=f"prompt has {n} tokens, but model 'smollm2' has a context window of 8192"):
        smol.complete(text)


def test_max_tokens_is_clamped_to_the_window(smol: TransformersBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smol, "_window", 24)  # a small window instead of prefilling 8k tokens on CPU
    text = "word " * 20
    gen = smol.complete(text, SamplingParams(max_tokens=50))
    assert gen.usage.prompt_tokens + gen.usage.decode_tokens == 24
    assert gen.finish_reason == "length"


def test_a_base_model_refuses_chat(smol: TransformersBackend) -> None:
    info = smol.model_info
    try:
        smol.model_info = dataclasses.replace(info, chat=False)
        with pytest.raises(BackendError, match="has no chat template"):
            smol.chat(QUESTION)
    finally:
        smol.model_info = info


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="threads"):
        TransformersConfig(threads=0)
    with pytest.raises(ConfigError, match="dtype"):
        TransformersConfig.from_dict({"dtype": "float8"})


def _tiny_gemma3(root: Path) -> Path:
    """A random 2-layer Gemma3 (one sliding layer, window 8) with SmolLM2's tokenizer, in ``root``."""
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    for f in smollm2_model().hf_dir.iterdir():
        if "token" in f.name:
            shutil.copy(f, root / f.name)
    cfg = Gemma3TextConfig(vocab_size=49152, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=8,
                           max_position_embeddings=256, layer_types=["sliding_attention", "full_attention"])
    torch.manual_seed(0)
    Gemma3ForCausalLM(cfg).save_pretrained(root)
    return root


def test_a_sliding_window_model_turns_prefix_reuse_off_and_matches_a_cold_run(tmp_path: Path) -> None:
    gemma = TransformersBackend(_tiny_gemma3(tmp_path))
    assert gemma.sliding_window == 8
    assert not gemma.supports_prefix_cache
    doc = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    params = SamplingParams(max_tokens=4, logprobs=True)
    gemma.complete(doc + "alpha beta", params)
    second = gemma.complete(doc + "gamma delta", params)  # crashed in DynamicCache.crop before
    cold_backend = TransformersBackend(tmp_path, TransformersConfig(prefix_cache_entries=0))
    cold = cold_backend.complete(doc + "gamma delta", params)
    assert second.usage.cached_tokens == 0
    assert second.token_ids == cold.token_ids
    assert [t.logprob for t in second.token_logprobs] == pytest.approx([t.logprob for t in cold.token_logprobs])
    assert gemma.cached_sequences() == 0


def test_a_cache_runtime_error_is_a_backend_error() -> None:
    from tenfold.llm.transformers_backend import _HFStep

    class Unshrinkable:
        def get_seq_length(self) -> int:
            return 20

        def crop(self, _n: int) -> None:
            raise RuntimeError("sliding window cache cannot be cropped")

    step = _HFStep.__new__(_HFStep)
    with pytest.raises(BackendError, match="cannot reuse a cached prefix of 12 tokens: sliding window cache"):
        step.crop(Unshrinkable(), 12)


def test_sliding_window_detection() -> None:
    from types import SimpleNamespace

    from tenfold.llm.transformers_backend import _sliding_window

    assert _sliding_window(SimpleNamespace()) is None  # llama: no sliding_window at all
    assert _sliding_window(SimpleNamespace(sliding_window=4096, use_sliding_window=False)) is None  # qwen2
    assert _sliding_window(SimpleNamespace(sliding_window=4096, layer_types=["full_attention"] * 2)) is None
    gemma3 = SimpleNamespace(sliding_window=512, layer_types=["sliding_attention", "full_attention"])
    assert _sliding_window(gemma3) == 512
    assert _sliding_window(SimpleNamespace(sliding_window=4096)) == 4096  # mistral
