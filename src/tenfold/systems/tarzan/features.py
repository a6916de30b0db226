"""Tarzan's MDP (spec §2.1): per-step telemetry, the 12 state features, actions and reward.

One step is 50 ms. Everything here is computed from what a sender's telemetry log holds:
this module has no access to the link, the trace or its capacity, by construction.

Features (scalings are a design choice of the spec):

====  ================================================  =========
 #    feature                                           scale
====  ================================================  =========
 1    sent bitrate                                      / 6 Mbps
 2    acknowledged bitrate                              / 6 Mbps
 3    one-way delay, mean over the step's acked packets / 1 s
 4    RFC 3550 interarrival jitter                      / 100 ms
 5    RTT                                               / 1 s
 6    loss fraction                                     1
 7    previous action                                   in [−1, 1]
 8    min RTT                                           / 1 s
 9    report interval (age of the newest feedback)      / 1 s
10    steps since the last loss report                  / 20
11    queuing delay = OWD − min OWD                     / 1 s
12    GCC trendline slope                               1
====  ================================================  =========

Action a ∈ [−1, 1] maps linearly to b = 50 kbps + (a + 1)/2 · (6 Mbps − 50 kbps).
Reward r = 2 · thr / 6 Mbps − delay / 1000 ms − loss (thr: acknowledged throughput).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "FEATURE_SCHEMA",
    "MAX_BPS",
    "MIN_BPS",
    "STEP_MS",
    "WINDOW",
    "ZEROED_FEATURES",
    "StepTelemetry",
    "action_to_bps",
    "bps_to_action",
    "feature_matrix",
    "feature_vector",
    "reward",
    "window_at",
    "zeroed_features",
]

STEP_MS = 50.0
WINDOW = 20
MIN_BPS = 50_000.0
MAX_BPS = 6_000_000.0

FEATURE_NAMES = (
    "sent_bitrate", "acked_bitrate", "owd", "jitter", "rtt", "loss", "prev_action", "min_rtt",
    "report_interval", "steps_since_loss", "queuing_delay", "trendline_slope",
)
FEATURE_SCALES = (MAX_BPS, MAX_BPS, 1000.0, 100.0, 1000.0, 1.0, 1.0, 1000.0, 1000.0, 20.0, 1000.0, 1.0)
"""What each raw :class:`StepTelemetry` field is divided by, in :data:`FEATURE_NAMES` order."""
FEATURE_SCHEMA = "tarzan.features/1"
"""Version of the state: the names, order and scales above. A checkpoint records it, and a policy
trained under another schema is refused, since it would read features it never saw. Change it
whenever :data:`FEATURE_NAMES` or :data:`FEATURE_SCALES` change."""

ZEROED_FEATURES: dict[str, tuple[str, ...]] = {"no_prev_action": ("prev_action",)}
"""Features an algorithm trains with zeroed (its ablation); its policy must be served with them zeroed too."""


@dataclass(frozen=True)
class StepTelemetry:
    """What the sender logged over one 50 ms step."""

    sent_bps: float
    acked_bps: float
    owd_ms: float
    jitter_ms: float
    rtt_ms: float
    loss: float
    prev_action: float
    min_rtt_ms: float
    report_interval_ms: float
    steps_since_loss: int
    queuing_delay_ms: float
    trendline_slope: float

    def to_row(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def feature_vector(step: StepTelemetry) -> np.ndarray:
    """The 12 scaled features of one step: (12,) float32."""
    raw = np.array([step.sent_bps, step.acked_bps, step.owd_ms, step.jitter_ms, step.rtt_ms, step.loss,
                    step.prev_action, step.min_rtt_ms, step.report_interval_ms, step.steps_since_loss,
                    step.queuing_delay_ms, step.trendline_slope], dtype=np.float64)  # (12,)
    return (raw / np.asarray(FEATURE_SCALES, dtype=np.float64)).astype(np.float32)


def zeroed_features(algo: str) -> tuple[str, ...]:
    """The features ``algo`` trains (and so must be served) with zeroed: ``prev_action`` for no_prev_action."""
    return ZEROED_FEATURES.get(algo, ())


def feature_matrix(steps: Sequence[StepTelemetry]) -> np.ndarray:
    """Features of consecutive steps: (T, 12) float32."""
    if not steps:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.stack([feature_vector(s) for s in steps])


def window_at(features: np.ndarray, t: int) -> np.ndarray:
    """The state at step t: steps t−19..t, zero-padded before the call starts: (20, 12).

    Only rows ≤ t are read, so later rows can never change the state at t.
    """
    out = np.zeros((WINDOW, features.shape[1]), dtype=np.float32)
    lo = max(0, t - WINDOW + 1)
    rows = features[lo : t + 1]
    out[WINDOW - len(rows):] = rows
    return out


def action_to_bps(a: float) -> float:
    """The linear action map of the spec; actions outside [−1, 1] are clipped."""
    a = min(max(a, -1.0), 1.0)
    return MIN_BPS + (a + 1.0) / 2.0 * (MAX_BPS - MIN_BPS)


def bps_to_action(bps: float) -> float:
    """Inverse of :func:`action_to_bps`, clipped to [−1, 1]."""
    a = 2.0 * (bps - MIN_BPS) / (MAX_BPS - MIN_BPS) - 1.0
    return min(max(a, -1.0), 1.0)


def reward(acked_bps: float, owd_ms: float, loss: float) -> float:
    """r = 2 · thr / 6 Mbps − delay / 1000 ms − loss."""
    return 2.0 * acked_bps / MAX_BPS - owd_ms / 1000.0 - loss
