"""The SpecReason loop over scripted backends: exact accept/reject sequences, requests and tokens."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from tenfold.errors import BackendCapabilityError, BackendError, ConfigError
from tenfold.llm import Message, OpenAIBackend, SamplingParams, ScriptedBackend, ScriptedReply, TokenLogprob, make_app
from tenfold.systems.specreason import Result, SpecReason, SpecReasonConfig, extract_boxed, vanilla
from tenfold.systems.specreason.loop import StopReason, judge_messages, score_tokens, step_messages
from tenfold.systems.specreason.prompts import (
    GPQA_PROMPT,
    GPQA_PROMPT_ARTIFACT,
    JUDGE_INSTRUCTION,
    JUDGE_PREFIX,
    MATH_PROMPT,
    MATH_PROMPT_ARTIFACT,
    gpqa_prompt,
    math_prompt,
)

PROBLEM = "Start with 17. Add 25, multiply by 3, then subtract 40. What is the result?"
S1 = "Add 25: 17 + 25 = 42."  # 9 fake tokens
S2_BAD = "Multiply by 3: 42 * 3 = 127."  # 10
S2 = "Multiply by 3: 42 * 3 = 126."  # 10
S3 = "Subtract 40: 126 - 40 = 86."  # 9
S4 = "The answer is \\boxed{86}."  # 9


def _run(
    small: list[str], base: list[str | ScriptedReply], **cfg: Any
) -> tuple[Result, ScriptedBackend, ScriptedBackend]:
    s, b = ScriptedBackend(small, name="small"), ScriptedBackend(base, name="base")
    result = SpecReason(s, b, SpecReasonConfig(**cfg)).solve(PROBLEM)
    return result, s, b


# -- prompts (spec §2.1, byte for byte) ----------------------------------------------------------
def test_fixed_strings_match_the_spec() -> None:
    assert MATH_PROMPT == (
        "Solve the following math problem efficiently and clearly. Please reason step by step, separate "
        "logical reasoning steps with two newline characters (\\n\\n), and put your final answer within "
        "\\boxed{}.\nProblem: {problem}"
    )
    assert "\u2014only judge" in JUDGE_INSTRUCTION and JUDGE_INSTRUCTION.endswith("Assign a score from 0 to 9.")
    assert JUDGE_PREFIX == "<think>I think the quality score is: "
    assert GPQA_PROMPT.endswith("Problem: {problem}.\nChoices:\n(A) {A}\n(B) {B}\n(C) {C}\n(D) {D}")
    assert math_prompt("1+1?") == MATH_PROMPT.replace("{problem}", "1+1?")
    g = gpqa_prompt("Q {A}", {"A": "a", "B": "b", "C": "c", "D": "d"})
    assert g.endswith("Problem: Q {A}.\nChoices:\n(A) a\n(B) b\n(C) c\n(D) d")
    assert "**Example output:** \\boxed{A}\n\n" in g


def test_artifact_prompts_are_the_raw_indented_literals() -> None:
    # The artifact's prompts are indented triple-quoted literals after str.format: a leading newline,
    # 8-space indents, a trailing space where a sentence breaks, and a closing newline plus the indent.
    pad = " " * 8
    math_lines = ["", pad + "Solve the following math problem efficiently and clearly. Please reason step by step, ",
                  pad + "separate logical reasoning steps with two newline characters (", "",
                  "), and put your final answer within \\boxed{}.", pad + "Problem: {problem}", pad]
    assert "\n".join(math_lines) == MATH_PROMPT_ARTIFACT
    gpqa_lines = ["", pad + "What is the correct answer to the following problem? Please reason step by step. ",
                  pad + "Separate logical reasoning steps with two newline characters (", "", ").",
                  pad + "Put the final answer **strictly** in the format \\boxed{X}, where X is a single letter "
                  "(A, B, C, or D).", "", pad + "**Example output:** \\boxed{A}", "", pad + "Problem: {problem}.",
                  pad + "Choices: ", pad + "(A) {A}", pad + "(B) {B}", pad + "(C) {C}", pad + "(D) {D}", pad]
    assert "\n".join(gpqa_lines) == GPQA_PROMPT_ARTIFACT
    assert math_prompt("1+1?", artifact_compat=True) == MATH_PROMPT_ARTIFACT.replace("{problem}", "1+1?")
    g = gpqa_prompt("Q {A}", {"A": "a (B) {B}", "B": "b", "C": "c", "D": "d"}, artifact_compat=True)
    assert g.endswith("Problem: Q {A}.\n        Choices: \n        (A) a (B) {B}\n        (B) b\n        (C) c"
                      "\n        (D) d\n        ")


def test_artifact_compat_sends_the_raw_prompt_to_both_models() -> None:
    gold = ScriptedBackend([S4], name="base")
    _, small, base = _run([S4], ["9"], artifact_compat=True)
    assert small.calls[0].messages == ({"role": "user", "content": math_prompt(PROBLEM, artifact_compat=True)},)
    assert base.calls[0].messages[0] == {"role": "user", "content": math_prompt(PROBLEM, artifact_compat=True)}
    vanilla(gold, PROBLEM, config=SpecReasonConfig(artifact_compat=True))
    assert gold.calls[0].messages == ({"role": "user", "content": math_prompt(PROBLEM, artifact_compat=True)},)


# -- the loop ----------------------------------------------------------------------------------
def test_accept_reject_sequence_and_token_accounting() -> None:
    result, small, base = _run([S1, S2_BAD, S3, S4], ["9", "2", S2, "8", "7"])
    r = result
    assert [(st.source, st.accepted, st.score) for st in r.steps] == [
        ("small", True, 9.0), ("base", False, 2.0), ("small", True, 8.0), ("small", True, 7.0)]
    assert [st.text for st in r.steps] == [S1, S2, S3, S4]
    assert r.steps[1].draft == S2_BAD
    assert r.stop_reason == "answer" and r.answer == "86"
    assert r.tokens == 9 + 10 + 9 + 9  # kept steps only
    assert (r.small_tokens, r.base_tokens, r.judge_calls) == (37, 10, 4)
    assert r.accept_rate == 0.75
    assert [c.kind for c in base.calls] == ["next_token", "next_token", "chat", "next_token", "next_token"]
    assert small.remaining == 0 and base.remaining == 0
    assert r.usage["judge"].decode_tokens == 4 and r.usage["base"].decode_tokens == 10


def test_step_and_judge_requests_are_exactly_the_spec() -> None:
    _, small, base = _run([S1, S2_BAD, S3, S4], ["9", "2", S2, "8", "7"])
    prompt = math_prompt(PROBLEM)
    first, second = small.calls[0], small.calls[1]
    assert first.messages == ({"role": "user", "content": prompt},)
    assert first.flags == {"add_generation_prompt": True, "continue_final_message": False}
    assert (first.params.stop, first.params.max_tokens, first.params.temperature, first.params.top_p) == (
        ("\n\n",), 512, 0.6, 0.95)
    assert second.flags == {"add_generation_prompt": False, "continue_final_message": True}
    assert second.messages[1] == {"role": "assistant", "content": "<think>" + S1 + "\n\n"}
    # The base step that replaced the rejected draft continues from the kept steps only.
    assert base.calls[2].messages[1] == {"role": "assistant", "content": "<think>" + S1 + "\n\n"}
    judge = base.calls[3]
    assert judge.kind == "next_token"
    assert judge.flags == {"add_generation_prompt": False, "continue_final_message": True}
    assert list(judge.messages) == judge_messages(prompt, [S1, S2], S3)
    assert judge.messages[1]["content"] == "<think>" + S1 + "\n\n" + S2 + "\n\n" + S3 + "\n\n"
    assert "</think>" not in judge.prompt
    # The rendered prompt keeps every earlier step.
    assert all(s in small.calls[3].prompt for s in (S1, S2, S3))


def test_requests_reaching_a_local_server() -> None:
    from fastapi.testclient import TestClient

    bodies: list[dict[str, object]] = []
    fake = ScriptedBackend([S4, "9"])  # one server in both roles: the draft, then the judge
    with TestClient(make_app(fake)) as client:
        client.event_hooks["request"] = [lambda req: bodies.append(json.loads(req.content))]
        shared = OpenAIBackend(
            "http://testserver/v1", "scripted-fake", context_window=2048, http_client=client  # type: ignore[arg-type]
        )
        r = SpecReason(shared, shared).solve(PROBLEM)
    assert r.stop_reason == "answer" and r.answer == "86" and r.judge_calls == 1
    step, judge = bodies
    assert step["stop"] == ["\n\n"] and step["max_tokens"] == 512
    assert step["temperature"] == 0.6 and step["top_p"] == 0.95
    assert step["add_generation_prompt"] is True and step["continue_final_message"] is False
    assert judge["temperature"] == 0.0 and judge["max_tokens"] == 1
    assert judge["logprobs"] is True and judge["top_logprobs"] == 10
    assert judge["add_generation_prompt"] is False and judge["continue_final_message"] is True
    assert judge["messages"][-1] == {"role": "assistant", "content": JUDGE_PREFIX}  # type: ignore[index]
    assert judge["messages"][-2] == {"role": "user", "content": JUDGE_INSTRUCTION}  # type: ignore[index]


def test_threshold_0_keeps_every_draft_and_10_rejects_every_draft() -> None:
    r0, _, _ = _run([S1, S2_BAD, S4], ["0", "0", "0"], threshold=0)
    assert [s.text for s in r0.steps] == [S1, S2_BAD, S4]
    r10, _, base = _run([S1, S2_BAD, S4], ["9", S1, "9", S2, "9", S4], threshold=10)
    assert [(s.source, s.accepted) for s in r10.steps] == [("base", False)] * 3
    assert [s.text for s in r10.steps] == [S1, S2, S4]
    assert r10.judge_calls == 3 and base.remaining == 0


def test_first_n_base_steps_are_unjudged() -> None:
    r, small, _ = _run([S3, S4], [S1, S2, "9", "9"], first_n_base=2)
    assert [(s.source, s.accepted, s.score) for s in r.steps] == [
        ("base", None, None), ("base", None, None), ("small", True, 9.0), ("small", True, 9.0)]
    assert r.judge_calls == len(r.steps) - 2
    assert small.calls[0].messages[1]["content"] == "<think>" + S1 + "\n\n" + S2 + "\n\n"


def test_budget_counts_final_steps_only() -> None:
    # A rejected 10-token draft is not counted: 9 + 10 = 19 < 20, then 9 more -> 28 >= 20.
    r, _, _ = _run([S1, S2_BAD, S3], ["9", "1", S2, "9"], token_budget=20)
    assert r.stop_reason == "budget" and r.tokens == 28 and len(r.steps) == 3
    r2, _, _ = _run([S1], ["9"], token_budget=9)
    assert r2.stop_reason == "budget" and r2.tokens == 9


def test_budget_wins_over_answer() -> None:
    r, _, _ = _run([S4], ["9"], token_budget=9)
    assert r.stop_reason == "budget" and r.answer == "86"


def test_repeat_rule_needs_more_than_two_steps() -> None:
    r, _, _ = _run(["same.", "same.", "same."], ["9", "9", "9"])
    assert r.stop_reason == "repeat" and len(r.steps) == 3


def test_think_end_is_stripped_unless_the_step_answers() -> None:
    r, _, _ = _run(["x</think>", "y</think> \\boxed{3}"], ["9", "9"])
    assert [s.text for s in r.steps] == ["x", "y</think> \\boxed{3}"]
    assert r.tokens == 5 + 10


def test_average_score_method_renormalises_over_digits() -> None:
    top = (TokenLogprob("8", math.log(0.5)), TokenLogprob("x", math.log(0.3)), TokenLogprob("4", math.log(0.2)))
    r, _, _ = _run([S4], [ScriptedReply("8", top=top)], score_method="average", threshold=6.8)
    assert r.steps[0].score == pytest.approx((8 * 0.5 + 4 * 0.2) / 0.7)
    assert r.steps[0].accepted is True


def test_scoring_rules() -> None:
    lp = TokenLogprob
    assert score_tokens([lp("A", 0.0), lp("9", -1.0)], "greedy") == 0.0
    assert score_tokens([lp(" 9", 0.0)], "greedy") == 0.0
    assert score_tokens([lp("10", 0.0)], "greedy") == 0.0
    assert score_tokens([lp("10", 0.0)], "greedy", artifact_compat=True) == 10.0
    assert score_tokens([lp("7", 0.0)], "greedy") == 7.0
    assert score_tokens([lp("a", 0.0), lp("b", -1.0)], "average") == 0.0
    assert score_tokens([], "average") == 0.0
    assert score_tokens([lp("x", math.log(0.9)), lp("6", math.log(0.1))], "average") == pytest.approx(6.0)


def test_asolve_matches_solve() -> None:
    s, b = ScriptedBackend([S1, S4]), ScriptedBackend(["9", "9"])
    r = asyncio.run(SpecReason(s, b).asolve(PROBLEM))
    assert [st.text for st in r.steps] == [S1, S4] and r.answer == "86"


def test_vanilla_is_one_generation_without_step_stops() -> None:
    fake = ScriptedBackend([S1 + "\n\n" + S4])
    r = vanilla(fake, PROBLEM, config=SpecReasonConfig(token_budget=256))
    assert fake.calls[0].params == SamplingParams(max_tokens=256, temperature=0.6, top_p=0.95, seed=0)
    assert [s.text for s in r.steps] == [S1, S4] and r.answer == "86"
    assert r.tokens == 18 and r.stop_reason == "eos"


# -- keyword parameters (spec §3) ------------------------------------------------------------------
def test_keyword_parameters_or_a_config_but_not_both() -> None:
    s, b = ScriptedBackend([S1, S2_BAD, S4]), ScriptedBackend(["9", "8", S2, "9"])
    sr = SpecReason(s, b, threshold=9, score_method="greedy", token_budget=64, step_max_tokens=16, seed=4)
    assert sr.config == SpecReasonConfig(threshold=9, token_budget=64, step_max_tokens=16, seed=4)
    r = sr.solve(PROBLEM)
    assert [(st.source, st.accepted) for st in r.steps] == [("small", True), ("base", False), ("small", True)]
    assert s.calls[0].params.max_tokens == 16
    with pytest.raises(ConfigError) as both:
        SpecReason(s, b, SpecReasonConfig(), threshold=9)
    assert str(both.value) == ("config field 'config' = ['threshold']: pass either a config= object or keyword "
                               "parameters, not both")
    with pytest.raises(ConfigError, match="threshold"):
        SpecReason(s, b, threshold=11)
    fake = ScriptedBackend([S4])
    v = vanilla(fake, PROBLEM, token_budget=5, temperature=0.0)
    assert fake.calls[0].params == SamplingParams(max_tokens=5, temperature=0.0, top_p=0.95, seed=0)
    assert v.stop_reason == "length" and v.tokens == 5
    with pytest.raises(ConfigError, match="not both"):
        vanilla(fake, PROBLEM, config=SpecReasonConfig(), token_budget=5)


# -- the context-window guard --------------------------------------------------------------------
class _TemplatedFake(ScriptedBackend):
    """The scripted fake with its template exposed as ``render_chat``, as in-process backends have,
    so the loop can count a prompt's tokens before the call."""

    def render_chat(self, messages: list[Message], *, add_generation_prompt: bool = True,
                    continue_final_message: bool = False) -> str:
        return self._render(messages, add_generation_prompt=add_generation_prompt,
                            continue_final_message=continue_final_message)[0]


