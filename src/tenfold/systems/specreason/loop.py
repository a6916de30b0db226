"""The SpecReason loop (spec §2.2–§2.3), top to bottom: draft, judge, accept or regenerate.

For every reasoning step (steps are separated by a blank line, ``\\n\\n``):

1. the first ``first_n_base`` steps come from the base model, unjudged;
2. otherwise the small model drafts the step, and the base model scores it with a single
   token after :data:`~.prompts.JUDGE_PREFIX` (its top-10 logprobs; ``greedy`` or ``average``);
3. a draft scoring ``>= threshold`` is kept; otherwise it is discarded and the base model
   writes the step instead (that step is not judged);
4. the loop stops on the token budget (decode tokens of kept steps only), an answer marker,
   or a repeated step; or, before a call that would not fit the model's context window, on
   ``context`` (the steps kept so far are returned; see :func:`_fits`).

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
from typing import Literal, Protocol, TypedDict, Unpack, runtime_checkable

from tenfold.errors import ConfigError
from tenfold.llm import LLMBackend, Message, SamplingParams, TokenLogprob, Usage

from .config import ScoreMethod, SpecReasonConfig
from .prompts import ANSWER_MARKERS, JUDGE_INSTRUCTION, JUDGE_PREFIX, SEP, THINK, gpqa_prompt, math_prompt

__all__ = [
    "LoopParams",
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

StopReason = Literal["budget", "answer", "repeat", "context", "length", "eos"]
"""Why a solve ended: ``budget``, ``answer``, ``repeat`` (spec §2.3), or ``context``: the next
call would not fit the model's context window. ``vanilla`` reports ``length`` (it decoded its
whole budget) or ``eos`` (the model stopped)."""


class LoopParams(TypedDict, total=False):
    """:class:`~.config.SpecReasonConfig` fields as keyword arguments (spec §3)."""

    threshold: float
    score_method: ScoreMethod
    token_budget: int
    step_max_tokens: int
    first_n_base: int
    temperature: float
    top_p: float
    seed: int
    top_logprobs: int
    artifact_compat: bool


def _make_config(config: SpecReasonConfig | None, params: LoopParams) -> SpecReasonConfig:
    """``config``, or one built from keyword ``params``; ConfigError when both are given."""
    if config is not None and params:
        raise ConfigError("config", sorted(params), "pass either a config= object or keyword parameters, not both")
    if config is not None:
        return config
    return SpecReasonConfig(**params)

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
    stop_reason: StopReason
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


@runtime_checkable
class _RendersChat(Protocol):
    """A backend that renders its chat template in-process (the tiny GPT, Transformers, speculative)."""

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True,
                    continue_final_message: bool = False) -> str: ...


_JUDGE_FLAGS = {"add_generation_prompt": False, "continue_final_message": True}


def _fits(backend: LLMBackend, messages: Sequence[Message], flags: Mapping[str, bool], max_tokens: int) -> bool:
    """Whether the rendered chat plus ``max_tokens`` decode tokens fits ``backend.context_window``.

    NOTE: only backends that render their template in-process (``render_chat``) are checked,
    by counting the rendered prompt with their own tokenizer (one extra tokenization per
    call). A remote server renders its own template and enforces its own window, answering
    BackendError; counting there would add an HTTP round trip to every call.
    """
    if not isinstance(backend, _RendersChat):
        return True
    text = backend.render_chat(messages, add_generation_prompt=flags["add_generation_prompt"],
                               continue_final_message=flags["continue_final_message"])
    return backend.count_tokens(text) + max_tokens <= backend.context_window


class _NoRoom(Exception):
    """The next call does not fit the context window (the loop stops on ``context``)."""


def _prompt(problem: str, options: Mapping[str, str] | None, artifact_compat: bool) -> str:
    if options is None:
        return math_prompt(problem, artifact_compat=artifact_compat)
    return gpqa_prompt(problem, options, artifact_compat=artifact_compat)


# -- the loop ---------------------------------------------------------------------------------
class SpecReason:
    """A small model drafts each step; the base model judges it and rewrites rejected ones.

    Parameters come as a :class:`~.config.SpecReasonConfig` (``config``) or as its fields
    in keywords (``SpecReason(small, base, threshold=9, token_budget=256)``, spec §3), not both.
    """

    def __init__(self, small: LLMBackend, base: LLMBackend, config: SpecReasonConfig | None = None,
                 **params: Unpack[LoopParams]) -> None:
        self.small = small
        self.base = base
        self.config = _make_config(config, params)

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
        window_full = False
        wall = {"small_s": 0.0, "base_s": 0.0, "judge_s": 0.0}
        usage = {"small": Usage(), "base": Usage(), "judge": Usage()}
        t_start = time.perf_counter()

        def step_call(backend: LLMBackend, role: str) -> tuple[str, int]:
            nonlocal calls, small_tokens, base_tokens, window_full
            messages, flags = step_messages(prompt, texts)
            if not _fits(backend, messages, flags, 1):
                raise _NoRoom
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
            n = gen.usage.decode_tokens
            if role == "small":
                small_tokens += n
            else:
                base_tokens += n
            # NOTE: in-process backends decode at most to the window's end; a step that ends
            # there ("length" before step_max_tokens) is cut short. A cut draft could not be
            # judged (its judge prompt is longer still), so it is dropped (its tokens stay
            # counted as spent); a cut base step is the base's own output, so it is kept and
            # the loop then stops on ``context``. Requiring room for all step_max_tokens
            # instead would stop the tiny pair (256-token window) before its first 512-token step.
            if gen.finish_reason == "length" and n < cfg.step_max_tokens:
                if role == "small":
                    raise _NoRoom
                window_full = True
            return gen.text, n

        reason: StopReason
        try:
            while True:
                if len(texts) < cfg.first_n_base:
                    text, n = step_call(self.base, "base")
                    step = Step(text, "base", n)
                else:
                    draft, n_draft = step_call(self.small, "small")
                    judge_chat = judge_messages(prompt, texts, draft)
                    if not _fits(self.base, judge_chat, _JUDGE_FLAGS, 1):
                        raise _NoRoom
                    t0 = time.perf_counter()
                    verdict = self.base.next_token(judge_chat, k=cfg.top_logprobs, **_JUDGE_FLAGS)
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
                        step = Step(text, "base", n, score, False, draft, n_draft)
                finished = any(m in step.text for m in ANSWER_MARKERS)
                if _THINK_END in step.text and not finished:
                    step = Step(step.text.replace(_THINK_END, ""), *_rest(step))
                steps.append(step)
                texts.append(step.text)
                used += step.tokens
                if used >= cfg.token_budget:
                    reason = "budget"
                    break
                if finished:
                    reason = "answer"
                    break
                if len(texts) > 2 and texts[-1] == texts[-2]:
                    reason = "repeat"
                    break
                if window_full:  # a base step ended at the window's edge: nothing more fits
                    reason = "context"
                    break
        except _NoRoom:  # the next call would not fit the window: keep the steps so far
            reason = "context"

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
    **params: Unpack[LoopParams],
) -> Result:
    """One continuous generation with the same prompt, sampling and budget, and no step stops.

    Parameters come as ``config`` or as its fields in keywords (``token_budget=256``), not both.
    """
    cfg = _make_config(config, params)
    prompt = _prompt(problem, options, cfg.artifact_compat)
    sampling = SamplingParams(
        max_tokens=cfg.token_budget, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed * 1_000_003
    )
    t0 = time.perf_counter()
    gen = backend.chat([{"role": "user", "content": prompt}], sampling)
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
