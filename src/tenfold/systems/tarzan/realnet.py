"""Real-network mode (spec §4 "Real network", §7 ``realnet``; root, reported only).

A VP8 call over real sockets, through tenfold.net's trace-driven relay between network
namespaces (sender | relay | receiver), with the rate chosen every 50 ms by a controller
(GCC, or a trained policy through :class:`~.evaluate.PolicyController`):

* **Sender** (sender namespace): synthetic 30 fps frames are encoded by aiortc's own VP8
  encoder (``aiortc.codecs.vpx.Vp8Encoder``, libvpx through PyAV) and split by its VP8
  payloader; each payload travels in an RTP packet (``net.rtp``) stamped with a
  transport-wide sequence number, paced at 2.5 x the target (spec §2.3) to the relay.
  aiortc's 250 kbps-1.5 Mbps bounds are widened to [50 kbps, 6 Mbps] by setting the module
  constants ``vpx.MIN_BITRATE``/``vpx.MAX_BITRATE`` from outside (:func:`widen_vp8_bounds`);
  the target the encoder really uses is logged per step.
* **Link**: :class:`tenfold.net.relay.RelayLink` applies the Mahimahi trace, the 100-packet
  drop-tail queue and RTT/2 forward; the return path is RTT/2 alone.
* **Receiver** (receiver namespace): kernel-stamped arrivals, frame assembly by RTP
  timestamp, aiortc's VP8 depayloader and decoder (``Vp8Decoder``); QoE (fps, freezes by
  the WebRTC rule of ``net.playout.FreezeDetector``) comes from the frames libvpx decoded.
  Every 50 ms it sends compound RTCP: transport-cc (``net.tcc``), a receiver report whose
  DLSR carries the hold time of the newest reported packet (so RTT samples exclude it, as
  the emulator's do), and a PLI when a frame was lost.
* The sender decodes the feedback, feeds GCC (always running: feature 12 and the policy's
  fallback), and logs the same 12 :class:`~.features.StepTelemetry` fields as the emulator.

Departures, named (the spec's §4 allows the UDP-proxy fallback):

* Design choice: the relay is the net layer's UDP proxy, not the transparent TUN relay. It
  forwards to fixed addresses and rewrites sources, which breaks ICE's symmetric-address
  checks, so there is no ``RTCPeerConnection`` (no ICE, DTLS, SRTP or SCTP): aiortc's VP8
  encoder, payloader, depayloader and decoder run over plain RTP/RTCP instead.
* Design choice: transport-cc travels as ordinary RTCP on the relay's return path, not over
  an RTCDataChannel (there is no SCTP association without a peer connection).
* Sender and receiver share CLOCK_REALTIME (one host), as the relay's own timing does.
"""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from tenfold.core.config import check_positive, check_range
from tenfold.errors import ConfigError, DecodeError
from tenfold.net.link import LinkConfig
from tenfold.net.playout import FreezeDetector
from tenfold.net.relay import SO_TIMESTAMPNS, RelayLink, RelaySession, recv_timestamped
from tenfold.net.rtcp import Pli, ReceiverReport, ReportBlock, RtcpPacket, TransportCC, decode_compound, encode_compound
from tenfold.net.rtp import RtpPacket, pack_transport_seq, unpack_transport_seq
from tenfold.net.trace import Trace
from tenfold.systems.tarzan.features import (
    MAX_BPS,
    MIN_BPS,
    STEP_MS,
    StepTelemetry,
    bps_to_action,
    feature_vector,
    reward,
    window_at,
)
from tenfold.systems.tarzan.gcc import Feedback, Gcc
from tenfold.systems.tarzan.session import RateController, SenderStats

__all__ = ["RealnetConfig", "RealnetResult", "run_realnet", "widen_vp8_bounds"]

_TCC_EXT = 5
_UDP_IP_BYTES = 28
_VIDEO_CLOCK = 90_000
_SENDER_SSRC, _RECEIVER_SSRC = 1, 2


