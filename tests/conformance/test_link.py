"""One suite for every :class:`tenfold.net.Link`: the discrete-event SimLink and the real-time
RelayLink between network namespaces (root; fails, never skips, without it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tenfold.net.link import Link, LinkConfig, SimLink, cbr_schedule
from tenfold.net.relay import RelayLink
from tenfold.net.trace import Trace, chunk_trace, load_trace, traces_dir

Factory = Callable[[Trace, LinkConfig], Link]

# Slack for the real-time link: kernel, scheduler and pacer add up to ~1 ms to each step on
# a loaded 2-core machine; the emulator gets none.
IMPLS = [
    pytest.param(((lambda t, c: SimLink(t, c)), 0.0), id="sim"),
    pytest.param(((lambda t, c: RelayLink(t, c)), 2.0), id="relay", marks=pytest.mark.root),
]

ONE = Trace([1])


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> tuple[Factory, float]:
    factory, slack_ms = request.param
    assert isinstance(slack_ms, float)
    return factory, slack_ms


def test_is_a_link(impl: tuple[Factory, float]) -> None:
    factory, _ = impl
    link = factory(ONE, LinkConfig())
    assert isinstance(link, Link)
    assert link.trace is ONE


def test_underload_delivers_everything_after_the_delay(impl: tuple[Factory, float]) -> None:
    factory, slack = impl
    sends = [(k / 1000, 1000) for k in range(1, 1500, 25)]  # on opportunity times, far apart
    # The emulator is checked once. The real-time relay gets up to three transmissions and
    # the first that meets every bound passes: on a shared 2-core VM a scheduler stall of a
    # few ms (seen: p95 24.4 ms in one of four runs on an idle machine) or a last packet
    # landing after the 1.5 s window is the machine, not the relay; a relay that queues
    # or loses packets fails all three.
    failures: list[str] = []
    for _ in range(3 if slack else 1):
        result = factory(ONE, LinkConfig(delay_ms=20.0)).transmit(sends, 1.5)
        assert result.drops == 0
        delays = result.delays_ms()
        assert len(delays) > 0
        bound = 20.0 + 1.0 + slack if slack else 20.0 + 1e-6
        # the p95 for the relay (a real arrival lands just after its ms and waits one
        # opportunity); every packet for the emulator
        worst = float(np.percentile(delays, 95)) if slack else float(delays.max())
        if len(result.delivered) == len(sends) and delays.min() >= 20.0 - 1e-6 and worst <= bound:
            return
        failures.append(f"delivered {len(result.delivered)}/{len(sends)}, min {delays.min():.3f} ms, "
                        f"worst {worst:.3f} ms (bound {bound:.3f} ms)")
    pytest.fail("; ".join(failures))


def test_overload_is_capped_at_trace_capacity_and_drops_are_counted(impl: tuple[Factory, float]) -> None:
    factory, slack = impl
    sends = cbr_schedule(18.0, 2.0, size=1400)
    result = factory(ONE, LinkConfig(delay_ms=10.0, queue_packets=50)).transmit(sends, 2.0)
    # Partial carry-over: 1500 B per opportunity whatever the packet size -> 12 Mbps.
    assert result.throughput_mbps == pytest.approx(12.0, rel=0.01 + slack / 100)
    assert result.drops > 0
    assert result.drops + len([d for d in result.deliveries if d.arrived_s is not None]) <= len(sends)
    # A full queue of 50 packets drains in 46.7 ms; the real-time link may hiccup on a loaded
    # machine, so it is held to its 95th percentile, the emulator to its maximum.
    delays = result.delays_ms()
    worst = float(np.percentile(delays, 95)) if slack else float(delays.max())
    assert worst <= 10.0 + 50 * 1400 * 8 / 12_000 + 1.0 + slack


def test_seeded_loss_drops_the_same_packets(impl: tuple[Factory, float]) -> None:
    factory, _ = impl
    sends = cbr_schedule(3.0, 1.0, size=1200)
    cfg = LinkConfig(delay_ms=5.0, loss=0.1, seed=3)
    result = factory(ONE, cfg).transmit(sends, 1.0)
    reference = SimLink(ONE, cfg).transmit(sends, 1.0)
    assert [d.seq for d in result.deliveries if d.dropped] == [d.seq for d in reference.deliveries if d.dropped]
    assert result.drops > 0


def test_real_trace_saturated_gives_its_capacity(impl: tuple[Factory, float]) -> None:
    factory, slack = impl
    chunk = chunk_trace(load_trace(traces_dir() / "Verizon-LTE-short.down"), 4000)[5]
    sends = cbr_schedule(chunk.mean_mbps * 1.5, 4.0, size=1400)
    result = factory(chunk, LinkConfig(delay_ms=20.0, queue_packets=100)).transmit(sends, 4.0)
    sim = SimLink(chunk, LinkConfig(delay_ms=20.0, queue_packets=100)).transmit(sends, 4.0)
    assert result.throughput_mbps == pytest.approx(sim.throughput_mbps, rel=0.001 + slack / 40)
    assert result.throughput_mbps == pytest.approx(chunk.implied_mbps(4.0), rel=0.05)
