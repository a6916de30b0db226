"""GCC against the spec's acceptance checks 1-4 (trendline, overuse, ramp, loss)."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import GccConfig
from tenfold.systems.tarzan.gcc import (
    AckedBitrateEstimator,
    AimdRateControl,
    BandwidthUsage,
    Feedback,
    Gcc,
    InterArrival,
    LossBasedControl,
    OveruseDetector,
    PacketResult,
    TrendlineEstimator,
)
from tests.systems.tarzan.gcc_harness import run_loop


def test_trendline_matches_closed_form_on_a_delay_ramp() -> None:
    # Groups every 20 ms whose one-way delay grows 1 ms per group: d = 1 ms per delta.
    est = TrendlineEstimator()
    acc, sm = 0.0, 0.0
    xs: list[float] = []
    ys: list[float] = []
    for k in range(1, 81):
        m = est.update(send_delta=20.0, arrival_delta=21.0, arrival_ms=100.0 + 21.0 * k)
        acc += 1.0
        sm = 0.9 * sm + 0.1 * acc
        xs.append(21.0 * (k - 1))
        ys.append(sm)
        if k >= 20:
            slope = float(np.polyfit(xs[-20:], ys[-20:], 1)[0])
            assert est.slope == pytest.approx(slope, rel=1e-9)
            assert m == pytest.approx(min(k, 60) * slope * 4, rel=1e-9)
    # The smoothed ramp's slope tends to d / Δarrival = 1/21 per ms.
    assert est.slope == pytest.approx(1 / 21, rel=1e-3)
    assert est.modified_trend == pytest.approx(60 * 4 / 21, rel=1e-3)


def test_threshold_adapts_clamps_and_freezes() -> None:
    det = OveruseDetector(GccConfig())
    assert det.threshold == 12.5
    det.detect(m=20.0, slope=0.1, ts_delta_ms=5, num_deltas=10, now_ms=0.0)
    det.detect(m=20.0, slope=0.1, ts_delta_ms=5, num_deltas=10, now_ms=50.0)
    assert det.threshold == pytest.approx(12.5 + 0.0087 * (20.0 - 12.5) * 50.0)
    before = det.threshold
    det.detect(m=before + 15.5, slope=0.1, ts_delta_ms=5, num_deltas=10, now_ms=100.0)
    assert det.threshold == before  # frozen: |m| > thr + 15
    for i in range(200):
        det.detect(m=0.0, slope=0.0, ts_delta_ms=5, num_deltas=10, now_ms=200.0 + 100.0 * i)
    assert det.threshold == 6.0  # clamped below
    for i in range(400):
        det.detect(m=det.threshold + 14.0, slope=0.0, ts_delta_ms=5, num_deltas=10, now_ms=1e5 + 100.0 * i)
    assert det.threshold == 600.0  # clamped above


def test_overuse_needs_more_than_10_ms_over_two_deltas() -> None:
    det = OveruseDetector(GccConfig())
    assert det.detect(m=30.0, slope=1.0, ts_delta_ms=8, num_deltas=5, now_ms=0) is BandwidthUsage.NORMAL
    # 4 ms (half the first delta) + 8 ms = 12 ms > 10 ms, 2 deltas, slope not falling.
    assert det.detect(m=30.0, slope=1.0, ts_delta_ms=8, num_deltas=6, now_ms=8) is BandwidthUsage.OVERUSING
    det2 = OveruseDetector(GccConfig())
    det2.detect(m=30.0, slope=1.0, ts_delta_ms=8, num_deltas=5, now_ms=0)
    # A falling slope holds the signal back.
    assert det2.detect(m=30.0, slope=0.5, ts_delta_ms=8, num_deltas=6, now_ms=8) is BandwidthUsage.NORMAL
    assert det2.detect(m=-30.0, slope=0.5, ts_delta_ms=8, num_deltas=7, now_ms=16) is BandwidthUsage.UNDERUSING


def test_inter_arrival_groups_and_bursts() -> None:
    ia = InterArrival()
    assert ia.add(0.0, 50.0, 100) is None
    assert ia.add(3.0, 53.0, 100) is None  # same group (within 5 ms of its first packet)
    assert ia.add(10.0, 61.0, 100) is None  # second group starts; no predecessor yet to compare
    assert ia.add(20.0, 72.0, 100) == (7.0, 8.0, 61.0)  # second group closes against the first
    # A packet sent 8 ms later but arriving only 1 ms after the group's last is a burst: joins.
    assert ia.add(28.0, 73.0, 100) is None
    # The next group closes the burst-extended one against the group sent at 10 ms.
    assert ia.add(40.0, 90.0, 100) == (18.0, 12.0, 73.0)


def test_ramp_grows_8_percent_per_second_until_first_overuse() -> None:
    gcc = Gcc()
    trace = run_loop(gcc, capacity_bps=lambda t: 12e6, duration_ms=8000, rtt_ms=100)
    times = np.array(trace.times_ms)
    targets = np.array(trace.targets_bps, dtype=float)
    end = trace.overuse_ms[0] if trace.overuse_ms else times[-1]
    window = (times >= 2000) & (times <= min(end, 7000))
    rate = np.polyfit(times[window] / 1000.0, np.log(targets[window]), 1)[0]
    assert np.exp(rate) - 1 == pytest.approx(0.08, abs=0.015)


def test_step_down_is_detected_within_a_second_and_cut_to_085_acked() -> None:
    gcc = Gcc(GccConfig(start_bps=2_500_000))
    step_at = 6000.0
    trace = run_loop(gcc, capacity_bps=lambda t: 3e6 if t < step_at else 1e6, duration_ms=9000, rtt_ms=100)
    after = [t for t in trace.overuse_ms if t >= step_at]
    assert after and after[0] - step_at <= 1000.0
    cut_t, target, acked = next(c for c in trace.cuts if c[0] >= after[0])
    # The first cut waits at most one reduction interval (rtt clamped to [10, 200] ms) plus a report.
    assert cut_t - after[0] <= 150.0
    assert acked is not None
    assert target == pytest.approx(0.85 * acked, rel=0.10)


def test_loss_based_cuts_and_grows_as_specified() -> None:
    cfg = GccConfig()
    ctl = LossBasedControl(cfg)
    ctl.rate_bps = 1_000_000.0
    assert ctl.update(loss=0.15, rtt_ms=100, now_ms=0) == pytest.approx(925_000.0)
    assert ctl.update(loss=0.15, rtt_ms=100, now_ms=350) == pytest.approx(925_000.0)  # < 300 + rtt
    assert ctl.update(loss=0.15, rtt_ms=100, now_ms=400) == pytest.approx(925_000.0 * 0.925)
    low = LossBasedControl(cfg)
    for t, r in [(0, 800_000.0), (400, 600_000.0), (800, 900_000.0)]:
        low.rate_bps = r
        low.cap(r, t)
    assert low.update(loss=0.01, rtt_ms=100, now_ms=1000) == pytest.approx(1.08 * 600_000 + 1000)
    # Two seconds on, the 600 kbps sample has aged out of the 1 s window.
    low.cap(5e6, 2300)
    assert low.update(loss=0.01, rtt_ms=100, now_ms=2300) == pytest.approx(1.08 * 649_000 + 1000)


def test_loss_in_the_loop_cuts_the_target() -> None:
    gcc = Gcc(GccConfig(start_bps=1_000_000))
    trace = run_loop(gcc, capacity_bps=lambda t: 12e6, duration_ms=3000, loss=0.15, seed=3)
    assert trace.targets_bps[-1] < 1_000_000 * 0.925**3
    assert all(b >= 50_000 for b in trace.targets_bps)


def test_target_is_clamped_and_starts_at_300k() -> None:
    gcc = Gcc()
    assert gcc.target_bps(0) == 300_000
    pkts = tuple(PacketResult(i, float(i), 1200, None) for i in range(40))
    for k in range(40):
        gcc.on_feedback(Feedback(1000.0 * k, pkts, 100.0))
    assert gcc.target_bps(40_000) == 50_000


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"'beta' = 1\.5"):
        GccConfig(beta=1.5)
    with pytest.raises(ConfigError, match="'max_bps' = 10: must be > min_bps"):
        GccConfig(max_bps=10)


def _feed_1mbps(est: AckedBitrateEstimator, start_ms: float, end_ms: float) -> None:
    """1200-byte packets every 9.6 ms: exactly 1 Mbps."""
    t = start_ms
    while t < end_ms:
        est.update(t, 1200)
        t += 9.6


def test_acked_rate_restarts_its_window_after_an_outage() -> None:
    # libwebrtc BitrateEstimator::UpdateWindow: nothing received for more than a full window
    # drops the partial sum and keeps only the window remainder, so an outage does not turn
    # into a backlog of window time that each later packet closes with a one-packet sample.
    est = AckedBitrateEstimator()
    _feed_1mbps(est, 0.0, 3000.0)
    assert est.bps == pytest.approx(1e6, rel=0.03)
    _feed_1mbps(est, 5000.0, 5300.0)  # a 2 s outage, then 1 Mbps again
    assert est.bps == pytest.approx(1e6, rel=0.1)
    # A full window with the same bytes gives the same sample whether it closes at >= or >.
    exact = AckedBitrateEstimator(initial_window_ms=100.0)
    for t in (0.0, 50.0, 100.0):
        exact.update(t, 1250)
    assert exact.bps == pytest.approx(200_000.0)  # 2 x 1250 B over 100 ms: 200 kbps


def test_the_throughput_cap_limits_an_increase_but_never_lowers_the_rate() -> None:
    aimd = AimdRateControl(GccConfig())
    aimd.rate_bps = 1_000_000.0
    # acked 200 kbps: the cap is 1.5 x 200 + 10 = 310 kbps < 1 Mbps, so the rate holds.
    assert aimd.update(BandwidthUsage.NORMAL, 200_000.0, 100.0, 1000.0) == 1_000_000.0
    assert aimd.update(BandwidthUsage.NORMAL, 200_000.0, 100.0, 2000.0) == 1_000_000.0
    # acked 1 Mbps: the cap is 1.51 Mbps, so the rate grows x1.08 over a full second.
    assert aimd.update(BandwidthUsage.NORMAL, 1_000_000.0, 100.0, 3000.0) == pytest.approx(1_080_000.0)
    # An increase is clipped at the cap: 1.5 x 700 + 10 = 1,060 kbps.
    assert aimd.update(BandwidthUsage.NORMAL, 700_000.0, 100.0, 3100.0) == 1_080_000.0
    aimd.rate_bps = 1_050_000.0
    assert aimd.update(BandwidthUsage.NORMAL, 700_000.0, 100.0, 4100.0) == pytest.approx(1_060_000.0)
