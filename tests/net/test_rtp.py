"""RTP codec: byte-exact round trips, aiortc interop both ways, exact error text."""

from __future__ import annotations

import contextlib

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap
from aiortc.rtp import RtpPacket as AioRtp
from hypothesis import given
from hypothesis import strategies as st

from tenfold.errors import DecodeError
from tenfold.net.av1dd import DependencyDescriptor
from tenfold.net.rtp import (
    ABS_SEND_TIME_URI,
    TRANSPORT_CC_URI,
    HeaderExtension,
    RtpPacket,
    abs_send_time,
    abs_send_time_seconds,
    pack_abs_send_time,
    pack_transport_seq,
    unpack_abs_send_time,
    unpack_transport_seq,
    zero_padding,
)

ABS_ID, TCC_ID, DD_ID = 3, 5, 13


def _aio_map() -> HeaderExtensionsMap:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=ABS_ID, uri=ABS_SEND_TIME_URI),
        RTCRtpHeaderExtensionParameters(id=TCC_ID, uri=TRANSPORT_CC_URI),
    ]))
    return ext_map


def test_aiortc_writes_we_read_field_for_field() -> None:
    aio = AioRtp(payload_type=96, marker=1, sequence_number=65535, timestamp=0xDEADBEEF, ssrc=0x11223344,
                 payload=b"\x01\x02\x03")
    aio.csrc = [7, 8]
    aio.extensions.abs_send_time = 0x123456
    aio.extensions.transport_sequence_number = 4242
    data = aio.serialize(_aio_map())
    ours = RtpPacket.decode(data)
    assert (ours.payload_type, ours.marker, ours.sequence_number, ours.timestamp, ours.ssrc) == (
        96, True, 65535, 0xDEADBEEF, 0x11223344)
    assert ours.csrc == (7, 8)
    assert ours.payload == b"\x01\x02\x03"
    assert ours.extension_profile == 0xBEDE
    assert unpack_abs_send_time(ours.extension(ABS_ID) or b"") == 0x123456
    assert unpack_transport_seq(ours.extension(TCC_ID) or b"") == 4242
    assert ours.encode() == data


def test_we_write_aiortc_reads_field_for_field() -> None:
    pkt = RtpPacket(payload_type=111, sequence_number=17, timestamp=960, ssrc=0xCAFEBABE, marker=False,
                    csrc=(1,), payload=b"opus" * 10)
    pkt = pkt.with_extension(ABS_ID, pack_abs_send_time(abs_send_time(12.25)))
    pkt = pkt.with_extension(TCC_ID, pack_transport_seq(65000))
    aio = AioRtp.parse(pkt.encode(), _aio_map())
    assert (aio.payload_type, aio.marker, aio.sequence_number, aio.timestamp, aio.ssrc) == (
        111, 0, 17, 960, 0xCAFEBABE)
    assert aio.csrc == [1]
    assert aio.payload == b"opus" * 10
    assert aio.extensions.abs_send_time == abs_send_time(12.25)
    assert aio.extensions.transport_sequence_number == 65000


