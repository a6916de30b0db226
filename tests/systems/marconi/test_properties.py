"""Hypothesis properties of the caches (spec §8.3)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenfold.systems.marconi.cache import RadixCache

from .helpers import CKPT, KV, toy_cache

seqs = st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=25)


def _lcp(a: list[int], b: tuple[int, ...]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=seqs, policy=st.sampled_from(["marconi", "sglang+", "vllm+", "static"]),
       cap_tokens=st.integers(2, 40), hold=st.integers(0, 5), out_len=st.integers(0, 4))
def test_cache_invariants(requests: list[list[int]], policy: str, cap_tokens: int, hold: int,
                          out_len: int) -> None:
    capacity = 3 * CKPT + cap_tokens * KV
    cache = toy_cache(policy, capacity=capacity, block_size=3, bootstrap_multiplier=1)
    history: list[tuple[int, ...]] = []
    held = None
    held_input: list[int] = []
    for i, inp in enumerate(requests):
        lk = cache.lookup(inp)
        # reuse never exceeds the longest common prefix with any past sequence
        assert lk.reusable_len <= max((_lcp(inp, h) for h in history), default=0)
        assert lk.reusable_len <= lk.prefix_len <= len(inp)
        if isinstance(cache, RadixCache) and lk.reusable_len:
            m = cache.rtree.match(inp)
            ends = [n for n in m.path if n.depth == lk.reusable_len]
            assert ends and ends[0].has_state  # reuse ends at a node holding a checkpoint
        if i == hold and held is None:
            held, held_input = lk, inp  # keep this request in flight: its path stays locked
            locked = [n for n in cache.tree.preorder() if n.lock_ref > 0]
            continue
        seq = tuple(inp) + tuple(100 + j for j in range(out_len))
        cache.commit(lk, seq)
        history.append(seq)
        assert cache.tree.recount() == (cache.tree.n_states, cache.tree.kv_tokens)
        assert cache.used_bytes <= capacity
        assert all(n.has_state for n in cache.tree.preorder())  # every node holds one checkpoint
        if held is not None:
            alive = set(map(id, cache.tree.preorder()))
            assert all(id(n) in alive for n in locked)  # locked nodes are never evicted
    if held is not None:
        again = cache.lookup(held_input)
        assert again.reusable_len >= held.reusable_len
        cache.release(again)
        cache.release(held)
    assert all(n.lock_ref == 0 for n in cache.tree.preorder())
