"""The prefix cache: lookup, commit after decode, eviction and locks (spec §2.2–2.4).

The request flow, top to bottom:

1. ``lookup(input)`` walks the tree. Whole-edge matches are reusable; a mid-edge match
   only extends ``prefix_len`` (the true longest common prefix). ``checkpoint_at`` is
   ``prefix_len`` when it exceeds the reusable length: the engine should save the SSM
   state there while prefilling. The matched path (and a partially matched node) stays
   locked until ``commit`` or ``release``.
2. The engine prefills from the checkpoint at ``reusable_len`` and decodes.
3. ``commit(lookup, input+output, states)`` dry-runs the match of the whole sequence,
   asks the admission policy what to add, makes room by evicting, then splits at the
   branch point and appends the leaf. If locks keep it from making room, nothing is
   inserted (``admitted=False``): capacity is never exceeded.

A logical clock ``now`` ticks on each lookup, commit, commit-internal dry-run match and
evict call (as the artifact does); new and split nodes take ``now``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tenfold.core.api import api
from tenfold.core.executor import Executor
from tenfold.core.registry import Registry
from tenfold.errors import BackendError, ConfigError
from tenfold.systems.marconi.admission import AdmissionPlan, MarconiAdmission
from tenfold.systems.marconi.costmodel import HybridModelSpec
from tenfold.systems.marconi.eviction import EvictionPolicy, FlopAwareEviction, LruLeafEviction
from tenfold.systems.marconi.radix import KVOps, Match, Node, RadixTree, Tree
from tenfold.systems.marconi.tuner import AlphaTuner

__all__ = ["POLICIES", "CommitResult", "Lookup", "PrefixCache", "RadixCache", "StateSource", "make_cache"]

_lookup_ids = itertools.count(1)


@dataclass(frozen=True)
class Lookup:
    """What a lookup tells the engine: reuse ``reusable_len`` tokens (their KV and the SSM
    checkpoint at that offset), and checkpoint the SSM state at ``checkpoint_at`` if set."""

    reusable_len: int
    prefix_len: int
    checkpoint_at: int | None
    input_len: int
    lookup_id: int = field(default=0, compare=False)
    node: Node | None = field(default=None, repr=False, compare=False)
    """The deepest node of the locked path (the partially matched one if any)."""


@dataclass(frozen=True)
class CommitResult:
    admitted: bool
    added_bytes: int
    evicted_bytes: int
    prefix_len: int
    """Prefix of input+output already in the tree (the dry-run match)."""
    branch_at: int | None
    """Offset of the split made by this commit, if any."""


class StateSource(Protocol):
    """The engine's handles for a request's SSM states and KV (None in the simulator)."""

    def state_at(self, offset: int) -> object | None: ...

    def kv_between(self, start: int, end: int) -> object | None: ...


class PrefixCache:
    """Shared by the radix cache (Marconi, SGLang+, static-α) and the vLLM+ block cache."""

    name: str = "base"

    def __init__(self, spec: HybridModelSpec, capacity_bytes: int, eviction: EvictionPolicy, tree: Tree, *,
                 artifact_compat: bool = False, tuner: AlphaTuner | None = None) -> None:
        if capacity_bytes < spec.ckpt_bytes:
            raise ConfigError("capacity_bytes", capacity_bytes,
                              f"must hold at least one checkpoint ({spec.ckpt_bytes} bytes)")
        self.spec = spec
        self.capacity_bytes = capacity_bytes
        self.eviction = eviction
        self.tree = tree
        self.artifact_compat = artifact_compat
        self.tuner = tuner
        self.now = 0
        self.evictions = 0
        self.rejected = 0
        self._open: set[int] = set()

    @property
    def used_bytes(self) -> int:
        return self.tree.used_bytes

    @property
    def alpha(self) -> float | None:
        return getattr(self.eviction, "alpha", None) if isinstance(self.eviction, FlopAwareEviction) else None

    # -- locks and lookups ----------------------------------------------------------------
    def _open_lookup(self, reusable: int, prefix: int, checkpoint_at: int | None, n_input: int,
                     lock_node: Node | None) -> Lookup:
        lid = next(_lookup_ids)
        if self.artifact_compat:
            lock_node = None  # NOTE: the artifact holds no locks between lookup and commit.
        Tree.lock(lock_node, +1)
        self._open.add(lid)
        return Lookup(reusable, prefix, checkpoint_at, n_input, lid, lock_node)

    def _close(self, lookup: Lookup) -> None:
        if lookup.lookup_id not in self._open:
            raise ConfigError("lookup", lookup.lookup_id, "is stale: already committed or released, or from "
                              "another cache")
        self._open.discard(lookup.lookup_id)
        Tree.lock(lookup.node, -1)

    def release(self, lookup: Lookup) -> None:
        """Give up a lookup without inserting (the request failed or was cancelled)."""
        self._close(lookup)

    def _stamp(self, path: Sequence[Node]) -> None:
        # NOTE: Marconi and static-α stamp only the deepest fully matched node, SGLang+ and
        # vLLM+ every fully matched node of the path; a partially matched node is never
        # stamped (its split-off upper part takes ``now`` when commit creates it).
        if not path:
            return
        if self.eviction.stamp_path:
            for node in path:
                node.last_access = self.now
        else:
            path[-1].last_access = self.now

    # -- eviction -------------------------------------------------------------------------
    def evict(self, nbytes: int) -> int:
        """Evict until ``nbytes`` are freed or nothing unlocked is left; returns bytes freed."""
        self.now += 1
        if self.tuner is not None:
            self.tuner.on_evict()
        freed = counted = 0
        victims = self.eviction.victims(self.tree, self.now)
        while counted < nbytes:
            nxt = next(victims, None)
            if nxt is None:
                break
            node, reported = nxt
            real = self._drop(node)
            self.evictions += 1
            freed += real
            counted += real if reported is None else reported
        return freed

    def _drop(self, node: Node) -> int:
        if node.children:
            assert isinstance(self.tree, RadixTree)
            return self.tree.merge_into_child(node)
        return self.tree.remove_leaf(node)

    def _make_room(self, added: int, need: int, guard: Node | None) -> tuple[bool, int]:
        """Evict so that ``added`` bytes fit, aiming at ``need``; the dry-run path stays
        locked meanwhile. Returns (fits, bytes evicted)."""
        free = self.capacity_bytes - self.used_bytes
        if need <= free and added <= free:
            return True, 0
        # NOTE: the dry-run path is locked here even under artifact_compat (which otherwise
        # holds no locks), so that eviction can never remove the insertion point.
        Tree.lock(guard, +1)
        try:
            # Every unlocked node can eventually be evicted (merges included), so this is
            # exactly "locks block it"; checking first leaves the tree unchanged on refusal.
            if added > self.capacity_bytes - self.tree.locked_bytes():
                return False, 0
            evicted = self.evict(need - free)
            short = added - (self.capacity_bytes - self.used_bytes)
            if short > 0:
                # NOTE: only reachable under artifact_compat, whose stale byte count can stop
                # eviction early; we then evict the real shortfall so capacity still holds.
                evicted += self.evict(short)
            return True, evicted
        finally:
            Tree.lock(guard, -1)

    # -- the request flow (subclasses) ----------------------------------------------------
    def lookup(self, tokens: Sequence[int]) -> Lookup:
        raise NotImplementedError

    def commit(self, lookup: Lookup, tokens: Sequence[int], states: StateSource | None = None) -> CommitResult:
        raise NotImplementedError

    def _maybe_tune(self) -> None:
        if self.tuner is not None and self.tuner.due():
            alpha = self.tuner.tune()
            assert isinstance(self.eviction, FlopAwareEviction)
            self.eviction.alpha = alpha


class RadixCache(PrefixCache):
    """Marconi's tree with Marconi admission; eviction decides Marconi vs SGLang+."""

    def __init__(self, spec: HybridModelSpec, capacity_bytes: int, eviction: EvictionPolicy, *,
                 name: str = "radix", artifact_compat: bool = False, tuner: AlphaTuner | None = None,
                 kv_ops: KVOps | None = None) -> None:
        tree = RadixTree(spec, kv_ops)
        super().__init__(spec, capacity_bytes, eviction, tree, artifact_compat=artifact_compat, tuner=tuner)
        self.rtree = tree
        self.admission = MarconiAdmission()
        self.name = name

    def lookup(self, tokens: Sequence[int]) -> Lookup:
        self.now += 1
        m = self.rtree.match(tokens)
        self._stamp(m.path)
        checkpoint_at = m.prefix_len if m.prefix_len > m.reusable_len else None
        return self._open_lookup(m.reusable_len, m.prefix_len, checkpoint_at, len(tokens), m.partial or m.deepest)

    def commit(self, lookup: Lookup, tokens: Sequence[int], states: StateSource | None = None) -> CommitResult:
        seq = tuple(tokens)
        if len(seq) < lookup.input_len:
            raise ConfigError("tokens", len(seq), f"must extend the looked-up input of {lookup.input_len} tokens")
        # Every state and KV handle the insert needs is fetched before anything changes, so
        # a missing one (BackendError) leaves the tree, the clock and the lookup untouched.
        fetched = _fetch(states, self.admission.plan(self.rtree.match(seq), len(seq)))
        # The dry-run path (a superset of the lookup's) is locked while room is made, so
        # the lookup's own lock can go now; this also raises on a stale lookup.
        self._close(lookup)
        self.now += 1  # NOTE: the commit ticks once, and its dry-run match once more.
        if self.tuner is not None:
            self.tuner.observe(seq, lookup.input_len)
        # 1. Dry-run match of input+output.
        self.now += 1
        dry = self.rtree.match(seq)
        self._stamp(dry.path)
        plan = self.admission.plan(dry, len(seq))
        # 2-4. Make room; if locks block it, insert nothing.
        need = self.admission.need_bytes(plan, dry, len(seq), self.spec, artifact_compat=self.artifact_compat)
        fits, evicted = self._make_room(plan.added_bytes(self.spec), need, dry.partial or dry.deepest)
        if not fits:
            self.rejected += 1
            return CommitResult(False, 0, 0, dry.prefix_len, None)
        self._maybe_tune()
        # Locks kept the dry-run path intact; matching again (no tick) is a cheap safeguard.
        dry = self.rtree.match(seq)
        plan = self.admission.plan(dry, len(seq))
        if (plan.split_at, plan.leaf) != fetched.at:
            # An eviction merged nodes on the path, moving where the insert splits: fetch for
            # the new plan (the one case in which a missing state is found after evictions).
            fetched = _fetch(states, plan)
        added = self._insert(seq, dry, plan, fetched)
        assert self.used_bytes <= self.capacity_bytes
        return CommitResult(True, added, evicted, dry.prefix_len, plan.split_at)

    def _insert(self, seq: tuple[int, ...], dry: Match, plan: AdmissionPlan, fetched: _Fetched) -> int:
        before = self.used_bytes
        split_state, leaf_state, leaf_kv = fetched.split_state, fetched.leaf_state, fetched.leaf_kv
        parent = dry.deepest or self.rtree.root
        if plan.split_at is not None:
            assert dry.partial is not None
            parent = self.rtree.split(dry.partial, dry.partial_len, now=self.now, state=split_state)
        if plan.leaf is not None:
            start, end = plan.leaf
            self.rtree.add_child(parent, seq[start], seq[start:end], now=self.now, state=leaf_state, kv=leaf_kv)
        return self.used_bytes - before


