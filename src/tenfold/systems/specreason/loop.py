"""The SpecReason loop (spec §2.2–§2.3), top to bottom: draft, judge, accept or regenerate.

For every reasoning step (steps are separated by a blank line, ``\\n\\n``):

1. the first ``first_n_base`` steps come from the base model, unjudged;
2. otherwise the small model drafts the step, and the base model scores it with a single
   token after :data:`~.prompts.JUDGE_PREFIX` (its top-10 logprobs; ``greedy`` or ``average``);
3. a draft scoring ``>= threshold`` is kept; otherwise it is discarded and the base model
   writes the step instead (that step is not judged);
4. the loop stops on the token budget (decode tokens of kept steps only), an answer marker,
   or a repeated step.

Works over any :class:`~tenfold.llm.LLMBackend` pair (in-process, remote, scripted). Latency
is wall clock measured around the real calls; each call's own ``Usage`` is kept as well.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tenfold.llm import LLMBackend, Message, SamplingParams, TokenLogprob, Usage

from .config import ScoreMethod, SpecReasonConfig
from .prompts import ANSWER_MARKERS, JUDGE_INSTRUCTION, JUDGE_PREFIX, SEP, THINK, gpqa_prompt, math_prompt

__all__ = [
    "Result",
    "SpecReason",
    "Step",
    "StopReason",
    "extract_boxed",
    "judge_messages",
    "score_tokens",
    "step_messages",
    "vanilla",
]

StopReason = Literal["budget", "answer", "repeat"]
"""Why a solve ended; ``vanilla`` also reports ``length`` (budget) or ``eos`` (model stopped)."""

_STEP_STOP = (SEP,)
_THINK_END = "</think>"


@dataclass(frozen=True)
class Step:
    """One kept step, and what happened to the draft it replaced (if any)."""

    text: str
    source: Literal["small", "base"]
    """Which model wrote the kept text."""
    tokens: int
    """Decode tokens of the kept text (what the budget counts)."""
    score: float | None = None
    """The judge's score of the small model's draft; None for unjudged (first-n) base steps."""
    accepted: bool | None = None
    """True: the draft was kept; False: rejected and replaced by a base step; None: not judged."""
    draft: str | None = None
    """The rejected draft's text (None unless ``accepted is False``)."""
    draft_tokens: int = 0
    """Decode tokens of the small model's draft (kept or not)."""


@dataclass(frozen=True)
class Result:
    """One solve: the kept steps, the answer and the accounting."""

    steps: list[Step]
    answer: str | None
    """The content of the last balanced ``\\boxed{...}`` over all steps; None if there is none."""
    stop_reason: str
    timings: dict[str, float]
    """Wall seconds: ``small_s``, ``base_s``, ``judge_s`` (around each call) and ``total_s``."""
    accept_rate: float
    """Accepted drafts / judged drafts (0.0 when nothing was judged)."""
    tokens: int
    """Decode tokens of the kept steps (what the budget counts)."""
    small_tokens: int = 0
    """Decode tokens the small model spent (accepted and rejected drafts)."""
    base_tokens: int = 0
    """Decode tokens the base model spent writing steps (judge calls excluded)."""
    judge_calls: int = 0
    usage: dict[str, Usage] = field(default_factory=dict)
    """Summed backend ``Usage`` per role: ``small``, ``base``, ``judge``."""

    @property
    def text(self) -> str:
        """The kept steps joined as the model would have written them."""
        return SEP.join(s.text for s in self.steps)


# -- messages ---------------------------------------------------------------------------------
def step_messages(prompt: str, steps: Sequence[str]) -> tuple[list[Message], dict[str, bool]]:
    """The step call's chat and flags: the prompt alone first, then the thinking so far, continued."""
    if not steps:
        return [{"role": "user", "content": prompt}], {"add_generation_prompt": True, "continue_final_message": False}
    thinking = THINK + SEP.join(steps) + SEP
    return (
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": thinking}],
        {"add_generation_prompt": False, "continue_final_message": True},
    )


