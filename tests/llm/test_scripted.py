"""The scripted fake: script order, cuts, simulated prefix reuse, accounted (not slept) latency."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenfold.core.clock import SimClock
from tenfold.errors import BackendError
from tenfold.llm import LLMBackend, SamplingParams, ScriptedBackend, ScriptedReply, TokenLogprob, Usage
from tenfold.llm.scripted import fake_tokenize


def test_tokenizer_splits_words_punctuation_and_leading_space() -> None:
    assert fake_tokenize("Hi, you  there!\n") == ["Hi", ",", " you", "  there", "!", "\n"]


@given(st.text())
def test_tokenizer_round_trips_any_text(text: str) -> None:
    assert "".join(fake_tokenize(text)) == text


def test_replies_come_in_order_then_the_script_is_exhausted() -> None:
    fake = ScriptedBackend(["one", "two"])
    assert isinstance(fake, LLMBackend)
    assert fake.complete("a").text == "one"
    assert fake.chat([{"role": "user", "content": "b"}]).text == "two"
    assert fake.remaining == 0
    with pytest.raises(BackendError, match="exhausted after 2 replies"):
        fake.complete("c")


def test_max_tokens_and_stop_strings_cut_the_reply() -> None:
    fake = ScriptedBackend(["The answer is 42.\n\nMore text."] * 2)
    cut = fake.complete("q", SamplingParams(max_tokens=3))
    assert (cut.text, cut.finish_reason, cut.usage.decode_tokens) == ("The answer is", "length", 3)
    stopped = fake.complete("q", SamplingParams(stop=("\n\n",)))
    assert (stopped.text, stopped.finish_reason) == ("The answer is 42.", "stop")


def test_latency_is_accounted_on_a_sim_clock_never_slept() -> None:
    clock = SimClock()
    fake = ScriptedBackend(["a b c", ScriptedReply("x", seconds=30.0)], prefill_s=0.5, decode_s=2.0, clock=clock)
    start = time.perf_counter()
    gen = fake.complete("p q")  # 2 prompt tokens, 3 decoded
    slow = fake.complete("z")
    assert time.perf_counter() - start < 1.0
    assert gen.usage == Usage(prefill_tokens=2, cached_tokens=0, decode_tokens=3, seconds=2 * 0.5 + 3 * 2.0)
    assert slow.usage.seconds == 30.0
    assert clock.now() == 37.0


def test_prefix_reuse_is_simulated_over_earlier_prompts() -> None:
    fake = ScriptedBackend(["ok"] * 3)
    fake.complete("the same long prefix then A")
    again = fake.complete("the same long prefix then B")
    assert (again.usage.cached_tokens, again.usage.prefill_tokens) == (5, 1)
    off = ScriptedBackend(["ok"] * 2, prefix_cache=False)
    off.complete("x y z")
    assert off.complete("x y z w").usage.cached_tokens == 0


def test_calls_record_what_the_caller_sent() -> None:
    fake = ScriptedBackend(["7", ScriptedReply("", top=(TokenLogprob("3", -2.0), TokenLogprob("9", -0.1)))])
    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A: "}]
    fake.chat(msgs, SamplingParams(max_tokens=1), add_generation_prompt=False, continue_final_message=True)
    nt = fake.next_token(msgs, k=1, add_generation_prompt=False, continue_final_message=True)
    assert nt.top == (TokenLogprob("9", -0.1),)
    first = fake.calls[0]
    assert first.kind == "chat"
    assert first.flags == {"add_generation_prompt": False, "continue_final_message": True}
    assert first.prompt == "<|user|>\nQ\n<|assistant|>\nA: "
    assert first.params.max_tokens == 1
    assert fake.calls[1].kind == "next_token"


def test_continue_final_message_needs_an_assistant_turn() -> None:
    fake = ScriptedBackend(["x"])
    with pytest.raises(BackendError, match="role 'assistant'"):
        fake.chat([{"role": "user", "content": "Q"}], continue_final_message=True)


def test_logprobs_are_certain_for_scripted_tokens() -> None:
    gen = ScriptedBackend(["a b"]).complete("p", SamplingParams(top_logprobs=5))
    assert gen.token_logprobs == (TokenLogprob("a", 0.0), TokenLogprob(" b", 0.0))
    assert gen.top_logprobs == ((TokenLogprob("a", 0.0),), (TokenLogprob(" b", 0.0),))