@dataclass(frozen=True)
class _Fetched:
    """The states and KV handle one commit inserts, fetched before it changes anything."""

    at: tuple[int | None, tuple[int, int] | None]  # (split_at, leaf) of the plan they were fetched for
    split_state: object | None
    leaf_state: object | None
    leaf_kv: object | None


def _fetch(states: StateSource | None, plan: AdmissionPlan) -> _Fetched:
    split_state = _state(states, plan.split_at) if plan.split_at is not None else None
    leaf_state = _state(states, plan.leaf[1]) if plan.leaf is not None else None
    leaf_kv = states.kv_between(*plan.leaf) if states is not None and plan.leaf is not None else None
    return _Fetched((plan.split_at, plan.leaf), split_state, leaf_state, leaf_kv)


def _state(states: StateSource | None, offset: int) -> object | None:
    if states is None:
        return None
    state = states.state_at(offset)
    if state is None:
        raise BackendError(f"the engine has no SSM state at offset {offset} to store in the cache")
    return state


# -- construction -------------------------------------------------------------------------

CacheFactory = Callable[..., PrefixCache]
POLICIES: Registry[CacheFactory] = Registry("cache policy")


def _marconi(spec: HybridModelSpec, capacity: int, *, alpha: float | None, bootstrap_multiplier: int,
             executor: Executor | None, artifact_compat: bool, retune_every: int | None,
             kv_ops: KVOps | None, **_: object) -> PrefixCache:
    # NOTE: an explicit alpha fixes it (no tuning); otherwise the online tuner runs.
    tuner = None if alpha is not None else AlphaTuner(
        spec, capacity, multiplier=bootstrap_multiplier, executor=executor, retune_every=retune_every,
        artifact_compat=artifact_compat)
    ev = FlopAwareEviction(spec, alpha or 0.0, artifact_compat=artifact_compat)
    return RadixCache(spec, capacity, ev, name="marconi", artifact_compat=artifact_compat, tuner=tuner,
                      kv_ops=kv_ops)


