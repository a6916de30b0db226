"""One emulated call (spec §2.4, §4): sender, trace-driven link, receiver, transport-cc feedback.

The loop a rate controller lives in, with real packets end to end:

* the sender encodes 30 fps frames at the controller's target (``net.video``), splits them into
  ≤ 1200 B RTP packets stamped with abs-send-time and a transport-wide sequence number, and
  paces them at 2.5 × the target;
* the forward path is ``net.link.SimLink`` (mm-link semantics, a 100-packet drop-tail queue,
  one-way delay RTT/2); the return path is a fixed RTT/2 delay;
* the receiver assembles frames, asks for retransmissions and key frames (``net.playout``),
  and every 50 ms sends a compound RTCP datagram with transport-cc feedback (``net.tcc``);
* the sender decodes that datagram, feeds GCC, answers NACK and PLI, and once per 50 ms step
  logs :class:`StepTelemetry`, builds the 20 × 12 state and asks the controller for a target.

GCC always runs on the feedback, as the telemetry producer (its trendline slope is feature
12) and as the fallback a deployed learned policy keeps when it does not answer in time.
QoE comes only from frames the receiver rendered out of delivered packets.

Design choices the spec leaves open: RTT samples subtract the receiver's hold time reported
with the feedback (as RTCP's DLSR does); features with no new feedback in a step keep their
last value, and acknowledged bitrate and loss are 0 for that step.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tenfold.core.config import check_positive, check_range
from tenfold.core.sim import Environment, ProcessGenerator
from tenfold.errors import DecodeError
from tenfold.net.link import LinkConfig, Packet, SimLink
from tenfold.net.playout import QoE, VideoReceiver
from tenfold.net.rtcp import Nack, Pli, RtcpPacket, TransportCC, decode_compound, encode_compound
from tenfold.net.rtp import RtpPacket, unpack_transport_seq
from tenfold.net.trace import Trace
from tenfold.net.video import EncoderConfig, Packetizer, VideoEncoder
from tenfold.systems.tarzan.config import EmuConfig
from tenfold.systems.tarzan.features import (
    STEP_MS,
    StepTelemetry,
    bps_to_action,
    feature_vector,
    reward,
    window_at,
)
from tenfold.systems.tarzan.gcc import Feedback, Gcc, PacketResult
from tenfold.systems.tarzan.telemetry import StepRow

__all__ = ["CallResult", "CallSpec", "GccController", "RateController", "ScheduleController", "SenderStats",
           "run_call"]

_UDP_IP_BYTES = 28
_TCC_EXT = 5
_HISTORY = 2048


class RateController(Protocol):
    """Chooses the target at each 50 ms step from the state window (and GCC, always running)."""

    name: str

    def decide(self, step: int, window: np.ndarray, gcc: Gcc, now_ms: float) -> float:
        ...


class GccController:
    """The incumbent: GCC's own target."""

    name = "gcc"

    def decide(self, step: int, window: np.ndarray, gcc: Gcc, now_ms: float) -> float:
        return float(gcc.target_bps(now_ms))


class ScheduleController:
    """An open-loop schedule of per-step targets (the reordering oracle)."""

    name = "oracle"

    def __init__(self, schedule_bps: np.ndarray) -> None:
        self.schedule_bps = schedule_bps

    def decide(self, step: int, window: np.ndarray, gcc: Gcc, now_ms: float) -> float:
        return float(self.schedule_bps[min(step, len(self.schedule_bps) - 1)])


@dataclass(frozen=True)
class CallSpec:
    """Which call to run: a trace chunk, its name, the path RTT and the seed."""

    trace: Trace
    chunk: str
    rtt_ms: float
    level_mbps: float
    seed: int = 0
    seconds: float = 60.0

    def __post_init__(self) -> None:
        # 16-bit transport-wide sequence numbers are matched without unwrapping; 90 s at the
        # 6 Mbps ceiling stays well below 65,536 packets.
        check_range("seconds", self.seconds, 0.0, 90.0, lo_open=True)
        check_positive("rtt_ms", self.rtt_ms)

    @property
    def call_id(self) -> str:
        return f"{self.chunk}|rtt{self.rtt_ms:g}|L{self.level_mbps:g}|s{self.seed}"