def judge_messages(prompt: str, steps: Sequence[str], draft: str) -> list[Message]:
    """The judge call's chat; thinking is never closed with ``</think>`` (templates would drop it)."""
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": THINK + SEP.join([*steps, draft]) + SEP},
        {"role": "user", "content": JUDGE_INSTRUCTION},
        {"role": "assistant", "content": JUDGE_PREFIX},
    ]


# -- scoring ----------------------------------------------------------------------------------
def _digit(token: str, artifact_compat: bool) -> int | None:
    if artifact_compat:  # the artifact's str.isdigit: "10" scores 10
        return int(token) if token.isdigit() and token.isascii() else None
    return int(token) if len(token) == 1 and token in "0123456789" else None


def score_tokens(top: Sequence[TokenLogprob], method: ScoreMethod, *, artifact_compat: bool = False) -> float:
    """Turn the judge's next-token candidates (best first) into a score.

    ``greedy``: the best token as an int if it is one ASCII digit, else 0. ``average``:
    ``exp(logprob)`` renormalised over the digit candidates, ``sum(digit * p)``; 0 with no digits.
    """
    if not top:
        return 0.0
    if method == "greedy":
        d = _digit(top[0].token, artifact_compat)
        return float(d) if d is not None else 0.0
    digits = [(d, math.exp(t.logprob)) for t in top if (d := _digit(t.token, artifact_compat)) is not None]
    mass = sum(p for _, p in digits)
    if not digits or mass <= 0.0:
        return 0.0
    return sum(d * p for d, p in digits) / mass


_BOXED = "\\boxed{"


def extract_boxed(text: str) -> str | None:
    """The content of the last balanced ``\\boxed{...}`` in ``text``; None when there is none."""
    start = text.rfind(_BOXED)
    while start >= 0:
        depth, i = 1, start + len(_BOXED)
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len(_BOXED) : i - 1]
        start = text.rfind(_BOXED, 0, start)
    return None


def _prompt(problem: str, options: Mapping[str, str] | None, artifact_compat: bool) -> str:
    if options is None:
        return math_prompt(problem, artifact_compat=artifact_compat)
    return gpqa_prompt(problem, options, artifact_compat=artifact_compat)


