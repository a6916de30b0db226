"""Arithmetic chains: seeded, in range, every step checkable, held-out split disjoint by hash."""

from __future__ import annotations

import re

from tenfold.llm import ScriptedBackend
from tenfold.systems.specreason import SpecReason, SpecReasonConfig, grade
from tenfold.systems.specreason.tasks import generate, held_out, text_hash

_STEP = re.compile(r"^(Add|Subtract|Multiply by) (\d+): (\d+) ([-+*]) (\d+) = (\d+)\.$")


def test_seeded_and_exact() -> None:
    first = generate(1, seed=0)[0]
    assert first.text == ("Start with 51. Add 66, subtract 39, multiply by 22, subtract 28, subtract 37, "
                          "then add 13. What is the result?")
    assert first.steps[0] == "Add 66: 51 + 66 = 117."
    assert first.steps[-1] == "The answer is \\boxed{1664}." and first.answer == 1664
    assert generate(20, seed=5) == generate(20, seed=5)
    assert generate(20, seed=5) != generate(20, seed=6)


def test_every_step_checks_and_values_stay_in_range() -> None:
    for p in generate(500, seed=1):
        assert 3 <= len(p.ops) <= 6 and 2 <= p.start <= 99
        assert all(0 <= v <= 9999 for v in p.values)
        assert p.solution.split("\n\n") == p.steps and len(p.steps) == len(p.ops) + 1
        for step in p.steps[:-1]:
            m = _STEP.match(step)
            assert m is not None, step
            a, op, b, c = int(m[3]), m[4], int(m[5]), int(m[6])
            assert {"+": a + b, "-": a - b, "*": a * b}[op] == c
        assert grade(p.solution, str(p.answer), "int")


def test_held_out_is_disjoint_from_training() -> None:
    train = {text_hash(p.text) for p in generate(300, seed=0)}
    test = list(held_out(100, seed=1, exclude=train))
    assert len(test) == 100
    assert not {text_hash(p.text) for p in test} & train
    assert len({p.text for p in test}) == 100


def test_loop_over_reference_steps_grades_correct() -> None:
    p = generate(1, seed=2)[0]
    small = ScriptedBackend(p.steps)
    base = ScriptedBackend(["9"] * len(p.steps))
    r = SpecReason(small, base, SpecReasonConfig(token_budget=256, step_max_tokens=48)).solve(p.text)
    assert r.stop_reason == "answer" and r.accept_rate == 1.0
    assert r.text == p.solution and grade(r.answer, str(p.answer), "int")
