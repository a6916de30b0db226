"""A small discrete-event loop in the style of SimPy.

Processes are generators that ``yield`` events; the :class:`Environment` keeps a heap of
scheduled events ordered by (time, priority, insertion order), so runs are deterministic.
Used by the link emulator, load simulations and trace replays::

    env = Environment()

    def ping(env: Environment, out: list[float]) -> ProcessGenerator:
        for _ in range(3):
            yield env.timeout(1.5)
            out.append(env.now)

    seen: list[float] = []
    env.process(ping(env, seen))
    env.run()
    assert seen == [1.5, 3.0, 4.5]
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from tenfold.errors import ConfigError, TenfoldError

__all__ = [
    "Environment",
    "Event",
    "Interrupt",
    "Process",
    "ProcessGenerator",
    "Resource",
    "SimEnvClock",
    "Store",
    "Timeout",
]

URGENT = 0
NORMAL = 1

_PENDING = object()


class Interrupt(TenfoldError):
    """Thrown into a process by :meth:`Process.interrupt`."""

    @property
    def cause(self) -> Any:
        return self.args[0] if self.args else None


class Event:
    """Something that happens at one simulated time; processes wait on it by yielding it."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.callbacks: list[Callable[[Event], None]] | None = []
        self._value: Any = _PENDING
        self._ok = True

    @property
    def triggered(self) -> bool:
        return self._value is not _PENDING

    @property
    def processed(self) -> bool:
        return self.callbacks is None

    @property
    def value(self) -> Any:
        if self._value is _PENDING:
            raise TenfoldError("event value is not yet available")
        return self._value

    def succeed(self, value: Any = None) -> Event:
        """Schedule this event now with ``value``."""
        if self.triggered:
            raise TenfoldError(f"{self!r} has already been triggered")
        self._value = value
        self.env._schedule(self, NORMAL, 0.0)
        return self

    def fail(self, exc: BaseException) -> Event:
        """Schedule this event now as failed; waiting processes get ``exc`` thrown in."""
        if self.triggered:
            raise TenfoldError(f"{self!r} has already been triggered")
        self._ok = False
        self._value = exc
        self.env._schedule(self, NORMAL, 0.0)
        return self


class Timeout(Event):
    """An event that triggers ``delay`` seconds after its creation."""

    def __init__(self, env: Environment, delay: float, value: Any = None) -> None:
        if delay < 0:
            raise ConfigError("delay", delay, "must be >= 0")
        super().__init__(env)
        self._value = value
        env._schedule(self, NORMAL, delay)


ProcessGenerator = Generator[Event, Any, Any]


class Process(Event):
    """Runs a generator; the process itself is an event that triggers when it returns."""

    def __init__(self, env: Environment, generator: ProcessGenerator) -> None:
        if not hasattr(generator, "throw"):
            raise ConfigError("generator", generator, "must be a generator (a function that yields events)")
        super().__init__(env)
        self._generator = generator
        self._target: Event | None = None
        start = Event(env)
        start.callbacks = [self._resume]
        start._value = None
        env._schedule(start, URGENT, 0.0)

    @property
    def is_alive(self) -> bool:
        return not self.triggered

    def interrupt(self, cause: Any = None) -> None:
        """Throw :class:`Interrupt` into the process at the current time."""
        if not self.is_alive:
            raise TenfoldError(f"{self!r} has terminated and cannot be interrupted")
        event = Event(self.env)
        event._ok = False
        event._value = Interrupt(cause)
        event.callbacks = [self._resume]
        self.env._schedule(event, URGENT, 0.0)

    def _resume(self, event: Event) -> None:
        if not self.is_alive:
            return
        # An interrupt detaches the process from whatever it was waiting on.
        target = self._target
        if target is not None and target is not event and target.callbacks and self._resume in target.callbacks:
            target.callbacks.remove(self._resume)
        self.env._active = self
        while True:
            try:
                nxt = self._generator.send(event._value) if event._ok else self._generator.throw(event._value)
            except StopIteration as stop:
                self._target = None
                self.succeed(stop.value)
                break
            except BaseException as exc:
                self._target = None
                self.fail(exc)
                break
            if not isinstance(nxt, Event):
                err = ConfigError("yield", nxt, "a process must yield Event objects")
                event = Event(self.env)
                event._ok, event._value = False, err
                continue
            if nxt.callbacks is not None:
                nxt.callbacks.append(self._resume)
                self._target = nxt
                break
            event = nxt  # already processed: continue at once with its value
        self.env._active = None


