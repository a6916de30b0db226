"""The radix tree of cached prefixes: nodes hold KV for their edge and one SSM checkpoint.

Spec §2.2. A node's ``edge`` is a run of tokens; ``depth`` is the number of tokens from the
root to the end of the edge. ``state`` is the SSM checkpoint after the edge (a size handle in
the simulator, real tensors in the engine) and ``kv`` the attention KV of the edge's tokens.
Byte accounting is by running totals (number of states, number of KV tokens), which a full
recount must always equal. Traversals are iterative, so deep trees never hit the recursion
limit.

This module is pure structure: matching, splitting, appending, removing and merging. What
to store (admission) and what to drop (eviction) live in :mod:`.admission` and
:mod:`.eviction`; the request flow that ties them together is :mod:`.cache`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tenfold.systems.marconi.costmodel import HybridModelSpec

__all__ = ["KVOps", "Match", "Node", "RadixTree", "Tree"]


class KVOps(Protocol):
    """How real KV payloads split and join (the engine's tensors); None handles need none."""

    def split(self, kv: object, k: int) -> tuple[object, object]: ...

    def concat(self, head: object, tail: object) -> object: ...


@dataclass(eq=False)
class Node:
    """One tree node. ``key`` is its key in the parent's ``children`` (first token, or the
    whole block for the vLLM+ block tree); children keep insertion order."""

    edge: tuple[int, ...]
    depth: int
    parent: Node | None
    key: object = None
    children: dict[object, Node] = field(default_factory=dict)
    has_state: bool = False
    state: object | None = None
    kv: object | None = None
    last_access: int = 0
    lock_ref: int = 0

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def __repr__(self) -> str:
        return f"Node(edge={list(self.edge)}, depth={self.depth}, t={self.last_access}, lock={self.lock_ref})"


@dataclass(frozen=True)
class Match:
    """Result of walking the tree along a token sequence.

    ``path`` lists the fully matched nodes (root excluded). ``partial`` is the node whose
    edge matched only ``partial_len`` tokens (mid-edge, never reused), if any.
    """

    path: tuple[Node, ...]
    prefix_len: int
    reusable_len: int
    partial: Node | None
    partial_len: int

    @property
    def deepest(self) -> Node | None:
        return self.path[-1] if self.path else None


class Tree:
    """Structure and byte accounting shared by the radix tree and the vLLM+ block tree."""

    def __init__(self, spec: HybridModelSpec, kv_ops: KVOps | None = None) -> None:
        self.spec = spec
        self.kv_ops = kv_ops
        self.root = Node(edge=(), depth=0, parent=None)
        self.n_states = 0
        self.kv_tokens = 0

    # -- accounting -------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return self.n_states * self.spec.ckpt_bytes + self.spec.kv_bytes(self.kv_tokens)

    def node_bytes(self, node: Node) -> int:
        """Bytes held by ``node`` itself: its checkpoint and its edge's KV."""
        return (self.spec.ckpt_bytes if node.has_state else 0) + self.spec.kv_bytes(len(node.edge))

    def recount(self) -> tuple[int, int]:
        """(states, KV tokens) counted from scratch; must equal the running totals."""
        states = tokens = 0
        for node in self.preorder():
            states += node.has_state
            tokens += len(node.edge)
        return states, tokens

    # -- traversal --------------------------------------------------------------------
    def preorder(self) -> Iterator[Node]:
        """Non-root nodes in pre-order DFS, children in insertion order (iterative)."""
        stack = list(reversed(self.root.children.values()))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children.values()))

    def __len__(self) -> int:
        return sum(1 for _ in self.preorder())

    # -- locks ------------------------------------------------------------------------
    @staticmethod
    def lock(node: Node | None, delta: int) -> None:
        """Add ``delta`` to the lock count of ``node`` and all its ancestors."""
        while node is not None and not node.is_root:
            node.lock_ref += delta
            assert node.lock_ref >= 0, "lock released twice"
            node = node.parent

    def locked_bytes(self) -> int:
        return sum(self.node_bytes(n) for n in self.preorder() if n.lock_ref > 0)

    # -- edits ------------------------------------------------------------------------
    def add_child(self, parent: Node, key: object, edge: tuple[int, ...], *, now: int,
                  state: object | None, kv: object | None, has_state: bool = True) -> Node:
        node = Node(edge=edge, depth=parent.depth + len(edge), parent=parent, key=key, has_state=has_state,
                    state=state, kv=kv, last_access=now)
        parent.children[key] = node
        self.n_states += has_state
        self.kv_tokens += len(edge)
        return node

    def remove_leaf(self, node: Node) -> int:
        """Drop a leaf with its checkpoint and KV; returns the bytes freed."""
        assert not node.children and node.parent is not None and node.lock_ref == 0
        freed = self.node_bytes(node)
        del node.parent.children[node.key]
        self.n_states -= node.has_state
        self.kv_tokens -= len(node.edge)
        node.parent = None
        return freed


