"""Transitions from telemetry logs (spec §2.1): states, GCC's actions, rewards.

For each call, rows are ordered by step. The transition at step t has state = the 20-step
window ending at t, action = the logged action at t, reward = the reward logged during step
t + 1 (the consequence of the action at t; design choice), and next state = the window ending
at t + 1. The last step of a call has no successor and is dropped. The end of a call is a
time-out, never a terminal (done = 0 everywhere), as the spec sets.

A call's steps must follow one another: a repeated (call_id, step), as two calls sharing a
call_id give, or a gap between steps raises ``LogFormatError`` instead of a transition
between steps that never followed each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from tenfold.systems.tarzan.features import feature_matrix, window_at
from tenfold.systems.tarzan.telemetry import LogFormatError, StepRow

if TYPE_CHECKING:
    from tenfold.systems.tarzan.train import Transitions

__all__ = ["TransitionArrays", "build_transitions"]


class TransitionArrays:
    """Numpy arrays of transitions; ``to_torch`` gives the trainer's tensors."""

    def __init__(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                 next_states: np.ndarray, calls: list[str]) -> None:
        self.states = states  # (N, 20, 12)
        self.actions = actions  # (N, 1)
        self.rewards = rewards  # (N,)
        self.next_states = next_states  # (N, 20, 12)
        self.calls = calls

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def to_torch(self) -> Transitions:
        """Tensors for the trainer (torch is imported only here)."""
        import torch

        from tenfold.systems.tarzan.train import Transitions

        return Transitions(torch.from_numpy(self.states), torch.from_numpy(self.actions),
                           torch.from_numpy(self.rewards), torch.from_numpy(self.next_states),
                           torch.zeros(len(self), dtype=torch.float32))


def build_transitions(rows: Sequence[StepRow]) -> TransitionArrays:
    """All transitions of all calls in ``rows``."""
    by_call: dict[str, list[StepRow]] = defaultdict(list)
    for r in rows:
        by_call[r.call_id].append(r)
    states, actions, rewards, nxt, calls = [], [], [], [], []
    for call in sorted(by_call):
        steps = sorted(by_call[call], key=lambda r: r.step)
        for prev, cur in pairwise(steps):
            if cur.step == prev.step:
                raise LogFormatError(f"call {call!r}: step {cur.step} is logged twice (two calls sharing a call_id, "
                                     "or one log read twice)")
            if cur.step != prev.step + 1:
                raise LogFormatError(f"call {call!r}: steps jump from {prev.step} to {cur.step} "
                                     f"({cur.step - prev.step - 1} step(s) missing)")
        feats = feature_matrix([r.telemetry for r in steps])
        for t in range(len(steps) - 1):
            states.append(window_at(feats, t))
            nxt.append(window_at(feats, t + 1))
            actions.append([steps[t].action])
            rewards.append(steps[t + 1].reward)
            calls.append(call)
    if not states:
        empty = np.zeros((0, 20, 12), dtype=np.float32)
        return TransitionArrays(empty, np.zeros((0, 1), np.float32), np.zeros(0, np.float32), empty.copy(), [])
    return TransitionArrays(np.stack(states), np.asarray(actions, np.float32), np.asarray(rewards, np.float32),
                            np.stack(nxt), calls)
