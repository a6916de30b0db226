"""Configuration of Tarzan's parts: GCC constants (spec §2.3, libwebrtc goog_cc)."""

from __future__ import annotations

from dataclasses import dataclass

from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import ConfigError

__all__ = ["GccConfig"]


@dataclass(frozen=True)
class GccConfig(Config):
    """GCC with the libwebrtc constants; change them only to study GCC itself."""

    start_bps: int = 300_000
    """Initial target."""
    min_bps: int = 50_000
    """Lower clamp of the final target."""
    max_bps: int = 6_000_000
    """Upper clamp of the final target."""
    group_ms: float = 5.0
    """Packets sent within this many ms of a group's first packet form one send group."""
    burst_ms: float = 5.0
    """A packet arriving this close after its group's last one, with negative delay delta, joins it."""
    max_burst_ms: float = 100.0
    """A burst group never spans more than this."""
    trendline_window: int = 20
    """Points in the least-squares trendline fit."""
    trendline_smoothing: float = 0.9
    """EMA coefficient of the accumulated delay."""
    trendline_gain: float = 4.0
    """Threshold gain multiplying the slope."""
    trendline_max_deltas: int = 60
    """Cap of the delta count that scales the slope."""
    initial_threshold_ms: float = 12.5
    """Starting adaptive threshold."""
    min_threshold_ms: float = 6.0
    """Lower clamp of the adaptive threshold."""
    max_threshold_ms: float = 600.0
    """Upper clamp of the adaptive threshold."""
    k_up: float = 0.0087
    """Threshold gain while |m| >= threshold."""
    k_down: float = 0.039
    """Threshold gain while |m| < threshold."""
    threshold_freeze_ms: float = 15.0
    """The threshold stays put while |m| exceeds it by more than this."""
    overuse_time_ms: float = 10.0
    """Time m must stay above the threshold before overuse is signalled."""
    multiplicative_increase: float = 1.08
    """Per-second growth far from the capacity estimate."""
    min_additive_bps: float = 4_000.0
    """Floor of the additive increase per second near capacity."""
    frame_rate: float = 30.0
    """Frames per second assumed for the additive increase's packet size."""
    max_packet_bytes: int = 1200
    """Largest RTP payload assumed for the additive increase's packet size."""
    beta: float = 0.85
    """Multiplicative decrease on overuse."""
    loss_low: float = 0.02
    """Below this loss fraction the loss-based rate grows."""
    loss_high: float = 0.10
    """Above this loss fraction the loss-based rate is cut."""
    loss_increase: float = 1.08
    """Growth factor of the loss-based rate over the 1 s minimum."""
    loss_decrease_interval_ms: float = 300.0
    """Loss-based cuts come at most once per this + rtt."""
    loss_min_packets: int = 20
    """Loss fractions are taken over at least this many reported packets."""

    def __post_init__(self) -> None:
        check_positive("min_bps", self.min_bps)
        if self.max_bps <= self.min_bps:
            raise ConfigError("max_bps", self.max_bps, f"must be > min_bps ({self.min_bps})")
        check_range("start_bps", self.start_bps, self.min_bps, self.max_bps)
        check_range("beta", self.beta, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("trendline_smoothing", self.trendline_smoothing, 0.0, 1.0, hi_open=True)
        if self.trendline_window < 2:
            raise ConfigError("trendline_window", self.trendline_window, "must be >= 2")
        check_range("loss_low", self.loss_low, 0.0, 1.0)
        if not self.loss_low <= self.loss_high <= 1.0:
            raise ConfigError("loss_high", self.loss_high, f"must be in [loss_low ({self.loss_low}), 1]")
        if not self.min_threshold_ms <= self.initial_threshold_ms <= self.max_threshold_ms:
            raise ConfigError("initial_threshold_ms", self.initial_threshold_ms,
                              f"must be in [{self.min_threshold_ms}, {self.max_threshold_ms}]")