def widen_vp8_bounds(lo_bps: float = MIN_BPS, hi_bps: float = MAX_BPS) -> None:
    """Set aiortc's VP8 target clamp to [lo, hi] (spec §4: [50 kbps, 6 Mbps]) without patching it."""
    from aiortc.codecs import vpx

    vpx.MIN_BITRATE = int(lo_bps)
    vpx.MAX_BITRATE = int(hi_bps)


@dataclass(frozen=True)
class RealnetConfig:
    """One real-network call."""

    seconds: float = 10.0
    """Call length; the spec's report runs 60 s calls."""
    rtt_ms: float = 100.0
    """Path RTT: RTT/2 each way at the relay."""
    queue_packets: int = 100
    width: int = 320
    height: int = 240
    fps: int = 30
    pacing_factor: float = 2.5
    subnet: int = 203
    """Second octet of the testbed's 10.x.0.0/16 addresses."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("seconds", self.seconds, 0.0, 120.0, lo_open=True)
        check_positive("rtt_ms", self.rtt_ms)
        check_positive("queue_packets", self.queue_packets)
        check_positive("fps", self.fps)
        check_positive("pacing_factor", self.pacing_factor)
        check_range("subnet", self.subnet, 1, 254)
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            raise ConfigError("width/height", (self.width, self.height), "must be positive and even (yuv420p)")


@dataclass
class RealnetResult:
    """QoE from decoded frames, the sender's per-step log and the relay's counters."""

    controller: str
    config: RealnetConfig
    frames_sent: int
    frames_decoded: int
    fps: float
    freezes: int
    freeze_rate: float
    bitrate_bps: float
    targets_bps: list[float] = field(default_factory=list)
    """The controller's target at each step."""
    encoder_bps: list[float] = field(default_factory=list)
    """The target aiortc's encoder was configured with during each step (realised target)."""
    sent_bps: list[float] = field(default_factory=list)
    """Bytes on the wire per step, as bps."""
    telemetry: list[StepTelemetry] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    incomplete_frames: int = 0
    decode_errors: int = 0
    plis: int = 0
    feedback_reports: int = 0
    malformed: int = 0
    relay: dict[str, Any] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {"controller": self.controller, "seconds": self.config.seconds, "rtt_ms": self.config.rtt_ms,
                "frames_sent": self.frames_sent, "frames_decoded": self.frames_decoded, "fps": self.fps,
                "freezes": self.freezes, "freeze_rate": self.freeze_rate, "bitrate_bps": self.bitrate_bps,
                "mean_target_bps": float(np.mean(self.targets_bps)) if self.targets_bps else 0.0,
                "incomplete_frames": self.incomplete_frames, "decode_errors": self.decode_errors,
                "plis": self.plis, "feedback_reports": self.feedback_reports, "malformed": self.malformed,
                "relay": {k: v for k, v in self.relay.items() if k != "dropped_tags"}}


