"""The video receiver: frame assembly, NACK retransmission requests, a jitter buffer, frame
delay and the WebRTC freeze definition.

Why a model this detailed: freezes and frame delay are the QoE numbers tarzan reports, and
they only mean something when computed from packets that the emulated link really delivered
or lost, with the recovery a WebRTC receiver would attempt (tarzan spec sections 2.4, 10).

* **Assembly.** Packets carry the :class:`~tenfold.net.video.FrameDescriptor`; a frame is
  complete when all its packets are in.
* **NACK** (RFC 4585 section 6.2.1). A sequence gap marks the missing numbers; each is
  NACKed at once and again every ``nack_interval_ms`` (about an RTT) up to
  ``nack_max_retries`` times; a retransmission (same sequence number) fills the gap.
* **Decoding.** A delta frame decodes only after its predecessor; when the decoder has been
  stuck on a frame for ``max_wait_ms`` the receiver sends a PLI (RFC 4585 section 6.3.1) and
  resumes at the next complete key frame, skipping everything before it, as libwebrtc does.
* **Jitter buffer.** A frame renders at ``max(complete, capture + base + extra, previous)``:
  ``base`` is the smallest transit seen and ``extra`` is ``jitter_factor`` times the RFC 3550
  interarrival jitter, clamped to ``[jitter_min_ms, jitter_max_ms]``.
* **Freezes** (WebRTC ``VideoQualityObserver``, as tarzan's spec states it): an inter-frame
  render gap ``>= max(3 * avg, avg + 150 ms)`` is a freeze, where ``avg`` is the mean of the
  previous (up to) 30 render gaps; the first 5 frames only fill that history (no gap ending
  before frame index 5 is judged). A freeze lasts the whole gap; freeze rate = frozen time /
  call time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from tenfold.core.api import api
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import DecodeError
from tenfold.net.demux import classify
from tenfold.net.rtcp import Nack, Pli, RtcpPacket
from tenfold.net.rtp import RtpPacket
from tenfold.net.video import FrameDescriptor

__all__ = [
    "FreezeDetector",
    "PlayoutConfig",
    "QoE",
    "RenderedFrame",
    "VideoReceiver",
    "is_freeze",
]


def is_freeze(gap_s: float, avg_s: float, extra_s: float = 0.150) -> bool:
    """The WebRTC freeze rule for one render gap against the average gap before it.

    A nanosecond of slack keeps float sums (3 * 0.1 > 0.3) from moving the boundary.
    """
    return gap_s >= max(3.0 * avg_s, avg_s + extra_s) - 1e-9


class FreezeDetector:
    """Feeds render times one by one; records (start, duration) of each freeze."""

    def __init__(self, window: int = 30, min_frames: int = 5, extra_s: float = 0.150) -> None:
        self.window = window
        self.min_frames = min_frames
        self.extra_s = extra_s
        self._gaps: deque[float] = deque(maxlen=window)
        self._last: float | None = None
        self._frames = 0
        self.freezes: list[tuple[float, float]] = []

    def add(self, render_s: float) -> bool:
        """Add one rendered frame; True when the gap it ends is a freeze."""
        frozen = False
        if self._last is not None:
            gap = render_s - self._last
            if self._frames >= self.min_frames and self._gaps:
                avg = sum(self._gaps) / len(self._gaps)
                if is_freeze(gap, avg, self.extra_s):
                    self.freezes.append((self._last, gap))
                    frozen = True
            self._gaps.append(gap)
        self._last = render_s
        self._frames += 1
        return frozen

    def trailing(self, end_s: float) -> tuple[float, float] | None:
        """The still-open gap at ``end_s`` if it already qualifies as a freeze.

        WebRTC judges a gap only when the next frame renders; a call that ends frozen would
        then hide its worst stall, so :meth:`VideoReceiver.qoe` counts it (design choice).
        """
        if self._last is None or self._frames < self.min_frames or not self._gaps:
            return None
        gap = end_s - self._last
        avg = sum(self._gaps) / len(self._gaps)
        return (self._last, gap) if is_freeze(gap, avg, self.extra_s) else None

    @property
    def frozen_s(self) -> float:
        return sum(d for _, d in self.freezes)


@dataclass(frozen=True)
class PlayoutConfig(Config):
    """Receiver behaviour; defaults follow libwebrtc's orders of magnitude."""

    jitter_factor: float = 3.0
    """Extra playout delay in units of the RFC 3550 interarrival jitter; >= 0."""
    jitter_min_ms: float = 10.0
    """Floor of the extra playout delay, in ms; >= 0."""
    jitter_max_ms: float = 500.0
    """Ceiling of the extra playout delay, in ms; >= jitter_min_ms."""
    nack: bool = True
    """Ask for retransmissions of missing packets."""
    nack_interval_ms: float = 100.0
    """Wait between NACKs of one packet (about one RTT), in ms; > 0."""
    nack_max_retries: int = 10
    """NACKs per packet before giving up on it; >= 0."""
    max_wait_ms: float = 1000.0
    """How long the decoder may be stuck on one frame before a PLI, in ms; > 0."""
    pli_interval_ms: float = 300.0
    """Minimum spacing of PLIs, in ms; > 0."""
    nack_max_packets: int = 1000
    """Longest NACK list; past it the list is cleared and a key frame requested (libwebrtc)."""

    def __post_init__(self) -> None:
        check_range("jitter_factor", self.jitter_factor, lo=0.0)
        check_range("jitter_min_ms", self.jitter_min_ms, lo=0.0)
        check_range("jitter_max_ms", self.jitter_max_ms, lo=self.jitter_min_ms)
        check_positive("nack_interval_ms", self.nack_interval_ms)
        check_range("nack_max_retries", self.nack_max_retries, lo=0)
        check_positive("max_wait_ms", self.max_wait_ms)
        check_positive("pli_interval_ms", self.pli_interval_ms)
        check_range("nack_max_packets", self.nack_max_packets, lo=1)