@dataclass
class CallResult:
    """QoE, bitrate and the per-step log of one call."""

    spec: CallSpec
    controller: str
    qoe: QoE
    bitrate_bps: float
    rows: list[StepRow] = field(default_factory=list)
    targets_bps: list[float] = field(default_factory=list)
    opportunities_per_step: list[int] = field(default_factory=list)
    link_drops: int = 0
    retransmissions: int = 0
    malformed_feedback: int = 0


class SenderStats:
    """What a sender accumulates between two steps, from its own sends and the feedback.

    The emulated call (:func:`run_call`) and the real-network call (:mod:`.realnet`) both
    feed it transport-cc reports and close one 50 ms step at a time into the 12 logged
    fields, so the two paths compute the features the same way.
    """

    def __init__(self) -> None:
        self.sent_bytes = 0
        self.acked_bytes = 0
        self.owds: list[float] = []
        self.reported = 0
        self.lost = 0
        self.jitter_ms = 0.0
        self.last_transit: float | None = None
        self.owd_ms = 0.0
        self.rtt_ms: float | None = None
        self.min_rtt_ms: float | None = None
        self.min_owd_ms: float | None = None
        self.last_feedback_ms: float | None = None
        self.last_loss_step: int | None = None

    def on_transport_cc(self, fb: TransportCC, sent_at: dict[int, tuple[float, int]], now_ms: float,
                        hold_ms: float) -> list[PacketResult]:
        """Account one transport-cc report (packets leave ``sent_at``); returns GCC's packet results.

        RTT = now − send time of the newest reported arrival − ``hold_ms`` (the receiver's hold,
        as RTCP's DLSR reports it).
        """
        results: list[PacketResult] = []
        newest: tuple[float, float] | None = None
        for seq, arrival_us in fb.arrivals():
            if seq not in sent_at:
                continue
            send_ms, size = sent_at.pop(seq)
            arrival = None if arrival_us is None else arrival_us / 1000.0
            results.append(PacketResult(seq, send_ms, size, arrival))
            self.reported += 1
            if arrival is None:
                self.lost += 1
                continue
            owd = arrival - send_ms
            self.acked_bytes += size
            self.owds.append(owd)
            self.min_owd_ms = owd if self.min_owd_ms is None else min(self.min_owd_ms, owd)
            if self.last_transit is not None:  # RFC 3550 A.8 interarrival jitter
                self.jitter_ms += (abs(owd - self.last_transit) - self.jitter_ms) / 16.0
            self.last_transit = owd
            if newest is None or arrival >= newest[1]:
                newest = (send_ms, arrival)
        if newest is not None:
            rtt = now_ms - newest[0] - hold_ms
            self.rtt_ms = rtt
            self.min_rtt_ms = rtt if self.min_rtt_ms is None else min(self.min_rtt_ms, rtt)
        self.last_feedback_ms = now_ms
        return results

    def close_step(self, step: int, now_ms: float, prev_action: float, trendline_slope: float) -> StepTelemetry:
        """The step's telemetry; the per-step counters start again."""
        if self.lost:
            self.last_loss_step = step
        owd = float(np.mean(self.owds)) if self.owds else self.owd_ms
        self.owd_ms = owd
        tel = StepTelemetry(
            sent_bps=self.sent_bytes * 8 / (STEP_MS / 1000.0),
            acked_bps=self.acked_bytes * 8 / (STEP_MS / 1000.0),
            owd_ms=owd,
            jitter_ms=self.jitter_ms,
            rtt_ms=self.rtt_ms if self.rtt_ms is not None else 0.0,
            loss=self.lost / self.reported if self.reported else 0.0,
            prev_action=prev_action,
            min_rtt_ms=self.min_rtt_ms if self.min_rtt_ms is not None else 0.0,
            report_interval_ms=(now_ms - self.last_feedback_ms) if self.last_feedback_ms is not None else 0.0,
            steps_since_loss=(step - self.last_loss_step) if self.last_loss_step is not None else step,
            queuing_delay_ms=owd - (self.min_owd_ms if self.min_owd_ms is not None else owd),
            trendline_slope=trendline_slope,
        )
        self.sent_bytes = 0
        self.acked_bytes = 0
        self.owds = []
        self.reported = 0
        self.lost = 0
        return tel