# -- the loop ---------------------------------------------------------------------------------
class SpecReason:
    """A small model drafts each step; the base model judges it and rewrites rejected ones."""

    def __init__(self, small: LLMBackend, base: LLMBackend, config: SpecReasonConfig | None = None) -> None:
        self.small = small
        self.base = base
        self.config = config or SpecReasonConfig()

    def prompt(self, problem: str, options: Mapping[str, str] | None = None) -> str:
        """The user prompt: :data:`MATH_PROMPT`, or :data:`GPQA_PROMPT` when options are given
        (their raw ``*_ARTIFACT`` strings under ``artifact_compat``)."""
        return _prompt(problem, options, self.config.artifact_compat)

    def solve(self, problem: str, options: Mapping[str, str] | None = None) -> Result:
        cfg = self.config
        prompt = self.prompt(problem, options)
        steps: list[Step] = []
        texts: list[str] = []
        used = 0
        calls = 0
        judged = accepted_n = 0
        small_tokens = base_tokens = 0
        wall = {"small_s": 0.0, "base_s": 0.0, "judge_s": 0.0}
        usage = {"small": Usage(), "base": Usage(), "judge": Usage()}
        t_start = time.perf_counter()

        def step_call(backend: LLMBackend, role: str) -> tuple[str, int]:
            nonlocal calls
            messages, flags = step_messages(prompt, texts)
            params = SamplingParams(
                max_tokens=cfg.step_max_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                seed=cfg.seed * 1_000_003 + calls,
                stop=_STEP_STOP,
            )
            calls += 1
            t0 = time.perf_counter()
            gen = backend.chat(messages, params, **flags)
            wall[role + "_s"] += time.perf_counter() - t0
            usage[role] = usage[role] + gen.usage
            return gen.text, gen.usage.decode_tokens

        while True:
            if len(texts) < cfg.first_n_base:
                text, n = step_call(self.base, "base")
                base_tokens += n
                step = Step(text, "base", n)
            else:
                draft, n_draft = step_call(self.small, "small")
                small_tokens += n_draft
                t0 = time.perf_counter()
                verdict = self.base.next_token(
                    judge_messages(prompt, texts, draft),
                    k=cfg.top_logprobs,
                    add_generation_prompt=False,
                    continue_final_message=True,
                )
                wall["judge_s"] += time.perf_counter() - t0
                usage["judge"] = usage["judge"] + verdict.usage
                top = verdict.top
                judged += 1
                score = score_tokens(top, cfg.score_method, artifact_compat=cfg.artifact_compat)
                if score >= cfg.threshold:
                    accepted_n += 1
                    step = Step(draft, "small", n_draft, score, True, None, n_draft)
                else:  # the draft is discarded, not appended; the base step is not judged
                    text, n = step_call(self.base, "base")
                    base_tokens += n
                    step = Step(text, "base", n, score, False, draft, n_draft)
            finished = any(m in step.text for m in ANSWER_MARKERS)
            if _THINK_END in step.text and not finished:
                step = Step(step.text.replace(_THINK_END, ""), *_rest(step))
            steps.append(step)
            texts.append(step.text)
            used += step.tokens
            if used >= cfg.token_budget:
                reason: StopReason = "budget"
                break
            if finished:
                reason = "answer"
                break
            if len(texts) > 2 and texts[-1] == texts[-2]:
                reason = "repeat"
                break

        wall["total_s"] = time.perf_counter() - t_start
        return Result(
            steps=steps,
            answer=extract_boxed(SEP.join(texts)),
            stop_reason=reason,
            timings=wall,
            accept_rate=accepted_n / judged if judged else 0.0,
            tokens=used,
            small_tokens=small_tokens,
            base_tokens=base_tokens,
            judge_calls=judged,
            usage=usage,
        )

    async def asolve(self, problem: str, options: Mapping[str, str] | None = None) -> Result:
        """:meth:`solve` in a worker thread (execution stays sequential within one solve)."""
        return await asyncio.to_thread(self.solve, problem, options)


def _rest(step: Step) -> tuple[Literal["small", "base"], int, float | None, bool | None, str | None, int]:
    return step.source, step.tokens, step.score, step.accepted, step.draft, step.draft_tokens


# -- baseline ---------------------------------------------------------------------------------
def vanilla(
    backend: LLMBackend,
    problem: str,
    options: Mapping[str, str] | None = None,
    config: SpecReasonConfig | None = None,
    *,
    source: Literal["small", "base"] = "base",
) -> Result:
    """One continuous generation with the same prompt, sampling and budget, and no step stops."""
    cfg = config or SpecReasonConfig()
    prompt = _prompt(problem, options, cfg.artifact_compat)
    params = SamplingParams(
        max_tokens=cfg.token_budget, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed * 1_000_003
    )
    t0 = time.perf_counter()
    gen = backend.chat([{"role": "user", "content": prompt}], params)
    seconds = time.perf_counter() - t0
    text = gen.text[len(THINK):] if gen.text.startswith(THINK) else gen.text
    parts = [p for p in re.split(r"\n\n", text)]
    steps = [Step(p, source, 0) for p in parts]
    n = gen.usage.decode_tokens
    return Result(
        steps=steps,
        answer=extract_boxed(text),
        stop_reason="length" if gen.finish_reason == "length" else "eos",
        timings={"small_s" if source == "small" else "base_s": seconds, "judge_s": 0.0, "total_s": seconds},
        accept_rate=0.0,
        tokens=n,
        small_tokens=n if source == "small" else 0,
        base_tokens=n if source == "base" else 0,
        usage={source: gen.usage},
    )
