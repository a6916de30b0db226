"""Speculative decoding on two tiny GPTs sharing a tokenizer: greedy equality and the exact
sampling distribution. Untrained weights suffice here: these are properties of the verifier
(they hold for any pair of models), not claims about quality."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tenfold.errors import ConfigError  # noqa: E402
from tenfold.llm import CharTokenizer, GPTConfig, SamplingParams, TinyGPT, TinyGPTBackend  # noqa: E402
from tenfold.systems.specreason.errors import TokenizerMismatchError  # noqa: E402
from tenfold.systems.specreason.speculative import SpeculativeBackend, _warp  # noqa: E402

ALPHABET = "0123456789+-*=. \n"


def _pair(seed_t: int = 0, seed_d: int = 1) -> tuple[TinyGPT, TinyGPT, CharTokenizer]:
    torch.set_num_threads(1)
    tok = CharTokenizer(ALPHABET)
    target = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=128, n_layer=2, n_head=2, n_embd=32), seed=seed_t)
    draft = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=128, n_layer=1, n_head=2, n_embd=16), seed=seed_d)
    with torch.no_grad():  # sharpen the untrained target so greedy text is not a single repeated token
        target.tok.weight.mul_(40.0)
    return target, draft, tok


@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_speculative_equals_greedy_target(k: int) -> None:
    target, draft, tok = _pair()
    plain = TinyGPTBackend(target, tok, prefix_cache_entries=0)
    sd = SpeculativeBackend(target, draft, tok, k=k)
    for prompt in ["12+3=", "7*8=15.\n\n", "9"]:
        params = SamplingParams(max_tokens=40)
        want = plain.complete(prompt, params)
        got = sd.complete(prompt, params)
        assert got.text == want.text and got.token_ids == want.token_ids
        assert got.usage.decode_tokens == want.usage.decode_tokens
    assert sd.proposed > 0


def test_greedy_self_draft_accepts_everything_and_stops_on_strings() -> None:
    target, _, tok = _pair()
    sd = SpeculativeBackend(target, target, tok, k=4)
    plain = TinyGPTBackend(target, tok, prefix_cache_entries=0)
    got = sd.complete("3+4=", SamplingParams(max_tokens=30))
    assert got.text == plain.complete("3+4=", SamplingParams(max_tokens=30)).text
    assert sd.accepted == sd.proposed
    stop = got.text[5:7]
    cut = sd.complete("3+4=", SamplingParams(max_tokens=30, stop=(stop,)))
    assert cut.text == plain.complete("3+4=", SamplingParams(max_tokens=30, stop=(stop,))).text


def test_sampled_first_token_follows_the_target_distribution() -> None:
    target, draft, tok = _pair()
    target_soft = TinyGPT(target.cfg, seed=0)  # an unsharpened target: a spread-out distribution
    sd = SpeculativeBackend(target_soft, draft, tok, k=1)
    prompt = "5+5="
    ids = torch.tensor([tok.encode(prompt)])
    with torch.no_grad():
        p = _warp(target_soft(ids)[0][0, -1], SamplingParams(temperature=1.0))
    # Force the draft-propose/verify path on the first token: max_tokens=2 leaves room for one proposal.
    n = 2000
    counts = torch.zeros(tok.vocab_size)
    for seed in range(n):
        g = sd.complete(prompt, SamplingParams(max_tokens=2, temperature=1.0, seed=seed))
        assert g.token_ids is not None
        counts[g.token_ids[0] if g.token_ids else tok.eos_id] += 1  # no token: end of sequence first
    expected = p * n
    mask = expected >= 5
    chi2 = float((((counts - expected) ** 2) / expected)[mask].sum())
    df = int(mask.sum()) - 1
    # p > 0.01 for chi-square: the critical value at 0.01 is below df + 3.1 * sqrt(2 df) + 6 for df <= 30.
    assert chi2 < df + 3.1 * (2 * df) ** 0.5 + 6, (chi2, df)


def test_different_vocabularies_are_refused() -> None:
    target, _, tok = _pair()
    other = TinyGPT(GPTConfig(vocab_size=tok.vocab_size + 1, block_size=64, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(TokenizerMismatchError, match="vocab_size"):
        SpeculativeBackend(target, other, tok)
    assert issubclass(TokenizerMismatchError, ConfigError)


def test_a_draft_tokenizer_with_other_tokens_is_refused() -> None:
    target, draft, tok = _pair()
    alphabet = "".join(tok.itos[2:])
    other = CharTokenizer(alphabet[:-1] + "\u00e9")  # same size, one character replaced
    assert other.vocab_size == tok.vocab_size
    SpeculativeBackend(target, draft, tok, draft_tokenizer=CharTokenizer(alphabet))  # same tokens: accepted
    with pytest.raises(TokenizerMismatchError, match=r"draft_tokenizer token \d+"):
        SpeculativeBackend(target, draft, tok, draft_tokenizer=other)


def test_specreason_with_speculative_base_equals_plain_base_when_greedy() -> None:
    from tenfold.systems.specreason import SpecReason, SpecReasonConfig

    tok = CharTokenizer(ALPHABET + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,:;()<>|/\\{}?!_'\u2014*")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=1024, n_layer=1, n_head=2, n_embd=16)
    target, draft = TinyGPT(cfg, seed=3), TinyGPT(cfg, seed=4)
    small = TinyGPTBackend(draft, tok)
    config = SpecReasonConfig(temperature=0.0, token_budget=24, step_max_tokens=8, threshold=1.0)
    plain = SpecReason(small, TinyGPTBackend(target, tok), config).solve("Start with 3. Add 4. What is the result?")
    sd = SpeculativeBackend(target, draft, tok, k=3)
    fast = SpecReason(TinyGPTBackend(draft, tok), sd, config).solve("Start with 3. Add 4. What is the result?")
    assert [(s.text, s.source, s.score) for s in fast.steps] == [(s.text, s.source, s.score) for s in plain.steps]
    assert fast.stop_reason == plain.stop_reason and fast.tokens == plain.tokens
    assert any(s.source == "base" for s in plain.steps)  # base steps went through speculative decoding


def test_prefix_reuse_across_growing_prompts_keeps_greedy_equality() -> None:
    """A SpecReason solve calls with growing prompts: the reused KV must give the same tokens."""
    target, draft, tok = _pair()
    plain = TinyGPTBackend(target, tok, prefix_cache_entries=0)
    sd = SpeculativeBackend(target, draft, tok, k=3)
    prompt = "12+3="
    for _ in range(4):
        params = SamplingParams(max_tokens=12, stop=("\n\n",))
        got, want = sd.complete(prompt, params), plain.complete(prompt, params)
        assert got.text == want.text
        prompt = prompt + got.text + "\n\n"
    assert got.usage.cached_tokens > 0
    no_reuse = SpeculativeBackend(target, draft, tok, k=3, prefix_cache=False)
    assert no_reuse.complete(prompt, SamplingParams(max_tokens=12)).usage.cached_tokens == 0


def test_the_loop_counts_a_speculative_base_against_its_window() -> None:
    """SpeculativeBackend renders with the target's template, so the loop's window guard sees
    its prompts: a judge call that would not fit ends the solve on ``context``."""
    from tenfold.systems.specreason import SpecReason, SpecReasonConfig
    from tenfold.systems.specreason.loop import judge_messages, step_messages
    from tenfold.systems.specreason.prompts import math_prompt

    tok = CharTokenizer(ALPHABET + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,:;()<>|/\\{}?!_'\u2014*")
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=400, n_layer=1, n_head=2, n_embd=16)
    target, draft = TinyGPT(cfg, seed=3), TinyGPT(cfg, seed=4)
    sd, plain = SpeculativeBackend(target, draft, tok, k=3), TinyGPTBackend(target, tok)
    problem = "Start with 3. Add 4. What is the result?"
    messages, flags = step_messages(math_prompt(problem), ["a step"])
    assert sd.render_chat(messages, **flags) == plain.render_chat(messages, **flags)
    first, flags = step_messages(math_prompt(problem), [])
    assert sd.count_tokens(sd.render_chat(first, **flags)) + 8 <= 400  # the first step fits...
    judge = judge_messages(math_prompt(problem), [], "x")
    assert sd.count_tokens(sd.render_chat(judge, add_generation_prompt=False, continue_final_message=True)) > 400
    config = SpecReasonConfig(temperature=0.0, token_budget=24, step_max_tokens=8)
    r = SpecReason(TinyGPTBackend(draft, tok), sd, config).solve(problem)  # ...its judge call does not
    assert (r.stop_reason, r.steps, r.judge_calls) == ("context", [], 0)
    assert r.small_tokens >= 1  # the draft was written, then dropped unjudged
