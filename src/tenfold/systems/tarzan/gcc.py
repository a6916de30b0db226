"""Google Congestion Control (GCC), the incumbent whose logs Tarzan learns from.

A faithful sender-side GCC with the libwebrtc ``goog_cc`` constants of the spec (§2.3), driven
by transport-wide congestion-control feedback (draft-holmer-rmcat-transport-wide-cc-extensions)
and read top to bottom as the pipeline one feedback report goes through:

1. :class:`InterArrival` groups packets sent within 5 ms into send groups (bursts join) and
   emits the inter-group delay variation d = Δarrival − Δsend.
2. :class:`TrendlineEstimator` accumulates d, smooths it (0.9/0.1), fits a least-squares slope
   over the last 20 points and scales it: m = min(n, 60) · slope · 4.
3. :class:`OveruseDetector` compares m with an adaptive threshold (starts 12.5 ms, gains
   0.0087 / 0.039, clamped to [6, 600], frozen while |m| > thr + 15) and signals overuse after
   more than 10 ms over at least 2 deltas with a slope that is not falling.
4. :class:`AckedBitrateEstimator` is the Bayesian windowed throughput estimate (500 ms first,
   then 150 ms windows; uncertainty scale 10, variance +5 per update, initial variance 50).
5. :class:`AimdRateControl` turns the signal into a delay-based rate (multiplicative ×1.08/s
   far from capacity, additive near it, ×0.85 of acked on overuse) with the
   :class:`LinkCapacityEstimator`.
6. :class:`LossBasedControl`: below 2 % loss, 1.08 × (min over 1 s) + 1 kbps; above 10 %,
   × (1 − 0.5 · loss) at most once per 300 ms + rtt.
7. The target is min(delay-based, loss-based), clamped to [50 kbps, 6 Mbps], starting at
   300 kbps. No probing (design choice of the spec).

Rates are in bits per second, times in milliseconds. The controller never reads the clock:
every call takes ``now_ms``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from tenfold.systems.tarzan.config import GccConfig

__all__ = [
    "AckedBitrateEstimator",
    "AimdRateControl",
    "BandwidthUsage",
    "Feedback",
    "Gcc",
    "InterArrival",
    "LinkCapacityEstimator",
    "LossBasedControl",
    "OveruseDetector",
    "PacketResult",
    "TrendlineEstimator",
]


@dataclass(frozen=True)
class PacketResult:
    """One packet as a transport-cc report describes it; ``arrival_ms`` is None if lost."""

    seq: int
    send_ms: float
    size_bytes: int
    arrival_ms: float | None


@dataclass(frozen=True)
class Feedback:
    """One transport-cc feedback report as the sender sees it at ``now_ms``."""

    now_ms: float
    packets: tuple[PacketResult, ...]
    rtt_ms: float


class BandwidthUsage(Enum):
    NORMAL = "normal"
    UNDERUSING = "underusing"
    OVERUSING = "overusing"


# --- 1. send groups -----------------------------------------------------------------------


@dataclass
class _Group:
    first_send: float
    last_send: float
    first_arrival: float
    last_arrival: float
    size: int = 0


class InterArrival:
    """Groups packets into send groups and yields (send Δ, arrival Δ) between groups."""

    def __init__(self, group_ms: float = 5.0, burst_ms: float = 5.0, max_burst_ms: float = 100.0) -> None:
        self.group_ms = group_ms
        self.burst_ms = burst_ms
        self.max_burst_ms = max_burst_ms
        self._cur: _Group | None = None
        self._prev: _Group | None = None

    def _joins_as_burst(self, send: float, arrival: float) -> bool:
        cur = self._cur
        assert cur is not None
        arrival_delta = arrival - cur.last_arrival
        send_delta = send - cur.last_send
        propagation_delta = arrival_delta - send_delta
        return (propagation_delta < 0 and arrival_delta <= self.burst_ms
                and arrival - cur.first_arrival < self.max_burst_ms)

    def add(self, send: float, arrival: float, size: int) -> tuple[float, float, float] | None:
        """Add one received packet (in send order); returns (send Δ, arrival Δ, arrival time)
        when it completes a group that has a predecessor."""
        out: tuple[float, float, float] | None = None
        if self._cur is None:
            self._cur = _Group(send, send, arrival, arrival, size)
            return None
        cur = self._cur
        if send < cur.first_send:
            return None  # reordered packet from an earlier group: ignored, as libwebrtc does
        new_group = send - cur.first_send > self.group_ms and not self._joins_as_burst(send, arrival)
        if new_group:
            if self._prev is not None:
                out = (cur.last_send - self._prev.last_send, cur.last_arrival - self._prev.last_arrival,
                       cur.last_arrival)
            self._prev = cur
            self._cur = _Group(send, send, arrival, arrival, size)
        else:
            cur.last_send = max(cur.last_send, send)
            cur.last_arrival = max(cur.last_arrival, arrival)
            cur.size += size
        return out


# --- 2. trendline ------------------------------------------------------------------------


class TrendlineEstimator:
    """Least-squares slope of the smoothed accumulated delay over the last ``window`` deltas."""

    def __init__(self, window: int = 20, smoothing: float = 0.9, gain: float = 4.0, max_deltas: int = 60) -> None:
        self.window = window
        self.smoothing = smoothing
        self.gain = gain
        self.max_deltas = max_deltas
        self.num_deltas = 0
        self.accumulated = 0.0
        self.smoothed = 0.0
        self.slope = 0.0
        self._first_arrival: float | None = None
        self._points: deque[tuple[float, float]] = deque(maxlen=window)

    def update(self, send_delta: float, arrival_delta: float, arrival_ms: float) -> float:
        """Feed one group delta; returns the modified trend m = min(n, 60) · slope · gain."""
        d = arrival_delta - send_delta
        if self._first_arrival is None:
            self._first_arrival = arrival_ms
        self.num_deltas = min(self.num_deltas + 1, 1000)
        self.accumulated += d
        self.smoothed = self.smoothing * self.smoothed + (1 - self.smoothing) * self.accumulated
        self._points.append((arrival_ms - self._first_arrival, self.smoothed))
        if len(self._points) == self.window:
            self.slope = self._fit()
        return self.modified_trend

    @property
    def modified_trend(self) -> float:
        return min(self.num_deltas, self.max_deltas) * self.slope * self.gain

    def _fit(self) -> float:
        xs = [p[0] for p in self._points]
        ys = [p[1] for p in self._points]
        mx = sum(xs) / len(xs)
        my = sum(ys) / len(ys)
        num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        den = sum((x - mx) ** 2 for x in xs)
        return num / den if den != 0 else self.slope


# --- 3. overuse detector with adaptive threshold -------------------------------------------


class OveruseDetector:
    """Compares the modified trend with an adaptive threshold (Carlucci et al., §4.3)."""

    def __init__(self, cfg: GccConfig) -> None:
        self.cfg = cfg
        self.threshold = cfg.initial_threshold_ms
        self.state = BandwidthUsage.NORMAL
        self._time_over = -1.0
        self._overuse_count = 0
        self._prev_slope = 0.0
        self._last_update: float | None = None

    def detect(self, m: float, slope: float, ts_delta_ms: float, num_deltas: int, now_ms: float) -> BandwidthUsage:
        if num_deltas < 2:
            return BandwidthUsage.NORMAL
        if m > self.threshold:
            self._time_over = ts_delta_ms / 2 if self._time_over == -1 else self._time_over + ts_delta_ms
            self._overuse_count += 1
            if (self._time_over > self.cfg.overuse_time_ms and self._overuse_count > 1
                    and slope >= self._prev_slope):
                self._time_over = 0.0
                self._overuse_count = 0
                self.state = BandwidthUsage.OVERUSING
        elif m < -self.threshold:
            self._time_over = -1.0
            self._overuse_count = 0
            self.state = BandwidthUsage.UNDERUSING
        else:
            self._time_over = -1.0
            self._overuse_count = 0
            self.state = BandwidthUsage.NORMAL
        self._prev_slope = slope
        self._update_threshold(m, now_ms)
        return self.state

    def _update_threshold(self, m: float, now_ms: float) -> None:
        if self._last_update is None:
            self._last_update = now_ms
        cfg = self.cfg
        if abs(m) > self.threshold + cfg.threshold_freeze_ms:
            # A spike (e.g. a route change) must not drag the threshold along.
            self._last_update = now_ms
            return
        k = cfg.k_down if abs(m) < self.threshold else cfg.k_up
        dt = min(now_ms - self._last_update, 100.0)
        self.threshold += k * (abs(m) - self.threshold) * dt
        self.threshold = min(max(self.threshold, cfg.min_threshold_ms), cfg.max_threshold_ms)
        self._last_update = now_ms


# --- 4. acknowledged bitrate -----------------------------------------------------------------


class AckedBitrateEstimator:
    """Bayesian estimate of the received throughput over 500 ms then 150 ms windows."""

    def __init__(self, initial_window_ms: float = 500.0, window_ms: float = 150.0,
                 uncertainty_scale: float = 10.0, variance_growth: float = 5.0,
                 initial_variance: float = 50.0) -> None:
        self.initial_window_ms = initial_window_ms
        self.window_ms = window_ms
        self.uncertainty_scale = uncertainty_scale
        self.variance_growth = variance_growth
        self.estimate_kbps: float | None = None
        self.variance = initial_variance
        self._sum_bytes = 0
        self._current_window = 0.0
        self._prev_ms: float | None = None

    def update(self, arrival_ms: float, size_bytes: int) -> None:
        window = self.initial_window_ms if self.estimate_kbps is None else self.window_ms
        sample = self._window_sample(arrival_ms, size_bytes, window)
        if sample is None:
            return
        if self.estimate_kbps is None:
            self.estimate_kbps = sample
            return
        est = self.estimate_kbps
        sample_uncertainty = self.uncertainty_scale * abs(est - sample) / est if est > 0 else 0.0
        sample_var = sample_uncertainty**2
        pred_var = self.variance + self.variance_growth
        total = sample_var + pred_var
        self.estimate_kbps = (sample_var * est + pred_var * sample) / total
        self.variance = sample_var * pred_var / total

    def _window_sample(self, now_ms: float, size: int, window: float) -> float | None:
        if self._prev_ms is not None and now_ms < self._prev_ms:  # time went backwards: start over
            self._sum_bytes = 0
            self._current_window = 0.0
        elif self._prev_ms is not None:
            self._current_window += now_ms - self._prev_ms
            if now_ms - self._prev_ms > window:
                # Nothing arrived for more than a full window (an outage): the bytes before it
                # belong to no window of the new arrivals (libwebrtc BitrateEstimator::UpdateWindow).
                self._sum_bytes = 0
                self._current_window %= window
        self._prev_ms = now_ms
        sample: float | None = None
        if self._current_window >= window:
            sample = self._sum_bytes * 8.0 / window  # bits per ms == kbps
            self._current_window -= window
            self._sum_bytes = 0
        self._sum_bytes += size
        return sample

    @property
    def bps(self) -> float | None:
        return None if self.estimate_kbps is None else self.estimate_kbps * 1000.0


# --- 5. AIMD with link-capacity estimate ----------------------------------------------------


class LinkCapacityEstimator:
    """Running estimate of the link capacity, updated on each overuse (kbps internally)."""

    def __init__(self) -> None:
        self.estimate_kbps: float | None = None
        self.deviation = 0.4

    def has_estimate(self) -> bool:
        return self.estimate_kbps is not None

    def upper_bound_bps(self) -> float:
        assert self.estimate_kbps is not None
        return (self.estimate_kbps + 3 * math.sqrt(self.deviation * self.estimate_kbps)) * 1000.0

    def on_overuse(self, acked_bps: float) -> None:
        sample = acked_bps / 1000.0
        alpha = 0.05
        if self.estimate_kbps is None:
            self.estimate_kbps = sample
        else:
            self.estimate_kbps = (1 - alpha) * self.estimate_kbps + alpha * sample
        norm = max(self.estimate_kbps, 1.0)
        err = self.estimate_kbps - sample
        self.deviation = (1 - alpha) * self.deviation + alpha * err * err / norm
        self.deviation = min(max(self.deviation, 0.4), 2.5)

    def reset(self) -> None:
        self.estimate_kbps = None


class _AimdState(Enum):
    HOLD = "hold"
    INCREASE = "increase"
    DECREASE = "decrease"


@dataclass
class AimdRateControl:
    """The delay-based rate: a three-state machine driven by the detector's signal."""

    cfg: GccConfig
    rate_bps: float = 0.0
    capacity: LinkCapacityEstimator = field(default_factory=LinkCapacityEstimator)
    state: _AimdState = _AimdState.INCREASE
    last_change_ms: float | None = None
    last_update_ms: float | None = None
    cuts: int = 0
    latest_acked_bps: float = 0.0

    def __post_init__(self) -> None:
        self.rate_bps = float(self.cfg.start_bps)
        self.latest_acked_bps = float(self.cfg.start_bps)  # libwebrtc starts it at the start rate

    def update(self, usage: BandwidthUsage, acked_bps: float | None, rtt_ms: float, now_ms: float) -> float:
        dt_ms = 0.0 if self.last_update_ms is None else now_ms - self.last_update_ms
        self.last_update_ms = now_ms
        if acked_bps is not None:
            self.latest_acked_bps = acked_bps
        # The state machine of the detector signal (libwebrtc ChangeState).
        if usage is BandwidthUsage.NORMAL and self.state is _AimdState.HOLD:
            self.state = _AimdState.INCREASE
        elif usage is BandwidthUsage.OVERUSING and self.state is not _AimdState.DECREASE:
            self.state = _AimdState.DECREASE
        elif usage is BandwidthUsage.UNDERUSING:
            self.state = _AimdState.HOLD

        if self.state is _AimdState.INCREASE:
            if acked_bps is not None and self.capacity.has_estimate() and acked_bps > self.capacity.upper_bound_bps():
                self.capacity.reset()
            # The cap limits the increase only; it never lowers the rate (libwebrtc
            # AimdRateControl::ChangeBitrate). Without a fresh acked rate, the last one is used.
            limit = 1.5 * (self.latest_acked_bps if acked_bps is None else acked_bps) + 10_000.0
            if self.rate_bps < limit:
                if self.capacity.has_estimate():
                    increased = self.rate_bps + self._additive_increase_bps(rtt_ms, dt_ms)
                else:
                    increased = self.rate_bps * self.cfg.multiplicative_increase ** min(dt_ms / 1000.0, 1.0)
                self.rate_bps = min(increased, limit)
            self.last_change_ms = now_ms
        elif self.state is _AimdState.DECREASE:
            if acked_bps is not None and self._time_to_reduce(acked_bps, rtt_ms, now_ms):
                decreased = self.cfg.beta * acked_bps
                if decreased > self.rate_bps and self.capacity.has_estimate():
                    assert self.capacity.estimate_kbps is not None
                    decreased = self.cfg.beta * self.capacity.estimate_kbps * 1000.0
                self.rate_bps = min(self.rate_bps, decreased)
                self.capacity.on_overuse(acked_bps)
                self.last_change_ms = now_ms
                self.cuts += 1
            self.state = _AimdState.HOLD
        self.rate_bps = min(max(self.rate_bps, self.cfg.min_bps), self.cfg.max_bps)
        return self.rate_bps

    def _time_to_reduce(self, acked_bps: float, rtt_ms: float, now_ms: float) -> bool:
        if self.last_change_ms is None or self.cuts == 0:
            return True
        wait = min(max(rtt_ms, 10.0), 200.0)
        if now_ms - self.last_change_ms >= wait:
            return True
        return acked_bps < 0.5 * self.rate_bps

    def _additive_increase_bps(self, rtt_ms: float, dt_ms: float) -> float:
        # Average packet size when 30 fps frames are cut into packets of at most 1200 B.
        bits_per_frame = self.rate_bps / self.cfg.frame_rate
        packets_per_frame = max(1, math.ceil(bits_per_frame / (self.cfg.max_packet_bytes * 8)))
        avg_packet_bits = bits_per_frame / packets_per_frame
        response_s = 2 * (rtt_ms + 100.0) / 1000.0
        per_second = max(self.cfg.min_additive_bps, avg_packet_bits / response_s)
        return per_second * dt_ms / 1000.0


