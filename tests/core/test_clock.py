from __future__ import annotations

import pytest

from tenfold.core.clock import Clock, SimClock, WallClock
from tenfold.errors import ConfigError


def test_sim_clock_moves_only_when_told() -> None:
    clock = SimClock(start=2.0)
    assert clock.now() == 2.0
    assert clock.advance(0.5) == 2.5
    clock.sleep(1.5)
    assert clock.now() == 4.0
    assert clock.advance_to(10.0) == 10.0
    with pytest.raises(ConfigError, match="never runs backwards"):
        clock.advance(-1)
    with pytest.raises(ConfigError, match="must be >= the current simulated time"):
        clock.advance_to(3.0)


def test_wall_clock_is_monotone() -> None:
    clock = WallClock()
    a = clock.now()
    b = clock.now()
    assert 0.0 <= a <= b


def test_both_satisfy_the_protocol() -> None:
    assert isinstance(SimClock(), Clock)
    assert isinstance(WallClock(), Clock)