class Environment:
    """The event loop: a clock and a heap of scheduled events."""

    def __init__(self, initial_time: float = 0.0) -> None:
        self._now = float(initial_time)
        self._queue: list[tuple[float, int, int, Event]] = []
        self._eid = 0
        self._active: Process | None = None
        self.events_processed = 0

    @property
    def now(self) -> float:
        return self._now

    @property
    def active_process(self) -> Process | None:
        return self._active

    def event(self) -> Event:
        return Event(self)

    def timeout(self, delay: float, value: Any = None) -> Timeout:
        return Timeout(self, delay, value)

    def process(self, generator: ProcessGenerator) -> Process:
        return Process(self, generator)

    def _schedule(self, event: Event, priority: int, delay: float) -> None:
        heapq.heappush(self._queue, (self._now + delay, priority, self._eid, event))
        self._eid += 1

    def peek(self) -> float:
        """Time of the next event, or infinity if none is scheduled."""
        return self._queue[0][0] if self._queue else float("inf")

    def step(self) -> None:
        """Process the next event."""
        self._now, _, _, event = heapq.heappop(self._queue)
        callbacks, event.callbacks = event.callbacks, None
        self.events_processed += 1
        for callback in callbacks or ():
            callback(event)
        if not event._ok and not callbacks:
            # A failure nobody waited for must not vanish silently.
            raise event._value

    def run(self, until: float | Event | None = None) -> Any:
        """Run until no events remain, until time ``until``, or until event ``until`` triggers."""
        stop_at = float("inf")
        stop_event: Event | None = None
        if isinstance(until, Event):
            stop_event = until
        elif until is not None:
            stop_at = float(until)
            if stop_at < self._now:
                raise ConfigError("until", until, f"must be >= the current simulation time ({self._now})")
        while self._queue:
            if stop_event is not None and stop_event.processed:
                break
            if self.peek() > stop_at:
                break
            self.step()
        if stop_event is None and stop_at != float("inf"):
            self._now = stop_at
        if stop_event is not None:
            if not stop_event.triggered:
                raise TenfoldError("no scheduled events left but the 'until' event was not triggered")
            return stop_event.value
        return None

    @property
    def clock(self) -> SimEnvClock:
        """A read-only :class:`~tenfold.core.clock.Clock` view of this environment's time."""
        return SimEnvClock(self)


class SimEnvClock:
    """Clock protocol over an :class:`Environment`; ``sleep`` is not allowed inside a run."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    def now(self) -> float:
        return self._env.now

    def sleep(self, seconds: float) -> None:
        raise TenfoldError("inside a simulation, wait with 'yield env.timeout(seconds)', not sleep()")


class Store:
    """A FIFO of items with optional capacity; ``put``/``get`` return events."""

    def __init__(self, env: Environment, capacity: float = float("inf")) -> None:
        if capacity <= 0:
            raise ConfigError("capacity", capacity, "must be > 0")
        self.env = env
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self._getters: deque[Event] = deque()
        self._putters: deque[tuple[Event, Any]] = deque()

    def put(self, item: Any) -> Event:
        event = Event(self.env)
        self._putters.append((event, item))
        self._settle()
        return event

    def get(self) -> Event:
        event = Event(self.env)
        self._getters.append(event)
        self._settle()
        return event

    def _settle(self) -> None:
        progressed = True
        while progressed:
            progressed = False
            if self._putters and len(self.items) < self.capacity:
                event, item = self._putters.popleft()
                self.items.append(item)
                event.succeed()
                progressed = True
            if self._getters and self.items:
                self._getters.popleft().succeed(self.items.popleft())
                progressed = True


class Resource:
    """``capacity`` identical servers; ``request`` returns an event that triggers when granted."""

    def __init__(self, env: Environment, capacity: int = 1) -> None:
        if capacity < 1:
            raise ConfigError("capacity", capacity, "must be >= 1")
        self.env = env
        self.capacity = capacity
        self.users = 0
        self._waiting: deque[Event] = deque()

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def request(self) -> Event:
        event = Event(self.env)
        if self.users < self.capacity:
            self.users += 1
            event.succeed()
        else:
            self._waiting.append(event)
        return event

    def release(self) -> None:
        if self.users <= 0:
            raise TenfoldError("release() without a matching granted request()")
        if self._waiting:
            self._waiting.popleft().succeed()
        else:
            self.users -= 1
