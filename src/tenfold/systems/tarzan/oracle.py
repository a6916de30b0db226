"""The hindsight reordering oracle (spec §6; not confirmed from the paper).

Tarzan's insight is that GCC's logs already hold good bitrates, chosen at the wrong times.
The oracle makes that concrete: it takes GCC's own per-step targets on a chunk and RTT,
keeps the multiset of values, and re-assigns them by rank to the steps ordered by the
trace's 1 s-smoothed capacity — the k-th smallest target goes to the k-th least capable
step — then replays that schedule open loop. It sees the trace, so it is an upper reference,
never a deployable controller.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tenfold.errors import ConfigError

__all__ = ["ReorderOracle", "smoothed_capacity_bps"]


def smoothed_capacity_bps(opportunities_per_step: Sequence[int] | np.ndarray, step_ms: float = 50.0,
                          mtu_bytes: int = 1500, window_steps: int = 20) -> np.ndarray:
    """Per-step capacity from delivery opportunities, averaged over a trailing+leading 1 s window."""
    counts = np.asarray(opportunities_per_step, dtype=np.float64)
    cap = counts * mtu_bytes * 8 / (step_ms / 1000.0)
    if window_steps <= 1 or cap.size == 0:
        return cap
    kernel = np.ones(window_steps) / window_steps
    # 'same' convolution with edge padding keeps the length and centres the 1 s window.
    pad_left = window_steps // 2
    pad_right = window_steps - 1 - pad_left
    padded = np.pad(cap, (pad_left, pad_right), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


class ReorderOracle:
    """An open-loop schedule: GCC's targets, rank-matched to smoothed capacity."""

    def __init__(self, schedule_bps: np.ndarray) -> None:
        self.schedule_bps = schedule_bps

    @classmethod
    def from_gcc_run(cls, gcc_targets_bps: Sequence[float] | np.ndarray,
                     capacity_bps: Sequence[float] | np.ndarray) -> ReorderOracle:
        targets = np.asarray(gcc_targets_bps, dtype=np.float64)
        capacity = np.asarray(capacity_bps, dtype=np.float64)
        if targets.shape != capacity.shape or targets.ndim != 1 or targets.size == 0:
            raise ConfigError("capacity_bps", f"shape {capacity.shape}",
                              f"must be a non-empty 1-D series matching the targets' shape {targets.shape}")
        order = np.argsort(capacity, kind="stable")  # steps from least to most capable
        schedule = np.empty_like(targets)
        schedule[order] = np.sort(targets, kind="stable")
        return cls(schedule)

    def target_bps(self, step: int) -> int:
        """The target at ``step``; past the end the last value holds."""
        return int(self.schedule_bps[min(step, self.schedule_bps.size - 1)])
