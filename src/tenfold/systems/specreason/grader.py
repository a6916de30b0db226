"""Grading answers: the last ``\\boxed{}``, normalised, then compared as numbers where possible;
multiple choice by letter, with options shuffled by a seed (never "the answer is always A").
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

from tenfold.errors import ConfigError

from .loop import extract_boxed

__all__ = ["grade", "normalize_answer", "shuffle_options"]

_LETTERS = ("A", "B", "C", "D")
_DROP = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\quad|\\displaystyle|\\?\$")
_SPACE = re.compile(r"\s+")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
# \frac{1}{2}, and the one-character shorthands \frac12, \frac1{2}, \frac{1}2, \frac 1 2.
_FRAC = re.compile(r"\\[dt]?frac\s*(?:\{([^{}]*)\}|([0-9a-zA-Z]))\s*(?:\{([^{}]*)\}|([0-9a-zA-Z]))")


def _space(m: re.Match[str]) -> str:
    """One space where whitespace separates two digits (``1 2`` is not ``12``); none elsewhere."""
    text, i, j = m.string, m.start(), m.end()
    return " " if i > 0 and j < len(text) and text[i - 1].isdigit() and text[j].isdigit() else ""


def _frac(m: re.Match[str]) -> str:
    num = m.group(1) if m.group(1) is not None else m.group(2)
    den = m.group(3) if m.group(3) is not None else m.group(4)
    return f"({num})/({den})"


def normalize_answer(answer: str) -> str:
    """Canonical text of an answer: the last ``\\boxed{}`` content if any, without spacing
    commands, ``$`` or ``\\$``, ``\\text{}`` wrappers, ``^\\circ``, a trailing period or thousands
    commas. Whitespace goes, except one space between two digits (``1 2`` stays apart from ``12``)."""
    boxed = extract_boxed(answer)
    text = boxed if boxed is not None else answer
    text = _TEXT.sub(r"\1", text)
    text = _DROP.sub("", text)
    text = _FRAC.sub(_frac, text)
    text = _SPACE.sub(_space, text)
    text = text.replace("^\\circ", "").replace("^{\\circ}", "").replace("\\%", "").replace("%", "")
    text = text.rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    return text


def _number(text: str) -> Fraction | None:
    """An exact number from ``-1.5``, ``(3)/(4)``, ``-(1)/(2)`` (a sign before a fraction); else None."""
    m = re.fullmatch(r"(-?)\(?(-?\d+(?:\.\d+)?)\)?(?:/\(?(-?\d+(?:\.\d+)?)\)?)?", text)
    if m is None:
        return None
    sign = -1 if m.group(1) else 1
    num = Fraction(m.group(2))
    if m.group(3) is None:
        return sign * num
    den = Fraction(m.group(3))
    return None if den == 0 else sign * num / den


def grade(answer: str | None, gold: str, kind: Literal["int", "math", "choice"] = "math") -> bool:
    """True when ``answer`` (a boxed content or a full text) matches ``gold``.

    ``int``: both parse as the same integer. ``math``: equal after :func:`normalize_answer`,
    else equal as exact numbers (``0.5 == 1/2 == \\frac{1}{2}``). ``choice``: the same letter A–D.
    """
    if kind not in ("int", "math", "choice"):
        raise ConfigError("kind", kind, "must be one of 'int', 'math', 'choice'")
    if answer is None:
        return False
    got, want = normalize_answer(answer), normalize_answer(gold)
    if kind == "choice":
        got = got.strip("()").upper()
        return got in _LETTERS and got == want.strip("()").upper()
    if kind == "int":
        a, b = _number(got), _number(want)
        return a is not None and b is not None and a.denominator == 1 and a == b
    if got == want:
        return True
    a, b = _number(got), _number(want)
    return a is not None and a == b


def shuffle_options(correct: str, incorrect: Sequence[str], seed: int) -> tuple[dict[str, str], str]:
    """Place the correct option and three incorrect ones under A–D in a seeded order.

    Returns ``(options, gold_letter)``; the same seed always gives the same order.
    """
    if len(incorrect) != 3:
        raise ConfigError("incorrect", list(incorrect), "must hold exactly 3 options")
    if any(not o.strip() for o in [correct, *incorrect]):
        raise ConfigError("options", [correct, *incorrect], "must all be non-empty")
    order = [correct, *incorrect]
    random.Random(seed).shuffle(order)
    options = dict(zip(_LETTERS, order, strict=True))
    return options, _LETTERS[order.index(correct)]
