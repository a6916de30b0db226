"""RTP packets (RFC 3550) with RFC 8285 header extensions.

Why our own codec: the systems above (tarzan's GCC, scallop's data plane) must read and
rewrite every field, including the extensions WebRTC congestion control depends on, and
must treat a malformed datagram as data (a counted :class:`~tenfold.errors.DecodeError`),
never as a crash. aiortc is used only in the tests, as the independent implementation the
codec interoperates with.

Header extensions (RFC 8285): the one-byte form (profile ``0xBEDE``, ids 1-14, 1-16 data
bytes) and the two-byte form (profile ``0x100x``, ids 1-255, 0-255 data bytes). Encoding is
canonical: elements in order, zero padding only at the end of the block, so
``encode(decode(b)) == b`` for every packet a conforming sender (aiortc, libwebrtc) writes.

Typed helpers for the two extensions congestion control needs:

* abs-send-time (``http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time``): 24 bits,
  6.18 fixed-point seconds, wrapping every 64 s.
* transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01): a
  16-bit counter shared by all streams of a transport, echoed back in transport-cc feedback.

The AV1 dependency descriptor lives in :mod:`tenfold.net.av1dd`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from tenfold.core.api import api
from tenfold.errors import DecodeError

__all__ = [
    "ABS_SEND_TIME_URI",
    "AV1_DD_URI",
    "RTP_HEADER_LENGTH",
    "TRANSPORT_CC_URI",
    "HeaderExtension",
    "RtpPacket",
    "abs_send_time",
    "abs_send_time_seconds",
    "pack_abs_send_time",
    "pack_transport_seq",
    "unpack_abs_send_time",
    "unpack_transport_seq",
    "zero_padding",
]

RTP_HEADER_LENGTH = 12
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
AV1_DD_URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"

_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE = 0x1000  # the low 4 bits ("appbits") are free for the application
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True)
class HeaderExtension:
    """One RFC 8285 element: a local id (negotiated in SDP ``a=extmap``) and its bytes."""

    id: int
    data: bytes


@api(stability="beta")
@dataclass(frozen=True)
class RtpPacket:
    """An RTP packet; :meth:`encode` and :meth:`decode` are exact inverses.

    ``padding`` holds the RFC 3550 padding bytes as received, the last one being their count
    (empty = no padding); :func:`zero_padding` builds the usual zeros-then-count form.
    ``extension_profile`` is ``None`` without an extension block, ``0xBEDE`` for one-byte and
    ``0x1000``-``0x100F`` for two-byte elements; any other profile keeps its block as one
    opaque element with id 0 (RFC 3550 section 5.3.1 extensions that are not RFC 8285).
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extensions: tuple[HeaderExtension, ...] = ()
    extension_profile: int | None = None
    payload: bytes = b""
    padding: bytes = b""
    version: int = field(default=2, repr=False)

    def __post_init__(self) -> None:
        _check("payload_type", self.payload_type, 0x7F)
        _check("sequence_number", self.sequence_number, 0xFFFF)
        _check("timestamp", self.timestamp, 0xFFFFFFFF)
        _check("ssrc", self.ssrc, 0xFFFFFFFF)
        if self.padding and self.padding[-1] != len(self.padding):
            raise DecodeError(
                f"RTP padding is {len(self.padding)} bytes but its last byte says {self.padding[-1]}; they must agree"
            )
        if len(self.csrc) > 15:
            raise DecodeError(f"RTP packet has {len(self.csrc)} CSRCs; at most 15 fit the 4-bit count")

    # -- extensions -------------------------------------------------------------------------

    def extension(self, ext_id: int) -> bytes | None:
        """The data of extension ``ext_id``, or None when the packet does not carry it."""
        for ext in self.extensions:
            if ext.id == ext_id:
                return ext.data
        return None

    def with_extension(self, ext_id: int, data: bytes) -> RtpPacket:
        """A copy carrying ``data`` under ``ext_id`` (replacing an element of that id).

        The profile is one-byte when every element fits it (id 1-14, 1-16 bytes), else
        two-byte, the choice RFC 8285 section 4.1 leaves to the sender.
        """
        exts = (*tuple(e for e in self.extensions if e.id != ext_id), HeaderExtension(ext_id, data))
        one_byte = all(1 <= e.id <= 14 and 1 <= len(e.data) <= 16 for e in exts)
        return replace(self, extensions=exts, extension_profile=_ONE_BYTE_PROFILE if one_byte else _TWO_BYTE_PROFILE)

    # -- wire format ------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The packet's bytes (RFC 3550 section 5.1)."""
        has_ext = self.extension_profile is not None
        first = (self.version << 6) | (bool(self.padding) << 5) | (has_ext << 4) | len(self.csrc)
        out = bytearray(_HEADER.pack(first, (int(self.marker) << 7) | self.payload_type,
                                     self.sequence_number, self.timestamp, self.ssrc))
        for csrc in self.csrc:
            out += struct.pack("!I", csrc)
        if self.extension_profile is not None:
            block = _pack_extensions(self.extension_profile, self.extensions)
            out += struct.pack("!HH", self.extension_profile, len(block) // 4)
            out += block
        out += self.payload
        out += self.padding
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> RtpPacket:
        """Parse ``data``; :class:`DecodeError` names the first thing that is wrong."""
        if len(data) < RTP_HEADER_LENGTH:
            raise DecodeError(f"RTP packet is {len(data)} bytes; the fixed header needs {RTP_HEADER_LENGTH}")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != 2:
            raise DecodeError(f"RTP version is {version}; only version 2 is allowed")
        cc = first & 0x0F
        pos = RTP_HEADER_LENGTH
        if len(data) < pos + 4 * cc:
            raise DecodeError(f"RTP CSRC list is truncated: {cc} CSRCs need {pos + 4 * cc} bytes, got {len(data)}")
        csrc = struct.unpack_from(f"!{cc}I", data, pos)
        pos += 4 * cc
        profile: int | None = None
        exts: tuple[HeaderExtension, ...] = ()
        if first & 0x10:
            if len(data) < pos + 4:
                raise DecodeError("RTP header extension is truncated: no room for its profile and length")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise DecodeError(
                    f"RTP header extension is truncated: length {words} words needs {4 * words} bytes, "
                    f"got {len(data) - pos}"
                )
            exts = _unpack_extensions(profile, data[pos:pos + 4 * words])
            pos += 4 * words
        end = len(data)
        padding = b""
        if first & 0x20:
            count = data[-1]
            if count == 0 or count > end - pos:
                raise DecodeError(f"RTP padding count is {count}; it must be 1..{end - pos}")
            end -= count
            padding = bytes(data[end:])
        return cls(payload_type=second & 0x7F, sequence_number=seq, timestamp=ts, ssrc=ssrc,
                   marker=bool(second >> 7), csrc=tuple(csrc), extensions=exts, extension_profile=profile,
                   payload=bytes(data[pos:end]), padding=padding)


def _check(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise DecodeError(f"RTP field {name} = {value} does not fit; allowed 0..{top}")


def _pack_extensions(profile: int, exts: tuple[HeaderExtension, ...]) -> bytes:
    out = bytearray()
    if profile == _ONE_BYTE_PROFILE:
        for ext in exts:
            if not 1 <= ext.id <= 14 or not 1 <= len(ext.data) <= 16:
                raise DecodeError(
                    f"one-byte RTP extension id {ext.id} with {len(ext.data)} bytes; allowed ids 1..14, 1..16 bytes"
                )
            out.append((ext.id << 4) | (len(ext.data) - 1))
            out += ext.data
    elif profile & 0xFFF0 == _TWO_BYTE_PROFILE:
        for ext in exts:
            if not 1 <= ext.id <= 255 or len(ext.data) > 255:
                raise DecodeError(
                    f"two-byte RTP extension id {ext.id} with {len(ext.data)} bytes; allowed ids 1..255, 0..255 bytes"
                )
            out += bytes([ext.id, len(ext.data)]) + ext.data
    else:
        if len(exts) != 1 or exts[0].id != 0 or len(exts[0].data) % 4:
            raise DecodeError(f"RTP extension profile {profile:#06x} needs one id-0 element of whole 32-bit words")
        out += exts[0].data
    out += bytes(-len(out) % 4)
    return bytes(out)


def _unpack_extensions(profile: int, block: bytes) -> tuple[HeaderExtension, ...]:
    if profile != _ONE_BYTE_PROFILE and profile & 0xFFF0 != _TWO_BYTE_PROFILE:
        return (HeaderExtension(0, bytes(block)),)
    exts: list[HeaderExtension] = []
    pos = 0
    while pos < len(block):
        head = block[pos]
        if head == 0 or (profile == _ONE_BYTE_PROFILE and head >> 4 == 0):
            # padding between or after elements: a one-byte element with id 0 is one byte long
            # whatever its length nibble (RFC 8285 section 4.2; libwebrtc skips it the same way)
            pos += 1
            continue
        if profile == _ONE_BYTE_PROFILE:
            ext_id, length = head >> 4, (head & 0x0F) + 1
            if ext_id == 15:  # reserved: stop parsing (RFC 8285 section 4.2)
                break
            pos += 1
        else:
            if pos + 1 >= len(block):
                raise DecodeError("two-byte RTP extension element is truncated: no length byte")
            ext_id, length = head, block[pos + 1]
            pos += 2
        if pos + length > len(block):
            raise DecodeError(
                f"RTP extension element id {ext_id} claims {length} bytes but only {len(block) - pos} remain"
            )
        exts.append(HeaderExtension(ext_id, bytes(block[pos:pos + length])))
        pos += length
    return tuple(exts)


def zero_padding(count: int) -> bytes:
    """RFC 3550 padding of ``count`` bytes (1-255): zeros, then the count."""
    if not 1 <= count <= 255:
        raise DecodeError(f"RTP padding count {count}; allowed 1..255")
    return bytes(count - 1) + bytes([count])


def abs_send_time(seconds: float) -> int:
    """abs-send-time value of a send time: 6.18 fixed point, modulo 64 s."""
    return round(seconds * (1 << 18)) & 0xFFFFFF


def abs_send_time_seconds(value: int) -> float:
    """Seconds (in [0, 64)) encoded by an abs-send-time value."""
    return (value & 0xFFFFFF) / (1 << 18)


def pack_abs_send_time(value: int) -> bytes:
    """The 3 data bytes of the abs-send-time extension."""
    if not 0 <= value <= 0xFFFFFF:
        raise DecodeError(f"abs-send-time {value} does not fit 24 bits; allowed 0..16777215")
    return value.to_bytes(3, "big")


def unpack_abs_send_time(data: bytes) -> int:
    """The 24-bit abs-send-time value from its extension data."""
    if len(data) != 3:
        raise DecodeError(f"abs-send-time extension is {len(data)} bytes; it must be 3")
    return int.from_bytes(data, "big")


def pack_transport_seq(seq: int) -> bytes:
    """The 2 data bytes of the transport-wide sequence number extension."""
    if not 0 <= seq <= 0xFFFF:
        raise DecodeError(f"transport-wide sequence number {seq} does not fit 16 bits; allowed 0..65535")
    return seq.to_bytes(2, "big")


def unpack_transport_seq(data: bytes) -> int:
    """The transport-wide sequence number from its extension data."""
    if len(data) != 2:
        raise DecodeError(f"transport-wide sequence number extension is {len(data)} bytes; it must be 2")
    return int.from_bytes(data, "big")
