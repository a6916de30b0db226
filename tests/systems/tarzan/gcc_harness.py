"""A closed loop for GCC tests: a 30 fps sender, one FIFO bottleneck, transport-cc every 50 ms.

The bottleneck is exact single-queue arithmetic (departure = max(arrival, previous
departure) + size / capacity), so a test can set the capacity over time and read back
what GCC did. Loss is injected by sequence number with a seeded rng.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tenfold.systems.tarzan.gcc import Feedback, Gcc, PacketResult


@dataclass
class LoopTrace:
    times_ms: list[float] = field(default_factory=list)
    targets_bps: list[int] = field(default_factory=list)
    acked_bps: list[float | None] = field(default_factory=list)
    overuse_ms: list[float] = field(default_factory=list)
    cuts: list[tuple[float, int, float | None]] = field(default_factory=list)
    """(time, target after the cut, acked rate the cut used) for each delay-based decrease."""


def run_loop(gcc: Gcc, capacity_bps: Callable[[float], float], duration_ms: float, rtt_ms: float = 100.0,
             loss: float = 0.0, seed: int = 0) -> LoopTrace:
    rng = np.random.default_rng(seed)
    trace = LoopTrace()
    owd = rtt_ms / 2
    seq = 0
    last_departure = 0.0
    in_flight: list[PacketResult] = []
    next_frame = 0.0
    next_feedback = 50.0
    t = 0.0
    seen_overuse = gcc.overuse_events
    seen_cuts = gcc.aimd.cuts
    while t < duration_ms:
        t = min(next_frame, next_feedback)
        if t == next_frame:
            target = gcc.target_bps(t)
            frame_bytes = target / 30 / 8
            n = max(1, math.ceil(frame_bytes / 1200))
            for i in range(n):
                size = int(frame_bytes / n) + 12
                send = t + i * (size * 8 / (2.5 * target)) * 1000  # pacer at 2.5x target
                lost = rng.random() < loss
                arrival = None
                if not lost:
                    departure = max(send, last_departure) + size * 8 / capacity_bps(send) * 1000
                    last_departure = departure
                    arrival = departure + owd
                in_flight.append(PacketResult(seq, send, size, arrival))
                seq += 1
            next_frame += 1000 / 30
        else:
            # Report every packet whose fate the receiver knows by now (its feedback takes owd back).
            horizon = t - owd
            ready = [p for p in in_flight if (p.arrival_ms if p.arrival_ms is not None else p.send_ms + owd) <= horizon]
            in_flight = [p for p in in_flight if p not in ready]
            if ready:
                gcc.on_feedback(Feedback(t, tuple(ready), rtt_ms))
            trace.times_ms.append(t)
            trace.targets_bps.append(gcc.target_bps(t))
            trace.acked_bps.append(gcc.acked.bps)
            if gcc.aimd.cuts > seen_cuts:
                trace.cuts.append((t, gcc.target_bps(t), gcc.acked.bps))
                seen_cuts = gcc.aimd.cuts
            if gcc.overuse_events > seen_overuse:
                trace.overuse_ms.append(t)
                seen_overuse = gcc.overuse_events
            next_feedback += 50.0
    return trace