class RadixTree(Tree):
    """The Marconi / SGLang+ tree: children keyed by the first token of their edge."""

    def match(self, tokens: Sequence[int]) -> Match:
        """Walk along ``tokens``: whole edges add to the reusable length, a partial edge only
        to the prefix length (mid-edge tokens are never reused), and the walk stops there."""
        path: list[Node] = []
        node = self.root
        pos = reusable = 0
        total = len(tokens)
        while pos < total:
            child = node.children.get(tokens[pos])
            if child is None:
                break
            edge = child.edge
            end = pos + len(edge)
            if end <= total and tuple(tokens[pos:end]) == edge:
                path.append(child)
                pos = end
                if child.has_state:
                    reusable = pos
                node = child
                continue
            k = 1  # first token matched by the children key
            limit = min(len(edge), total - pos)
            while k < limit and edge[k] == tokens[pos + k]:
                k += 1
            return Match(tuple(path), pos + k, reusable, child, k)
        return Match(tuple(path), pos, reusable, None, 0)

    def split(self, node: Node, k: int, *, now: int, state: object | None) -> Node:
        """Split ``node``'s edge after ``k`` tokens; the new upper node holds ``state`` and
        takes ``node``'s place (and lock count) in its parent."""
        assert 0 < k < len(node.edge) and node.parent is not None
        parent = node.parent
        head_kv, tail_kv = (self.kv_ops.split(node.kv, k) if self.kv_ops is not None and node.kv is not None
                            else (None, None))
        upper = Node(edge=node.edge[:k], depth=node.depth - len(node.edge) + k, parent=parent, key=node.key,
                     has_state=True, state=state, kv=head_kv, last_access=now, lock_ref=node.lock_ref)
        parent.children[node.key] = upper  # same key: keeps the insertion position
        node.edge = node.edge[k:]
        node.key = node.edge[0]
        node.kv = tail_kv
        node.parent = upper
        upper.children[node.key] = node
        self.n_states += 1
        return upper

    def merge_into_child(self, node: Node) -> int:
        """Drop a single-child node's checkpoint and fold its edge and KV into the child,
        which keeps its own state; ``last_access`` becomes the later of the two. Returns the
        bytes freed (the checkpoint only)."""
        assert len(node.children) == 1 and node.parent is not None and node.lock_ref == 0
        (child,) = node.children.values()
        parent = node.parent
        child.edge = node.edge + child.edge
        child.key = node.key
        if self.kv_ops is not None and node.kv is not None and child.kv is not None:
            child.kv = self.kv_ops.concat(node.kv, child.kv)
        child.last_access = max(child.last_access, node.last_access)
        child.parent = parent
        parent.children[node.key] = child  # keeps the pre-order position
        freed = self.spec.ckpt_bytes if node.has_state else 0
        self.n_states -= node.has_state
        node.parent = None
        node.children = {}
        return freed
