"""The tiny trainable GPT: shapes, KV caching, seeded training, checkpoints, backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tenfold.errors import AssetError, ConfigError
from tenfold.llm import CharTokenizer, GPTConfig, SamplingParams, TinyGPT, TinyGPTBackend, TrainConfig, train_tiny_gpt
from tenfold.llm.tiny_gpt import load_checkpoint, save_checkpoint
from tests.llm._shared import TINY_CORPUS, tiny_trained, torch_threads

SMALL = GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"n_head.*must divide n_embd = 10"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(ConfigError, match="dropout"):
        GPTConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0)


def test_char_tokenizer_round_trips_its_alphabet() -> None:
    tok = CharTokenizer.from_text("abc ab")
    assert tok.vocab_size == 2 + 4  # <eos>, <unk>, ' ', a, b, c
    assert tok.encode("cab z") == [5, 3, 4, 2, 1]
    assert tok.decode(tok.encode("cab a")) == "cab a"
    assert tok.decode([0, 3]) == "a"  # specials are skipped


def test_forward_shapes_and_block_size_limit() -> None:
    model = TinyGPT(SMALL, seed=0)
    logits, kv = model(torch.zeros(3, 7, dtype=torch.long))
    assert logits.shape == (3, 7, 20)
    assert len(kv) == 2
    assert kv[0][0].shape == (3, 2, 7, 8)
    with pytest.raises(ConfigError, match="block_size 32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_kv_cached_forward_matches_the_full_forward() -> None:
    model = TinyGPT(SMALL, seed=1).eval()
    ids = torch.randint(0, 20, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, _ = model(ids)
        head, kv = model(ids[:, :5])
        mid, kv = model(ids[:, 5:9], kv)
        tail, _ = model(ids[:, 9:], kv)
    torch.testing.assert_close(torch.cat([head, mid, tail], dim=1), full, atol=1e-5, rtol=1e-5)


def test_seeded_training_is_deterministic_and_learns() -> None:
    tok = CharTokenizer.from_text(TINY_CORPUS)
    data = tok.encode(TINY_CORPUS)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32)
    runs = []
    for _ in range(2):
        model = TinyGPT(cfg, seed=3)
        with torch_threads(1):
            runs.append((train_tiny_gpt(model, data, TrainConfig(steps=30, batch_size=4, seq_len=32, seed=3)), model))
    (loss_a, model_a), (loss_b, model_b) = runs
    assert loss_a == loss_b
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert loss_a[-1] < loss_a[0] - 0.5


def test_training_needs_enough_data() -> None:
    with pytest.raises(ConfigError, match="more than seq_len"):
        train_tiny_gpt(TinyGPT(SMALL), [1, 2, 3], TrainConfig(seq_len=8))


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model, tok = tiny_trained()
    path = save_checkpoint(tmp_path / "ckpt", model, tok, {"seed": 0, "steps": 60})
    _, tok2, meta = load_checkpoint(path)
    assert meta == {"seed": 0, "steps": 60}
    assert tok2.itos == tok.itos
    a = TinyGPTBackend(model, tok).complete("Question: what is 2 plus", SamplingParams(max_tokens=12))
    b = TinyGPTBackend.from_checkpoint(path).complete("Question: what is 2 plus", SamplingParams(max_tokens=12))
    assert a.token_ids == b.token_ids
    with pytest.raises(AssetError, match="not a tiny-GPT checkpoint"):
        load_checkpoint(tmp_path)


def test_backend_prefix_reuse_keeps_greedy_output() -> None:
    model, tok = tiny_trained()
    prompt = "Question: what is 3 plus 4? Answer: 7.\nQuestion: what is 5 plus"
    cold = TinyGPTBackend(model, tok, prefix_cache_entries=0).complete(prompt, SamplingParams(max_tokens=15))
    warm_backend = TinyGPTBackend(model, tok)
    warm_backend.complete(prompt[:40], SamplingParams(max_tokens=1))
    warm = warm_backend.complete(prompt, SamplingParams(max_tokens=15))
    assert warm.token_ids == cold.token_ids
    assert warm.usage.cached_tokens == 40
    assert warm.usage.prefill_tokens == len(prompt) - 40


def test_backend_chat_renders_chatml_like_turns() -> None:
    model, tok = tiny_trained()
    backend = TinyGPTBackend(model, tok)
    text = backend.render_chat([{"role": "user", "content": "hi"}])
    assert text == "<|user|>\nhi\n<|assistant|>\n"
    gen = backend.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=3))
    assert gen.usage.prompt_tokens == len(text)


def test_backend_generation_prompt_can_open_thinking_and_keeps_earlier_turns() -> None:
    model, tok = tiny_trained()
    backend = TinyGPTBackend(model, tok, generation_prompt="<|assistant|>\n<think>")
    assert backend.render_chat([{"role": "user", "content": "hi"}]) == "<|user|>\nhi\n<|assistant|>\n<think>"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>a\n\nb\n\n"}]
    text = backend.render_chat(turns, add_generation_prompt=False, continue_final_message=True)
    assert text == "<|user|>\nhi\n<|assistant|>\n<think>a\n\nb\n\n"
