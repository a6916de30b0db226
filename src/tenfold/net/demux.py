"""Telling STUN, RTP and RTCP apart on one socket (RFC 7983 section 7, RFC 5761 section 4).

WebRTC multiplexes everything on one 5-tuple, so the first bytes decide: a first byte of
0-3 with the magic cookie is STUN; 128-191 is RTP or RTCP, and RTCP when the second byte
(the RTCP packet type, or marker + payload type in RTP) is 192-223, the range RFC 5761
keeps free of RTP payload types. Anything else (DTLS 20-63, TURN channels 64-79, junk) is
reported as ``None`` and a receiver drops and counts it.
"""

from __future__ import annotations

from typing import Literal

from tenfold.net.stun import is_stun

__all__ = ["PacketKind", "classify"]

PacketKind = Literal["stun", "rtp", "rtcp"]


def classify(data: bytes) -> PacketKind | None:
    """The protocol of one datagram, or None when it is none of the three."""
    if not data:
        return None
    first = data[0]
    if first < 4:
        return "stun" if is_stun(data) else None
    if 128 <= first <= 191 and len(data) >= 2:
        return "rtcp" if 192 <= data[1] <= 223 else "rtp"
    return None
