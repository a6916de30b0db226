"""vLLM+: block checkpoints, partial blocks filled in place and reused only whole."""

from __future__ import annotations

from .helpers import CKPT, KV, edges, serve, toy_cache


def test_block_aligned_reuse_and_partial_fill() -> None:
    cache = toy_cache("vllm+", block_size=4)
    serve(cache, [1, 2, 3, 4, 5, 6])  # one full block + a partial [5,6]
    assert edges(cache.tree) == [[1, 2, 3, 4], [5, 6]]
    assert cache.used_bytes == 2 * CKPT + 6 * KV
    lk = cache.lookup([1, 2, 3, 4, 5, 9])
    assert (lk.reusable_len, lk.prefix_len, lk.checkpoint_at) == (4, 5, None)  # partial block not whole
    cache.release(lk)
    lk = cache.lookup([1, 2, 3, 4, 5, 6, 7])
    assert lk.reusable_len == 6  # the partial block matches whole
    assert cache.commit(lk, [1, 2, 3, 4, 5, 6, 7, 8, 9]).prefix_len == 6  # what was cached before
    # [5,6] is filled in place to [5,6,7,8]; [9] is a new partial block
    assert edges(cache.tree) == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert cache.used_bytes == 3 * CKPT + 9 * KV
    assert cache.tree.recount() == (3, 9)


def test_mid_block_divergence_reuses_only_whole_blocks() -> None:
    cache = toy_cache("vllm+", block_size=4)
    serve(cache, list(range(1, 13)))
    assert serve(cache, [1, 2, 3, 4, 5, 6, 0, 0, 9]) == (4, None)
    assert edges(cache.tree) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [5, 6, 0, 0], [9]]
