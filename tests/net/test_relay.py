"""RelayLink against SimLink on a real trace (root; fails, never skips, without it)."""

from __future__ import annotations

import time

import pytest

from tenfold.net import relay as relay_mod
from tenfold.net.link import LinkConfig, SimLink, cbr_schedule
from tenfold.net.relay import RelayLink
from tenfold.net.trace import Trace, chunk_trace, load_trace, traces_dir


@pytest.mark.root
def test_relay_matches_emulator_on_real_trace() -> None:
    chunk = chunk_trace(load_trace(traces_dir() / "TMobile-LTE-short.down"), 6000)[2]
    cfg = LinkConfig(delay_ms=20.0, queue_packets=100)
    sends = cbr_schedule(chunk.mean_mbps * 1.3, 6.0, size=1400)
    sim = SimLink(chunk, cfg).transmit(sends, 6.0)
    relay_link = RelayLink(chunk, cfg)
    relay = relay_link.transmit(sends, 6.0)
    assert relay.throughput_mbps == pytest.approx(sim.throughput_mbps, rel=0.05)
    assert relay.drops == pytest.approx(sim.drops, abs=max(5, 0.05 * sim.drops))
    assert relay_link.malformed == 0
    assert relay_link.last_stats["received"] == len(sends)


@pytest.mark.root
def test_session_forward_and_return_paths() -> None:
    link = RelayLink(Trace([1]), LinkConfig(delay_ms=30.0))
    with link.session(1.0) as run:
        rx = run.bed.udp_socket(run.receiver_ns, run.receiver)
        back_rx = run.bed.udp_socket(run.sender_ns, run.sender_back)
        tx = run.bed.udp_socket(run.sender_ns, (run.sender_back[0], 0))
        back_tx = run.bed.udp_socket(run.receiver_ns, (run.receiver[0], 0))
        rx.settimeout(3)
        back_rx.settimeout(3)
        relay_mod._wait_until(run.origin_ns / 1e9 + 0.1)
        t0 = time.time()
        tx.sendto(b"media", run.relay_in)
        assert rx.recvfrom(100)[0] == b"media"
        t1 = time.time()
        back_tx.sendto(b"feedback", run.relay_back)
        assert back_rx.recvfrom(100)[0] == b"feedback"
        t2 = time.time()
    assert 0.029 <= t1 - t0 <= 0.045   # 30 ms, plus up to one opportunity and wake-ups
    assert 0.029 <= t2 - t1 <= 0.045
    assert (link.last_stats["forwarded"], link.last_stats["returned"]) == (1, 1)


class _ScriptedSocket:
    """Hands out scripted datagrams through recvmsg, then reports an empty queue."""

    def __init__(self, datagrams: list[bytes]) -> None:
        self.datagrams = list(datagrams)

    def recvmsg(self, *_: object) -> tuple[bytes, list[object], int, object]:
        if not self.datagrams:
            raise BlockingIOError
        return self.datagrams.pop(0), [], 0, None


def test_relay_receive_loop_counts_malformed_and_keeps_running() -> None:
    link = RelayLink(chunk_trace(load_trace(traces_dir() / "Verizon-LTE-short.up"), 2000)[0], LinkConfig())
    good = [relay_mod._PROBE.pack(relay_mod._MAGIC, seq, 0) + bytes(10) for seq in (7, 8)]
    sock = _ScriptedSocket([b"junk", good[0], b"XXXX" + bytes(20), b"", good[1]])
    arrived: dict[int, float] = {}
    link._drain(sock, arrived, 0)  # type: ignore[arg-type]
    assert link.malformed == 3
    assert sorted(arrived) == [7, 8]
