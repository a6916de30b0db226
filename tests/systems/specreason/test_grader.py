"""The grader: last boxed answer, normalised; numbers compared exactly; seeded option shuffles."""

from __future__ import annotations

import pytest

from tenfold.errors import ConfigError
from tenfold.systems.specreason import grade, normalize_answer, shuffle_options


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is \\boxed{86}.", "86"),
        ("\\boxed{1} ... so \\boxed{ 2 }", "2"),
        ("\\boxed{\\text{(B)}}", "(B)"),
        ("$\\boxed{\\frac{1}{2}}$", "(1)/(2)"),
        ("\\boxed{1,234}", "1234"),
        ("\\boxed{90^\\circ}", "90"),
        ("42.", "42"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_grade_kinds() -> None:
    assert grade("so \\boxed{86}", "86", "int")
    assert not grade("\\boxed{86.5}", "86", "int")
    assert not grade("\\boxed{87}", "86", "int")
    assert not grade(None, "86", "int")
    assert grade("\\boxed{0.5}", "\\frac{1}{2}", "math")
    assert grade("\\boxed{\\dfrac{1}{2}}", "1/2", "math")
    assert grade("\\boxed{x+1}", "x + 1", "math")
    assert not grade("\\boxed{x+2}", "x+1", "math")
    assert grade("\\boxed{B}", "B", "choice")
    assert grade("\\boxed{(c)}", "C", "choice")
    assert not grade("\\boxed{E}", "E", "choice")
    with pytest.raises(ConfigError, match="kind"):
        grade("1", "1", "float")  # type: ignore[arg-type]


def test_dollar_signs_signed_and_shorthand_fractions_and_spaces_between_digits() -> None:
    assert grade("\\$5", "5", "int") and normalize_answer("\\boxed{\\$1,234}") == "1234"
    assert grade("-\\frac{1}{2}", "-0.5", "math") and normalize_answer("-\\frac{1}{2}") == "-(1)/(2)"
    assert not grade("-\\frac{1}{2}", "0.5", "math")
    assert grade("\\frac12", "0.5", "math") and grade("\\dfrac 3 4", "0.75", "math")
    assert grade("\\frac1{2}", "\\frac{1}2", "math")
    assert not grade("1 2", "12", "math") and normalize_answer(" 1  2 ") == "1 2"
    assert not grade("1 2", "12", "int")
    assert grade("x + 1", "x+1", "math") and grade("2 \\pi", "2\\pi", "math")


def test_shuffle_is_seeded_and_not_always_a() -> None:
    a = shuffle_options("right", ["w1", "w2", "w3"], seed=3)
    assert a == shuffle_options("right", ["w1", "w2", "w3"], seed=3)
    options, gold = a
    assert sorted(options) == ["A", "B", "C", "D"] and options[gold] == "right"
    golds = {shuffle_options("right", ["w1", "w2", "w3"], seed=s)[1] for s in range(40)}
    assert golds == {"A", "B", "C", "D"}
    with pytest.raises(ConfigError, match="incorrect"):
        shuffle_options("r", ["w1"], seed=0)
    with pytest.raises(ConfigError, match="options"):
        shuffle_options("", ["w1", "w2", "w3"], seed=0)
