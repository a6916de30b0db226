"""RTCP codec: compound round trips, aiortc interop both ways, transport-cc, exact errors."""

from __future__ import annotations

import contextlib

import pytest
from aiortc import rtp as aio
from hypothesis import given
from hypothesis import strategies as st

from tenfold.errors import DecodeError
from tenfold.net.demux import classify
from tenfold.net.rtcp import (
    Bye,
    Nack,
    Pli,
    RawRtcp,
    ReceiverReport,
    Remb,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    TransportCC,
    decode_compound,
    encode_compound,
)

BLOCK = ReportBlock(ssrc=0xAABBCCDD, fraction_lost=12, packets_lost=-3, highest_sequence=70000, jitter=55,
                    lsr=0x12345678, dlsr=999)
AIO_BLOCK = aio.RtcpReceiverInfo(ssrc=0xAABBCCDD, fraction_lost=12, packets_lost=-3, highest_sequence=70000,
                                 jitter=55, lsr=0x12345678, dlsr=999)


def _aio_packets() -> list[object]:
    return [
        aio.RtcpSrPacket(ssrc=1, sender_info=aio.RtcpSenderInfo(ntp_timestamp=0x0102030405060708,
                         rtp_timestamp=90000, packet_count=10, octet_count=12000), reports=[AIO_BLOCK]),
        aio.RtcpRrPacket(ssrc=2, reports=[AIO_BLOCK, AIO_BLOCK]),
        aio.RtcpSdesPacket(chunks=[aio.RtcpSourceInfo(ssrc=1, items=[(1, b"user@host")])]),
        aio.RtcpRtpfbPacket(fmt=aio.RTCP_RTPFB_NACK, ssrc=2, media_ssrc=1, lost=[100, 101, 116, 117, 200]),
        aio.RtcpPsfbPacket(fmt=aio.RTCP_PSFB_PLI, ssrc=2, media_ssrc=1),
        aio.RtcpPsfbPacket(fmt=aio.RTCP_PSFB_APP, ssrc=2, media_ssrc=0, fci=aio.pack_remb_fci(2_500_000, [1, 5])),
        aio.RtcpByePacket(sources=[1, 2]),
    ]


def _ours() -> list[object]:
    return [
        SenderReport(ssrc=1, ntp_timestamp=0x0102030405060708, rtp_timestamp=90000, packet_count=10,
                     octet_count=12000, reports=(BLOCK,)),
        ReceiverReport(ssrc=2, reports=(BLOCK, BLOCK)),
        Sdes((SdesChunk(1, ((1, b"user@host"),), nulls=5),)),
        Nack.from_lost(2, 1, [100, 101, 116, 117, 200]),
        Pli(2, 1),
        Remb.from_bitrate(2, 2_500_000, [1, 5]),
        Bye((1, 2)),
    ]


def test_aiortc_compound_reads_field_for_field() -> None:
    data = b"".join(bytes(p) for p in _aio_packets())  # type: ignore[call-overload]
    packets = decode_compound(data)
    assert packets == _ours()
    nack = packets[3]
    assert isinstance(nack, Nack)
    assert nack.lost == (100, 101, 116, 117, 200)
    remb = packets[5]
    assert isinstance(remb, Remb)
    assert remb.bitrate == aio.unpack_remb_fci(aio.pack_remb_fci(2_500_000, [1, 5]))[0]
    assert encode_compound(packets) == data


def test_we_write_aiortc_reads_field_for_field() -> None:
    data = encode_compound(_ours())  # type: ignore[arg-type]
    theirs = aio.RtcpPacket.parse(data)
    assert [bytes(p) for p in theirs] == [bytes(p) for p in _aio_packets()]  # type: ignore[call-overload]
    sr, rr, sdes, nack, pli, remb, bye = theirs
    assert isinstance(sr, aio.RtcpSrPacket) and sr.sender_info.rtp_timestamp == 90000
    assert sr.reports[0] == AIO_BLOCK
    assert isinstance(rr, aio.RtcpRrPacket) and rr.reports == [AIO_BLOCK, AIO_BLOCK]
    assert isinstance(sdes, aio.RtcpSdesPacket) and sdes.chunks[0].items == [(1, b"user@host")]
    assert isinstance(nack, aio.RtcpRtpfbPacket) and nack.lost == [100, 101, 116, 117, 200]
    assert isinstance(pli, aio.RtcpPsfbPacket) and (pli.fmt, pli.ssrc, pli.media_ssrc) == (1, 2, 1)
    assert isinstance(remb, aio.RtcpPsfbPacket) and aio.unpack_remb_fci(remb.fci) == (2_500_000 >> 4 << 4, [1, 5])
    assert isinstance(bye, aio.RtcpByePacket) and bye.sources == [1, 2]