def _tokens(messages: list[Message], **flags: bool) -> int:
    fake = _TemplatedFake([])
    return fake.count_tokens(fake.render_chat(messages, **flags))


def test_stop_reasons_are_one_literal() -> None:
    from typing import get_args, get_type_hints

    assert get_args(StopReason) == ("budget", "answer", "repeat", "context", "length", "eos")
    assert get_type_hints(Result)["stop_reason"] == StopReason


def test_a_judge_call_that_would_not_fit_stops_on_context_keeping_the_steps() -> None:
    prompt = math_prompt(PROBLEM)
    window = _tokens(judge_messages(prompt, [S1], S2), add_generation_prompt=False, continue_final_message=True)
    s = _TemplatedFake([S1, S2, S3], context_window=window)
    b = _TemplatedFake(["9", "9"], context_window=window)
    r = SpecReason(s, b).solve(PROBLEM)
    assert (r.stop_reason, [st.text for st in r.steps], r.answer) == ("context", [S1], None)
    assert (r.tokens, r.small_tokens, r.judge_calls) == (9, 9 + 10, 1)
    assert [c.kind for c in b.calls] == ["next_token"] and s.remaining == 1
    # One more token of room and the judge call is made.
    b2 = _TemplatedFake(["9", "9"], context_window=window + 1)
    r2 = SpecReason(_TemplatedFake([S1, S4], context_window=window + 1), b2).solve(PROBLEM)
    assert r2.stop_reason == "answer" and r2.judge_calls == 2


