"""Mutated and truncated datagrams: every decoder either decodes or raises DecodeError,
never anything else (scallop spec 8.11), and the video receive loop never stops."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tenfold.errors import DecodeError
from tenfold.net.av1dd import DependencyDescriptor, TemplateStructure
from tenfold.net.demux import classify
from tenfold.net.playout import VideoReceiver
from tenfold.net.rtcp import (
    Bye,
    Nack,
    Pli,
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
from tenfold.net.rtp import RtpPacket, pack_abs_send_time
from tenfold.net.stun import StunAttr, StunMessage
from tenfold.net.video import EncodedFrame, Packetizer

ROUNDS = 4000


def _seeds() -> list[bytes]:
    block = ReportBlock(1, 2, 3, 4, 5, 6, 7)
    rtcp = [
        encode_compound([SenderReport(1, 2, 3, 4, 5, (block,)), Sdes((SdesChunk(1, ((1, b"cname"),)),))]),
        encode_compound([ReceiverReport(1, (block,)), Remb.from_bitrate(1, 10**6, [2, 3])]),
        encode_compound([Nack.from_lost(1, 2, [5, 6, 30]), Pli(1, 2), Bye((1,), b"bye")]),
        TransportCC.build(1, 2, 100, 0, [1000, None, 3000, 900, None, 70_000]).encode(),
    ]
    rtp = RtpPacket(96, 1, 2, 3, csrc=(9,), payload=b"x" * 40).with_extension(3, pack_abs_send_time(7)).encode()
    stun = StunMessage(1, 0, bytes(12), ((StunAttr.USERNAME, b"a:b"),)).with_integrity(b"k").with_fingerprint()
    dd = DependencyDescriptor.build(start_of_frame=True, end_of_frame=True, template_index=0, frame_number=1,
                                    structure=TemplateStructure.l1t3(5), attach_structure=True).encode()
    return [*rtcp, rtp, stun.encode(), dd]


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        if buf and rng.random() < 0.7:
            i = int(rng.integers(len(buf)))
            buf[i] ^= 1 << int(rng.integers(8))
        else:
            buf = buf[: int(rng.integers(len(buf) + 1))]
    return bytes(buf)


def test_mutated_datagrams_decode_or_raise_decode_error_only() -> None:
    rng = np.random.default_rng(0)
    seeds = _seeds()
    def dd(data: bytes) -> object:
        return DependencyDescriptor.decode(data).dependencies(TemplateStructure.l1t3())

    decoders: list[Callable[[bytes], object]] = [decode_compound, RtpPacket.decode, StunMessage.decode, dd]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(ROUNDS):
        data = _mutate(rng, seeds[int(rng.integers(len(seeds)))])
        classify(data)
        for decode in decoders:
            try:
                decode(data)
                outcomes["ok"] += 1
            except DecodeError:
                outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_receive_loop_survives_mutated_stream() -> None:
    rng = np.random.default_rng(1)
    rx = VideoReceiver()
    pkt = Packetizer(ssrc=1)
    for i in range(300):
        for p in pkt.packetize(EncodedFrame(i, i / 30, 2500, i % 60 == 0, 1e6)):
            data = p.encode()
            rx.on_datagram(_mutate(rng, data) if rng.random() < 0.2 else data, i / 30 + 0.03)
        rx.render(i / 30 + 0.03)
        rx.poll(i / 30 + 0.03)
    assert rx.malformed > 0
    # A bit flip in the SSRC makes a packet foreign: it is dropped like a lost packet (as a
    # demultiplexing receiver would), and without a sender to answer NACKs the lost delta
    # packet stalls decoding until the next key frame (every 60 frames here).
    assert (rx.malformed, rx.foreign, rx.implausible) == (5, 2, 0)
    assert len(rx.rendered) > 60