def _static(spec: HybridModelSpec, capacity: int, *, alpha: float | None, artifact_compat: bool,
            kv_ops: KVOps | None, **_: object) -> PrefixCache:
    ev = FlopAwareEviction(spec, 1.0 if alpha is None else alpha, artifact_compat=artifact_compat)
    return RadixCache(spec, capacity, ev, name="static", artifact_compat=artifact_compat, kv_ops=kv_ops)


def _sglang(spec: HybridModelSpec, capacity: int, *, artifact_compat: bool, kv_ops: KVOps | None,
            **_: object) -> PrefixCache:
    return RadixCache(spec, capacity, LruLeafEviction(spec), name="sglang+", artifact_compat=artifact_compat,
                      kv_ops=kv_ops)


def _vllm(spec: HybridModelSpec, capacity: int, *, block_size: int, artifact_compat: bool,
          **_: object) -> PrefixCache:
    from tenfold.systems.marconi.blocks import BlockCache

    return BlockCache(spec, capacity, block_size=block_size, artifact_compat=artifact_compat)


POLICIES.add("marconi", _marconi)
POLICIES.add("static", _static)
POLICIES.add("sglang+", _sglang)
POLICIES.add("vllm+", _vllm)


@api(stability="beta")
def make_cache(policy: str, spec: HybridModelSpec, capacity_bytes: int, *, alpha: float | None = None,
               block_size: int = 32, bootstrap_multiplier: int = 5, executor: Executor | None = None,
               artifact_compat: bool = False, retune_every: int | None = None,
               kv_ops: KVOps | None = None) -> PrefixCache:
    """A cache by policy name: ``marconi``, ``static`` (fixed α), ``sglang+`` or ``vllm+``."""
    factory = POLICIES.get(policy)
    if alpha is not None and not (math.isfinite(alpha) and alpha >= 0):  # inf would make 0·inf = NaN scores
        raise ConfigError("alpha", alpha, "must be finite and >= 0")
    if block_size < 1:
        raise ConfigError("block_size", block_size, "must be >= 1")
    if bootstrap_multiplier < 1:
        raise ConfigError("bootstrap_multiplier", bootstrap_multiplier, "must be >= 1")
    if retune_every is not None and retune_every < 1:
        raise ConfigError("retune_every", retune_every, "must be >= 1 or None")
    return factory(spec, capacity_bytes, alpha=alpha, block_size=block_size,
                   bootstrap_multiplier=bootstrap_multiplier, executor=executor, artifact_compat=artifact_compat,
                   retune_every=retune_every, kv_ops=kv_ops)
