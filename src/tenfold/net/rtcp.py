"""RTCP compound packets: SR, RR, SDES, BYE (RFC 3550), NACK and PLI (RFC 4585), REMB
(draft-alvestrand-rmcat-remb) and transport-cc (draft-holmer-rmcat-transport-wide-cc-
extensions-01).

RTCP travels as *compound* datagrams: several packets back to back, each with its own
4-byte header whose length field counts 32-bit words minus one (RFC 3550 section 6.4).
:func:`decode_compound` walks them and refuses any length that points past the buffer,
since a receiver that trusted it would read other packets' bytes as fields.

Every packet class keeps what is on the wire rather than a normalised view, so that
``encode_compound(decode_compound(b)) == b`` holds byte for byte: NACK keeps its (PID, BLP)
pairs (``Nack.from_lost`` builds them), REMB its exponent and mantissa (``Remb.from_bitrate``),
transport-cc its status chunks and deltas (``TransportCC.build``). Packet types we do not
model (APP, RFC 3611 extended reports, RFC 5104 FIR/TMMBR and other feedback formats) come
back as :class:`RawRtcp`, so a relay can forward them unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tenfold.errors import DecodeError
from tenfold.net.tcc import TransportCC, rtcp_header

__all__ = [
    "Bye",
    "Nack",
    "Pli",
    "RawRtcp",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "TransportCC",
    "decode_compound",
    "encode_compound",
]

SR, RR, SDES, BYE, RTPFB, PSFB = 200, 201, 202, 203, 205, 206
_FMT_NACK, _FMT_TCC, _FMT_PLI, _FMT_AFB = 1, 15, 1, 15
_REPORT = struct.Struct("!IB3sIIII")


_header = rtcp_header


@dataclass(frozen=True)
class ReportBlock:
    """One reception report (RFC 3550 section 6.4.1); ``packets_lost`` is signed 24-bit."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    def encode(self) -> bytes:
        lost = (self.packets_lost & 0xFFFFFF).to_bytes(3, "big")
        return _REPORT.pack(self.ssrc, self.fraction_lost, lost, self.highest_sequence, self.jitter,
                            self.lsr, self.dlsr)

    @classmethod
    def decode(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, frac, lost, high, jitter, lsr, dlsr = _REPORT.unpack_from(data, pos)
        return cls(ssrc, frac, int.from_bytes(lost, "big", signed=True), high, jitter, lsr, dlsr)


def _reports(body: bytes, pos: int, count: int, what: str) -> tuple[tuple[ReportBlock, ...], bytes]:
    end = pos + 24 * count
    if len(body) < end:
        raise DecodeError(f"RTCP {what} is truncated: {count} report blocks need {end} bytes, got {len(body)}")
    blocks = tuple(ReportBlock.decode(body, pos + 24 * i) for i in range(count))
    return blocks, bytes(body[end:])


@dataclass(frozen=True)
class SenderReport:
    """SR: the sender's NTP/RTP timestamp pair and counts, then report blocks."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    """Profile-specific extension after the report blocks (RFC 3550 section 6.4.1)."""

    def encode(self) -> bytes:
        body = struct.pack("!IQIII", self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                           self.octet_count)
        body += b"".join(r.encode() for r in self.reports) + self.extension
        return _header(SR, len(self.reports), body)

    @classmethod
    def decode(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < 24:
            raise DecodeError(f"RTCP SR is truncated: sender info needs 24 bytes, got {len(body)}")
        ssrc, ntp, rtp, pkts, octets = struct.unpack_from("!IQIII", body)
        reports, ext = _reports(body, 24, count, "SR")
        return cls(ssrc, ntp, rtp, pkts, octets, reports, ext)


@dataclass(frozen=True)
class ReceiverReport:
    """RR: report blocks from a receiver that sends no media."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def encode(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.encode() for r in self.reports) + self.extension
        return _header(RR, len(self.reports), body)

    @classmethod
    def decode(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise DecodeError(f"RTCP RR is truncated: the SSRC needs 4 bytes, got {len(body)}")
        reports, ext = _reports(body, 4, count, "RR")
        return cls(struct.unpack_from("!I", body)[0], reports, ext)


@dataclass(frozen=True)
class SdesChunk:
    """One SDES chunk: an SSRC and its (item type, value) pairs, e.g. (1, b"cname")."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()
    nulls: int | None = None
    """Zero octets ending the chunk (null item plus padding); None = the fewest that align.

    RFC 3550 asks for "one or more"; aiortc, for one, writes two and then pads, so the
    count is kept to re-encode what was received byte for byte.
    """


@dataclass(frozen=True)
class Sdes:
    """SDES (RFC 3550 section 6.5); each chunk ends with null octets up to a word boundary."""

    chunks: tuple[SdesChunk, ...] = ()

    def encode(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            part = bytearray(struct.pack("!I", chunk.ssrc))
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise DecodeError(f"SDES item type {kind} with {len(value)} bytes; allowed 1..255, 0..255 bytes")
                part += bytes([kind, len(value)]) + value
            nulls = 4 - len(part) % 4 if chunk.nulls is None else chunk.nulls
            if nulls < 1 or (len(part) + nulls) % 4:
                raise DecodeError(f"SDES chunk of {len(part)} bytes cannot end with {nulls} null octets")
            body += part + bytes(nulls)
        return _header(SDES, len(self.chunks), bytes(body))

    @classmethod
    def decode(cls, count: int, body: bytes) -> Sdes:
        chunks, pos = [], 0
        for index in range(count):
            if len(body) < pos + 4:
                raise DecodeError(f"RTCP SDES is truncated: chunk at byte {pos} has no SSRC")
            ssrc = struct.unpack_from("!I", body, pos)[0]
            pos += 4
            items = []
            while True:
                if pos >= len(body):
                    raise DecodeError("RTCP SDES chunk is truncated: no null item ends it")
                kind = body[pos]
                if kind == 0:
                    start = pos
                    pos += 4 - pos % 4
                    if index == count - 1 and not any(body[pos:]):
                        pos = len(body)  # trailing zero words belong to the last chunk
                    if any(body[start:pos]):
                        raise DecodeError(f"RTCP SDES padding at byte {start} is not zero")
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise DecodeError(f"RTCP SDES item of type {kind} at byte {pos} runs past the packet")
                length = body[pos + 1]
                items.append((kind, bytes(body[pos + 2:pos + 2 + length])))
                pos += 2 + length
            canonical = 4 - start % 4
            nulls = pos - start
            chunks.append(SdesChunk(ssrc, tuple(items), None if nulls == canonical else nulls))
        if pos != len(body):
            raise DecodeError(f"RTCP SDES has {len(body) - pos} bytes after its {count} chunks")
        return cls(tuple(chunks))


@dataclass(frozen=True)
class Bye:
    """BYE (RFC 3550 section 6.6): sources leaving, with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes | None = None

    def encode(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason is not None:
            reason = bytes([len(self.reason)]) + self.reason
            body += reason + bytes(-len(reason) % 4)
        return _header(BYE, len(self.sources), body)

    @classmethod
    def decode(cls, count: int, body: bytes) -> Bye:
        if len(body) < 4 * count:
            raise DecodeError(f"RTCP BYE is truncated: {count} sources need {4 * count} bytes, got {len(body)}")
        sources = struct.unpack_from(f"!{count}I", body)
        pos = 4 * count
        reason = None
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise DecodeError(f"RTCP BYE reason of {length} bytes runs past the packet")
            reason = bytes(body[pos + 1:pos + 1 + length])
        return cls(tuple(sources), reason)


@dataclass(frozen=True)
class Nack:
    """Generic NACK (RFC 4585 section 6.2.1): (PID, BLP) pairs name lost sequence numbers."""

    ssrc: int
    media_ssrc: int
    items: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_lost(cls, ssrc: int, media_ssrc: int, lost: Iterable[int]) -> Nack:
        """Pack sorted sequence numbers greedily: each PID covers the 16 numbers after it."""
        items: list[tuple[int, int]] = []
        for seq in sorted(set(lost)):
            if items and 0 < (seq - items[-1][0]) <= 16:
                pid, blp = items[-1]
                items[-1] = (pid, blp | 1 << (seq - pid - 1))
            else:
                items.append((seq, 0))
        return cls(ssrc, media_ssrc, tuple(items))

    @property
    def lost(self) -> tuple[int, ...]:
        out: list[int] = []
        for pid, blp in self.items:
            out.append(pid)
            out += [(pid + 1 + i) & 0xFFFF for i in range(16) if blp >> i & 1]
        return tuple(out)

    def encode(self) -> bytes:
        body = struct.pack("!II", self.ssrc, self.media_ssrc)
        body += b"".join(struct.pack("!HH", pid, blp) for pid, blp in self.items)
        return _header(RTPFB, _FMT_NACK, body)

    @classmethod
    def decode(cls, body: bytes) -> Nack:
        if len(body) < 8 or len(body) % 4:
            raise DecodeError(f"RTCP NACK length is invalid: {len(body)} bytes after the header")
        ssrc, media = struct.unpack_from("!II", body)
        pairs = struct.unpack_from(f"!{(len(body) - 8) // 2}H", body, 8)
        return cls(ssrc, media, tuple(zip(pairs[0::2], pairs[1::2], strict=True)))


@dataclass(frozen=True)
class Pli:
    """Picture Loss Indication (RFC 4585 section 6.3.1): the receiver asks for a key frame."""

    ssrc: int
    media_ssrc: int

    def encode(self) -> bytes:
        return _header(PSFB, _FMT_PLI, struct.pack("!II", self.ssrc, self.media_ssrc))

    @classmethod
    def decode(cls, body: bytes) -> Pli:
        if len(body) != 8:
            raise DecodeError(f"RTCP PLI length is invalid: {len(body)} bytes after the header, expected 8")
        return cls(*struct.unpack("!II", body))


@dataclass(frozen=True)
class Remb:
    """REMB (draft-alvestrand-rmcat-remb-03): bitrate = mantissa (18 bits) << exponent (6)."""

    ssrc: int
    exponent: int
    mantissa: int
    ssrcs: tuple[int, ...] = ()
    media_ssrc: int = 0

    @classmethod
    def from_bitrate(cls, ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> Remb:
        """The smallest exponent whose mantissa fits 18 bits (what libwebrtc writes)."""
        exponent, mantissa = 0, int(bitrate)
        while mantissa > 0x3FFFF:
            mantissa >>= 1
            exponent += 1
        return cls(ssrc, exponent, mantissa, tuple(ssrcs))

    @property
    def bitrate(self) -> int:
        return self.mantissa << self.exponent

    def encode(self) -> bytes:
        body = struct.pack("!II4sB", self.ssrc, self.media_ssrc, b"REMB", len(self.ssrcs))
        body += bytes([(self.exponent << 2) | (self.mantissa >> 16)]) + struct.pack("!H", self.mantissa & 0xFFFF)
        body += b"".join(struct.pack("!I", s) for s in self.ssrcs)
        return _header(PSFB, _FMT_AFB, body)

    @classmethod
    def decode(cls, body: bytes) -> Remb:
        if len(body) < 16 or body[8:12] != b"REMB":
            raise DecodeError("RTCP application feedback is not REMB: missing the 'REMB' identifier")
        ssrc, media = struct.unpack_from("!II", body)
        n = body[12]
        if len(body) != 16 + 4 * n:
            raise DecodeError(f"RTCP REMB lists {n} SSRCs but has {len(body) - 16} bytes for them")
        mantissa = ((body[13] & 0x03) << 16) | struct.unpack_from("!H", body, 14)[0]
        return cls(ssrc, body[13] >> 2, mantissa, struct.unpack_from(f"!{n}I", body, 16), media)


@dataclass(frozen=True)
class RawRtcp:
    """A packet type this module does not model, kept as (type, count/fmt, body)."""

    packet_type: int
    count: int
    body: bytes

    def encode(self) -> bytes:
        return _header(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | Nack | Pli | Remb | TransportCC | RawRtcp


def encode_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate encoded packets into one compound RTCP datagram."""
    return b"".join(p.encode() for p in packets)


def decode_compound(data: bytes) -> list[RtcpPacket]:
    """Split and decode a compound RTCP datagram; DecodeError on the first bad packet."""
    if not data:
        raise DecodeError("RTCP datagram is empty")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise DecodeError(f"RTCP header is truncated: {len(data) - pos} bytes left at byte {pos}, need 4")
        first, ptype, words = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != 2:
            raise DecodeError(f"RTCP version is {first >> 6} at byte {pos}; only version 2 is allowed")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise DecodeError(
                f"RTCP packet length {words} words at byte {pos} exceeds the {len(data) - pos - 4} bytes left"
            )
        body = bytes(data[pos + 4:end])
        count = first & 0x1F
        padded = bool(first & 0x20)
        if padded and ptype != RTPFB:
            raise DecodeError(f"RTCP padding on packet type {ptype} is not supported; only on transport-cc")
        packets.append(_decode_one(ptype, count, body, padded))
        pos = end
    return packets


def _decode_one(ptype: int, count: int, body: bytes, padded: bool) -> RtcpPacket:
    if ptype == SR:
        return SenderReport.decode(count, body)
    if ptype == RR:
        return ReceiverReport.decode(count, body)
    if ptype == SDES:
        return Sdes.decode(count, body)
    if ptype == BYE:
        return Bye.decode(count, body)
    if ptype == RTPFB and count == _FMT_NACK and not padded:
        return Nack.decode(body)
    if ptype == RTPFB and count == _FMT_TCC:
        return TransportCC.decode(body, padded)
    if ptype == RTPFB and padded:
        raise DecodeError(f"RTCP padding on feedback format {count} is not supported; only on transport-cc")
    if ptype == PSFB and count == _FMT_PLI:
        return Pli.decode(body)
    if ptype == PSFB and count == _FMT_AFB and body[8:12] == b"REMB":
        return Remb.decode(body)
    return RawRtcp(ptype, count, body)
