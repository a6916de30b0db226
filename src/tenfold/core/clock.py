"""Clocks, injected into every algorithm that needs the time.

Algorithms take a :class:`Clock` (or a ``now`` argument) and never call ``time.time()``
themselves, so the same code runs under :class:`SimClock` in a trace replay and under
:class:`WallClock` in a live server.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from tenfold.errors import ConfigError

__all__ = ["Clock", "SimClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """Seconds since an arbitrary origin, monotone."""

    def now(self) -> float:
        """The current time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (really, or by advancing simulated time)."""
        ...


class WallClock:
    """The machine's monotonic clock, in seconds since this clock was made."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ConfigError("seconds", seconds, "must be >= 0")
        # NOTE: a real wait, used only by real-time pacers (live servers, relays).
        time.sleep(seconds)


class SimClock:
    """Simulated time that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ConfigError("seconds", seconds, "must be >= 0: simulated time never runs backwards")
        self._now += seconds
        return self._now

    def advance_to(self, t: float) -> float:
        """Move forward to absolute time ``t`` (>= now)."""
        if t < self._now:
            raise ConfigError("t", t, f"must be >= the current simulated time ({self._now})")
        self._now = float(t)
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