# --- 6. loss-based control ---------------------------------------------------------------------


class LossBasedControl:
    """The classic loss-based estimate of libwebrtc's send-side bandwidth estimation."""

    def __init__(self, cfg: GccConfig) -> None:
        self.cfg = cfg
        self.rate_bps = float(cfg.start_bps)
        self._history: deque[tuple[float, float]] = deque()  # (time, rate) of the last second
        self._last_decrease_ms: float | None = None

    def update(self, loss: float, rtt_ms: float, now_ms: float) -> float:
        self._trim(now_ms)
        if loss < self.cfg.loss_low:
            floor = min((r for _, r in self._history), default=self.rate_bps)
            self.rate_bps = self.cfg.loss_increase * floor + 1000.0
        elif loss > self.cfg.loss_high:
            wait = self.cfg.loss_decrease_interval_ms + rtt_ms
            if self._last_decrease_ms is None or now_ms - self._last_decrease_ms >= wait:
                self.rate_bps *= 1.0 - 0.5 * loss
                self._last_decrease_ms = now_ms
        return self.rate_bps

    def cap(self, limit_bps: float, now_ms: float) -> None:
        """Bound by the delay-based rate and record the final target in the 1 s history."""
        self.rate_bps = min(self.rate_bps, limit_bps)
        self._trim(now_ms)
        while self._history and self._history[-1][1] >= self.rate_bps:
            self._history.pop()  # a monotone deque keeps the window minimum at the front
        self._history.append((now_ms, self.rate_bps))

    def _trim(self, now_ms: float) -> None:
        while self._history and now_ms - self._history[0][0] > 1000.0:
            self._history.popleft()