def run_call(spec: CallSpec, controller: RateController, emu: EmuConfig | None = None,
             encoder: EncoderConfig | None = None) -> CallResult:
    """Run one call of ``spec.seconds`` and return its QoE, bitrate and telemetry rows."""
    emu = emu or EmuConfig()
    env = Environment()
    one_way_s = spec.rtt_ms / 2000.0
    gcc = Gcc()
    enc = VideoEncoder(encoder or EncoderConfig(initial_bps=gcc.target_bps(0)),
                       rng=np.random.default_rng(spec.seed))
    packetizer = Packetizer(ssrc=1, transport_cc_id=_TCC_EXT)
    receiver = VideoReceiver()
    stats = SenderStats()
    history: OrderedDict[int, RtpPacket] = OrderedDict()
    sent_at: dict[int, tuple[float, int]] = {}  # transport seq -> (send ms, bytes on the wire)
    arrivals: dict[int, float] = {}  # receiver: transport seq -> arrival ms, since the last report
    counters = {"rtx": 0, "malformed": 0, "bytes": 0}
    last_rtx: dict[int, float] = {}
    pacer = {"free_at": 0.0, "target": float(gcc.target_bps(0))}

    def deliver(packet: Packet, at_s: float) -> None:
        data: bytes = packet.payload
        receiver.on_datagram(data, at_s)
        try:
            ext = RtpPacket.decode(data).extension(_TCC_EXT)
        except DecodeError:
            return
        if ext is not None:
            arrivals[unpack_transport_seq(ext)] = at_s * 1000.0

    link = SimLink(spec.trace, LinkConfig(delay_ms=spec.rtt_ms / 2, queue_packets=emu.queue_packets,
                                          mtu_bytes=emu.mtu_bytes, seed=spec.seed), env=env, on_deliver=deliver)

    def send_now(rtp: RtpPacket) -> None:
        stamped = packetizer.stamp(rtp, env.now)
        data = stamped.encode()
        ext = stamped.extension(_TCC_EXT)
        assert ext is not None
        size = len(data) + _UDP_IP_BYTES
        sent_at[unpack_transport_seq(ext)] = (env.now * 1000.0, size)
        stats.sent_bytes += size
        counters["bytes"] += size
        link.send(Packet(unpack_transport_seq(ext), size, env.now, data))

    def paced(rtp: RtpPacket) -> None:
        # The pacer drains at pacing_factor × target: each packet waits for the previous one.
        size = len(rtp.encode()) + _UDP_IP_BYTES
        start = max(env.now, pacer["free_at"])
        pacer["free_at"] = start + size * 8 / (emu.pacing_factor * pacer["target"])
        if start <= env.now:
            send_now(rtp)
        else:
            ev = env.timeout(start - env.now, rtp)
            assert ev.callbacks is not None
            ev.callbacks.append(lambda e: send_now(e.value))

    def on_rtcp(data: bytes, hold_ms: float) -> None:
        try:
            packets = decode_compound(data)
        except DecodeError:
            counters["malformed"] += 1
            return
        now_ms = env.now * 1000.0
        for fb in packets:
            if isinstance(fb, TransportCC):
                on_tcc(fb, now_ms, hold_ms)
            elif isinstance(fb, Nack):
                for seq in fb.lost:
                    if seq in history and env.now - last_rtx.get(seq, -1e9) >= spec.rtt_ms / 1000.0:
                        last_rtx[seq] = env.now
                        counters["rtx"] += 1
                        paced(history[seq])
            elif isinstance(fb, Pli):
                enc.request_keyframe()

    def on_tcc(fb: TransportCC, now_ms: float, hold_ms: float) -> None:
        results = stats.on_transport_cc(fb, sent_at, now_ms, hold_ms)
        if results:
            gcc.on_feedback(Feedback(now_ms, tuple(results), stats.rtt_ms or spec.rtt_ms))

    def sender() -> ProcessGenerator:
        while env.now < spec.seconds:
            frame = enc.encode(env.now)
            for rtp in packetizer.packetize(frame):
                history[rtp.sequence_number] = rtp
                if len(history) > _HISTORY:
                    history.popitem(last=False)
                paced(rtp)
            yield env.timeout(enc.frame_interval_s)

    fb_count = {"n": 0, "next_seq": 0}

    def receiver_loop() -> ProcessGenerator:
        tick = emu.feedback_interval_ms / 1000.0
        while True:
            yield env.timeout(tick)
            now_ms = env.now * 1000.0
            receiver.render(env.now)
            out: list[RtcpPacket] = list(receiver.poll(env.now))
            hold_ms = 0.0
            if arrivals:
                seqs = sorted(arrivals)
                base = fb_count["next_seq"] if fb_count["next_seq"] <= seqs[0] else seqs[0]
                times = [arrivals.get(s) for s in range(base, seqs[-1] + 1)]
                out.insert(0, TransportCC.build(2, 1, base & 0xFFFF, fb_count["n"],
                                                [None if t is None else round(t * 1000) for t in times]))
                hold_ms = now_ms - arrivals[seqs[-1]]
                fb_count["n"] += 1
                fb_count["next_seq"] = seqs[-1] + 1
                arrivals.clear()
            if out:
                data = encode_compound(out)
                ev = env.timeout(one_way_s, (data, hold_ms))
                assert ev.callbacks is not None
                ev.callbacks.append(lambda e: on_rtcp(*e.value))

    features: list[np.ndarray] = []
    rows: list[StepRow] = []
    targets: list[float] = []
    opportunities: list[int] = []

    def stepper() -> ProcessGenerator:
        step = 0
        prev_action = bps_to_action(pacer["target"])
        while env.now < spec.seconds:
            # Absolute step times: summing 0.05 s would drift past the call's end.
            yield env.timeout(max(0.0, (step + 1) * STEP_MS / 1000.0 - env.now))
            now_ms = env.now * 1000.0
            tel = stats.close_step(step, now_ms, prev_action, gcc.trendline.slope)
            features.append(feature_vector(tel))
            window = window_at(np.stack(features), step)
            target = min(max(controller.decide(step, window, gcc, now_ms), 50_000.0), 6_000_000.0)
            action = bps_to_action(target)
            rows.append(StepRow(spec.call_id, spec.chunk, spec.rtt_ms, spec.level_mbps, spec.seed, step, now_ms,
                                tel, target, action, reward(tel.acked_bps, tel.owd_ms, tel.loss)))
            targets.append(target)
            start_ms = step * STEP_MS
            opportunities.append(len(spec.trace.opportunities(int(start_ms), int(start_ms + STEP_MS))))
            pacer["target"] = target
            enc.set_target(target)
            prev_action = action
            step += 1

    env.process(sender())
    env.process(receiver_loop())
    env.process(stepper())
    env.run(until=spec.seconds)
    receiver.render(spec.seconds)
    return CallResult(spec, controller.name, receiver.qoe(spec.seconds), counters["bytes"] * 8 / spec.seconds,
                      rows, targets, opportunities, link.drops_queue + link.drops_loss, counters["rtx"],
                      counters["malformed"])