class _Receiver:
    """Receiver side: arrivals, frame assembly, VP8 decoding, feedback every 50 ms."""

    def __init__(self, sock: socket.socket, feedback_to: tuple[str, int], origin_ns: int, end_s: float) -> None:
        from aiortc.codecs.vpx import Vp8Decoder

        self.sock = sock
        self.feedback_to = feedback_to
        self.origin_ns = origin_ns
        self.end_s = end_s
        self.decoder = Vp8Decoder()
        self.freezes = FreezeDetector()
        self.arrivals: dict[int, int] = {}  # transport seq (unwrapped) -> arrival us since origin
        self.frames: dict[int, dict[int, RtpPacket]] = {}  # RTP timestamp -> seq -> packet
        self.decoded = 0
        self.render_s: list[float] = []
        self.incomplete = 0
        self.decode_errors = 0
        self.malformed = 0
        self.plis = 0
        self.reports = 0
        self.need_key = False
        self.last_ts: int | None = None
        self._next_tseq = 0
        self._highest_tseq: int | None = None
        self._fb_count = 0
        self._pli_due = False
        self._last_pli_s = -1.0
        self.error: BaseException | None = None

    def _unwrap(self, seq: int) -> int:
        if self._highest_tseq is None:
            self._highest_tseq = seq
            return seq
        u = self._highest_tseq + ((seq - (self._highest_tseq & 0xFFFF) + 0x8000) % 0x10000) - 0x8000
        self._highest_tseq = max(self._highest_tseq, u)
        return u

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced by run_realnet after the join
            self.error = exc

    def _loop(self) -> None:
        origin = self.origin_ns / 1e9
        tick = STEP_MS / 1000.0
        next_fb = origin + tick
        while True:
            now = time.time()
            if now >= origin + self.end_s:
                return
            readable, _, _ = select.select([self.sock], [], [], max(0.0, min(next_fb, origin + self.end_s) - now))
            if readable:
                while (got := recv_timestamped(self.sock)) is not None:
                    self._on_datagram(*got)
            if time.time() >= next_fb:
                self._feedback(time.time())
                next_fb += tick

    def _on_datagram(self, data: bytes, ts_ns: int) -> None:
        try:
            pkt = RtpPacket.decode(data)
            ext = pkt.extension(_TCC_EXT)
            if ext is None:
                raise DecodeError("RTP packet lacks the transport-wide sequence number")
            tseq = unpack_transport_seq(ext)
        except (DecodeError, ValueError):
            self.malformed += 1
            return
        self.arrivals[self._unwrap(tseq)] = (ts_ns - self.origin_ns) // 1000
        if self.last_ts is not None and ((pkt.timestamp - self.last_ts) & 0xFFFFFFFF) >= 0x80000000:
            return  # a packet of a frame older than the last decoded one
        self.frames.setdefault(pkt.timestamp, {})[pkt.sequence_number] = pkt
        self._assemble(ts_ns / 1e9 - self.origin_ns / 1e9)

    def _assemble(self, now_s: float) -> None:
        from aiortc.codecs.vpx import VpxPayloadDescriptor
        from aiortc.jitterbuffer import JitterFrame

        ref = self.last_ts if self.last_ts is not None else min(self.frames)
        for ts in sorted(self.frames, key=lambda t: (t - ref) & 0xFFFFFFFF):
            if ts not in self.frames:
                continue
            pkts = self.frames[ts]
            marker = [s for s, p in pkts.items() if p.marker]
            starts = [s for s, p in pkts.items() if VpxPayloadDescriptor.parse(p.payload)[0].partition_start]
            if not marker or not starts:
                continue  # not complete yet; a later complete frame declares it lost
            first, last = starts[0], marker[0]
            n = ((last - first) & 0xFFFF) + 1
            seqs = [(first + i) & 0xFFFF for i in range(n)]
            if any(s not in pkts for s in seqs):
                continue
            # Frames between the last decoded one and this one never completed: lost.
            stale = [t for t in self.frames if t != ts and ((ts - t) & 0xFFFFFFFF) < 0x80000000]
            for t in stale:
                del self.frames[t]
                self.incomplete += 1
                self.need_key = True
            del self.frames[ts]
            self.last_ts = ts
            data = b"".join(VpxPayloadDescriptor.parse(pkts[s].payload)[1] for s in seqs)
            key = bool(data) and not data[0] & 0x01  # VP8 frame tag: P bit 0 = key frame
            if self.need_key and not key:
                self._pli_due = True
                continue
            self.need_key = False
            try:
                frames = self.decoder.decode(JitterFrame(data, ts))
            except Exception:  # libvpx/PyAV raise several error types for a broken stream
                self.decode_errors += 1
                self.need_key = True
                self._pli_due = True
                continue
            for _ in frames:
                self.decoded += 1
                self.render_s.append(now_s)
                self.freezes.add(now_s)

    def _feedback(self, now: float) -> None:
        out: list[RtcpPacket] = []
        now_us = int((now - self.origin_ns / 1e9) * 1e6)
        if self.arrivals:
            seqs = sorted(self.arrivals)
            base = self._next_tseq if self._next_tseq <= seqs[0] else seqs[0]
            times = [self.arrivals.get(s) for s in range(base, seqs[-1] + 1)]
            out.append(TransportCC.build(_RECEIVER_SSRC, _SENDER_SSRC, base & 0xFFFF, self._fb_count, times))
            hold_s = max(0.0, (now_us - self.arrivals[seqs[-1]]) / 1e6)
            out.append(ReceiverReport(_RECEIVER_SSRC, (ReportBlock(_SENDER_SSRC, 0, 0, seqs[-1] & 0xFFFFFFFF, 0, 0,
                                                                   min(0xFFFFFFFF, round(hold_s * 65536))),)))
            self._fb_count += 1
            self._next_tseq = seqs[-1] + 1
            self.arrivals.clear()
            self.reports += 1
        if self._pli_due and now - self._last_pli_s >= 0.2:
            out.append(Pli(_RECEIVER_SSRC, _SENDER_SSRC))
            self.plis += 1
            self._last_pli_s = now
            self._pli_due = False
        if out:
            self.sock.sendto(encode_compound(out), self.feedback_to)


