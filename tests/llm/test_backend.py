"""The protocol module: SamplingParams validation, Usage arithmetic, message and context checks."""

from __future__ import annotations

import pytest

from tenfold.errors import BackendError, ConfigError
from tenfold.llm import SamplingParams, Usage
from tenfold.llm.backend import check_context, check_messages


def test_sampling_params_defaults_are_greedy() -> None:
    p = SamplingParams()
    assert (p.max_tokens, p.temperature, p.top_p, p.seed, p.stop, p.top_logprobs) == (64, 0.0, 1.0, None, (), 0)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("max_tokens", 0, "must be in (0, inf]"),
        ("temperature", -0.1, "must be in [0.0, inf]"),
        ("top_p", 0.0, "must be in (0.0, 1.0]"),
        ("top_p", 1.5, "must be in (0.0, 1.0]"),
        ("top_logprobs", 21, "must be in [0, 20]"),
        ("stop", ("",), "stop strings must be non-empty"),
    ],
)
def test_sampling_params_reject_bad_values(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        SamplingParams(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.allowed == allowed


def test_sampling_params_round_trip_through_dict() -> None:
    p = SamplingParams(max_tokens=5, temperature=0.7, seed=3, stop=("\n\n",), top_logprobs=10)
    assert SamplingParams.from_dict(p.to_dict()) == p


def test_usage_adds_and_counts_prompt_tokens() -> None:
    total = Usage(10, 30, 5, 0.5) + Usage(2, 0, 1, 0.25)
    assert total == Usage(12, 30, 6, 0.75)
    assert total.prompt_tokens == 42


def test_check_messages_names_the_bad_turn() -> None:
    assert check_messages([{"role": "user", "content": "hi"}]) == [{"role": "user", "content": "hi"}]
    with pytest.raises(BackendError, match=r"messages\[1\]\.role = 'bot'; allowed: system, user, assistant"):
        check_messages([{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}])
    with pytest.raises(BackendError, match=r"messages\[0\]\.content must be a string"):
        check_messages([{"role": "user", "content": 3}])  # type: ignore[dict-item]
    with pytest.raises(BackendError, match="non-empty list"):
        check_messages([])
    with pytest.raises(BackendError, match="non-empty list"):
        check_messages("hello")  # type: ignore[arg-type]


def test_check_context_names_both_counts() -> None:
    check_context(99, 100, "m")
    with pytest.raises(BackendError) as info:
        check_context(150, 100, "m")
    assert str(info.value) == (
        "prompt has 150 tokens, but model 'm' has a context window of 100 tokens "
        "(at most 99 prompt tokens leave room to decode)"
    )
