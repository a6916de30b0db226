"""``ScriptedBackend``: a fake LLM for unit tests of callers, with scripted tokens and latencies.

It is a fake, named as one: its replies come from a script, not a model. It still behaves
like a backend in everything a caller can observe:

- replies are consumed in order; ``max_tokens`` cuts a reply (``finish_reason="length"``) and
  stop strings cut it before the stop (``"stop"``); an exhausted script raises BackendError;
- tokens are runs of word characters, single punctuation marks, and whitespace attached to
  the token after it (``"Hi, you" -> ["Hi", ",", " you"]``), so ``count_tokens`` agrees with
  what a reply's ``decode_tokens`` counts;
- prefix reuse is simulated: a prompt's longest common token prefix with any earlier prompt
  counts as ``cached_tokens``;
- latency is *accounted*, never slept: ``Usage.seconds = prefill_tokens * prefill_s +
  decode_tokens * decode_s`` (plus a per-reply override), and an optional
  :class:`~tenfold.core.clock.SimClock` is advanced by the same amount;
- every call is recorded in :attr:`ScriptedBackend.calls`, so tests can assert exactly what a
  caller sent (prompt, parameters, chat flags).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenfold.core.api import api
from tenfold.core.clock import SimClock
from tenfold.core.config import check_range
from tenfold.errors import BackendError

from .backend import (
    FinishReason,
    Generation,
    Message,
    NextToken,
    SamplingParams,
    TokenLogprob,
    Usage,
    check_context,
    check_messages,
)

__all__ = ["ScriptedBackend", "ScriptedCall", "ScriptedReply", "fake_tokenize"]

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def fake_tokenize(text: str) -> list[str]:
    """Split text into the fake's tokens; ``"".join(fake_tokenize(t)) == t`` always holds."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer."""

    text: str
    """The full reply; the fake emits its tokens one by one."""
    seconds: float | None = None
    """Total latency to account for this call instead of the per-token model; None: use it."""
    top: tuple[TokenLogprob, ...] = ()
    """Candidates for ``next_token`` calls that consume this reply (default: its first token at 0.0)."""


@dataclass(frozen=True)
class ScriptedCall:
    """What a caller asked for, as recorded by the fake."""

    kind: str
    """``complete``, ``chat`` or ``next_token``."""
    prompt: str
    """The raw prompt, or the rendered chat."""
    params: SamplingParams
    messages: tuple[dict[str, str], ...] = ()
    flags: dict[str, bool] = field(default_factory=dict)


@api(stability="beta")
class ScriptedBackend:
    """A scripted fake :class:`~tenfold.llm.LLMBackend` (no model, no sleeping)."""

    def __init__(
        self,
        replies: Sequence[str | ScriptedReply],
        *,
        prefill_s: float = 0.001,
        decode_s: float = 0.02,
        context_window: int = 2048,
        prefix_cache: bool = True,
        clock: SimClock | None = None,
        name: str = "scripted-fake",
    ) -> None:
        check_range("prefill_s", prefill_s, lo=0.0)
        check_range("decode_s", decode_s, lo=0.0)
        check_range("context_window", context_window, lo=2)
        self._replies = [r if isinstance(r, ScriptedReply) else ScriptedReply(r) for r in replies]
        self._next = 0
        self.prefill_s = prefill_s
        self.decode_s = decode_s
        self._window = context_window
        self._prefix_cache = prefix_cache
        self._seen: list[list[str]] = []
        self.clock = clock
        self._name = name
        self.calls: list[ScriptedCall] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._window

    @property
    def supports_prefix_cache(self) -> bool:
        return self._prefix_cache

    @property
    def remaining(self) -> int:
        """Scripted replies not yet used."""
        return len(self._replies) - self._next

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        params = params or SamplingParams()
        self.calls.append(ScriptedCall("complete", prompt, params))
        return self._generate(prompt, params)

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> Generation:
        params = params or SamplingParams()
        flags = {"add_generation_prompt": add_generation_prompt, "continue_final_message": continue_final_message}
        prompt, turns = self._render(messages, **flags)
        self.calls.append(ScriptedCall("chat", prompt, params, tuple(turns), flags))
        return self._generate(prompt, params)

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        check_range("k", k, lo=1, hi=100)
        params = SamplingParams(max_tokens=1)
        turns: list[dict[str, str]] = []
        if isinstance(prompt, str):
            text = prompt
        else:
            text, turns = self._render(prompt, **chat_flags)
        self.calls.append(ScriptedCall("next_token", text, params, tuple(turns), dict(chat_flags)))
        reply = self._take()
        tokens = fake_tokenize(reply.text)
        top = reply.top or ((TokenLogprob(tokens[0], 0.0),) if tokens else ())
        usage = self._account(text, 1 if tokens else 0, reply)
        return NextToken(tuple(sorted(top, key=lambda t: -t.logprob))[:k], usage)

    def count_tokens(self, text: str) -> int:
        return len(fake_tokenize(text))

    # -- internals ----------------------------------------------------------------------------
    def _render(
        self, messages: Sequence[Message], *, add_generation_prompt: bool = True, continue_final_message: bool = False
    ) -> tuple[str, list[dict[str, str]]]:
        turns = check_messages(messages)
        if continue_final_message and turns[-1]["role"] != "assistant":
            raise BackendError("continue_final_message=True needs the last message to have role 'assistant'")
        parts = [f"<|{t['role']}|>\n{t['content']}" + ("" if continue_final_message and i == len(turns) - 1 else "\n")
                 for i, t in enumerate(turns)]
        if add_generation_prompt and not continue_final_message:
            parts.append("<|assistant|>\n")
        return "".join(parts), turns

    def _take(self) -> ScriptedReply:
        if self._next >= len(self._replies):
            raise BackendError(f"the scripted fake's script is exhausted after {len(self._replies)} replies")
        reply = self._replies[self._next]
        self._next += 1
        return reply

    def _account(self, prompt: str, decoded: int, reply: ScriptedReply) -> Usage:
        tokens = fake_tokenize(prompt)
        check_context(len(tokens), self._window, self._name)
        cached = 0
        if self._prefix_cache:
            for seen in self._seen:
                n = 0
                for a, b in zip(seen, tokens[:-1], strict=False):
                    if a != b:
                        break
                    n += 1
                cached = max(cached, n)
            self._seen.append(tokens)
        prefill = len(tokens) - cached
        seconds = reply.seconds if reply.seconds is not None else prefill * self.prefill_s + decoded * self.decode_s
        if self.clock is not None:
            self.clock.advance(seconds)
        return Usage(prefill, cached, decoded, seconds)

    def _generate(self, prompt: str, params: SamplingParams) -> Generation:
        check_context(len(fake_tokenize(prompt)), self._window, self._name)
        reply = self._take()
        tokens = fake_tokenize(reply.text)
        budget = min(params.max_tokens, self._window - len(fake_tokenize(prompt)))
        finish: FinishReason = "stop"
        out: list[str] = []
        text = ""
        for token in tokens:
            if len(out) == budget:
                finish = "length"
                break
            out.append(token)
            text += token
            cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
                break
        # The fake is certain of its script: each token has logprob 0 and is its only candidate.
        chosen = tuple(TokenLogprob(t, 0.0) for t in out) if params.logprobs or params.top_logprobs else ()
        tops = tuple((c,) for c in chosen) if params.top_logprobs else ()
        return Generation(text, finish, self._account(prompt, len(out), reply), None, chosen, tops)