class _Frames:
    """Synthetic camera: a seeded texture scrolling diagonally plus light per-frame noise."""

    def __init__(self, cfg: RealnetConfig) -> None:
        rng = np.random.default_rng(cfg.seed)
        self.cfg = cfg
        big = rng.integers(16, 235, size=(cfg.height * 2, cfg.width * 2), dtype=np.uint8)
        # Smooth the texture a little so it compresses like camera content, not white noise.
        self.texture = ((big.astype(np.uint16) + np.roll(big, 1, 0) + np.roll(big, 1, 1) + np.roll(big, 1, (0, 1)))
                        // 4).astype(np.uint8)
        self.rng = rng

    def frame(self, index: int) -> Any:
        import av

        c = self.cfg
        dy, dx = (2 * index) % c.height, (3 * index) % c.width
        y = self.texture[dy:dy + c.height, dx:dx + c.width].copy()
        y += self.rng.integers(0, 3, size=y.shape, dtype=np.uint8)
        uv = np.full((c.height // 2, c.width), 128, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(np.concatenate([y, uv]), format="yuv420p")
        frame.pts = index * (_VIDEO_CLOCK // c.fps)
        frame.time_base = Fraction(1, _VIDEO_CLOCK)
        return frame


def run_realnet(trace: Trace, controller: RateController, cfg: RealnetConfig | None = None) -> RealnetResult:
    """One call of ``cfg.seconds`` over the relay testbed (root); namespaces are gone on return."""
    from aiortc.codecs.vpx import Vp8Encoder

    cfg = cfg or RealnetConfig()
    widen_vp8_bounds()
    relay = RelayLink(trace, LinkConfig(delay_ms=cfg.rtt_ms / 2, queue_packets=cfg.queue_packets, seed=cfg.seed),
                      subnet=cfg.subnet)
    with relay.session(cfg.seconds) as run:
        result = _call(run, controller, cfg, Vp8Encoder())
    result.relay = dict(relay.last_stats)
    return result


def _call(run: RelaySession, controller: RateController, cfg: RealnetConfig, encoder: Any) -> RealnetResult:
    tx = run.bed.udp_socket(run.sender_ns, run.sender_back)
    rx = run.bed.udp_socket(run.receiver_ns, run.receiver)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    origin = run.origin_ns / 1e9
    receiver = _Receiver(rx, run.relay_back, run.origin_ns, cfg.seconds + cfg.rtt_ms / 2000.0 + 0.1)
    thread = threading.Thread(target=receiver.run, name="realnet-receiver", daemon=True)
    thread.start()

    gcc = Gcc()
    frames = _Frames(cfg)
    target = float(gcc.target_bps(0.0))
    encoder.target_bitrate = int(target)
    seq, tseq, frame_index, step = 0, 0, 0, 0
    queue: list[RtpPacket] = []
    free_at = origin
    sent_at: dict[int, tuple[float, int]] = {}
    stats = SenderStats()
    force_key = False
    total_bytes = malformed = 0
    prev_action = bps_to_action(target)
    features: list[np.ndarray] = []
    res = RealnetResult(controller.name, cfg, 0, 0, 0.0, 0, 0.0, 0.0)
    frame_s = 1.0 / cfg.fps

    def now_ms() -> float:
        return (time.time() - origin) * 1000.0

    def on_feedback(data: bytes) -> None:
        nonlocal force_key, malformed
        try:
            packets = decode_compound(data)
        except DecodeError:
            malformed += 1
            return
        t = now_ms()
        hold_ms = 0.0
        for p in packets:
            if isinstance(p, ReceiverReport) and p.reports:
                hold_ms = p.reports[0].dlsr / 65536 * 1000.0
            elif isinstance(p, Pli):
                force_key = True
        for p in packets:
            if not isinstance(p, TransportCC):
                continue
            results = stats.on_transport_cc(p, sent_at, t, hold_ms)
            res.feedback_reports += 1
            if results:
                gcc.on_feedback(Feedback(t, tuple(results), stats.rtt_ms or cfg.rtt_ms))

    next_frame, next_step = origin, origin + STEP_MS / 1000.0
    end = origin + cfg.seconds
    n_frames = round(cfg.seconds * cfg.fps)
    n_steps = round(cfg.seconds * 1000.0 / STEP_MS)
    while True:
        now = time.time()
        if now >= end and step >= n_steps:
            break
        wake = min(next_frame if frame_index < n_frames else end, next_step, free_at if queue else end, end)
        readable, _, _ = select.select([tx], [], [], max(0.0, wake - now))
        if readable:
            while (got := recv_timestamped(tx)) is not None:
                on_feedback(got[0])
        now = time.time()
        if now >= next_frame and frame_index < n_frames:
            encoder.target_bitrate = int(target)
            payloads, timestamp = encoder.encode(frames.frame(frame_index), force_keyframe=force_key)
            force_key = False
            frame_index += 1
            for i, payload in enumerate(payloads):
                queue.append(RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp,
                                       ssrc=_SENDER_SSRC, marker=i == len(payloads) - 1, payload=payload))
                seq = (seq + 1) & 0xFFFF
            next_frame = origin + frame_index * frame_s  # absolute: summing would drift
        while queue and time.time() >= free_at:
            pkt = queue.pop(0).with_extension(_TCC_EXT, pack_transport_seq(tseq & 0xFFFF))
            data = pkt.encode()
            size = len(data) + _UDP_IP_BYTES
            sent_at[tseq & 0xFFFF] = (now_ms(), size)
            tseq += 1
            tx.sendto(data, run.relay_in)
            stats.sent_bytes += size
            total_bytes += size
            free_at = max(free_at, time.time() - 0.005) + size * 8 / (cfg.pacing_factor * target)
        if time.time() >= next_step and step < n_steps:
            t = (next_step - origin) * 1000.0
            tel = stats.close_step(step, t, prev_action, gcc.trendline.slope)
            features.append(feature_vector(tel))
            window = window_at(np.stack(features[-20:]), min(len(features), 20) - 1)
            target = min(max(controller.decide(step, window, gcc, t), MIN_BPS), MAX_BPS)
            res.telemetry.append(tel)
            res.rewards.append(reward(tel.acked_bps, tel.owd_ms, tel.loss))
            res.sent_bps.append(tel.sent_bps)
            res.targets_bps.append(target)
            codec = getattr(encoder, "codec", None)
            res.encoder_bps.append(float(codec.bit_rate) if codec is not None else float(encoder.target_bitrate))
            prev_action = bps_to_action(target)
            step += 1
            next_step = origin + (step + 1) * STEP_MS / 1000.0
    thread.join(timeout=cfg.seconds + 10.0)
    if thread.is_alive():
        raise RuntimeError("realnet receiver did not stop")
    if receiver.error is not None:
        raise receiver.error
    res.frames_sent = frame_index
    res.frames_decoded = receiver.decoded
    res.fps = receiver.decoded / cfg.seconds
    trailing = receiver.freezes.trailing(receiver.end_s)
    freezes = list(receiver.freezes.freezes) + ([trailing] if trailing else [])
    res.freezes = len(freezes)
    res.freeze_rate = sum(d for _, d in freezes) / cfg.seconds
    res.bitrate_bps = total_bytes * 8 / cfg.seconds
    res.incomplete_frames = receiver.incomplete
    res.decode_errors = receiver.decode_errors
    res.plis = receiver.plis
    res.malformed = malformed + receiver.malformed
    res.namespaces = (run.sender_ns, run.relay_ns, run.receiver_ns)
    assert math.isfinite(res.bitrate_bps)
    return res
