"""The online α tuner: window from the first eviction, brute-force argmax, no look-ahead."""

from __future__ import annotations

import pytest

from tenfold.systems.marconi.cache import make_cache
from tenfold.systems.marconi.costmodel import PRESETS
from tenfold.systems.marconi.simulator import replay
from tenfold.systems.marconi.traces import Trace, chat_trace
from tenfold.systems.marconi.tuner import ALPHA_GRID, replay_static

SPEC = PRESETS.get("nvidia-hybrid-7b")
CAP = 5 * 10**8


def _run(trace: Trace) -> object:
    cache = make_cache("marconi", SPEC, CAP, bootstrap_multiplier=2)
    replay(trace, cache)
    return cache


def test_alpha_grid() -> None:
    assert ALPHA_GRID[0] == 0.0 and ALPHA_GRID[-1] == 2.0 and len(ALPHA_GRID) == 21


def test_tuner_window_and_bruteforce_argmax() -> None:
    trace = chat_trace(12, seed=3, turns=(4, 6))
    cache = _run(trace)
    tuner = cache.tuner  # type: ignore[attr-defined]
    assert tuner.n0 is not None and tuner.window == 2 * tuner.n0
    (rec,) = tuner.history
    assert rec.at_request == rec.window == tuner.window
    window = tuple(tuner.log[: rec.window])
    brute = [replay_static((SPEC, CAP, a, window, False)) for a in ALPHA_GRID]
    assert list(rec.flops_by_alpha.values()) == brute
    best = max(brute)
    assert rec.alpha == next(a for a, f in zip(ALPHA_GRID, brute, strict=True) if f == best)
    assert cache.alpha == rec.alpha  # type: ignore[attr-defined]


def test_tuner_reads_nothing_past_the_window() -> None:
    base = chat_trace(12, seed=3, turns=(4, 6))
    first = _run(base).tuner.history[0]  # type: ignore[attr-defined]
    # Same first W requests, different future: the tuning must not change.
    w = first.window
    other = chat_trace(12, seed=99, turns=(4, 6))
    mixed = Trace(base.name, base.requests[:w] + other.requests[w:])
    second = _run(mixed).tuner.history[0]  # type: ignore[attr-defined]
    assert (second.window, second.flops_by_alpha, second.alpha) == (first.window, first.flops_by_alpha, first.alpha)


def test_process_executor_matches_in_process() -> None:
    from tenfold.core.executor import LocalExecutor

    trace = chat_trace(12, seed=3, turns=(4, 6))
    local = make_cache("marconi", SPEC, CAP, bootstrap_multiplier=2, executor=LocalExecutor(workers=2))
    replay(trace, local)
    assert local.tuner.history[0].flops_by_alpha == _run(trace).tuner.history[0].flops_by_alpha  # type: ignore


@pytest.mark.slow  # starting a local Ray cluster takes about 30 s on 2 cores
def test_ray_snapshot_replays_match_in_process() -> None:
    pytest.importorskip("ray")
    from tenfold.core.executor import RayExecutor

    trace = chat_trace(12, seed=3, turns=(4, 6))
    executor = RayExecutor(num_cpus=2)
    try:
        on_ray = make_cache("marconi", SPEC, CAP, bootstrap_multiplier=2, executor=executor)
        replay(trace, on_ray)
    finally:
        executor.close()
    assert on_ray.tuner.history[0].flops_by_alpha == _run(trace).tuner.history[0].flops_by_alpha  # type: ignore


def test_retune_every_retunes_on_the_latest_window() -> None:
    trace = chat_trace(12, seed=3, turns=(4, 6))
    cache = make_cache("marconi", SPEC, CAP, bootstrap_multiplier=2, retune_every=10)
    replay(trace, cache)
    history = cache.tuner.history  # type: ignore[attr-defined]
    assert len(history) >= 2
    assert [h.at_request - history[0].at_request for h in history] == [10 * i for i in range(len(history))]
    assert all(h.window == history[0].window for h in history)
