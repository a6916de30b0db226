"""Configuration of Tarzan's parts: GCC constants (spec §2.3, libwebrtc goog_cc)."""

from __future__ import annotations

from dataclasses import dataclass

from tenfold.core.config import Config, check_choice, check_positive, check_range
from tenfold.errors import ConfigError

__all__ = ["EmuConfig", "GccConfig", "TrainConfig"]


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


ALGOS = ("tarzan", "no_cql", "no_qr", "no_prev_action", "bc", "crr", "online")
ENGINES = ("torch", "d3rlpy")
D3RLPY_ALGOS = ("tarzan", "no_cql", "no_qr", "no_prev_action")
"""The SAC arms, which the d3rlpy engine can train; BC, CRR and online RL use the torch engine."""


@dataclass(frozen=True)
class TrainConfig(Config):
    """Offline training (spec §2.2 hyperparameters; unreported in the paper, so design choices)."""

    algo: str = "tarzan"
    """One of tarzan, no_cql, no_qr, no_prev_action, bc, crr (offline, from logs) or online (the
    online-RL baseline, which calls over the emulator: :func:`tenfold.systems.tarzan.online.train_online`)."""
    steps: int = 100_000
    """Gradient steps."""
    batch_size: int = 256
    """Transitions per step."""
    gamma: float = 0.98
    """Discount."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    temperature_lr: float = 1e-4
    """Adam learning rate of the entropy temperature."""
    tau: float = 0.005
    """Polyak coefficient of the target critics."""
    cql_alpha: float = 0.01
    """Weight of the conservative penalty (0 gives the no_cql ablation)."""
    n_quantiles: int = 128
    """Quantiles of the distributional critic."""
    bc_warmup_steps: int = 0
    """SAC arms: the actor imitates the logged actions for this many first steps while the
    critics learn (CQL's ``policy_eval_start``); the paper is silent, so a design choice."""
    crr_beta: float = 1.0
    """CRR advantage temperature."""
    crr_max_weight: float = 20.0
    """CRR weight clip."""
    crr_action_samples: int = 4
    """Policy actions averaged for CRR's advantage baseline."""
    crr_target_interval: int = 100
    """Steps between CRR's hard target updates."""
    seed: int = 0
    """Seed of every torch generator used in training."""
    threads: int = 1
    """torch threads; 1 is fastest for these small networks on 2 cores."""
    log_every: int = 500
    """Steps between loss-log entries."""
    engine: str = "torch"
    """``torch`` (this package's losses) or ``d3rlpy`` (d3rlpy 2.8.1's CQL, extra
    ``tenfold[tarzan-d3rlpy]``; SAC arms only, no BC warm-up, not resumable)."""

    def __post_init__(self) -> None:
        check_choice("algo", self.algo, ALGOS)
        check_positive("steps", self.steps)
        check_positive("batch_size", self.batch_size)
        check_range("gamma", self.gamma, 0.0, 1.0, hi_open=True)
        check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
        check_range("cql_alpha", self.cql_alpha, lo=0.0)
        check_positive("n_quantiles", self.n_quantiles)
        check_positive("threads", self.threads)
        check_range("bc_warmup_steps", self.bc_warmup_steps, lo=0)
        check_positive("log_every", self.log_every)
        check_choice("engine", self.engine, ENGINES)
        if self.engine == "d3rlpy":
            if self.algo not in D3RLPY_ALGOS:
                raise ConfigError("algo", self.algo, f"the d3rlpy engine trains {', '.join(D3RLPY_ALGOS)}")
            if self.bc_warmup_steps:
                raise ConfigError("bc_warmup_steps", self.bc_warmup_steps, "d3rlpy's CQL has no warm-up: use 0")
        for name in ("actor_lr", "critic_lr", "temperature_lr", "crr_beta", "crr_max_weight"):
            check_positive(name, getattr(self, name))


@dataclass(frozen=True)
class EmuConfig(Config):
    """The emulated call around the controller (spec §4; design choices of the spec)."""

    queue_packets: int = 100
    """Drop-tail queue of the bottleneck, in packets."""
    mtu_bytes: int = 1500
    """Bytes one trace line delivers (Mahimahi: 1504)."""
    pacing_factor: float = 2.5
    """The pacer drains at this multiple of the target."""
    feedback_interval_ms: float = 50.0
    """Transport-cc feedback period."""

    def __post_init__(self) -> None:
        check_positive("queue_packets", self.queue_packets)
        check_positive("mtu_bytes", self.mtu_bytes)
        check_range("pacing_factor", self.pacing_factor, lo=1.0)
        check_positive("feedback_interval_ms", self.feedback_interval_ms)