def test_padding_from_aiortc_round_trips() -> None:
    aio = AioRtp(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    aio.padding_size = 9  # aiortc writes random padding bytes; we keep them verbatim
    data = aio.serialize()
    ours = RtpPacket.decode(data)
    assert ours.payload == b"x"
    assert len(ours.padding) == 9
    assert ours.encode() == data


def test_abs_send_time_is_6_18_fixed_point() -> None:
    assert abs_send_time(1.0) == 1 << 18
    assert abs_send_time(64.0) == 0
    assert abs_send_time_seconds(abs_send_time(10.5)) == 10.5


def test_two_byte_extensions_and_dd() -> None:
    dd = DependencyDescriptor(start_of_frame=True, end_of_frame=False, template_id=9, frame_number=513)
    pkt = RtpPacket(payload_type=45, sequence_number=1, timestamp=2, ssrc=3)
    pkt = pkt.with_extension(DD_ID, dd.encode()).with_extension(200, b"")
    assert pkt.extension_profile == 0x1000
    back = RtpPacket.decode(pkt.encode())
    assert back == pkt
    assert DependencyDescriptor.decode(back.extension(DD_ID) or b"") == dd
    assert dd.encode() == bytes([0x89, 0x02, 0x01])


def test_dd_extended_fields_kept_and_offset_read() -> None:
    raw = bytes([0xC0 | 5, 0x00, 0x07, 0b1000_0000, 0b1110_0000, 0xAB])  # flags 10000, offset 000111
    dd = DependencyDescriptor.decode(raw)
    assert (dd.start_of_frame, dd.end_of_frame, dd.template_id, dd.frame_number) == (True, True, 5, 7)
    assert dd.structure_present
    assert dd.template_id_offset == 0b000111
    assert dd.encode() == raw


exts = st.lists(st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=4,
                unique_by=lambda t: t[0])


@given(pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1),
       ssrc=st.integers(0, 2**32 - 1), marker=st.booleans(), csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15),
       ext=exts, payload=st.binary(max_size=64), pad=st.integers(0, 20))
def test_round_trip_is_byte_exact(pt: int, seq: int, ts: int, ssrc: int, marker: bool, csrc: list[int],
                                  ext: list[tuple[int, bytes]], payload: bytes, pad: int) -> None:
    pkt = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, marker=marker,
                    csrc=tuple(csrc), payload=payload, padding=zero_padding(pad) if pad else b"",
                    extensions=tuple(HeaderExtension(i, d) for i, d in ext),
                    extension_profile=0xBEDE if ext else None)
    data = pkt.encode()
    assert RtpPacket.decode(data) == pkt
    assert RtpPacket.decode(data).encode() == data


@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        RtpPacket.decode(data)


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x80\x60\x00", "RTP packet is 3 bytes; the fixed header needs 12"),
    (b"\x40" + bytes(11), "RTP version is 1; only version 2 is allowed"),
    (b"\x82" + bytes(15), "RTP CSRC list is truncated: 2 CSRCs need 20 bytes, got 16"),
    (b"\x90" + bytes(13), "RTP header extension is truncated: no room for its profile and length"),
    (b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4),
     "RTP header extension is truncated: length 2 words needs 8 bytes, got 4"),
    (b"\x90" + bytes(11) + b"\xbe\xde\x00\x01\x13\x00\x00\x00",
     "RTP extension element id 1 claims 4 bytes but only 3 remain"),
    (b"\xa0" + bytes(11) + b"\x05", "RTP padding count is 5; it must be 1..1"),
])
def test_malformed_rtp_names_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        RtpPacket.decode(data)
    assert str(info.value) == reason


def test_truncating_a_real_packet_always_raises() -> None:
    pkt = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, csrc=(4, 5)).with_extension(
        ABS_ID, pack_abs_send_time(77))
    data = pkt.encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            RtpPacket.decode(data[:cut])


def test_dd_too_short() -> None:
    with pytest.raises(DecodeError, match="dependency descriptor is 2 bytes; the mandatory fields need 3"):
        DependencyDescriptor.decode(b"\x80\x00")


def test_one_byte_id_zero_is_one_padding_byte_whatever_its_length_nibble() -> None:
    # RFC 8285 section 4.2: id 0 is padding, one byte long; libwebrtc skips it likewise.
    block = bytes([0x03, 0x10, 0x42, 0x20, 0xAB, 0x00, 0x00, 0x00])
    data = bytes([0x90, 96, 0, 1]) + bytes(8) + bytes.fromhex("BEDE0002") + block + b"pay"
    packet = RtpPacket.decode(data)
    assert packet.extensions == (HeaderExtension(1, b"\x42"), HeaderExtension(2, b"\xab"))
    assert packet.payload == b"pay"
