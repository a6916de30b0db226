"""The fixed strings of SpecReason (spec §2.1), reproduced as an interface, byte for byte.

``\\n\\n`` inside the parentheses of the prompts is literal backslash-n text (a design choice
of the spec); every other ``\\n`` is a newline. The dash in :data:`JUDGE_INSTRUCTION` is U+2014.

:data:`MATH_PROMPT_ARTIFACT` and :data:`GPQA_PROMPT_ARTIFACT` are the raw strings the upstream
artifact sends (spec §2.6, used under ``artifact_compat=True``): the text of an indented
triple-quoted literal after ``str.format``, so a leading newline, 8-space indents, a space before
each line break inside a sentence, real newlines inside ``(\\n\\n)``, ``Choices: `` with a
trailing space, and a closing newline plus 8 spaces.
"""

from __future__ import annotations

from collections.abc import Mapping

from tenfold.errors import ConfigError

__all__ = [
    "ANSWER_MARKERS",
    "GPQA_PROMPT",
    "GPQA_PROMPT_ARTIFACT",
    "JUDGE_INSTRUCTION",
    "JUDGE_PREFIX",
    "MATH_PROMPT",
    "MATH_PROMPT_ARTIFACT",
    "SEP",
    "THINK",
    "gpqa_prompt",
    "math_prompt",
]

MATH_PROMPT = (
    "Solve the following math problem efficiently and clearly. Please reason step by step, "
    "separate logical reasoning steps with two newline characters (\\n\\n), and put your final "
    "answer within \\boxed{}.\nProblem: {problem}"
)
GPQA_PROMPT = (
    "What is the correct answer to the following problem? Please reason step by step. "
    "Separate logical reasoning steps with two newline characters (\\n\\n). Put the final answer "
    "**strictly** in the format \\boxed{X}, where X is a single letter (A, B, C, or D).\n\n"
    "**Example output:** \\boxed{A}\n\nProblem: {problem}.\nChoices:\n(A) {A}\n(B) {B}\n(C) {C}\n(D) {D}"
)
_INDENT = "\n        "
MATH_PROMPT_ARTIFACT = (
    _INDENT + "Solve the following math problem efficiently and clearly. Please reason step by step, "
    + _INDENT + "separate logical reasoning steps with two newline characters (\n\n), and put your final "
    "answer within \\boxed{}."
    + _INDENT + "Problem: {problem}"
    + _INDENT
)
GPQA_PROMPT_ARTIFACT = (
    _INDENT + "What is the correct answer to the following problem? Please reason step by step. "
    + _INDENT + "Separate logical reasoning steps with two newline characters (\n\n)."
    + _INDENT + "Put the final answer **strictly** in the format \\boxed{X}, where X is a single letter "
    "(A, B, C, or D).\n"
    + _INDENT + "**Example output:** \\boxed{A}\n"
    + _INDENT + "Problem: {problem}."
    + _INDENT + "Choices: "
    + _INDENT + "(A) {A}" + _INDENT + "(B) {B}" + _INDENT + "(C) {C}" + _INDENT + "(D) {D}"
    + _INDENT
)
JUDGE_INSTRUCTION = (
    "Evaluate the last reasoning step solely based on factual correctness and logical validity. "
    "Ignore style, phrasing, or overall usefulness\u2014only judge whether the step is objectively "
    "correct and logically follows from prior steps. Assign a score from 0 to 9."
)
JUDGE_PREFIX = "<think>I think the quality score is: "
THINK = "<think>"
SEP = "\n\n"
ANSWER_MARKERS = ("boxed", "Answer:", "ANSWER:")

_LETTERS = ("A", "B", "C", "D")


def math_prompt(problem: str, *, artifact_compat: bool = False) -> str:
    """:data:`MATH_PROMPT` (or :data:`MATH_PROMPT_ARTIFACT`) with the problem filled in."""
    if not problem.strip():
        raise ConfigError("problem", problem, "must be a non-empty string")
    return _fill(MATH_PROMPT_ARTIFACT if artifact_compat else MATH_PROMPT, [("{problem}", problem)])


def gpqa_prompt(problem: str, options: Mapping[str, str], *, artifact_compat: bool = False) -> str:
    """:data:`GPQA_PROMPT` (or :data:`GPQA_PROMPT_ARTIFACT`) with the problem and options A–D filled in."""
    if not problem.strip():
        raise ConfigError("problem", problem, "must be a non-empty string")
    if sorted(options) != list(_LETTERS) or any(not str(v).strip() for v in options.values()):
        raise ConfigError("options", dict(options), "must map exactly A, B, C, D to non-empty strings")
    slots = [("{problem}", problem)] + [(f"({x}) {{{x}}}", f"({x}) {options[x]}") for x in _LETTERS]
    return _fill(GPQA_PROMPT_ARTIFACT if artifact_compat else GPQA_PROMPT, slots)


def _fill(template: str, slots: list[tuple[str, str]]) -> str:
    """Replace each placeholder once, in order, scanning only the template's text after the last one.

    Not ``str.format`` (``\\boxed{}`` would trip it) and not ``str.replace`` (the example
    ``\\boxed{A}`` must stay, and a filled-in value is never scanned again).
    """
    out, pos = [], 0
    for key, value in slots:
        at = template.index(key, pos)
        out += [template[pos:at], value]
        pos = at + len(key)
    return "".join(out) + template[pos:]
