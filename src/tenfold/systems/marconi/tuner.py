"""Marconi's online α tuner (spec §2.5, paper §4.2 "bootstrapping").

1. α starts at 0 (pure recency) and every committed (input, output) is logged.
2. At the first eviction, ``N0`` = requests so far and the window is ``W = m·N0``
   (``bootstrap_multiplier`` m = 5; the paper uses 15 for LMSys).
3. When request ``W`` commits (before its insert), the ``W`` logged requests are replayed
   from an empty cache with static α ∈ {0.0, 0.1, …, 2.0}: 21 independent replays, run
   through a :class:`~tenfold.core.executor.Executor` when one is given.
4. The α with the most prefill FLOPs saved is adopted; ties go to the smaller α (design
   choice). The tuner never sees a request past ``W``.

Tuning happens once, as in the artifact; ``retune_every`` re-tunes on the last ``W``
requests every that many commits (design choice, default off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenfold.core.executor import Executor
from tenfold.systems.marconi.costmodel import HybridModelSpec

__all__ = ["ALPHA_GRID", "AlphaTuner", "LoggedRequest", "TuneRecord", "replay_static"]

ALPHA_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(21))

LoggedRequest = tuple[tuple[int, ...], int]
"""(input+output tokens, input length)."""

ReplayItem = tuple[HybridModelSpec, int, float, "tuple[LoggedRequest, ...] | object", bool]
"""(spec, capacity, α, the window or a Ray object reference to it, artifact_compat)."""


def replay_static(item: ReplayItem) -> float:
    """FLOPs saved by a static-α cache over the logged requests (module level for workers)."""
    from tenfold.systems.marconi.cache import make_cache

    spec, capacity, alpha, window, compat = item
    if isinstance(window, tuple):
        requests: tuple[LoggedRequest, ...] = window
    else:  # one snapshot in Ray's object store, shared by the 21 tasks
        import ray

        assert isinstance(window, ray.ObjectRef)
        requests = ray.get(window)
    cache = make_cache("static", spec, capacity, alpha=alpha, artifact_compat=compat)
    # NOTE: artifact_compat counts FLOPs over the last 500 requests only, as the artifact does.
    first_counted = max(0, len(requests) - 500) if compat else 0
    saved = 0.0
    for i, (seq, n_input) in enumerate(requests):
        lk = cache.lookup(seq[:n_input])
        if i >= first_counted:
            saved += spec.prefill_flops(lk.reusable_len)
        cache.commit(lk, seq)
    return saved


@dataclass
class TuneRecord:
    at_request: int
    window: int
    flops_by_alpha: dict[float, float]
    alpha: float


@dataclass
class AlphaTuner:
    spec: HybridModelSpec
    capacity: int
    multiplier: int = 5
    executor: Executor | None = None
    retune_every: int | None = None
    artifact_compat: bool = False
    log: list[LoggedRequest] = field(default_factory=list)
    n0: int | None = None
    window: int | None = None
    history: list[TuneRecord] = field(default_factory=list)

    def observe(self, seq: tuple[int, ...], n_input: int) -> None:
        self.log.append((seq, n_input))

    def on_evict(self) -> None:
        if self.n0 is None:
            self.n0 = len(self.log)
            self.window = self.multiplier * max(1, self.n0)

    def due(self) -> bool:
        if self.window is None:
            return False
        if not self.history:
            return len(self.log) >= self.window
        return self.retune_every is not None and len(self.log) - self.history[-1].at_request >= self.retune_every

    def tune(self) -> float:
        assert self.window is not None
        window = tuple(self.log[-self.window:])  # the first tuning: exactly requests 1..W
        handle: object = window
        if self.executor is not None and self.executor.name == "ray":
            import ray

            handle = ray.put(window)
        items: list[ReplayItem] = [(self.spec, self.capacity, a, handle, self.artifact_compat) for a in ALPHA_GRID]
        if self.executor is not None:
            flops = self.executor.map(replay_static, items)
        else:
            flops = [replay_static(it) for it in items]
        best = 0
        for i, f in enumerate(flops):
            if f > flops[best]:  # NOTE: strict, so ties keep the smaller α (design choice)
                best = i
        record = TuneRecord(len(self.log), self.window, dict(zip(ALPHA_GRID, flops, strict=True)), ALPHA_GRID[best])
        self.history.append(record)
        return record.alpha
