"""A 30 fps video source model and its RTP packetiser (tarzan spec section 3, design choices).

QoE of a rate controller can only be judged from frames delivered as packets over the
emulated link, so the model is packet-level and stochastic, never a fluid:

* :class:`VideoEncoder` produces one frame per 1/fps. Its bitrate follows the target with a
  first-order lag (tau = 200 ms, as hardware and libvpx rate control do not jump), each
  frame's size carries mean-one lognormal noise (sigma = 0.15), and a key frame of 4x the
  size comes every 10 s and on request (a PLI).
* :class:`Packetizer` cuts a frame into RTP packets of at most 1200 payload bytes (the
  WebRTC default that leaves room for SRTP, TURN and IPv6 headers under a 1500-byte MTU),
  stamps the 90 kHz RTP clock, sets the marker on a frame's last packet, and adds the
  transport-wide sequence number and abs-send-time extensions that GCC feedback needs.
  Each payload starts with an 8-byte descriptor (frame index, packet index, packet count,
  key flag) so that a receiver can assemble frames without a real codec; the rest is zero.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from tenfold.core.api import api
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import ConfigError, DecodeError
from tenfold.net.rtp import RtpPacket, abs_send_time, pack_abs_send_time, pack_transport_seq

__all__ = [
    "DESCRIPTOR",
    "EncodedFrame",
    "EncoderConfig",
    "FrameDescriptor",
    "Packetizer",
    "VideoEncoder",
]

DESCRIPTOR = struct.Struct("!IHHBxxx")  # frame index, packet index, packet count, flags
_VIDEO_CLOCK_HZ = 90_000


@dataclass(frozen=True)
class EncoderConfig(Config):
    """The encoder model; defaults are tarzan's design choices."""

    fps: float = 30.0
    """Frames per second; > 0."""
    lag_s: float = 0.2
    """Time constant tau with which the produced bitrate follows the target, in s; >= 0."""
    noise_sigma: float = 0.15
    """Sigma of the mean-one lognormal factor on each frame's size; >= 0."""
    keyframe_interval_s: float = 10.0
    """Seconds between periodic key frames; > 0."""
    keyframe_scale: float = 4.0
    """Size of a key frame relative to a delta frame at the same bitrate; >= 1."""
    min_frame_bytes: int = 100
    """Smallest frame the encoder emits (headers alone cost this much); >= 1."""
    initial_bps: float = 300_000.0
    """Bitrate before the first target arrives (GCC's start rate)."""

    def __post_init__(self) -> None:
        check_positive("fps", self.fps)
        check_range("lag_s", self.lag_s, lo=0.0)
        check_range("noise_sigma", self.noise_sigma, lo=0.0)
        check_positive("keyframe_interval_s", self.keyframe_interval_s)
        check_range("keyframe_scale", self.keyframe_scale, lo=1.0)
        check_range("min_frame_bytes", self.min_frame_bytes, lo=1)
        check_positive("initial_bps", self.initial_bps)


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame: index, capture time, size in bytes, key or delta."""

    index: int
    capture_s: float
    size: int
    key: bool
    rate_bps: float
    """The encoder's (lagged) bitrate when it made this frame."""