def test_a_step_the_window_cuts_short_is_not_kept() -> None:
    messages, flags = step_messages(math_prompt(PROBLEM), [S1])
    window = _tokens(messages, **flags) + 5  # room for 5 of S2's 10 tokens
    s = _TemplatedFake([S2], context_window=window)
    b = _TemplatedFake([S1], context_window=window)
    r = SpecReason(s, b, first_n_base=1).solve(PROBLEM)
    assert (r.stop_reason, [(st.text, st.source) for st in r.steps]) == ("context", [(S1, "base")])
    assert (r.tokens, r.small_tokens, r.base_tokens, r.judge_calls) == (9, 5, 9, 0)


def test_a_base_step_the_window_cuts_short_is_kept_and_ends_the_solve() -> None:
    messages, flags = step_messages(math_prompt(PROBLEM), [])
    window = _tokens(messages, **flags) + 5  # room for 5 of S1's 9 tokens
    b = _TemplatedFake([S1], context_window=window)
    r = SpecReason(_TemplatedFake([], context_window=window), b, first_n_base=1).solve(PROBLEM)
    assert r.stop_reason == "context" and [st.source for st in r.steps] == ["base"]
    assert (r.tokens, r.base_tokens, r.judge_calls) == (5, 5, 0)
    assert S1.startswith(r.steps[0].text) and r.steps[0].text != S1