# --- 7. the controller -----------------------------------------------------------------------


class Gcc:
    """GCC as a rate controller: ``on_feedback`` per transport-cc report, ``target_bps`` any time."""

    def __init__(self, cfg: GccConfig | None = None) -> None:
        self.cfg = cfg or GccConfig()
        self.inter_arrival = InterArrival(self.cfg.group_ms, self.cfg.burst_ms, self.cfg.max_burst_ms)
        self.trendline = TrendlineEstimator(self.cfg.trendline_window, self.cfg.trendline_smoothing,
                                            self.cfg.trendline_gain, self.cfg.trendline_max_deltas)
        self.detector = OveruseDetector(self.cfg)
        self.acked = AckedBitrateEstimator()
        self.aimd = AimdRateControl(self.cfg)
        self.loss_based = LossBasedControl(self.cfg)
        self.usage = BandwidthUsage.NORMAL
        self.last_loss = 0.0
        self.overuse_events = 0
        self._lost = 0
        self._expected = 0
        self._target = float(self.cfg.start_bps)

    def on_feedback(self, fb: Feedback) -> None:
        packets = sorted(fb.packets, key=lambda p: (p.send_ms, p.seq))
        received = [p for p in packets if p.arrival_ms is not None]
        for p in sorted(received, key=lambda p: p.arrival_ms or 0.0):
            assert p.arrival_ms is not None
            self.acked.update(p.arrival_ms, p.size_bytes)
        for p in received:
            assert p.arrival_ms is not None
            deltas = self.inter_arrival.add(p.send_ms, p.arrival_ms, p.size_bytes)
            if deltas is None:
                continue
            send_delta, arrival_delta, arrival_ms = deltas
            m = self.trendline.update(send_delta, arrival_delta, arrival_ms)
            self.detector.detect(m, self.trendline.slope, send_delta, self.trendline.num_deltas, arrival_ms)
        # As in libwebrtc, the detector's state after the whole report drives the rate control.
        previous, self.usage = self.usage, self.detector.state
        if self.usage is BandwidthUsage.OVERUSING and previous is not BandwidthUsage.OVERUSING:
            self.overuse_events += 1
        # Loss is measured over at least 20 reported packets (libwebrtc's kLimitNumPackets),
        # so one short report cannot swing the loss-based rate.
        self._lost += len(packets) - len(received)
        self._expected += len(packets)
        delay_based = self.aimd.update(self.usage, self.acked.bps, fb.rtt_ms, fb.now_ms)
        if self._expected >= self.cfg.loss_min_packets:
            self.last_loss = self._lost / self._expected
            self._lost = self._expected = 0
            self.loss_based.update(self.last_loss, fb.rtt_ms, fb.now_ms)
        self.loss_based.cap(delay_based, fb.now_ms)
        self._target = min(max(self.loss_based.rate_bps, self.cfg.min_bps), self.cfg.max_bps)

    def target_bps(self, now_ms: float) -> int:
        return int(self._target)
