"""Eviction policies: Marconi's FLOP-aware score and the LRU-leaf baseline (spec §2.4).

**Marconi** (paper §4.2). Candidates are the non-root, unlocked nodes with at most one
child: leaves *and* single-child intermediates (leaving the latter out turns Marconi into
SGLang+). For a candidate with edge length ``Lc``, depth ``Lt`` and parent depth
``Lp = Lt - Lc``::

    flop_eff = [n_ssm·mamba(Lc) + n_attn·(attn(Lt) − attn(Lp)) + n_mlp·(mlp(Lt) − mlp(Lp))]
               / [ckpt_bytes + kv_bytes(Lt)]
    recency  = 1 / (now − last_access)
    S        = norm(recency) + α·norm(flop_eff)        (norm: min-max over the candidates)

The argmin is evicted; ties go to the first candidate in pre-order DFS. A leaf frees its
checkpoint and edge KV; a single-child node frees only its checkpoint and merges into its
child. Every eviction is followed by a full rescore: this naive O(N²) rescan is the
normative order.

**LRU-leaf** (SGLang+, vLLM+). A heap of unlocked leaves keyed by ``last_access``, ties to
the deeper leaf; parents that become leaves join the heap.

A policy's :meth:`victims` yields ``(node, counted_bytes)`` one at a time; the cache evicts
each before asking for the next, so the generator always sees the current tree.
``counted_bytes`` is None except under ``artifact_compat`` (see below).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import ClassVar, Protocol

from tenfold.core.registry import Registry
from tenfold.systems.marconi.costmodel import HybridModelSpec, attn_flops, mamba_flops, mlp_flops
from tenfold.systems.marconi.radix import Node, Tree

__all__ = ["EVICTION", "EvictionPolicy", "FlopAwareEviction", "LruLeafEviction", "flop_efficiency", "minmax"]


class EvictionPolicy(Protocol):
    stamp_path: ClassVar[bool]
    """True: a hit stamps every visited node (LRU); False: only the deepest (Marconi)."""

    def victims(self, tree: Tree, now: int) -> Iterator[tuple[Node, int | None]]: ...


def flop_efficiency(node: Node, spec: HybridModelSpec, *, artifact_compat: bool = False) -> float:
    """Prefill FLOPs the node saves per byte it holds."""
    lc = len(node.edge)
    lt = node.depth
    lp = lt - lc
    d = spec.d
    # NOTE: artifact_compat reproduces the artifact's MLP term mlp(Lt) − attn(Lp).
    mlp_term = mlp_flops(lt, d) - (attn_flops(lp, d) if artifact_compat else mlp_flops(lp, d))
    saved = (spec.n_ssm * mamba_flops(lc, d, spec.n) + spec.n_attn * (attn_flops(lt, d) - attn_flops(lp, d))
             + spec.n_mlp * mlp_term)
    return saved / (spec.ckpt_bytes + spec.kv_bytes(lt))


def minmax(values: list[float]) -> list[float]:
    """Min-max normalisation; all ones if the values are equal or there is at most one."""
    if len(values) <= 1:
        return [1.0] * len(values)
    lo, hi = min(values), max(values)
    if hi == lo:
        return [1.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


EVICTION: Registry[type[EvictionPolicy]] = Registry("eviction policy")


@EVICTION.register("flop_aware")
class FlopAwareEviction:
    """Marconi's eviction (and static-α when α is fixed)."""

    stamp_path: ClassVar[bool] = False

    def __init__(self, spec: HybridModelSpec, alpha: float = 0.0, *, artifact_compat: bool = False) -> None:
        self.spec = spec
        self.alpha = alpha
        self.artifact_compat = artifact_compat

    def scores(self, tree: Tree, now: int) -> list[tuple[Node, float]]:
        """(candidate, S) in pre-order DFS."""
        cands = [n for n in tree.preorder() if n.lock_ref == 0 and len(n.children) <= 1]
        recency = [1.0 / (now - n.last_access) for n in cands]
        eff = [flop_efficiency(n, self.spec, artifact_compat=self.artifact_compat) for n in cands]
        norm_r, norm_e = minmax(recency), minmax(eff)
        return [(n, r + self.alpha * e) for n, r, e in zip(cands, norm_r, norm_e, strict=True)]

    def victims(self, tree: Tree, now: int) -> Iterator[tuple[Node, int | None]]:
        while True:
            scored = self.scores(tree, now)
            if not scored:
                return
            victim, best = scored[0]
            for node, s in scored[1:]:
                if s < best:  # NOTE: strict, so ties keep the earlier node in pre-order (the artifact's order)
                    victim, best = node, s
            counted: int | None = None
            if self.artifact_compat and not victim.children:
                # NOTE: the artifact counts a leaf's freed bytes from the last scored
                # candidate (a stale loop variable), not from the victim.
                last = scored[-1][0]
                counted = self.spec.ckpt_bytes + self.spec.kv_bytes(len(last.edge))
            yield victim, counted


@EVICTION.register("lru_leaf")
class LruLeafEviction:
    """LRU over unlocked leaves; ties go to the deeper leaf (design choice), then to the
    earlier leaf in pre-order."""

    stamp_path: ClassVar[bool] = True

    def __init__(self, spec: HybridModelSpec, alpha: float = 0.0, *, artifact_compat: bool = False) -> None:
        self.spec = spec

    def victims(self, tree: Tree, now: int) -> Iterator[tuple[Node, int | None]]:
        order = {id(n): i for i, n in enumerate(tree.preorder())}
        # NOTE: key (last_access, -depth, pre-order index): ties go to the deeper leaf (design
        # choice), then to the earlier one in pre-order, so runs are deterministic.
        heap = [(n.last_access, -n.depth, order[id(n)], n) for n in tree.preorder()
                if not n.children and n.lock_ref == 0]
        heapq.heapify(heap)
        seq = len(order)
        while heap:
            _, _, _, node = heapq.heappop(heap)
            parent = node.parent
            yield node, None
            # The caller has removed ``node``; its parent may now be an evictable leaf.
            if parent is not None and not parent.is_root and not parent.children and parent.lock_ref == 0:
                heapq.heappush(heap, (parent.last_access, -parent.depth, seq, parent))
                seq += 1
