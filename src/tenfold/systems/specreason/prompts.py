"""The fixed strings of SpecReason (spec §2.1), reproduced as an interface, byte for byte.

``\\n\\n`` inside the parentheses of the prompts is literal backslash-n text (a design choice
of the spec); every other ``\\n`` is a newline. The dash in :data:`JUDGE_INSTRUCTION` is U+2014.
"""

from __future__ import annotations

from collections.abc import Mapping

from tenfold.errors import ConfigError

__all__ = [
    "ANSWER_MARKERS",
    "GPQA_PROMPT",
    "JUDGE_INSTRUCTION",
    "JUDGE_PREFIX",
    "MATH_PROMPT",
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


def math_prompt(problem: str) -> str:
    """:data:`MATH_PROMPT` with the problem filled in (``str.format`` would trip on ``\\boxed{}``)."""
    if not problem.strip():
        raise ConfigError("problem", problem, "must be a non-empty string")
    return MATH_PROMPT.replace("{problem}", problem)


def gpqa_prompt(problem: str, options: Mapping[str, str]) -> str:
    """:data:`GPQA_PROMPT` with the problem and the four options A–D filled in."""
    if not problem.strip():
        raise ConfigError("problem", problem, "must be a non-empty string")
    if sorted(options) != list(_LETTERS) or any(not str(v).strip() for v in options.values()):
        raise ConfigError("options", dict(options), "must map exactly A, B, C, D to non-empty strings")
    # Fill by position, not str.replace on "{A}": the template's example "\\boxed{A}" must stay.
    head, rest = GPQA_PROMPT.split("{problem}", 1)
    choices = rest.split("\n(A) {A}", 1)[0]
    lines = "".join(f"\n({letter}) {options[letter]}" for letter in _LETTERS)
    return head + problem + choices + lines
