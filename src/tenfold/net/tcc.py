"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

The receiver tells the sender, for a run of transport-wide sequence numbers, which packets
arrived and when, so that the sender's delay-based estimator (GCC) sees per-packet one-way
delay variation. Layout after the RTPFB header (FMT 15, RFC 4585 section 6.1)::

    base sequence number (16) | packet status count (16)
    reference time (24, multiples of 64 ms) | feedback packet count (8)
    packet status chunks (16 bits each) ... | receive deltas (8 or 16 bits each) ... | padding

A chunk is either a *run length* (bit 15 = 0: a 2-bit status repeated up to 8191 times) or a
*status vector* (bit 15 = 1: fourteen 1-bit or seven 2-bit statuses). Status 0 = not
received, 1 = received with a small delta (one unsigned byte of 250 us ticks), 2 = received
with a large or negative delta (two signed bytes). The chunks and deltas are kept verbatim,
so decoding and encoding are exact inverses; :meth:`TransportCC.build` chooses chunks for
new feedback. Deltas accumulate in quantised ticks, as libwebrtc does, so rounding errors
never drift.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tenfold.errors import DecodeError

__all__ = ["TICK_US", "TransportCC", "rtcp_header"]

TICK_US = 250
_REF_US = 64_000
_RTPFB, _FMT_TCC = 205, 15


