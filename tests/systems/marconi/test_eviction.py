"""Exact eviction orders: Marconi's FLOP-aware score and the LRU-leaf baseline."""

from __future__ import annotations

import random

from tenfold.systems.marconi.eviction import FlopAwareEviction, flop_efficiency, minmax
from tenfold.systems.marconi.radix import Node, Tree

from .helpers import CKPT, KV, TOY, edges, serve, toy_cache


def evict_one_by_one(cache: object, times: int) -> list[list[int]]:
    """Evict ``times`` single nodes; returns each victim's edge (as it was before eviction)."""
    from tenfold.systems.marconi.cache import PrefixCache

    assert isinstance(cache, PrefixCache)
    order = []
    for _ in range(times):
        before = {id(n): list(n.edge) for n in cache.tree.preorder()}
        cache.evict(1)
        after = {id(n) for n in cache.tree.preorder()}
        gone = [e for i, e in before.items() if i not in after]
        assert len(gone) == 1
        order.append(gone[0])
    return order


def test_alpha_zero_evicts_least_recently_used() -> None:
    cache = toy_cache("static", alpha=0.0)
    for seq in ([1, 1, 1], [2, 2, 2], [3, 3, 3]):
        serve(cache, seq)
    cache.release(cache.lookup([1, 1, 1]))  # touch A
    assert evict_one_by_one(cache, 3) == [[2, 2, 2], [3, 3, 3], [1, 1, 1]]


def test_large_alpha_evicts_short_contexts_first() -> None:
    long_seq = list(range(1, 41))
    lru = toy_cache("static", alpha=0.0)
    flop = toy_cache("static", alpha=100.0)
    for cache in (lru, flop):
        serve(cache, long_seq)
        serve(cache, [100, 101])
    assert evict_one_by_one(lru, 2) == [long_seq, [100, 101]]
    assert evict_one_by_one(flop, 2) == [[100, 101], long_seq]


def test_single_child_eviction_merges_and_keeps_kv() -> None:
    cache = toy_cache("static", alpha=0.0)
    serve(cache, [1, 2, 3, 4])
    serve(cache, [1, 2, 5, 6])
    assert edges(cache.tree) == [[1, 2], [3, 4], [5, 6]]
    assert evict_one_by_one(cache, 1) == [[3, 4]]
    used = cache.used_bytes
    freed = cache.evict(1)  # [1,2] is now a single-child node as old as its child: ties go to pre-order
    assert freed == CKPT and cache.used_bytes == used - CKPT
    assert edges(cache.tree) == [[1, 2, 5, 6]]
    (node,) = cache.tree.preorder()
    assert node.has_state and node.depth == 4 and cache.tree.kv_tokens == 4
    lk = cache.lookup([1, 2, 5, 6, 7])
    assert lk.reusable_len == 4


def test_sglang_plus_evicts_leaves_only() -> None:
    cache = toy_cache("sglang+")
    serve(cache, [1, 2, 3, 4])
    serve(cache, [1, 2, 5, 6])
    assert evict_one_by_one(cache, 3) == [[3, 4], [5, 6], [1, 2]]


def test_lru_ties_go_to_deeper_leaf() -> None:
    cache = toy_cache("sglang+")
    serve(cache, [1, 2, 3, 4])
    serve(cache, [1, 2, 3, 4, 5, 6])  # [5,6] is the new, deeper leaf; [1,2,3,4] is stamped at the same time
    cache.tree.root.children[1].last_access = 0
    deep = next(n for n in cache.tree.preorder() if n.edge == (5, 6))
    deep.last_access = 0
    assert evict_one_by_one(cache, 2) == [[5, 6], [1, 2, 3, 4]]


def test_minmax_and_flop_efficiency() -> None:
    assert minmax([]) == [] and minmax([3.0]) == [1.0] and minmax([2.0, 2.0]) == [1.0, 1.0]
    assert minmax([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    root = Node((), 0, None)
    parent = Node((1, 2), 2, root)
    child = Node((3,), 3, parent)
    eff = flop_efficiency(child, TOY)
    from tenfold.systems.marconi.costmodel import attn_flops, mamba_flops, mlp_flops

    expected = (mamba_flops(1, 4, 2) + attn_flops(3, 4) - attn_flops(2, 4) + mlp_flops(3, 4) - mlp_flops(2, 4)) / (
        CKPT + 3 * KV)
    assert eff == expected
    compat = flop_efficiency(child, TOY, artifact_compat=True)
    assert compat == (mamba_flops(1, 4, 2) + attn_flops(3, 4) - attn_flops(2, 4) + mlp_flops(3, 4)
                      - attn_flops(2, 4)) / (CKPT + 3 * KV)


def _naive_lru_victim(tree: Tree) -> Node | None:
    leaves = [(n.last_access, -n.depth, i, n) for i, n in enumerate(tree.preorder())
              if not n.children and n.lock_ref == 0]
    return min(leaves, key=lambda t: t[:3])[3] if leaves else None


def test_heap_lru_matches_naive_scan_over_random_operations() -> None:
    rng = random.Random(7)
    for policy in ("sglang+", "vllm+"):
        cache = toy_cache(policy, block_size=2) if policy == "vllm+" else toy_cache(policy)
        for _ in range(1000):
            op = rng.random()
            if op < 0.7:
                seq = [rng.randrange(4) for _ in range(rng.randrange(1, 10))]
                serve(cache, seq, n_input=rng.randrange(1, len(seq) + 1))
            elif len(cache.tree) > 0:
                expected = _naive_lru_victim(cache.tree)
                victims = cache.eviction.victims(cache.tree, cache.now + 1)
                got = next(victims)[0]
                assert got is expected


def test_flop_aware_scores_are_a_full_rescan() -> None:
    cache = toy_cache("static", alpha=1.0)
    for seq in ([1, 2, 3], [1, 2, 4, 5], [6], [6, 7, 8, 9]):
        serve(cache, seq)
    policy = cache.eviction
    assert isinstance(policy, FlopAwareEviction)
    scored = policy.scores(cache.tree, cache.now + 1)
    # candidates: every unlocked node with <= 1 child, in pre-order
    assert [list(n.edge) for n, _ in scored] == [[3], [4, 5], [6], [7, 8, 9]]