def test_multi_chunk_sdes_bye_reason_and_raw_types_round_trip() -> None:
    sdes = Sdes((SdesChunk(1, ((1, b"user@host"),)), SdesChunk(9, ((1, b"ab"), (2, b"name")))))
    packets = [sdes, Bye((7,), b"gone"), RawRtcp(204, 3, b"\x00\x00\x00\x07name" + bytes(4))]
    data = encode_compound(packets)  # type: ignore[arg-type]
    assert decode_compound(data) == packets
    assert classify(data) == "rtcp"


def test_transport_cc_build_decode_arrivals() -> None:
    arrivals = [1_000_000, None, 1_000_250, 1_200_000, 900_000] + [None] * 8 + [1_200_250]
    fb = TransportCC.build(ssrc=1, media_ssrc=2, base_seq=65530, fb_count=3, arrivals_us=arrivals)
    assert fb.statuses == (1, 0, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 2)
    assert fb.arrivals() == [((65530 + i) & 0xFFFF, a) for i, a in enumerate(arrivals)]
    data = fb.encode()
    assert decode_compound(data) == [fb]
    assert len(data) % 4 == 0


def test_transport_cc_golden_bytes() -> None:
    # Hand-assembled from the draft's figures: base 10, 9 statuses, ref 1 (64 ms), fb 0;
    # run-length chunk "status 1 x 9" = 0x2009; deltas 4 x 250us each; 1 padding byte (its count).
    body = bytes.fromhex("00000001 00000002 000a 0009 000001 00 2009") + bytes([4] * 9) + bytes([1])
    data = bytes([0xA0 | 15, 205]) + (len(body) // 4).to_bytes(2, "big") + body
    (fb,) = decode_compound(data)
    assert isinstance(fb, TransportCC)
    assert fb.arrivals() == [(10 + i, 64_000 + 1000 * (i + 1)) for i in range(9)]
    assert fb.encode() == data


@given(st.lists(st.one_of(st.none(), st.integers(0, 5_000_000)), min_size=1, max_size=300).filter(
    lambda xs: any(x is not None for x in xs)))
def test_transport_cc_round_trip_invariant(raw: list[int | None]) -> None:
    # Arrivals within 8 s of each other keep every delta inside 16 signed bits.
    fb = TransportCC.build(1, 2, 0, 0, raw)
    data = fb.encode()
    (back,) = decode_compound(data)
    assert back == fb
    assert back.encode() == data
    got = [a for _, a in back.arrivals()]
    assert [g is None for g in got] == [r is None for r in raw]


@given(st.lists(st.integers(0, 0xFFFF), max_size=40))
def test_nack_round_trip_invariant(lost: list[int]) -> None:
    nack = Nack.from_lost(1, 2, lost)
    assert sorted(nack.lost) == sorted(set(lost))
    assert decode_compound(nack.encode()) == [nack]


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_compound(data)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "RTCP datagram is empty"),
    (b"\x81\xc9\x00", "RTCP header is truncated: 3 bytes left at byte 0, need 4"),
    (b"\x41\xc9\x00\x00", "RTCP version is 1 at byte 0; only version 2 is allowed"),
    (b"\x81\xc9\x00\x07" + bytes(8), "RTCP packet length 7 words at byte 0 exceeds the 8 bytes left"),
    (b"\x81\xc9\x00\x01" + bytes(4), "RTCP RR is truncated: 1 report blocks need 28 bytes, got 4"),
    (b"\x81\xcd\x00\x01" + bytes(4), "RTCP NACK length is invalid: 4 bytes after the header"),
    (b"\x8f\xcd\x00\x04" + bytes(10) + b"\x00\x05" + bytes(4),
     "transport-cc status chunks overrun the packet: 0 of 5 statuses at byte 16"),
])
def test_malformed_rtcp_names_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_compound(data)
    assert str(info.value) == reason


def test_truncated_compound_always_raises() -> None:
    data = encode_compound(_ours())  # type: ignore[arg-type]
    for cut in range(1, len(data)):
        if cut in _boundaries(data):
            continue
        with pytest.raises(DecodeError):
            decode_compound(data[:cut])


def _boundaries(data: bytes) -> set[int]:
    out, pos = set(), 0
    while pos < len(data):
        pos += 4 + 4 * int.from_bytes(data[pos + 2:pos + 4], "big")
        out.add(pos)
    return out


def test_count_field_overflow_raises_instead_of_corrupting_the_header() -> None:
    blocks = tuple(ReportBlock(i, 0, 0, 0, 0, 0, 0) for i in range(32))
    with pytest.raises(DecodeError, match=r"RTCP count/format field of type 201 is 32; the 5-bit field holds 0\.\.31"):
        ReceiverReport(1, blocks).encode()
    with pytest.raises(DecodeError, match=r"type 203 is 33; the 5-bit field holds 0\.\.31"):
        Bye(tuple(range(33))).encode()
    assert decode_compound(ReceiverReport(1, blocks[:31]).encode()) == [ReceiverReport(1, blocks[:31])]
    assert decode_compound(Bye(tuple(range(31))).encode()) == [Bye(tuple(range(31)))]
