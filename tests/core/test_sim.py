"""The discrete-event loop: ordering, processes, stores, resources, errors."""

from __future__ import annotations

import pytest

from tenfold.core.sim import Environment, Interrupt, ProcessGenerator, Resource, Store
from tenfold.errors import ConfigError, TenfoldError


def test_timeouts_fire_in_time_then_insertion_order() -> None:
    env = Environment()
    log: list[tuple[float, str]] = []

    def proc(name: str, delays: list[float]) -> ProcessGenerator:
        for d in delays:
            yield env.timeout(d)
            log.append((env.now, name))

    env.process(proc("a", [1.0, 1.0]))
    env.process(proc("b", [2.0, 0.5]))
    env.run()
    # b's 2 s timeout was scheduled at t=0, before a's second one (at t=1)
    assert log == [(1.0, "a"), (2.0, "b"), (2.0, "a"), (2.5, "b")]


def test_run_until_time_stops_and_sets_now() -> None:
    env = Environment()
    ticks: list[float] = []

    def ticker() -> ProcessGenerator:
        while True:
            yield env.timeout(1.0)
            ticks.append(env.now)

    env.process(ticker())
    env.run(until=3.5)
    assert ticks == [1.0, 2.0, 3.0]
    assert env.now == 3.5
    with pytest.raises(ConfigError, match=r"until \(1.0\) must be|'until' = 1.0"):
        env.run(until=1.0)


def test_process_return_value_and_waiting_on_a_process() -> None:
    env = Environment()

    def child() -> ProcessGenerator:
        yield env.timeout(2.0)
        return 42

    def parent(out: list[int]) -> ProcessGenerator:
        value = yield env.process(child())
        out.append(value)

    out: list[int] = []
    done = env.process(parent(out))
    env.run(until=done)
    assert out == [42]
    assert env.now == 2.0


def test_store_is_fifo_and_blocks_getters() -> None:
    env = Environment()
    store = Store(env, capacity=2)
    got: list[tuple[float, str]] = []

    def consumer() -> ProcessGenerator:
        for _ in range(3):
            item = yield store.get()
            got.append((env.now, item))

    def producer() -> ProcessGenerator:
        for i, name in enumerate(["x", "y", "z"]):
            yield env.timeout(1.0 + i)
            yield store.put(name)

    env.process(consumer())
    env.process(producer())
    env.run()
    assert got == [(1.0, "x"), (3.0, "y"), (6.0, "z")]


def test_resource_serialises_users() -> None:
    env = Environment()
    server = Resource(env, capacity=1)
    finished: list[tuple[str, float]] = []

    def job(name: str, service: float) -> ProcessGenerator:
        yield server.request()
        yield env.timeout(service)
        server.release()
        finished.append((name, env.now))

    for name, service in [("a", 2.0), ("b", 1.0), ("c", 3.0)]:
        env.process(job(name, service))
    env.run()
    assert finished == [("a", 2.0), ("b", 3.0), ("c", 6.0)]
    with pytest.raises(TenfoldError, match="without a matching"):
        server.release()


def test_interrupt_reaches_the_waiting_process() -> None:
    env = Environment()
    seen: list[tuple[float, object]] = []

    def sleeper() -> ProcessGenerator:
        try:
            yield env.timeout(10.0)
        except Interrupt as intr:
            seen.append((env.now, intr.cause))

    proc = env.process(sleeper())

    def waker() -> ProcessGenerator:
        yield env.timeout(3.0)
        proc.interrupt("wake")

    env.process(waker())
    env.run()
    assert seen == [(3.0, "wake")]


def test_unhandled_process_failure_surfaces() -> None:
    env = Environment()

    def broken() -> ProcessGenerator:
        yield env.timeout(1.0)
        raise RuntimeError("boom")

    env.process(broken())
    with pytest.raises(RuntimeError, match="boom"):
        env.run()


def test_negative_delay_and_bad_capacity_are_config_errors() -> None:
    env = Environment()
    with pytest.raises(ConfigError, match="'delay' = -1"):
        env.timeout(-1)
    with pytest.raises(ConfigError, match="'capacity' = 0"):
        Store(env, capacity=0)


def test_event_count_of_a_known_run() -> None:
    env = Environment()

    def ticker() -> ProcessGenerator:
        for _ in range(100):
            yield env.timeout(0.01)

    env.process(ticker())
    env.run()
    # one start event, 100 timeouts, one process-completion event
    assert env.events_processed == 102
    assert env.now == pytest.approx(1.0)