@api(stability="beta")
class VideoEncoder:
    """Frame sizes that follow a target bitrate with lag, noise and key frames."""

    def __init__(self, config: EncoderConfig | None = None, *, rng: np.random.Generator | None = None) -> None:
        self.config = config or EncoderConfig()
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._target = self.config.initial_bps
        self._rate = self.config.initial_bps
        self._index = 0
        self._last_s: float | None = None
        self._last_key_s = -math.inf
        self._key_requested = True  # the first frame is a key frame

    @property
    def frame_interval_s(self) -> float:
        return 1.0 / self.config.fps

    def set_target(self, bps: float) -> None:
        """The rate controller's new target in bits per second."""
        check_positive("bps", bps)
        self._target = float(bps)

    def request_keyframe(self) -> None:
        """A PLI arrived: the next frame is a key frame."""
        self._key_requested = True

    def encode(self, now_s: float) -> EncodedFrame:
        """Produce the frame captured at ``now_s`` (callers step at 1/fps)."""
        cfg = self.config
        dt = self.frame_interval_s if self._last_s is None else max(0.0, now_s - self._last_s)
        self._last_s = now_s
        alpha = 1.0 if cfg.lag_s == 0 else 1.0 - math.exp(-dt / cfg.lag_s)
        self._rate += alpha * (self._target - self._rate)
        key = self._key_requested or now_s - self._last_key_s >= cfg.keyframe_interval_s - 1e-9
        if key:
            self._key_requested = False
            self._last_key_s = now_s
        sigma = cfg.noise_sigma
        noise = float(self._rng.lognormal(-sigma * sigma / 2, sigma)) if sigma else 1.0
        size = self._rate / cfg.fps / 8 * noise * (cfg.keyframe_scale if key else 1.0)
        frame = EncodedFrame(self._index, now_s, max(cfg.min_frame_bytes, round(size)), key, self._rate)
        self._index += 1
        return frame


@dataclass(frozen=True)
class FrameDescriptor:
    """The 8-byte payload descriptor this model puts before each packet's zero filler."""

    frame: int
    packet: int
    count: int
    key: bool

    def encode(self) -> bytes:
        return DESCRIPTOR.pack(self.frame & 0xFFFFFFFF, self.packet, self.count, int(self.key))

    @classmethod
    def decode(cls, payload: bytes) -> FrameDescriptor:
        if len(payload) < DESCRIPTOR.size:
            raise DecodeError(f"video payload is {len(payload)} bytes; its descriptor needs {DESCRIPTOR.size}")
        frame, packet, count, flags = DESCRIPTOR.unpack_from(payload)
        if count == 0 or packet >= count:
            raise DecodeError(f"video descriptor packet {packet} of {count} is impossible; need 0 <= packet < count")
        return cls(frame, packet, count, bool(flags & 1))


@api(stability="beta")
class Packetizer:
    """Frames -> RTP packets of at most ``payload_bytes`` bytes of payload each."""

    def __init__(self, ssrc: int, *, payload_type: int = 96, payload_bytes: int = 1200, first_seq: int = 0,
                 abs_send_time_id: int | None = 3, transport_cc_id: int | None = 5) -> None:
        if payload_bytes <= DESCRIPTOR.size:
            raise ConfigError("payload_bytes", payload_bytes, f"must exceed the {DESCRIPTOR.size}-byte descriptor")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.payload_bytes = payload_bytes
        self.abs_send_time_id = abs_send_time_id
        self.transport_cc_id = transport_cc_id
        self._seq = first_seq & 0xFFFF
        self._transport_seq = 0

    def packetize(self, frame: EncodedFrame) -> list[RtpPacket]:
        """The frame's packets, sizes as even as possible (as libwebrtc splits frames)."""
        count = max(1, math.ceil(frame.size / self.payload_bytes))
        base, extra = divmod(frame.size, count)
        timestamp = round(frame.capture_s * _VIDEO_CLOCK_HZ) & 0xFFFFFFFF
        packets = []
        for i in range(count):
            size = max(DESCRIPTOR.size, base + (1 if i < extra else 0))
            payload = FrameDescriptor(frame.index, i, count, frame.key).encode() + bytes(size - DESCRIPTOR.size)
            packets.append(RtpPacket(payload_type=self.payload_type, sequence_number=self._seq, timestamp=timestamp,
                                     ssrc=self.ssrc, marker=i == count - 1, payload=payload))
            self._seq = (self._seq + 1) & 0xFFFF
        return packets

    def stamp(self, packet: RtpPacket, send_s: float) -> RtpPacket:
        """Add abs-send-time and the next transport-wide sequence number at send time."""
        if self.abs_send_time_id is not None:
            packet = packet.with_extension(self.abs_send_time_id, pack_abs_send_time(abs_send_time(send_s)))
        if self.transport_cc_id is not None:
            packet = packet.with_extension(self.transport_cc_id, pack_transport_seq(self._transport_seq))
            self._transport_seq = (self._transport_seq + 1) & 0xFFFF
        return packet
