"""Speculative decoding over two in-process tiny GPTs sharing a tokenizer (spec §2.4).

Each round the draft proposes up to ``k`` tokens from ``q`` (warped with the target's
temperature and top-p), the target scores all ``k + 1`` positions in one forward pass, and
token ``x_i`` is kept with probability ``min(1, p_i(x_i) / q_i(x_i))``. At the first rejection
the next token is drawn from ``norm(max(0, p_i - q_i))``; when all are kept a bonus token comes
from ``p_{k+1}``. At temperature 0 a draft token is kept iff it is the target's argmax, so the
output equals the target's greedy output. Both KV caches roll back to the kept prefix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tenfold.core.config import check_range
from tenfold.llm import Generation, LLMBackend, Message, NextToken, SamplingParams, Usage
from tenfold.systems.specreason.errors import TokenizerMismatchError

if TYPE_CHECKING:
    import torch

    from tenfold.llm.tiny_gpt import TinyGPT, Tokenizer

__all__ = ["SpeculativeBackend"]


class SpeculativeBackend:
    """An :class:`~tenfold.llm.LLMBackend` that decodes ``target``'s distribution with ``draft``'s help."""

    def __init__(self, target: TinyGPT, draft: TinyGPT, tokenizer: Tokenizer, *, k: int = 5,
                 name: str = "speculative", generation_prompt: str = "<|assistant|>\n",
                 prefix_cache: bool = True, draft_tokenizer: Tokenizer | None = None) -> None:
        from tenfold.llm import TinyGPTBackend

        check_range("k", k, lo=1)
        if target.cfg.vocab_size != draft.cfg.vocab_size:
            raise TokenizerMismatchError(
                "draft.vocab_size", draft.cfg.vocab_size,
                f"must equal the target's {target.cfg.vocab_size}: the models must share a tokenizer")
        if draft_tokenizer is not None:
            for i in range(target.cfg.vocab_size):
                if draft_tokenizer.token_text(i) != tokenizer.token_text(i):
                    raise TokenizerMismatchError(
                        f"draft_tokenizer token {i}", draft_tokenizer.token_text(i),
                        f"differs from the target's {tokenizer.token_text(i)!r}: the models must share a tokenizer")
        target.eval()
        draft.eval()
        self.target, self.draft, self.tokenizer, self.k = target, draft, tokenizer, k
        self._plain = TinyGPTBackend(target, tokenizer, name=name, prefix_cache_entries=8 if prefix_cache else 0,
                                     generation_prompt=generation_prompt)
        self._name = name
        self._reuse = prefix_cache
        # NOTE: one entry, the last sequence with both models' KV cut to the same length: a
        # SpecReason solve calls sequentially with growing prompts, so the last sequence is
        # the one to extend; the cost is one KV copy per call.
        self._last: tuple[tuple[int, ...], Any, Any] | None = None
        self.proposed = 0
        """Draft tokens proposed so far (over all calls)."""
        self.accepted = 0
        """Draft tokens the target kept so far."""

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return min(self.target.cfg.block_size, self.draft.cfg.block_size)

    @property
    def supports_prefix_cache(self) -> bool:
        return self._reuse

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        return self._plain.next_token(prompt, k, **chat_flags)

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True,
                    continue_final_message: bool = False) -> str:
        """The prompt text :meth:`chat` decodes from (the target's template)."""
        return self._plain.render_chat(messages, add_generation_prompt=add_generation_prompt,
                                       continue_final_message=continue_final_message)

    def chat(self, messages: Sequence[Message], params: SamplingParams | None = None, *,
             add_generation_prompt: bool = True, continue_final_message: bool = False) -> Generation:
        text = self.render_chat(messages, add_generation_prompt=add_generation_prompt,
                                continue_final_message=continue_final_message)
        return self.complete(text, params)

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        import torch

        from tenfold.llm.backend import check_context

        params = params or SamplingParams()
        start = time.perf_counter()
        prompt_ids = self.tokenizer.encode(prompt)
        check_context(len(prompt_ids), self.context_window, self._name)
        gen: torch.Generator | None = None
        if params.temperature > 0:
            gen = torch.Generator()
            gen.manual_seed(params.seed if params.seed is not None else int(torch.seed()) % 2**31)
        eos = self.tokenizer.eos_id
        budget = min(params.max_tokens, self.context_window - len(prompt_ids))
        ctx = list(prompt_ids)
        out: list[int] = []
        finish = "length"
        text = ""
        cached, t_cache, d_cache = self._lookup(ctx)
        with torch.inference_mode():
            # Invariant: both caches hold the KV of ctx[:-1]; ctx[-1] is fed next.
            t_cache = self._catch_up(self.target, ctx, t_cache)
            d_cache = self._catch_up(self.draft, ctx, d_cache)
            while len(out) < budget and finish == "length":
                kk = min(self.k, budget - len(out) - 1, self.context_window - len(ctx) - 1)
                kk = max(kk, 0)
                base_len = len(ctx) - 1
                # 1. The draft proposes kk tokens.
                props: list[int] = []
                qs: list[torch.Tensor] = []
                feed = [ctx[-1]]
                for _ in range(kk):
                    logits, d_cache = self._forward(self.draft, feed, d_cache)
                    q = _warp(logits[-1], params)  # (V,)
                    x = int(torch.argmax(q)) if gen is None else int(torch.multinomial(q, 1, generator=gen))
                    props.append(x)
                    qs.append(q)
                    feed = [x]
                # 2. The target scores all kk + 1 positions in one pass.
                t_logits, t_cache = self._forward(self.target, [ctx[-1], *props], t_cache)  # (kk+1, V)
                # 3. Accept or reject, left to right.
                n = 0
                new_token = -1
                for i, x in enumerate(props):
                    p = _warp(t_logits[i], params)  # (V,)
                    if gen is None:
                        ok = int(torch.argmax(p)) == x
                    else:
                        ratio = float(p[x]) / max(float(qs[i][x]), 1e-30)
                        ok = float(torch.rand((), generator=gen)) < min(1.0, ratio)
                    if not ok:
                        resid = torch.clamp(p - qs[i], min=0.0)
                        if gen is None or float(resid.sum()) <= 0.0:
                            new_token = int(torch.argmax(p))
                        else:
                            new_token = int(torch.multinomial(resid / resid.sum(), 1, generator=gen))
                        break
                    n += 1
                if n == len(props):  # every proposal kept: a bonus token from p_{kk+1}
                    p = _warp(t_logits[len(props)], params)
                    new_token = int(torch.argmax(p)) if gen is None else int(torch.multinomial(p, 1, generator=gen))
                self.proposed += len(props)
                self.accepted += n
                for token in [*props[:n], new_token]:
                    if token == eos:
                        finish = "stop"
                        break
                    out.append(token)
                    ctx.append(token)
                    text = self.tokenizer.decode(out)
                    cut = min((j for j in (text.find(s) for s in params.stop) if j >= 0), default=-1)
                    if cut >= 0:
                        text, finish = text[:cut], "stop"
                        break
                    if len(out) >= budget:
                        break
                # Roll both caches back to the kept prefix ctx[:-1].
                # The target fed old ctx + props; the draft old ctx + props[:-1] (nothing if kk = 0).
                keep = len(ctx) - 1
                t_cache = _crop(t_cache, min(keep, base_len + 1 + n))
                d_cache = _crop(d_cache, min(keep, base_len + 1 + min(n, kk - 1) if kk else base_len))
                if finish != "length" or len(out) >= budget:
                    break
                t_cache = self._catch_up(self.target, ctx, t_cache)
                d_cache = self._catch_up(self.draft, ctx, d_cache)
        self._store(ctx, t_cache, d_cache)
        usage = Usage(len(prompt_ids) - cached, cached, len(out), time.perf_counter() - start)
        return Generation(text, "stop" if finish == "stop" else "length", usage, tuple(out))

    # -- internals ----------------------------------------------------------------------------
    def _lookup(self, ids: Sequence[int]) -> tuple[int, Any, Any]:
        """Reuse the last sequence's KV for the longest common prefix (at most ``len(ids) - 1``)."""
        if not self._reuse or self._last is None:
            return 0, None, None
        key, t_cache, d_cache = self._last
        n = 0
        for a, b in zip(key, ids[: len(ids) - 1], strict=False):
            if a != b:
                break
            n += 1
        if n == 0:
            return 0, None, None
        return n, _crop(t_cache, n), _crop(d_cache, n)

    def _store(self, ctx: Sequence[int], t_cache: Any, d_cache: Any) -> None:
        if not self._reuse or t_cache is None or d_cache is None:
            return
        n = min(int(t_cache[0][0].shape[2]), int(d_cache[0][0].shape[2]), len(ctx))
        self._last = (tuple(ctx[:n]), _crop(t_cache, n), _crop(d_cache, n))

    @staticmethod
    def _forward(model: TinyGPT, ids: Sequence[int], cache: Any) -> tuple[torch.Tensor, Any]:
        import torch

        logits, kv = model(torch.tensor([list(ids)], dtype=torch.long), cache)  # (1, T, V)
        return logits[0], kv  # (T, V)

    def _catch_up(self, model: TinyGPT, ctx: list[int], cache: Any) -> Any:
        """Feed the kept tokens a cache lacks, so that it holds exactly ctx[:-1]."""
        have = 0 if cache is None else int(cache[0][0].shape[2])
        if have < len(ctx) - 1:
            cache = self._forward(model, ctx[have:-1], cache)[1]
        return cache


def _crop(cache: Any, n: int) -> Any:
    if cache is None:
        return None
    if n <= 0:
        return None
    return [(k[:, :, :n], v[:, :, :n]) for k, v in cache]


def _warp(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The sampling distribution: softmax at the temperature, then top-p, renormalised (greedy: T=1)."""
    import torch

    temperature = params.temperature if params.temperature > 0 else 1.0
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (V,)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)  # (V,), (V,)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p
        sorted_p[before >= params.top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return probs / probs.sum()


def _check_protocol(backend: SpeculativeBackend) -> LLMBackend:
    return backend
