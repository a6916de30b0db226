"""Property: the event loop fires timeouts in (time, creation) order and never goes back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.core.sim import Environment, ProcessGenerator


@settings(max_examples=80, deadline=None)
@given(delays=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40))
def test_timeouts_fire_sorted(delays: list[float]) -> None:
    env = Environment()
    fired: list[tuple[float, int]] = []

    def waiter(i: int, d: float) -> ProcessGenerator:
        yield env.timeout(d)
        fired.append((env.now, i))

    for i, d in enumerate(delays):
        env.process(waiter(i, d))
    env.run()
    assert fired == sorted(((d, i) for i, d in enumerate(delays)))
    assert env.now == max(delays)
