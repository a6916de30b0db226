"""The vLLM+ baseline: a tree of fixed-size token blocks, each with KV *and* a checkpoint.

Spec §6 and paper §5 ("vLLM+"): vLLM's block-level prefix caching extended to hybrid
models by saving the SSM state at the end of every ``block_size`` (32) token block. A
trailing partial block is stored too; it is filled in place when a later request extends
it, and reused only when it matches whole. Eviction is LRU over leaf blocks, and a hit
touches the whole path.

This is the baseline at full strength: every block boundary is resumable, so its reuse is
the longest block-aligned prefix, limited only by how few blocks fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenfold.systems.marconi.cache import CommitResult, Lookup, PrefixCache, StateSource
from tenfold.systems.marconi.costmodel import HybridModelSpec
from tenfold.systems.marconi.eviction import LruLeafEviction
from tenfold.systems.marconi.radix import Node, Tree

__all__ = ["BlockCache", "BlockTree"]


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    k = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        k += 1
    return k


class BlockTree(Tree):
    """Children keyed by their whole block (a tuple of up to ``block_size`` tokens)."""

    def __init__(self, spec: HybridModelSpec, block_size: int) -> None:
        super().__init__(spec)
        self.block_size = block_size

    def walk(self, tokens: Sequence[int]) -> tuple[list[Node], int]:
        """Whole blocks matched from the root: (path, tokens covered)."""
        node, path, pos, b = self.root, [], 0, self.block_size
        while pos + b <= len(tokens):
            child = node.children.get(tuple(tokens[pos:pos + b]))
            if child is None:
                break
            path.append(child)
            node, pos = child, pos + b
        return path, pos

    def fill_in_place(self, node: Node, block: tuple[int, ...], now: int) -> None:
        """Extend a trailing partial block with the tokens that follow it."""
        assert node.parent is not None and not node.children and block[:len(node.edge)] == node.edge
        parent = node.parent
        del parent.children[node.key]
        self.kv_tokens += len(block) - len(node.edge)
        node.depth += len(block) - len(node.edge)
        node.edge = node.key = block
        node.last_access = now
        parent.children[block] = node


class BlockCache(PrefixCache):
    """vLLM+: block checkpoints every ``block_size`` tokens, LRU-leaf eviction."""

    name = "vllm+"

    def __init__(self, spec: HybridModelSpec, capacity_bytes: int, *, block_size: int = 32,
                 artifact_compat: bool = False) -> None:
        tree = BlockTree(spec, block_size)
        super().__init__(spec, capacity_bytes, LruLeafEviction(spec), tree, artifact_compat=artifact_compat)
        self.btree = tree
        self.block_size = block_size

    def lookup(self, tokens: Sequence[int]) -> Lookup:
        self.now += 1
        path, pos = self.btree.walk(tokens)
        node = path[-1] if path else self.btree.root
        reusable, best_lcp, partial = pos, 0, None
        for child in node.children.values():
            lcp = _lcp(child.edge, tokens[pos:])
            best_lcp = max(best_lcp, lcp)
            if lcp == len(child.edge) < self.block_size and (partial is None or lcp > len(partial.edge)):
                partial = child  # a trailing partial block, matched whole
        if partial is not None:
            path.append(partial)
            reusable = pos + len(partial.edge)
        self._stamp(path)
        # NOTE: vLLM+ saves states only at block ends, so it never asks for a checkpoint.
        return self._open_lookup(reusable, pos + best_lcp, None, len(tokens), path[-1] if path else None)

    def _plan(self, seq: tuple[int, ...]) -> tuple[list[Node], int, Node | None]:
        """(matched path, tokens covered, partial block to fill in place)."""
        path, pos = self.btree.walk(seq)
        node = path[-1] if path else self.btree.root
        tail = seq[pos:pos + self.block_size]
        if tail and tail in node.children:  # the trailing partial block is already stored
            path.append(node.children[tail])
            return path, len(seq), None
        fill = next((c for c in node.children.values()
                     if len(c.edge) < len(tail) and tail[:len(c.edge)] == c.edge and not c.children
                     and c.lock_ref == 0), None)
        return path, pos, fill

    def _added(self, seq: tuple[int, ...], pos: int, fill: Node | None) -> int:
        rest = len(seq) - pos
        blocks = -(-rest // self.block_size)
        new_states = blocks - (1 if fill is not None else 0)
        new_kv = rest - (len(fill.edge) if fill is not None else 0)
        return new_states * self.spec.ckpt_bytes + self.spec.kv_bytes(new_kv)

    def commit(self, lookup: Lookup, tokens: Sequence[int], states: StateSource | None = None) -> CommitResult:
        # The dry-run path (a superset of the lookup's) is locked while room is made, so
        # the lookup's own lock can go now; this also raises on a stale lookup.
        self._close(lookup)
        seq = tuple(tokens)
        self.now += 2  # the commit and its dry-run match
        path, pos, fill = self._plan(seq)
        self._stamp(path)
        reused = pos + (len(fill.edge) if fill is not None else 0)  # already cached: CommitResult.prefix_len
        added = self._added(seq, pos, fill)
        need = added
        if self.artifact_compat:
            # NOTE: the artifact estimates (len − 32·blocks_matched)/32 checkpoints plus KV.
            rest = len(seq) - self.block_size * len(path)
            need = (rest // self.block_size) * self.spec.ckpt_bytes + self.spec.kv_bytes(rest)
        guard = fill or (path[-1] if path else None)
        fits, evicted = self._make_room(added, need, guard)
        if not fits:
            self.rejected += 1
            return CommitResult(False, 0, 0, reused, None)
        before = self.used_bytes
        path, pos, fill = self._plan(seq)
        node = path[-1] if path else self.btree.root
        b = self.block_size
        while pos < len(seq):
            block = seq[pos:pos + b]
            if fill is not None:
                self.btree.fill_in_place(fill, block, self.now)
                node, fill = fill, None
            else:
                node = self.btree.add_child(node, block, block, now=self.now, state=None, kv=None)
            pos += len(block)
        assert self.used_bytes <= self.capacity_bytes
        return CommitResult(True, self.used_bytes - before, evicted, reused, None)
