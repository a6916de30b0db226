"""A trace-driven bottleneck link with Mahimahi ``mm-link`` semantics, on :mod:`tenfold.core.sim`.

Semantics (Mahimahi, NSDI'13 traces; tarzan spec section 4), shared with the real-time
:class:`~tenfold.net.relay.RelayLink`:

* Each trace line is one opportunity to deliver ``mtu_bytes`` (1500) at that millisecond;
  the trace repeats with its period. An opportunity nobody uses is lost.
* Packets wait in a drop-tail FIFO bounded in packets and/or bytes; an arrival that does
  not fit is dropped and counted. An opportunity carries up to ``mtu_bytes`` of the queue:
  several small packets, or part of a large one that then finishes in later opportunities.
* Before the queue, an optional seeded Bernoulli loss (Mahimahi's ``mm-loss``) drops each
  arrival with probability ``loss``; after it, a fixed one-way delay (``mm-delay``).

So an empty queue adds nothing when a packet arrives on an opportunity: its one-way delay
is exactly ``delay_ms``. The emulator is event driven: the server process sleeps while the
queue is empty and wakes once per opportunity millisecond otherwise, so an idle or lightly
loaded link costs almost nothing.

:class:`Link` is the protocol both emulators implement, checked by one conformance suite
(``tests/conformance/test_link.py``): replay an offered schedule of (time, size) sends and
report each packet's fate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tenfold.core.api import api
from tenfold.core.config import Config, check_positive, check_range
from tenfold.core.sim import Environment, Event, ProcessGenerator
from tenfold.errors import ConfigError
from tenfold.net.trace import MTU_BYTES, Trace

__all__ = [
    "Delivery",
    "Link",
    "LinkConfig",
    "LinkResult",
    "Packet",
    "SimLink",
    "cbr_schedule",
]

_EPS_MS = 1e-6  # float slack when mapping seconds to trace milliseconds


def _check_finite(field: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(field, value, "must be a finite number")


@dataclass(frozen=True)
class LinkConfig(Config):
    """One direction of an emulated bottleneck."""

    delay_ms: float = 0.0
    """Fixed one-way propagation delay added after the queue, in ms; >= 0."""
    queue_packets: int | None = 100
    """Drop-tail limit in packets (None = unbounded); tarzan's design choice is 100."""
    queue_bytes: int | None = None
    """Drop-tail limit in bytes (None = unbounded); both limits apply when both are set."""
    loss: float = 0.0
    """Probability that an arriving packet is dropped at random, before the queue; [0, 1)."""
    seed: int = 0
    """Seed of the loss process; the same seed gives the same drops."""
    mtu_bytes: int = MTU_BYTES
    """Bytes one trace line can deliver (Mahimahi: 1504 with its tunnel header)."""

    def __post_init__(self) -> None:
        check_range("delay_ms", self.delay_ms, lo=0.0)
        _check_finite("delay_ms", self.delay_ms)
        check_range("seed", self.seed, lo=0)
        if self.queue_packets is not None:
            check_range("queue_packets", self.queue_packets, lo=1)
        if self.queue_bytes is not None:
            check_range("queue_bytes", self.queue_bytes, lo=1)
        check_range("loss", self.loss, lo=0.0, hi=1.0, hi_open=True)
        check_positive("mtu_bytes", self.mtu_bytes)


@dataclass(frozen=True)
class Packet:
    """A packet offered to the link; ``payload`` rides along untouched (e.g. RTP bytes)."""

    seq: int
    size: int
    sent_s: float
    payload: Any = None


@dataclass(frozen=True)
class Delivery:
    """What happened to one packet: ``arrived_s`` None means dropped or still in flight."""

    seq: int
    size: int
    sent_s: float
    arrived_s: float | None
    dropped: bool = False

    @property
    def delay_ms(self) -> float | None:
        return None if self.arrived_s is None else (self.arrived_s - self.sent_s) * 1000.0


