"""The real-time form of the link: a user-space UDP relay applying a Mahimahi trace between
network namespaces (tarzan spec 4: "the same queue, on the wall clock").

Why user space: Debian has no Mahimahi, and ``tc``/``netem`` cannot replay a per-packet
delivery trace, so the relay reads datagrams, queues them drop-tail, releases them on the
trace's opportunities and sends them on after the fixed delay, with the same rules as
:class:`~tenfold.net.link.SimLink`. Three namespaces (sender | relay | receiver) joined by
veth pairs keep every packet inside the testbed. A return path (receiver -> sender, e.g.
RTCP feedback) applies the fixed delay alone, as tarzan's real-network mode needs;
:meth:`RelayLink.session` hands the running testbed to callers with their own endpoints.

Timing. All three roles use the same CLOCK_REALTIME origin, so opportunity *k* happens at
``origin + t_k`` exactly as in the emulator. Arrivals are stamped by the kernel
(``SO_TIMESTAMPNS``) at the relay and at the receiver, so a relay that is scheduled late
still queues a packet at the time it really arrived, serves the opportunities it missed at
their own times (catching up), and one-way delays are measured from kernel timestamps.
The pacer waits with ``select``/``sleep`` and spins for the last half millisecond, and the
relay process runs SCHED_FIFO (``chrt -f``) where allowed: on a loaded 2-core machine that
takes the worst wake-up lateness from ~4 ms to ~0.3 ms.

The relay runs as ``python -m tenfold.net.relay`` inside the middle namespace. It reads a
JSON job on stdin, prints ``ready`` once bound, waits for a line with the origin in ns,
runs, and prints one JSON line of counters, including the 4-byte tags (first payload
bytes) of the datagrams it dropped.
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tenfold.core.api import api
from tenfold.core.config import check_positive
from tenfold.errors import DecodeError
from tenfold.net.link import Delivery, LinkConfig, LinkResult
from tenfold.net.netns import NetnsError, Testbed
from tenfold.net.trace import Trace

__all__ = ["SO_TIMESTAMPNS", "RelayLink", "RelaySession", "recv_timestamped", "run_relay"]

SO_TIMESTAMPNS: int = getattr(socket, "SO_TIMESTAMPNS", 35)
"""The socket option that makes the kernel stamp each received datagram (Linux value 35)."""
_PROBE = struct.Struct("!4sIq")  # magic, seq, send time (ns)
_MAGIC = b"TFRL"
_SPIN_S = 0.0005


def recv_timestamped(sock: socket.socket) -> tuple[bytes, int] | None:
    """One datagram and its kernel receive time (ns), or None when nothing is waiting."""
    try:
        data, anc, _flags, _addr = sock.recvmsg(65535, 256, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("@qq", value[:16])
            return data, sec * 1_000_000_000 + nsec
    return data, time.time_ns()


def _wait_until(deadline_s: float) -> None:
    while True:
        left = deadline_s - time.time()
        if left <= 0:
            return
        if left > _SPIN_S:
            time.sleep(left - _SPIN_S)  # NOTE: the real-time pacer; the spin below trims oversleep


def run_relay(job: dict[str, Any], origin_ns: int, sock_in: socket.socket, sock_out: socket.socket,
              sock_back: socket.socket | None = None) -> dict[str, Any]:
    """The relay loop: trace-driven drop-tail queue, fixed delay, seeded loss, on real time.

    With ``sock_back``, datagrams arriving there (feedback from the receiver side) go back
    to ``job["back_to"]`` after the fixed delay alone: the return path has no trace.
    """
    cfg = LinkConfig.from_dict(job["config"])
    trace = Trace(job["timestamps_ms"], period_ms=job["period_ms"])
    forward = (job["forward"][0], int(job["forward"][1]))
    ts = trace.timestamps_ms.tolist()
    n, period = len(ts), trace.period_ms
    origin = origin_ns / 1e9
    delay = cfg.delay_ms / 1000.0
    end = origin + float(job["duration_s"]) + delay + float(job.get("tail_s", 0.2))
    rng = np.random.default_rng(cfg.seed)
    queue: deque[list[Any]] = deque()  # [remaining bytes, data]
    queued_bytes = 0
    line: deque[tuple[float, bytes]] = deque()  # (due time, data)
    back: deque[tuple[float, bytes]] = deque()
    back_to = (job["back_to"][0], int(job["back_to"][1])) if sock_back is not None else None
    watched = [sock_in] if sock_back is None else [sock_in, sock_back]
    k = 0
    tag_at = int(job.get("tag_offset", 0))
    stats: dict[str, Any] = {"received": 0, "forwarded": 0, "drops_queue": 0, "drops_loss": 0, "late_max_ms": 0.0,
                             "dropped_tags": [], "returned": 0}

    def opp_s(index: int) -> float:
        cycle, i = divmod(index, n)
        return origin + (cycle * period + int(ts[i])) / 1000.0

    while True:
        now = time.time()
        if now >= end:
            break
        wake = min(opp_s(k) if queue else end, line[0][0] if line else end, back[0][0] if back else end, end)
        readable, _, _ = select.select(watched, [], [], max(0.0, wake - now))
        while sock_back is not None and sock_back in readable:
            got = recv_timestamped(sock_back)
            if got is None:
                break
            back.append((got[1] / 1e9 + delay, got[0]))
        while sock_in in readable:
            got = recv_timestamped(sock_in)
            if got is None:
                break
            data, arrival_ns = got
            stats["received"] += 1
            arrival = arrival_ns / 1e9
            full = (cfg.queue_packets is not None and len(queue) >= cfg.queue_packets) or (
                cfg.queue_bytes is not None and queued_bytes + len(data) > cfg.queue_bytes)
            if cfg.loss and rng.random() < cfg.loss:
                stats["drops_loss"] += 1
                stats["dropped_tags"].append(data[tag_at:tag_at + 4].hex())
                continue
            if full:
                stats["drops_queue"] += 1
                stats["dropped_tags"].append(data[tag_at:tag_at + 4].hex())
                continue
            if not queue:  # opportunities that passed while the queue was empty are lost
                k = max(k, trace.count_until((arrival - origin) * 1000.0 - 1e-6))
            queue.append([len(data), data])
            queued_bytes += len(data)
        now = time.time()
        while queue and opp_s(k) <= now:
            t_k = opp_s(k)
            budget = cfg.mtu_bytes
            while budget > 0 and queue:
                head = queue[0]
                if head[0] > budget:
                    head[0] -= budget
                    budget = 0
                else:
                    budget -= head[0]
                    queue.popleft()
                    queued_bytes -= len(head[1])
                    line.append((max(t_k, 0.0) + delay, head[1]))
            k += 1
        now = time.time()
        while line and line[0][0] <= now:
            due, data = line.popleft()
            stats["late_max_ms"] = max(stats["late_max_ms"], (now - due) * 1000.0)
            sock_out.sendto(data, forward)
            stats["forwarded"] += 1
        while back and back_to is not None and back[0][0] <= now:
            sock_out.sendto(back.popleft()[1], back_to)
            stats["returned"] += 1
    stats["queued_at_end"] = len(queue) + len(line)
    return stats


def _main() -> int:
    """Entry point inside the relay namespace (see the module docstring)."""
    job = json.loads(sys.stdin.readline())
    sock_in = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock_in.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock_in.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock_in.bind((job["listen"][0], int(job["listen"][1])))
    sock_out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock_back = None
    if "back_listen" in job:
        sock_back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock_back.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock_back.bind((job["back_listen"][0], int(job["back_listen"][1])))
    print("ready", flush=True)
    origin_ns = int(sys.stdin.readline())
    stats = run_relay(job, origin_ns, sock_in, sock_out, sock_back)
    print(json.dumps(stats), flush=True)
    return 0


@dataclass(frozen=True)
class RelaySession:
    """A running relay: its testbed, namespaces and addresses, and the trace's time origin.

    Send into ``relay_in`` from ``sender_ns``; it comes out at ``receiver`` in
    ``receiver_ns``. Send feedback from ``receiver_ns`` to ``relay_back``; after the fixed
    delay it reaches ``sender_back`` in ``sender_ns``.
    """

    bed: Testbed
    sender_ns: str
    relay_ns: str
    receiver_ns: str
    relay_in: tuple[str, int]
    receiver: tuple[str, int]
    relay_back: tuple[str, int]
    sender_back: tuple[str, int]
    origin_ns: int


@api(stability="alpha")
class RelayLink:
    """:class:`~tenfold.net.link.Link` over real sockets: sender | relay | receiver namespaces.

    ``transmit`` builds a fresh :class:`~tenfold.net.netns.Testbed` (root), replays the
    schedule from the sender namespace in real time, and tears everything down again. The
    sizes in the schedule are UDP payload bytes, which is what the relay counts against each
    opportunity (the emulator counts the same numbers).
    """

    def __init__(self, trace: Trace, config: LinkConfig | None = None, *, subnet: int = 201,
                 lead_s: float = 0.3, realtime: bool = True, realtime_priority: int = 20) -> None:
        self._trace = trace
        self.realtime = realtime
        self.realtime_priority = realtime_priority
        self._config = config or LinkConfig()
        self.subnet = subnet
        self.lead_s = lead_s
        self.malformed = 0
        self.last_stats: dict[str, Any] = {}

    @property
    def trace(self) -> Trace:
        return self._trace

    @property
    def config(self) -> LinkConfig:
        return self._config

    @contextlib.contextmanager
    def session(self, duration_s: float) -> Iterator[RelaySession]:
        """Build the testbed, start the relay, and yield where to send; the trace starts at
        ``session.origin_ns``. On exit the relay's counters land in :attr:`last_stats` and
        everything is torn down (also after an exception)."""
        check_positive("duration_s", duration_s)
        net = f"10.{self.subnet}"
        with Testbed() as bed:
            snd, mid, rcv = bed.namespace("snd"), bed.namespace("mid"), bed.namespace("rcv")
            bed.veth(snd, f"{net}.1.2/24", mid, f"{net}.1.1/24")
            bed.veth(mid, f"{net}.2.1/24", rcv, f"{net}.2.2/24")
            relay = bed.popen(mid, [*self._realtime_prefix(), sys.executable, "-m", "tenfold.net.relay"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert relay.stdin is not None and relay.stdout is not None
            session = RelaySession(bed, snd, mid, rcv, relay_in=(f"{net}.1.1", 5000), receiver=(f"{net}.2.2", 5001),
                                   relay_back=(f"{net}.2.1", 5002), sender_back=(f"{net}.1.2", 5003), origin_ns=0)
            job = {"listen": list(session.relay_in), "forward": list(session.receiver),
                   "back_listen": list(session.relay_back), "back_to": list(session.sender_back),
                   "config": self._config.to_dict(), "timestamps_ms": self._trace.timestamps_ms.tolist(),
                   "period_ms": self._trace.period_ms, "duration_s": duration_s, "tag_offset": 4}
            relay.stdin.write(json.dumps(job) + "\n")
            relay.stdin.flush()
            if relay.stdout.readline().strip() != "ready":
                err = relay.stderr.read() if relay.stderr is not None else ""
                raise NetnsError(f"relay failed to start: {err.strip()[-800:]}")
            session = replace(session, origin_ns=time.time_ns() + int(self.lead_s * 1e9))
            relay.stdin.write(f"{session.origin_ns}\n")
            relay.stdin.flush()
            yield session
            out, err = relay.communicate(timeout=float(duration_s) + self._config.delay_ms / 1000 + 30)
            if relay.returncode != 0:
                raise NetnsError(f"relay exited {relay.returncode}: {err.strip()[-800:]}")
            self.last_stats = json.loads(out.strip().splitlines()[-1])

    def transmit(self, sends: Sequence[tuple[float, int]], duration_s: float) -> LinkResult:
        """Replay ``sends`` from the sender namespace; kernel-stamped arrivals at the receiver."""
        if any(size < _PROBE.size or size > 65000 for _, size in sends):
            raise DecodeError(f"relay datagrams must be {_PROBE.size}..65000 bytes (they carry a probe header)")
        sent_at: dict[int, float] = {}
        arrived: dict[int, float] = {}
        with self.session(duration_s) as run:
            rx = run.bed.udp_socket(run.receiver_ns, run.receiver)
            rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            tx = run.bed.udp_socket(run.sender_ns, (run.sender_back[0], 0))
            origin = run.origin_ns / 1e9
            for i in sorted(range(len(sends)), key=lambda i: sends[i][0]):
                t, size = sends[i]
                if t >= duration_s:
                    break
                _wait_until(origin + t)
                stamp = time.time_ns()
                tx.sendto(_PROBE.pack(_MAGIC, i, stamp) + bytes(size - _PROBE.size), run.relay_in)
                sent_at[i] = (stamp - run.origin_ns) / 1e9
                self._drain(rx, arrived, run.origin_ns)
            stop = origin + duration_s + self._config.delay_ms / 1000.0 + 0.2
            while time.time() < stop:
                readable, _, _ = select.select([rx], [], [], max(0.0, stop - time.time()))
                if readable:
                    self._drain(rx, arrived, run.origin_ns)
        dropped = {int(tag, 16) for tag in self.last_stats["dropped_tags"]}
        delay_s = self._config.delay_ms / 1000.0
        deliveries = [Delivery(i, size, sent_at[i], arrived.get(i), i in dropped)
                      for i, (t, size) in enumerate(sends) if i in sent_at]
        return LinkResult(tuple(deliveries), duration_s, delay_s)

    def _realtime_prefix(self) -> list[str]:
        """``chrt -f`` when the relay may run SCHED_FIFO, so a loaded machine delays it less.

        The relay sleeps in ``select`` between packets and opportunities, so real-time
        priority costs other processes almost nothing; without ``chrt`` it runs as usual.
        """
        if self.realtime and shutil.which("chrt") is not None:
            return ["chrt", "-f", str(self.realtime_priority)]
        return []

    def _drain(self, rx: socket.socket, arrived: dict[int, float], origin_ns: int) -> None:
        while True:
            got = recv_timestamped(rx)
            if got is None:
                return
            data, ts_ns = got
            try:
                magic, seq, _sent = _PROBE.unpack_from(data)
                if magic != _MAGIC:
                    raise DecodeError(f"relay probe magic is {magic!r}; expected {_MAGIC!r}")
            except (struct.error, DecodeError):
                self.malformed += 1  # count and keep receiving
                continue
            arrived[seq] = (ts_ns - origin_ns) / 1e9


if __name__ == "__main__":
    sys.exit(_main())
