"""Video model: encoder statistics, packetiser, receiver (assembly, NACK, PLI, jitter
buffer), the freeze formula on crafted timelines, and calls over SimLink."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.net.call import run_video_call
from tenfold.net.link import LinkConfig
from tenfold.net.playout import FreezeDetector, PlayoutConfig, QoE, VideoReceiver, is_freeze
from tenfold.net.rtcp import Nack, Pli
from tenfold.net.rtp import RtpPacket, unpack_transport_seq
from tenfold.net.trace import Trace, synthetic_trace
from tenfold.net.video import EncodedFrame, EncoderConfig, FrameDescriptor, Packetizer, VideoEncoder

FPS = 30.0


# -- freeze formula on crafted timelines -----------------------------------------------------

def _renders(gaps_ms: list[float]) -> list[float]:
    times = [0.0]
    for gap in gaps_ms:
        times.append(times[-1] + gap / 1000.0)
    return times


def _freezes(gaps_ms: list[float]) -> list[tuple[float, float]]:
    det = FreezeDetector()
    for t in _renders(gaps_ms):
        det.add(t)
    return det.freezes


def test_200ms_gap_at_30fps_freezes_and_90ms_does_not() -> None:
    steady = [1000 / FPS] * 10
    assert len(_freezes([*steady, 200.0])) == 1
    assert _freezes([*steady, 90.0]) == []
    (start, gap), = _freezes([*steady, 200.0])
    assert gap == pytest.approx(0.2)
    assert start == pytest.approx(10 / FPS)


def test_threshold_is_max_of_3x_and_plus_150() -> None:
    # avg 100 ms: max(300, 250) = 300; avg 20 ms: max(60, 170) = 170.
    assert is_freeze(0.300, 0.100) and not is_freeze(0.299, 0.100)
    assert is_freeze(0.170, 0.020) and not is_freeze(0.169, 0.020)
    assert len(_freezes([100.0] * 8 + [300.0])) == 1
    assert _freezes([100.0] * 8 + [299.0]) == []


def test_average_is_over_last_30_gaps() -> None:
    # 40 gaps of 20 ms then 30 gaps of 60 ms: the window holds only 60 ms gaps -> max(180, 210).
    base = [20.0] * 40 + [60.0] * 30
    assert _freezes([*base, 209.0]) == []
    assert len(_freezes([*base, 210.0])) == 1


def test_frames_before_the_fifth_are_ignored() -> None:
    assert _freezes([33.0, 33.0, 33.0, 500.0]) == []          # gap ends at frame 4
    assert len(_freezes([33.0, 33.0, 33.0, 33.0, 500.0])) == 1  # gap ends at frame 5


# -- encoder and packetiser -------------------------------------------------------------------

def test_encoder_follows_target_with_noise_and_key_frames() -> None:
    enc = VideoEncoder(EncoderConfig(initial_bps=2e6), rng=np.random.default_rng(1))
    frames = [enc.encode(i / FPS) for i in range(int(30 * FPS))]
    keys = [f.index for f in frames if f.key]
    assert keys == [0, 300, 600]
    deltas = np.array([f.size for f in frames if not f.key])
    assert deltas.mean() * 8 * FPS == pytest.approx(2e6, rel=0.02)
    assert deltas.std() / deltas.mean() == pytest.approx(0.15, rel=0.15)
    assert frames[300].size > 3 * deltas.mean()


def test_encoder_lag_and_pli() -> None:
    enc = VideoEncoder(EncoderConfig(noise_sigma=0.0, initial_bps=1e6))
    enc.encode(0.0)
    enc.set_target(2e6)
    rates = [enc.encode((i + 1) / FPS).rate_bps for i in range(int(0.2 * FPS))]
    assert rates[-1] == pytest.approx(2e6 - 1e6 * np.exp(-1.0), rel=1e-9)  # one tau later
    enc.request_keyframe()
    assert enc.encode(1.0).key


def test_packetizer_splits_into_1200_byte_payloads() -> None:
    pkt = Packetizer(ssrc=9, first_seq=65534)
    packets = pkt.packetize(EncodedFrame(7, 1.0, 3000, True, 1e6))
    assert [len(p.payload) for p in packets] == [1000, 1000, 1000]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0]
    assert [p.marker for p in packets] == [False, False, True]
    assert {p.timestamp for p in packets} == {90000}
    assert FrameDescriptor.decode(packets[1].payload) == FrameDescriptor(7, 1, 3, True)
    big = pkt.packetize(EncodedFrame(8, 1.0, 2401, False, 1e6))
    assert max(len(p.payload) for p in big) <= 1200 and sum(len(p.payload) for p in big) == 2401
    stamped = pkt.stamp(packets[0], 1.5)
    again = RtpPacket.decode(stamped.encode())
    assert unpack_transport_seq(again.extension(5) or b"") == 0


# -- receiver ---------------------------------------------------------------------------------

def _stream(frames: int, size: int = 2500) -> list[RtpPacket]:
    pkt = Packetizer(ssrc=1)
    out: list[RtpPacket] = []
    for i in range(frames):
        out += pkt.packetize(EncodedFrame(i, i / FPS, size, i == 0, 1e6))
    return out


def test_receiver_renders_in_order_after_jitter_delay() -> None:
    rx = VideoReceiver(PlayoutConfig(jitter_min_ms=10.0))
    for p in _stream(10):
        rx.on_packet(p, p.timestamp / 90000 + 0.050)
    frames = rx.render(10.0)
    assert [f.index for f in frames] == list(range(10))
    assert all(f.delay_ms == pytest.approx(60.0) for f in frames)  # 50 ms transit + 10 ms floor


def test_lost_packet_is_nacked_and_retransmission_completes_frame() -> None:
    stream = _stream(3)  # 3 packets per frame
    rx = VideoReceiver(PlayoutConfig(nack_interval_ms=100.0))
    lost = stream[4]
    for p in stream:
        if p is not lost:
            rx.on_packet(p, 0.1)
    fb = rx.poll(0.1)
    assert fb == [Nack.from_lost(2, 1, [lost.sequence_number])]
    assert rx.poll(0.15) == []            # not again before nack_interval
    assert rx.poll(0.2) == fb              # repeated after it
    assert [f.index for f in rx.render(0.3)] == [0]
    rx.on_packet(lost, 0.31)
    assert [f.index for f in rx.render(1.0)] == [1, 2]
    assert rx.poll(1.0) == []


def test_stuck_decoder_sends_pli_and_resumes_at_key_frame() -> None:
    pkt = Packetizer(ssrc=1)
    frames = [EncodedFrame(i, i / FPS, 1000, i in (0, 40), 1e6) for i in range(60)]
    rx = VideoReceiver(PlayoutConfig(max_wait_ms=200.0, nack=False))
    for f in frames:
        for p in pkt.packetize(f):
            if f.index != 5:  # frame 5 never arrives
                rx.on_packet(p, f.capture_s + 0.02)
        rx.render(f.capture_s + 0.02)
        for fb in rx.poll(f.capture_s + 0.02):
            assert isinstance(fb, Pli)
    rx.render(2.0)
    assert rx.plis_sent >= 1
    indices = [f.index for f in rx.rendered]
    assert indices[:5] == [0, 1, 2, 3, 4]
    assert indices[5:] == list(range(40, 60))
    assert rx.qoe(2.0).freezes == 1


def test_receive_loop_counts_malformed_and_keeps_running() -> None:
    rx = VideoReceiver()
    stream = _stream(2)
    junk = [b"", b"\x80\x60", b"\x80\x60" + bytes(10), b"\x17\xfe" + bytes(30), bytes(stream[0].encode()[:11])]
    for i, p in enumerate(stream):
        rx.on_datagram(junk[i % len(junk)], 0.01)
        rx.on_datagram(p.encode(), 0.01)
    assert rx.malformed == 3   # short RTP, RTP with no descriptor, truncated header
    assert rx.ignored == 3     # empty and non-RTP datagrams
    assert [f.index for f in rx.render(1.0)] == [0, 1]


# -- calls over the emulated link -------------------------------------------------------------

def test_call_on_ample_link_has_no_freezes() -> None:
    result = run_video_call(Trace([1]), 10.0, 2e6, link=LinkConfig(delay_ms=20), seed=1)
    assert result.qoe.freezes == 0
    assert result.qoe.fps == pytest.approx(30.0, abs=0.2)
    assert result.link_drops == 0
    assert result.sent_bitrate_bps == pytest.approx(2e6, rel=0.1)


def test_call_on_outage_trace_freezes_and_is_seeded() -> None:
    trace = synthetic_trace("gilbert", 20.0, seed=2, good_mbps=3.0, bad_mbps=0.1, p_good_to_bad=0.02,
                            p_bad_to_good=0.2)
    a = run_video_call(trace, 20.0, 1.5e6, link=LinkConfig(delay_ms=20), seed=3)
    b = run_video_call(trace, 20.0, 1.5e6, link=LinkConfig(delay_ms=20), seed=3)
    assert a == b
    assert a.qoe.freezes > 0
    assert a.qoe.freeze_rate > 0.0


def test_lossy_link_is_repaired_by_nack() -> None:
    result = run_video_call(Trace([1]), 10.0, 2e6, link=LinkConfig(delay_ms=20, loss=0.02, seed=5), seed=1)
    assert result.retransmissions > 0
    assert result.qoe.freezes == 0
    assert result.qoe.frames >= 295


def test_a_call_that_never_gets_past_the_warm_up_frames_is_one_long_freeze() -> None:
    assert VideoReceiver().qoe(60.0) == QoE(0, 0.0, 1, 1.0, 60_000.0, 60_000.0)
    pkt = Packetizer(ssrc=1)
    rx = VideoReceiver(PlayoutConfig(nack=False))
    for f in [EncodedFrame(i, i / FPS, 1000, i == 0, 1e6) for i in range(3)]:
        for p in pkt.packetize(f):
            rx.on_packet(p, f.capture_s + 0.02)
        rx.render(f.capture_s + 0.5)
    q = rx.qoe(60.0)
    assert (q.frames, q.freezes, q.freeze_rate) == (3, 1, 1.0)


# -- foreign SSRCs and implausible frame indices (audit: a stray packet discarded the call) --

def _rx_packet(seq: int, frame: int, *, key: bool = False, ssrc: int = 1) -> bytes:
    return RtpPacket(96, seq, round(frame / FPS * 90_000), ssrc,
                     payload=FrameDescriptor(frame, 0, 1, key).encode() + bytes(100)).encode()


def _stream_with_stray(stray: bytes | None) -> VideoReceiver:
    rx = VideoReceiver()
    seq = 0
    for f in range(60):
        now = f / FPS + 0.02
        if stray is not None and f == 10:
            rx.on_datagram(stray, now)
        if f != 11:  # frame 11 arrives late, with frame 12
            rx.on_datagram(_rx_packet(seq, f, key=f == 0), now)
            seq += 1
        if f == 12:
            rx.on_datagram(_rx_packet(seq, 11), now)
            seq += 1
        rx.render(now + 0.2)
    return rx


def test_stray_packet_from_another_ssrc_is_dropped_and_counted() -> None:
    rx = _stream_with_stray(_rx_packet(5000, 1_000_000, key=True, ssrc=99))
    assert [f.index for f in rx.rendered] == list(range(60))
    assert (rx.foreign, rx.implausible, rx.malformed, rx.media_ssrc) == (1, 0, 0, 1)


def test_frame_index_far_ahead_of_the_sequence_number_is_dropped() -> None:
    rx = _stream_with_stray(_rx_packet(5000, 1_000_000, key=True, ssrc=1))
    assert [f.index for f in rx.rendered] == list(range(60))
    assert (rx.foreign, rx.implausible) == (0, 1)


def test_receiver_locks_onto_the_first_ssrc_or_the_configured_one() -> None:
    rx = VideoReceiver()
    rx.on_datagram(_rx_packet(0, 0, key=True, ssrc=7), 0.0)
    rx.on_datagram(_rx_packet(1, 1, ssrc=8), 0.04)
    assert (rx.media_ssrc, rx.packets, rx.foreign) == (7, 1, 1)
    fixed = VideoReceiver(media_ssrc=8)
    fixed.on_datagram(_rx_packet(0, 0, key=True, ssrc=7), 0.0)
    assert (fixed.packets, fixed.foreign) == (0, 1)


def test_first_packet_may_lead_at_most_max_frame_lead() -> None:
    rx = VideoReceiver()
    rx.on_datagram(_rx_packet(0, VideoReceiver.MAX_FRAME_LEAD + 1, key=True), 0.0)
    assert (rx.packets, rx.implausible) == (0, 1)
    rx.on_datagram(_rx_packet(1, VideoReceiver.MAX_FRAME_LEAD, key=True), 0.0)
    assert (rx.packets, rx.implausible) == (1, 1)


def test_outage_longer_than_max_frame_lead_still_resumes() -> None:
    # 20 s without a packet: frame and sequence number advance together, so the key frame
    # after the outage is plausible and the receiver resumes at it.
    rx = VideoReceiver(PlayoutConfig(nack=False))
    for f in range(10):
        rx.on_datagram(_rx_packet(f, f, key=f == 0), f / FPS)
        rx.render(f / FPS + 0.2)
    gap = 600
    for f in range(10 + gap, 20 + gap):
        rx.on_datagram(_rx_packet(f, f, key=f == 10 + gap), f / FPS)
        rx.render(f / FPS + 0.2)
    assert rx.implausible == 0
    assert [f.index for f in rx.rendered] == list(range(10)) + list(range(10 + gap, 20 + gap))