@dataclass(frozen=True)
class LinkResult:
    """Per-packet outcomes of a run of ``duration_s`` and the summary the CLI prints.

    Sends happen in ``[0, duration_s)``; the run continues for the fixed delay. The trace
    line at t serves the millisecond ``(t - 1, t]``, so the run's opportunities are those in
    ``(0, duration_s]`` and what left the bottleneck on them arrives in ``(delay_s,
    duration_s + delay_s]``; throughput is measured over that window: a constant link then
    reports its rate (trace "1": 12.0 Mbps over any whole number of ms), not its rate less
    the delay's share of the run or one opportunity short.
    """

    deliveries: tuple[Delivery, ...]
    duration_s: float
    delay_s: float = 0.0

    @property
    def delivered(self) -> list[Delivery]:
        start, end = self.delay_s + _EPS_MS / 1000.0, self.duration_s + self.delay_s + _EPS_MS / 1000.0
        return [d for d in self.deliveries if d.arrived_s is not None and start < d.arrived_s <= end]

    @property
    def drops(self) -> int:
        return sum(d.dropped for d in self.deliveries)

    @property
    def throughput_mbps(self) -> float:
        return sum(d.size for d in self.delivered) * 8 / (self.duration_s * 1e6)

    def delays_ms(self) -> np.ndarray:
        return np.array([d.delay_ms for d in self.delivered], dtype=np.float64)

    def summary(self) -> dict[str, float | int]:
        delays = self.delays_ms()
        return {
            "throughput_mbps": round(self.throughput_mbps, 6),
            "mean_delay_ms": round(float(delays.mean()), 6) if delays.size else 0.0,
            "p95_delay_ms": round(float(np.percentile(delays, 95)), 6) if delays.size else 0.0,
            "drops": self.drops,
            "delivered": len(delays),
            "offered": len(self.deliveries),
            "duration_s": self.duration_s,
        }


@runtime_checkable
class Link(Protocol):
    """An emulated one-way bottleneck that replays an offered schedule."""

    @property
    def trace(self) -> Trace: ...

    @property
    def config(self) -> LinkConfig: ...

    def transmit(self, sends: Sequence[tuple[float, int]], duration_s: float) -> LinkResult:
        """Offer packet ``i`` of ``sends[i] = (time_s, size_bytes)``; report every packet's fate."""
        ...


def cbr_schedule(rate_mbps: float, seconds: float, size: int = MTU_BYTES, start_s: float = 0.0) -> list[
        tuple[float, int]]:
    """Constant-bit-rate sends of ``size`` bytes at ``rate_mbps`` for ``seconds``."""
    check_positive("rate_mbps", rate_mbps)
    _check_finite("rate_mbps", rate_mbps)
    _check_finite("seconds", seconds)
    gap = size * 8 / (rate_mbps * 1e6)
    count = int(seconds / gap)
    return [(start_s + i * gap, size) for i in range(count)]


class _Queued:
    __slots__ = ("packet", "remaining")

    def __init__(self, packet: Packet) -> None:
        self.packet = packet
        self.remaining = packet.size