def test_no_room_for_the_first_step_returns_no_steps() -> None:
    messages, flags = step_messages(math_prompt(PROBLEM), [])
    s = _TemplatedFake([S1], context_window=_tokens(messages, **flags))
    r = SpecReason(s, _TemplatedFake([])).solve(PROBLEM)
    assert (r.stop_reason, r.steps, r.small_tokens, s.calls) == ("context", [], 0, [])


def test_helpers() -> None:
    msgs, flags = step_messages("P", [])
    assert msgs == [{"role": "user", "content": "P"}] and flags["add_generation_prompt"] is True
    assert extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{3} and \\boxed{unclosed") == "3"
    assert extract_boxed("no box") is None


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", 10.5), ("threshold", -1.0), ("token_budget", 0), ("token_budget", -5),
     ("step_max_tokens", 0), ("first_n_base", -1), ("score_method", "max"), ("top_p", 0.0)],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        SpecReasonConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field and info.value.value == value


def test_bad_problem_and_options() -> None:
    sr = SpecReason(ScriptedBackend([]), ScriptedBackend([]))
    with pytest.raises(ConfigError, match="problem"):
        sr.solve("  ")
    with pytest.raises(ConfigError, match="options"):
        sr.solve("Q", {"A": "a", "B": "b", "C": "c"})
    with pytest.raises(ConfigError, match="options"):
        sr.solve("Q", {"A": "a", "B": "b", "C": "c", "D": ""})


def test_unreachable_backend_is_a_backend_error() -> None:
    from tenfold.llm import free_port

    dead = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "m", context_window=512, retries=0, timeout_s=2.0)
    with pytest.raises(BackendError, match="cannot reach"):
        SpecReason(dead, dead).solve(PROBLEM)
    dead.close()


def test_a_judge_server_without_logprobs_names_the_server_and_the_field() -> None:
    import httpx

    answer = {"choices": [{"message": {"content": "9"}, "finish_reason": "length"}], "usage": {}}
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200, json=answer)))
    base = OpenAIBackend("http://judge-host:8000/v1", "m", http_client=client, context_window=512)
    with pytest.raises(BackendCapabilityError) as err:
        SpecReason(ScriptedBackend([S1]), base).solve(PROBLEM)
    assert (err.value.server, err.value.field) == ("http://judge-host:8000/v1", "top_logprobs")
