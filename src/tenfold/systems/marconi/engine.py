"""HybridEngine: serve requests on a real hybrid model with a Marconi-style prefix cache.

The cache's nodes hold real tensors: a node's ``kv`` is the attention K/V of its edge's
tokens and its ``state`` the SSM checkpoint (conv and SSM states of every SSM layer, plus
the last hidden state for the next-token logits) after the edge. Serving a request:

1. ``lookup(input)``; restore the checkpoint at ``reusable_len`` and the KV of the path;
2. prefill ``input[reusable_len:]``, split at ``checkpoint_at`` (if any) to capture the
   branch-point state there;
3. decode the output, teacher-forced (the trace's reply tokens are fed, so runs are
   deterministic), and capture the state after the last decoded token;
4. ``commit`` with those states. A split the lookup did not predict is rebuilt by a
   prefill of the prefix from scratch, and the rebuild cost is counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tenfold.core.api import api
from tenfold.errors import BackendError
from tenfold.systems.marconi.cache import PrefixCache, RadixCache, make_cache
from tenfold.systems.marconi.costmodel import HybridModelSpec
from tenfold.systems.marconi.tiny_hybrid import HybridState, TinyHybridLM

__all__ = ["EngineResult", "HybridEngine", "TorchKVOps"]

KV = list[tuple[torch.Tensor, torch.Tensor]]


class TorchKVOps:
    """Split and join per-layer (K, V) tensors along the token axis."""

    def split(self, kv: object, k: int) -> tuple[object, object]:
        assert isinstance(kv, list)
        return ([(a[:k].clone(), b[:k].clone()) for a, b in kv], [(a[k:].clone(), b[k:].clone()) for a, b in kv])

    def concat(self, head: object, tail: object) -> object:
        assert isinstance(head, list) and isinstance(tail, list)
        return [(torch.cat([a, c]), torch.cat([b, d])) for (a, b), (c, d) in zip(head, tail, strict=True)]


@dataclass(frozen=True)
class EngineResult:
    input_len: int
    reused: int
    prefill_tokens: int
    """Input tokens actually computed (excluding the decode)."""
    prefill_s: float
    """Wall-clock seconds to the first token's logits (restore + prefill)."""
    rebuild_tokens: int
    first_logits: torch.Tensor
    """(V,) next-token logits after the input."""


class _States:
    """The StateSource for one request: states captured during prefill and decode."""

    def __init__(self, engine: HybridEngine, tokens: tuple[int, ...], captured: dict[int, HybridState],
                 final: HybridState) -> None:
        self.engine = engine
        self.tokens = tokens
        self.captured = captured
        self.final = final
        self.rebuild_tokens = 0

    def state_at(self, offset: int) -> object | None:
        if offset not in self.captured:
            # NOTE: an unpredicted split: rebuild from scratch (cost counted).
            _, st = self.engine.model.prefill(torch.tensor(self.tokens[:offset]), self.engine.model.empty_state(),
                                              all_logits=False)
            self.rebuild_tokens += offset
            self.captured[offset] = st.checkpoint()
        return self.captured[offset]

    def kv_between(self, start: int, end: int) -> object | None:
        return [(k[start:end].clone(), v[start:end].clone()) for k, v in self.final.kv]


@api(stability="alpha")
class HybridEngine:
    """A single-request-at-a-time engine around :class:`TinyHybridLM` and a radix cache."""

    def __init__(self, model: TinyHybridLM, policy: str = "marconi", capacity_bytes: int = 64 << 20, *,
                 alpha: float | None = None) -> None:
        self.model = model
        self.spec = HybridModelSpec.from_torch(model)
        cache = make_cache(policy, self.spec, capacity_bytes, alpha=alpha, kv_ops=TorchKVOps())
        if not isinstance(cache, RadixCache):
            raise BackendError(f"the engine runs radix-tree policies only, not {policy!r}")
        self.cache: PrefixCache = cache
        self.rcache = cache

    def _restore(self, tokens: Sequence[int], reusable: int) -> HybridState:
        if reusable == 0:
            return self.model.empty_state()
        match = self.rcache.rtree.match(tokens)  # no clock tick: the lookup has stamped
        kv: KV | None = None
        node_state = None
        for node in match.path:
            assert isinstance(node.kv, list)
            kv = node.kv if kv is None else [(torch.cat([a, c]), torch.cat([b, d]))
                                             for (a, b), (c, d) in zip(kv, node.kv, strict=True)]
            if node.depth == reusable:
                node_state = node.state
                break
        if not isinstance(node_state, HybridState) or kv is None:
            raise BackendError(f"the cache has no state at its reusable offset {reusable}")
        restored = node_state.checkpoint()
        restored.kv = kv
        return restored

    def serve(self, input_tokens: Sequence[int], output_tokens: Sequence[int] = ()) -> EngineResult:
        inp = tuple(input_tokens)
        seq = inp + tuple(output_tokens)
        model = self.model
        with torch.inference_mode():
            t0 = time.perf_counter()
            lk = self.cache.lookup(inp)
            state = self._restore(inp, lk.reusable_len)
            captured: dict[int, HybridState] = {}
            pos = lk.reusable_len
            logits = None
            if lk.checkpoint_at is not None and lk.reusable_len < lk.checkpoint_at < len(inp):
                logits, state = model.prefill(torch.tensor(inp[pos:lk.checkpoint_at]), state, all_logits=False)
                captured[lk.checkpoint_at] = state.checkpoint()
                pos = lk.checkpoint_at
            if pos < len(inp):
                logits, state = model.prefill(torch.tensor(inp[pos:]), state, all_logits=False)
            if logits is None or (pos == len(inp) and lk.reusable_len == len(inp)):
                assert state.hidden is not None
                logits = model.logits_of(state.hidden)[None]  # a full hit: no prefill at all
            first = logits[-1].clone()
            prefill_s = time.perf_counter() - t0
            captured[len(inp)] = state.checkpoint()
            if len(seq) > len(inp):
                # NOTE: teacher-forced decode, fed as one chunk (chunked equals recurrent);
                # the last decoded token is fed too, so the leaf's state covers input+output.
                _, state = model.prefill(torch.tensor(seq[len(inp):]), state, all_logits=False)
            captured[len(seq)] = state.checkpoint()
            source = _States(self, seq, captured, state)
            self.cache.commit(lk, seq, source)
        return EngineResult(len(inp), lk.reusable_len, len(inp) - lk.reusable_len, prefill_s,
                            source.rebuild_tokens, first)

    def cached_tensor_bytes(self) -> int:
        """Σ tensor.nbytes over every node's checkpoint and KV."""
        total = 0
        for node in self.rcache.rtree.preorder():
            if isinstance(node.state, HybridState):
                total += node.state.checkpoint_nbytes()
            if isinstance(node.kv, list):
                total += sum(k.nbytes + v.nbytes for k, v in node.kv)
        return total
