"""Builders shared by the marconi tests: a toy spec with small, readable byte sizes."""

from __future__ import annotations

from collections.abc import Sequence

from tenfold.systems.marconi.cache import PrefixCache, make_cache
from tenfold.systems.marconi.costmodel import HybridModelSpec
from tenfold.systems.marconi.radix import Tree

# ssm_layer_bytes = 1·(4·2 + (2·4 + 2·2)·4) = 56 = one checkpoint; KV = 1·2·4·1 = 8 B/token.
TOY = HybridModelSpec(n_ssm=1, n_attn=1, n_mlp=1, d=4, n=2, bytes_per_el=1, name="toy")
CKPT, KV = 56, 8


def serve(cache: PrefixCache, tokens: Sequence[int], n_input: int | None = None) -> tuple[int, int | None]:
    """Lookup the input, commit the whole sequence; returns (reusable_len, checkpoint_at)."""
    seq = list(tokens)
    lk = cache.lookup(seq[: len(seq) if n_input is None else n_input])
    cache.commit(lk, seq)
    return lk.reusable_len, lk.checkpoint_at


def edges(tree: Tree) -> list[list[int]]:
    """Edges in pre-order."""
    return [list(n.edge) for n in tree.preorder()]


def toy_cache(policy: str, capacity: int = 10_000, **kw: object) -> PrefixCache:
    return make_cache(policy, TOY, capacity, **kw)  # type: ignore[arg-type]
