"""The cache's request flow: the spec's worked example, locks, capacity, bad input."""

from __future__ import annotations

import pytest

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.systems.marconi.cache import make_cache
from tenfold.systems.marconi.costmodel import PRESETS

from .helpers import CKPT, KV, TOY, edges, serve, toy_cache

R = [[1, 2, 3, 4, 5], [1, 2, 6, 7], [1, 2, 6, 8], [1, 2, 6, 7, 9], [1, 2, 3, 4]]


@pytest.mark.parametrize("policy", ["marconi", "sglang+", "static"])
def test_worked_example_r1_to_r5(policy: str) -> None:
    cache = make_cache(policy, PRESETS.get("nvidia-hybrid-7b"), 3 * 10**9)
    got = [serve(cache, r) for r in R]
    assert got == [(0, None), (0, 2), (2, 3), (4, None), (2, 4)]
    assert edges(cache.tree) == [[1, 2], [3, 4], [5], [6], [7], [9], [8]]
    assert cache.tree.recount() == (7, 9) == (cache.tree.n_states, cache.tree.kv_tokens)


def test_lookup_never_reuses_mid_edge() -> None:
    cache = toy_cache("marconi")
    serve(cache, [1, 2, 3, 4, 5, 6])
    lk = cache.lookup([1, 2, 3, 4, 9])
    assert (lk.reusable_len, lk.prefix_len, lk.checkpoint_at) == (0, 4, 4)
    cache.release(lk)
    lk = cache.lookup([1, 2, 3, 4, 5, 6, 7])
    assert (lk.reusable_len, lk.prefix_len, lk.checkpoint_at) == (6, 6, None)
    cache.release(lk)


def test_commit_adds_exactly_two_states_at_a_branch() -> None:
    cache = toy_cache("marconi")
    serve(cache, [1, 2, 3, 4])
    assert cache.used_bytes == CKPT + 4 * KV
    lk = cache.lookup([1, 2, 9])
    res = cache.commit(lk, [1, 2, 9, 10, 11])
    assert res.admitted and res.branch_at == 2
    assert res.added_bytes == 2 * CKPT + 3 * KV
    assert cache.used_bytes == 3 * CKPT + 7 * KV


def test_locked_path_survives_eviction_and_blocked_commit_is_rejected() -> None:
    cache = toy_cache("marconi", capacity=2 * CKPT + 8 * KV)
    serve(cache, [1, 2, 3, 4])
    held = cache.lookup([1, 2, 3, 4, 5])  # locks [1,2,3,4] until commit/release
    assert held.reusable_len == 4
    before = edges(cache.tree)
    res = cache.commit(cache.lookup([7, 8, 9, 10, 11]), [7, 8, 9, 10, 11, 12, 13])
    assert not res.admitted  # room only by evicting the locked node
    assert edges(cache.tree) == before and cache.used_bytes <= cache.capacity_bytes
    cache.release(held)
    res = cache.commit(cache.lookup([7, 8, 9, 10, 11]), [7, 8, 9, 10, 11, 12, 13])
    assert res.admitted and edges(cache.tree) == [[7, 8, 9, 10, 11, 12, 13]]


def test_stale_lookup_is_rejected() -> None:
    cache = toy_cache("marconi")
    lk = cache.lookup([1, 2])
    cache.commit(lk, [1, 2, 3])
    with pytest.raises(ConfigError, match="is stale"):
        cache.commit(lk, [1, 2, 3])
    with pytest.raises(ConfigError, match="is stale"):
        cache.release(lk)


def test_bad_construction() -> None:
    with pytest.raises(ConfigError, match="must hold at least one checkpoint"):
        make_cache("marconi", TOY, CKPT - 1)
    with pytest.raises(ConfigError, match=r"'alpha' = -0\.5"):
        make_cache("marconi", TOY, 1000, alpha=-0.5)
    with pytest.raises(ConfigError, match="'block_size' = 0"):
        make_cache("vllm+", TOY, 1000, block_size=0)
    with pytest.raises(ConfigError, match="'bootstrap_multiplier' = 0"):
        make_cache("marconi", TOY, 1000, bootstrap_multiplier=0)
    with pytest.raises(UnknownNameError, match=r"unknown cache policy 'lru'; known: marconi, sglang\+, static, vllm\+"):
        make_cache("lru", TOY, 1000)


class _NoStates:
    def state_at(self, offset: int) -> object | None:
        return None if offset == 2 else ("state", offset)

    def kv_between(self, start: int, end: int) -> object | None:
        return None


def test_missing_state_at_checkpoint_is_an_error_and_leaves_tree_unchanged() -> None:
    from tenfold.errors import BackendError

    cache = toy_cache("marconi")
    serve(cache, [1, 2, 3, 4])
    lk = cache.lookup([1, 2, 9])
    assert lk.checkpoint_at == 2
    with pytest.raises(BackendError, match="no SSM state at offset 2"):
        cache.commit(lk, [1, 2, 9], _NoStates())
    assert edges(cache.tree) == [[1, 2, 3, 4]] and cache.used_bytes == CKPT + 4 * KV


def test_a_failed_commit_evicts_nothing_and_keeps_its_lookup_open() -> None:
    from tenfold.errors import BackendError

    # Room for the cached [1,2,3,4] only: the failing commit would have to evict it first.
    cache = toy_cache("sglang+", capacity=CKPT + 4 * KV + 1)
    serve(cache, [1, 2, 3, 4])
    before = (edges(cache.tree), cache.used_bytes, cache.evictions)
    lk = cache.lookup([5, 6])
    now = cache.now
    with pytest.raises(BackendError, match="no SSM state at offset 2"):
        cache.commit(lk, [5, 6], _NoStates())
    assert (edges(cache.tree), cache.used_bytes, cache.evictions, cache.now) == (*before, now)
    cache.release(lk)  # still open: released by the caller, not consumed by the failure