def rtcp_header(ptype: int, count: int, body: bytes, padded: bool = False) -> bytes:
    """RFC 3550 section 6.4.1 common header for a body of whole 32-bit words."""
    if len(body) % 4:
        raise DecodeError(f"RTCP body of type {ptype} is {len(body)} bytes; it must be whole 32-bit words")
    if not 0 <= count <= 31:
        raise DecodeError(f"RTCP count/format field of type {ptype} is {count}; the 5-bit field holds 0..31")
    return struct.pack("!BBH", 0x80 | (int(padded) << 5) | count, ptype, len(body) // 4) + body


def _expand(chunk: int) -> list[int]:
    if not chunk & 0x8000:
        return [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
    if chunk & 0x4000:
        return [(chunk >> (12 - 2 * i)) & 0x3 for i in range(7)]
    return [(chunk >> (13 - i)) & 0x1 for i in range(14)]


@dataclass(frozen=True)
class TransportCC:
    """A transport-cc feedback packet, field for field as on the wire."""

    ssrc: int
    media_ssrc: int
    base_seq: int
    status_count: int
    reference_time: int
    """24-bit reference time in multiples of 64 ms (kept unsigned, as written)."""
    fb_count: int
    chunks: tuple[int, ...]
    deltas: tuple[int, ...]
    """Receive deltas in 250 us ticks, one per received packet."""
    padding: bytes = b""
    padded: bool = False
    """The RTCP P bit; libwebrtc sets it and ends the padding with its length."""

    # -- views ------------------------------------------------------------------------------

    @property
    def statuses(self) -> tuple[int, ...]:
        out: list[int] = []
        for chunk in self.chunks:
            out += _expand(chunk)
        return tuple(out[: self.status_count])

    def arrivals(self) -> list[tuple[int, int | None]]:
        """(transport sequence number, arrival time in us or None when not received)."""
        t = self.reference_time * _REF_US
        deltas = iter(self.deltas)
        out: list[tuple[int, int | None]] = []
        for i, status in enumerate(self.statuses):
            seq = (self.base_seq + i) & 0xFFFF
            if status == 0:
                out.append((seq, None))
            else:
                t += next(deltas) * TICK_US
                out.append((seq, t))
        return out

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, ssrc: int, media_ssrc: int, base_seq: int, fb_count: int,
              arrivals_us: Sequence[int | None]) -> TransportCC:
        """Feedback for ``arrivals_us[i]`` = arrival of ``base_seq + i`` (None = lost)."""
        received = [a for a in arrivals_us if a is not None]
        if len(arrivals_us) > 0xFFFF:
            raise DecodeError(f"transport-cc feedback covers {len(arrivals_us)} packets; at most 65535 fit")
        if not received:
            raise DecodeError("transport-cc feedback needs at least one received packet")
        ref = received[0] // _REF_US
        t = ref * _REF_US
        statuses: list[int] = []
        deltas: list[int] = []
        for arrival in arrivals_us:
            if arrival is None:
                statuses.append(0)
                continue
            ticks = round((arrival - t) / TICK_US)
            if not -32768 <= ticks <= 32767:
                raise DecodeError(f"transport-cc delta of {ticks} ticks does not fit 16 signed bits")
            t += ticks * TICK_US
            deltas.append(ticks)
            statuses.append(1 if 0 <= ticks <= 255 else 2)
        chunks = _choose_chunks(statuses)
        body_len = 16 + 2 * len(chunks) + sum(1 if s == 1 else 2 for s in statuses if s)
        pad = -body_len % 4
        padding = bytes(pad - 1) + bytes([pad]) if pad else b""
        return cls(ssrc, media_ssrc, base_seq, len(statuses), ref & 0xFFFFFF, fb_count & 0xFF,
                   tuple(chunks), tuple(deltas), padding, bool(pad))

    # -- wire format ------------------------------------------------------------------------

    def encode(self) -> bytes:
        body = bytearray(struct.pack("!IIHH", self.ssrc, self.media_ssrc, self.base_seq, self.status_count))
        body += self.reference_time.to_bytes(3, "big") + bytes([self.fb_count])
        body += b"".join(struct.pack("!H", c) for c in self.chunks)
        deltas = iter(self.deltas)
        for status in self.statuses:
            if status == 1:
                body += struct.pack("!B", next(deltas))
            elif status == 2:
                body += struct.pack("!h", next(deltas))
        body += self.padding
        return rtcp_header(_RTPFB, _FMT_TCC, bytes(body), self.padded)

    @classmethod
    def decode(cls, body: bytes, padded: bool = False) -> TransportCC:
        if len(body) < 16:
            raise DecodeError(f"transport-cc feedback is truncated: {len(body)} bytes, the fixed fields need 16")
        ssrc, media, base, count = struct.unpack_from("!IIHH", body)
        ref = int.from_bytes(body[12:15], "big")
        fb_count = body[15]
        pos, covered = 16, 0
        chunks: list[int] = []
        statuses: list[int] = []
        while covered < count:
            if pos + 2 > len(body):
                raise DecodeError(
                    f"transport-cc status chunks overrun the packet: {covered} of {count} statuses at byte {pos}"
                )
            chunk = struct.unpack_from("!H", body, pos)[0]
            pos += 2
            expanded = _expand(chunk)
            if not expanded:
                raise DecodeError(f"transport-cc run-length chunk at byte {pos - 2} has length 0")
            chunks.append(chunk)
            statuses += expanded
            covered += len(expanded)
        deltas: list[int] = []
        for i, status in enumerate(statuses[:count]):
            if status == 3:
                raise DecodeError(f"transport-cc status of packet {i} is 3, which is reserved")
            size = status  # 1 byte for a small delta, 2 for a large one
            if status and pos + size > len(body):
                raise DecodeError(f"transport-cc receive deltas overrun the packet at packet {i}")
            if status == 1:
                deltas.append(body[pos])
            elif status == 2:
                deltas.append(struct.unpack_from("!h", body, pos)[0])
            pos += size
        padding = bytes(body[pos:])
        if padded and (not padding or padding[-1] != len(padding)):
            raise DecodeError(f"transport-cc padding is {len(padding)} bytes but its count byte disagrees")
        if not padded and any(padding):
            raise DecodeError(f"transport-cc has {len(padding)} unexplained non-zero bytes after its deltas")
        return cls(ssrc, media, base, count, ref, fb_count, tuple(chunks), tuple(deltas), padding, padded)


def _choose_chunks(statuses: Sequence[int]) -> list[int]:
    """Run-length chunks for runs of 7 or more, else the densest status vector that fits."""
    chunks: list[int] = []
    i, n = 0, len(statuses)
    while i < n:
        run = 1
        while i + run < n and statuses[i + run] == statuses[i] and run < 0x1FFF:
            run += 1
        if run >= 7:
            chunks.append((statuses[i] << 13) | run)
            i += run
            continue
        window = list(statuses[i:i + 14])
        if len(window) == 14 and max(window) <= 1:
            chunks.append(0x8000 | sum(s << (13 - k) for k, s in enumerate(window)))
            i += 14
            continue
        window = list(statuses[i:i + 7]) + [0] * (7 - len(statuses[i:i + 7]))
        chunks.append(0xC000 | sum(s << (12 - 2 * k) for k, s in enumerate(window)))
        i += 7
    return chunks
