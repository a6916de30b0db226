"""A one-way video call over an emulated link: encoder -> packetiser -> :class:`SimLink` ->
:class:`VideoReceiver`, with NACK/PLI feedback over a fixed-delay return path.

This is the loop in which rate controllers are judged (tarzan spec 2.4): QoE comes from
frames assembled out of packets the link really delivered. The target bitrate comes from a
callable of the time, so a fixed rate, a schedule or a controller plug in alike; the
sender paces nothing itself (packets of a frame leave back to back, as without a pacer),
keeps its last 1024 packets for retransmission, and answers a PLI with a key frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tenfold.core.api import api
from tenfold.core.config import check_positive
from tenfold.core.sim import Environment, ProcessGenerator
from tenfold.net.link import LinkConfig, Packet, SimLink
from tenfold.net.playout import PlayoutConfig, QoE, VideoReceiver
from tenfold.net.rtcp import Nack, Pli, RtcpPacket
from tenfold.net.rtp import RtpPacket
from tenfold.net.trace import Trace
from tenfold.net.video import EncoderConfig, Packetizer, VideoEncoder

__all__ = ["CallResult", "run_video_call"]

_UDP_IP_BYTES = 28  # what the link carries beyond the RTP packet
_HISTORY = 1024


@dataclass(frozen=True)
class CallResult:
    qoe: QoE
    sent_bitrate_bps: float
    packets_sent: int
    retransmissions: int
    link_drops: int
    key_frames: int
    malformed: int


@api(stability="alpha")
def run_video_call(trace: Trace, seconds: float, target_bps: float | Callable[[float], float], *,
                   link: LinkConfig | None = None, return_delay_ms: float | None = None,
                   encoder: EncoderConfig | None = None, playout: PlayoutConfig | None = None,
                   seed: int = 0, tick_ms: float = 5.0) -> CallResult:
    """Run a call of ``seconds`` and return its QoE and sender counters (deterministic per seed)."""
    check_positive("seconds", seconds)
    link_cfg = link or LinkConfig()
    back_s = (link_cfg.delay_ms if return_delay_ms is None else return_delay_ms) / 1000.0
    env = Environment()
    receiver = VideoReceiver(playout)
    enc = VideoEncoder(encoder, rng=np.random.default_rng(seed))
    packetizer = Packetizer(ssrc=1)
    history: OrderedDict[int, RtpPacket] = OrderedDict()
    counts = {"sent": 0, "rtx": 0, "bytes": 0, "keys": 0}
    last_rtx: dict[int, float] = {}

    def deliver(packet: Packet, at: float) -> None:
        receiver.on_datagram(packet.payload, at)

    forward = SimLink(trace, link_cfg, env=env, on_deliver=deliver)

    def transmit(rtp: RtpPacket) -> None:
        data = packetizer.stamp(rtp, env.now).encode()
        counts["sent"] += 1
        counts["bytes"] += len(data) + _UDP_IP_BYTES
        forward.send(Packet(counts["sent"], len(data) + _UDP_IP_BYTES, env.now, data))

    def on_feedback(packets: list[RtcpPacket]) -> None:
        for fb in packets:
            if isinstance(fb, Nack):
                for seq in fb.lost:
                    # libwebrtc resends a packet at most once per RTT.
                    if seq in history and env.now - last_rtx.get(seq, -1e9) >= 2 * back_s:
                        last_rtx[seq] = env.now
                        counts["rtx"] += 1
                        transmit(history[seq])
            elif isinstance(fb, Pli):
                enc.request_keyframe()

    def sender() -> ProcessGenerator:
        while env.now < seconds:
            rate = target_bps(env.now) if callable(target_bps) else target_bps
            enc.set_target(rate)
            frame = enc.encode(env.now)
            counts["keys"] += frame.key
            for rtp in packetizer.packetize(frame):
                history[rtp.sequence_number] = rtp
                if len(history) > _HISTORY:
                    history.popitem(last=False)
                transmit(rtp)
            yield env.timeout(enc.frame_interval_s)

    def receiver_loop() -> ProcessGenerator:
        while True:
            receiver.render(env.now)
            feedback = receiver.poll(env.now)
            if feedback:
                event = env.timeout(back_s, feedback)
                assert event.callbacks is not None
                event.callbacks.append(lambda ev: on_feedback(ev.value))
            yield env.timeout(tick_ms / 1000.0)

    env.process(sender())
    env.process(receiver_loop())
    env.run(until=seconds)
    receiver.render(seconds)
    return CallResult(receiver.qoe(seconds), counts["bytes"] * 8 / seconds, counts["sent"], counts["rtx"],
                      forward.drops_queue + forward.drops_loss, counts["keys"], receiver.malformed)