@dataclass(frozen=True)
class RenderedFrame:
    index: int
    capture_s: float
    complete_s: float
    render_s: float
    key: bool
    frozen: bool
    """The render gap this frame ends is a freeze."""

    @property
    def delay_ms(self) -> float:
        """Frame delay: capture to render."""
        return (self.render_s - self.capture_s) * 1000.0


@dataclass(frozen=True)
class QoE:
    """Per-call quality numbers (tarzan spec section 2.4)."""

    frames: int
    fps: float
    freezes: int
    freeze_rate: float
    mean_frame_delay_ms: float
    p95_frame_delay_ms: float


@dataclass
class _Frame:
    capture_s: float
    count: int
    key: bool
    first_seq: int
    got: set[int] = field(default_factory=set)
    complete_s: float | None = None


@api(stability="beta")
class VideoReceiver:
    """Receives one video stream; call ``on_datagram``/``on_packet``, then ``poll`` and ``render``."""

    MAX_FRAME_LEAD = 300
    """Slack, in frames (10 s at 30 fps), of the frame-index plausibility bound in :meth:`on_packet`."""

    def __init__(self, config: PlayoutConfig | None = None, *, ssrc: int = 2, media_ssrc: int | None = None) -> None:
        self.config = config or PlayoutConfig()
        self.ssrc = ssrc
        self.media_ssrc = media_ssrc
        """The media stream's SSRC; ``None`` locks onto the SSRC of the first packet accepted."""
        self.malformed = 0
        self.foreign = 0
        """Packets from an SSRC other than :attr:`media_ssrc`, dropped."""
        self.implausible = 0
        """Packets whose frame index leads further than their sequence number allows, dropped."""
        self.ignored = 0
        self.packets = 0
        self.duplicates = 0
        self.nacks_sent = 0
        self.plis_sent = 0
        self.rendered: list[RenderedFrame] = []
        self.freeze = FreezeDetector()
        self._frames: dict[int, _Frame] = {}
        self._seen: set[int] = set()
        self._highest: int | None = None  # unwrapped
        self._missing: dict[int, tuple[float, int]] = {}  # unwrapped seq -> (next NACK time, NACKs sent)
        self._next = 0  # next frame index to decode
        self._top: tuple[int, int] | None = None  # (highest frame index accepted, unwrapped seq of its packet)
        self._stuck_since: float | None = None
        self._need_key = False
        self._last_pli = -1e9
        self._base_transit: float | None = None
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._last_render = -1e9

    # -- input ------------------------------------------------------------------------------

    def on_datagram(self, data: bytes, now_s: float) -> None:
        """One UDP payload: RTP is processed; malformed RTP is counted; others are ignored."""
        if classify(data) != "rtp":
            self.ignored += 1
            return
        try:
            packet = RtpPacket.decode(data)
            FrameDescriptor.decode(packet.payload)
        except DecodeError:
            self.malformed += 1
            return
        self.on_packet(packet, now_s)

    def _unwrap(self, seq: int) -> int:
        if self._highest is None:
            return seq
        base = self._highest & ~0xFFFF
        candidates = (base - 0x10000 + seq, base + seq, base + 0x10000 + seq)
        return min(candidates, key=lambda c: abs(c - self._highest))  # type: ignore[operator]

    def on_packet(self, packet: RtpPacket, now_s: float) -> None:
        """One decoded RTP packet. A packet from another SSRC is dropped (``foreign``), and so
        is one whose frame index is implausibly far ahead (``implausible``): every frame has at
        least one packet and a sender numbers packets in frame order, so a frame can lead the
        highest frame accepted so far by at most as many frames as its sequence number leads
        that frame's packet (an outage keeps this true: both advance together); before any
        packet is accepted the bound is ``MAX_FIRST_LEAD`` frames ahead of the next frame."""
        if self.media_ssrc is not None and packet.ssrc != self.media_ssrc:
            self.foreign += 1
            return
        desc = FrameDescriptor.decode(packet.payload)
        seq = self._unwrap(packet.sequence_number)
        if self._top is None:
            plausible = desc.frame - self._next <= self.MAX_FRAME_LEAD
        else:
            plausible = desc.frame - self._top[0] <= max(0, seq - self._top[1]) + self.MAX_FRAME_LEAD
        if not plausible:
            self.implausible += 1
            return
        if self.media_ssrc is None:
            self.media_ssrc = packet.ssrc
        if self._top is None or desc.frame > self._top[0]:
            self._top = (desc.frame, seq)
        if seq in self._seen:
            self.duplicates += 1
            return
        self._seen.add(seq)
        self.packets += 1
        if len(self._seen) > 40_000 and self._highest is not None:  # keep memory flat on long calls
            self._seen = {s for s in self._seen if s > self._highest - 32_768}
        self._missing.pop(seq, None)
        if self._highest is None or seq > self._highest:
            if self._highest is not None and self.config.nack:
                for lost in range(self._highest + 1, seq):
                    self._missing[lost] = (now_s, 0)
                if len(self._missing) > self.config.nack_max_packets:
                    self._missing.clear()
                    self._need_key = True
            self._highest = seq
        capture_s = packet.timestamp / 90_000.0
        transit = now_s - capture_s
        if self._last_transit is not None:  # RFC 3550 appendix A.8
            self._jitter += (abs(transit - self._last_transit) - self._jitter) / 16.0
        self._last_transit = transit
        if desc.frame < self._next:
            return  # too late: that frame was rendered or skipped
        frame = self._frames.setdefault(desc.frame, _Frame(capture_s, desc.count, desc.key, seq - desc.packet))
        frame.got.add(desc.packet)
        if frame.complete_s is None and len(frame.got) == frame.count:
            frame.complete_s = now_s
            done = now_s - frame.capture_s
            self._base_transit = done if self._base_transit is None else min(self._base_transit, done)

    # -- output -----------------------------------------------------------------------------

    def poll(self, now_s: float) -> list[RtcpPacket]:
        """Feedback due now: one NACK for every missing packet whose turn has come, and a PLI
        when the decoder is stuck."""
        cfg = self.config
        out: list[RtcpPacket] = []
        due = []
        for seq, (at, sent) in list(self._missing.items()):
            if sent >= cfg.nack_max_retries:
                del self._missing[seq]
            elif at <= now_s:
                due.append(seq & 0xFFFF)
                self._missing[seq] = (now_s + cfg.nack_interval_ms / 1000.0, sent + 1)
        if due:
            out.append(Nack.from_lost(self.ssrc, self.media_ssrc or 0, due))
            self.nacks_sent += len(due)
        stuck = self._stuck_since is not None and now_s - self._stuck_since >= cfg.max_wait_ms / 1000.0
        if (stuck or self._need_key) and now_s - self._last_pli >= cfg.pli_interval_ms / 1000.0:
            self._need_key = True
            self._last_pli = now_s
            self.plis_sent += 1
            out.append(Pli(self.ssrc, self.media_ssrc or 0))
        return out

    def _extra_s(self) -> float:
        cfg = self.config
        return min(max(cfg.jitter_factor * self._jitter, cfg.jitter_min_ms / 1000.0), cfg.jitter_max_ms / 1000.0)

    def render(self, now_s: float) -> list[RenderedFrame]:
        """Decode and render every frame whose time has come, in order."""
        out: list[RenderedFrame] = []
        while True:
            frame = self._frames.get(self._next)
            decodable = frame is not None and frame.complete_s is not None and (frame.key or not self._need_key)
            if not decodable:
                later_key = [i for i, f in self._frames.items()
                             if i > self._next and f.key and f.complete_s is not None]
                if later_key:  # jump to the newest decodable start point
                    self._skip_to(min(later_key))
                    continue
                if self._stuck_since is None and any(i > self._next for i in self._frames):
                    self._stuck_since = now_s
                break
            assert frame is not None and frame.complete_s is not None
            render_s = max(frame.complete_s, frame.capture_s + (self._base_transit or 0.0) + self._extra_s(),
                           self._last_render)
            if render_s > now_s:
                break
            frozen = self.freeze.add(render_s)
            rendered = RenderedFrame(self._next, frame.capture_s, frame.complete_s, render_s, frame.key, frozen)
            out.append(rendered)
            self.rendered.append(rendered)
            self._last_render = render_s
            if frame.key:
                self._need_key = False
            del self._frames[self._next]
            self._next += 1
            self._stuck_since = None
        return out

    def _skip_to(self, index: int) -> None:
        for i in [i for i in self._frames if i < index]:
            del self._frames[i]
        first = self._frames[index].first_seq
        for seq in [s for s in self._missing if s < first]:
            del self._missing[seq]  # nothing before a key frame is needed any more
        self._next = index
        self._stuck_since = None

    def qoe(self, call_s: float) -> QoE:
        """Frames, fps, freezes, freeze rate and frame delay over a call of ``call_s``.

        A call that never renders the ``min_frames`` frames the freeze rule waits for is one
        freeze over the whole call (design choice: the rule would otherwise call a picture
        that never started perfect), and with no frame at all its frame delay is the call's
        length.
        """
        check_positive("call_s", call_s)
        if len(self.rendered) < self.freeze.min_frames:
            delays_ms = [f.delay_ms for f in self.rendered] or [call_s * 1000.0]
            return QoE(len(self.rendered), len(self.rendered) / call_s, 1, 1.0,
                       float(np.mean(delays_ms)), float(np.percentile(delays_ms, 95)))
        delays = np.array([f.delay_ms for f in self.rendered], dtype=np.float64)
        tail = self.freeze.trailing(call_s)
        freezes = len(self.freeze.freezes) + (tail is not None)
        frozen_s = self.freeze.frozen_s + (tail[1] if tail is not None else 0.0)
        mean = float(delays.mean()) if delays.size else 0.0
        p95 = float(np.percentile(delays, 95)) if delays.size else 0.0
        return QoE(len(self.rendered), len(self.rendered) / call_s, freezes, frozen_s / call_s, mean, p95)