@api(stability="beta")
class SimLink:
    """The discrete-event link: online (``send`` inside a simulation) or batch (``transmit``).

    Online use, inside a caller's :class:`~tenfold.core.sim.Environment`::

        link = SimLink(trace, LinkConfig(delay_ms=20), env=env, on_deliver=receiver)
        link.send(Packet(seq, size, env.now))   # False when dropped

    ``on_deliver(packet, arrival_s)`` runs at the arrival time; ``on_drop(packet)`` at once.
    """

    def __init__(self, trace: Trace, config: LinkConfig | None = None, *, env: Environment | None = None,
                 on_deliver: Callable[[Packet, float], None] | None = None,
                 on_drop: Callable[[Packet], None] | None = None,
                 on_dequeue: Callable[[Packet], None] | None = None) -> None:
        self._trace = trace
        self._config = config or LinkConfig()
        self.env = env or Environment()
        self.on_deliver = on_deliver
        self.on_drop = on_drop
        self.on_dequeue = on_dequeue
        self._queue: deque[_Queued] = deque()
        self.queued_bytes = 0
        self.drops_queue = 0
        self.drops_loss = 0
        self._rng = np.random.default_rng(self._config.seed)
        self._next_k = 0  # global index of the next unused opportunity
        self._wakeup: Event | None = None
        self._ts = trace.timestamps_ms.tolist()
        self.env.process(self._serve())

    @property
    def trace(self) -> Trace:
        return self._trace

    @property
    def config(self) -> LinkConfig:
        return self._config

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    def _opportunity_ms(self, k: int) -> int:
        cycle, index = divmod(k, len(self._ts))
        return cycle * self._trace.period_ms + int(self._ts[index])

    def send(self, packet: Packet) -> bool:
        """Offer ``packet`` now; False when random loss or the full queue drops it."""
        cfg = self._config
        if packet.size <= 0:
            raise ConfigError("size", packet.size, "must be > 0 bytes")
        if cfg.loss and self._rng.random() < cfg.loss:
            self.drops_loss += 1
            self._dropped(packet)
            return False
        full = (cfg.queue_packets is not None and len(self._queue) >= cfg.queue_packets) or (
            cfg.queue_bytes is not None and self.queued_bytes + packet.size > cfg.queue_bytes)
        if full:
            self.drops_queue += 1
            self._dropped(packet)
            return False
        self._queue.append(_Queued(packet))
        self.queued_bytes += packet.size
        if self._wakeup is not None and not self._wakeup.triggered:
            self._wakeup.succeed()
        return True

    def _dropped(self, packet: Packet) -> None:
        if self.on_drop is not None:
            self.on_drop(packet)

    def _serve(self) -> ProcessGenerator:
        env = self.env
        delay_s = self._config.delay_ms / 1000.0
        mtu = self._config.mtu_bytes
        while True:
            if not self._queue:
                self._wakeup = env.event()
                yield self._wakeup
                self._wakeup = None
                # Opportunities that passed while the queue was empty are lost.
                self._next_k = max(self._next_k, self._trace.count_until(env.now * 1000.0 - _EPS_MS))
            t_ms = self._opportunity_ms(self._next_k)
            wait = t_ms / 1000.0 - env.now
            if wait > 0:
                yield env.timeout(wait)
            now = max(t_ms / 1000.0, env.now)  # float noise may put a send a hair past its ms
            # Serve every opportunity of this millisecond, mtu bytes each.
            while self._queue and self._opportunity_ms(self._next_k) == t_ms:
                budget = mtu
                while budget > 0 and self._queue:
                    head = self._queue[0]
                    if head.remaining > budget:
                        head.remaining -= budget
                        budget = 0
                    else:
                        budget -= head.remaining
                        self._queue.popleft()
                        self.queued_bytes -= head.packet.size
                        self._depart(head.packet, now + delay_s)
                self._next_k += 1

    def _depart(self, packet: Packet, arrival_s: float) -> None:
        if self.on_dequeue is not None:
            self.on_dequeue(packet)
        if self.on_deliver is None:
            return
        deliver = self.on_deliver
        event = self.env.timeout(arrival_s - self.env.now, packet)
        assert event.callbacks is not None
        event.callbacks.append(lambda ev: deliver(ev.value, arrival_s))

    # -- batch use --------------------------------------------------------------------------

    def transmit(self, sends: Sequence[tuple[float, int]], duration_s: float) -> LinkResult:
        """Replay ``sends`` on a fresh link with this trace and config, for ``duration_s``."""
        check_positive("duration_s", duration_s)
        arrived: dict[int, float] = {}
        dropped: set[int] = set()
        env = Environment()
        link = SimLink(self._trace, self._config, env=env, on_deliver=lambda p, t: arrived.__setitem__(p.seq, t),
                       on_drop=lambda p: dropped.add(p.seq))
        order = sorted(range(len(sends)), key=lambda i: sends[i][0])

        def sender() -> ProcessGenerator:
            for i in order:
                t, size = sends[i]
                if t >= duration_s:
                    break
                if t > env.now:
                    yield env.timeout(t - env.now)
                link.send(Packet(i, size, t))

        env.process(sender())
        delay_s = self._config.delay_ms / 1000.0
        env.run(until=duration_s + delay_s)
        return LinkResult(tuple(Delivery(i, size, t, arrived.get(i), i in dropped)
                                for i, (t, size) in enumerate(sends) if t < duration_s), duration_s, delay_s)

    def saturate(self, duration_s: float, size: int = MTU_BYTES, backlog: int | None = None) -> LinkResult:
        """A backlogged sender: the queue is refilled the instant a packet leaves it.

        The link then uses every opportunity, so throughput is the trace's capacity; delay is
        the queue's drain time plus ``delay_ms``. ``backlog`` (packets kept queued) defaults
        to the queue limit, or 1000 for an unbounded queue.
        """
        check_positive("duration_s", duration_s)
        cfg = self._config
        limits = [1000] if cfg.queue_packets is None and cfg.queue_bytes is None else []
        if cfg.queue_packets is not None:
            limits.append(cfg.queue_packets)
        if cfg.queue_bytes is not None:
            limits.append(max(1, cfg.queue_bytes // size))
        target = backlog if backlog is not None else min(limits)
        env = Environment()
        records: list[list[Any]] = []  # [seq, sent, arrived, dropped]

        def offer() -> None:
            if env.now >= duration_s:
                return
            seq = len(records)
            records.append([seq, env.now, None, False])
            link.send(Packet(seq, size, env.now))

        def refill(_: Packet) -> None:
            offer()

        link = SimLink(self._trace, cfg, env=env, on_deliver=lambda p, t: records[p.seq].__setitem__(2, t),
                       on_drop=lambda p: records[p.seq].__setitem__(3, True), on_dequeue=refill)

        def start() -> ProcessGenerator:
            for _ in range(target):
                offer()
            yield env.timeout(0)

        env.process(start())
        delay_s = cfg.delay_ms / 1000.0
        env.run(until=duration_s + delay_s)
        return LinkResult(tuple(Delivery(r[0], size, r[1], r[2], r[3]) for r in records), duration_s, delay_s)
