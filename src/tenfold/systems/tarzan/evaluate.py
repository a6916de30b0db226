"""Evaluating controllers on held-out chunks (spec §7): closed-loop calls, per-call QoE.

Arms: ``gcc`` (closed loop), any trained policy (``tarzan``, ablations, ``bc``, ``crr``) served
in-process, and the ``oracle`` (GCC's own targets on the same call, rank-matched to the
chunk's 1 s-smoothed capacity and replayed open loop). Each call is a pure task of
(arm, checkpoint, chunk ref), so evaluation fans out over ``core.executor``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tenfold.core.executor import Executor, LocalExecutor
from tenfold.systems.tarzan.collect import ChunkRef, call_spec
from tenfold.systems.tarzan.gcc import Gcc
from tenfold.systems.tarzan.oracle import ReorderOracle, smoothed_capacity_bps
from tenfold.systems.tarzan.policy import Policy
from tenfold.systems.tarzan.session import GccController, ScheduleController, run_call

__all__ = ["CallMetrics", "PolicyController", "evaluate", "summarize"]


class PolicyController:
    """A trained policy choosing the target from the 20 × 12 window."""

    def __init__(self, policy: Policy, name: str) -> None:
        self.policy = policy
        self.name = name

    def decide(self, step: int, window: np.ndarray, gcc: Gcc, now_ms: float) -> float:
        return float(self.policy.act(window))


@dataclass(frozen=True)
class CallMetrics:
    arm: str
    call_id: str
    bitrate_mbps: float
    freeze_rate: float
    fps: float
    frame_delay_p95_ms: float


def _eval_one(item: tuple[str, str | None, ChunkRef]) -> CallMetrics:
    arm, checkpoint, ref = item
    spec = call_spec(ref)
    if arm == "gcc":
        result = run_call(spec, GccController())
    elif arm == "oracle":
        gcc_run = run_call(spec, GccController())
        schedule = ReorderOracle.from_gcc_run(gcc_run.targets_bps,
                                              smoothed_capacity_bps(gcc_run.opportunities_per_step))
        result = run_call(spec, ScheduleController(schedule.schedule_bps))
    else:
        assert checkpoint is not None, f"arm {arm} needs a checkpoint"
        import torch

        torch.set_num_threads(1)
        result = run_call(spec, PolicyController(Policy.load(checkpoint), arm))
    q = result.qoe
    return CallMetrics(arm, ref.call_id, result.bitrate_bps / 1e6, q.freeze_rate, q.fps, q.p95_frame_delay_ms)


def evaluate(arms: Mapping[str, str | None], refs: Sequence[ChunkRef],
             executor: Executor | None = None) -> list[CallMetrics]:
    """Run every arm (name -> checkpoint path or None for gcc/oracle) on every ref."""
    executor = executor or LocalExecutor(workers=1)
    items = [(arm, ckpt, ref) for arm, ckpt in arms.items() for ref in refs]
    return executor.map(_eval_one, items)


def summarize(calls: Sequence[CallMetrics]) -> dict[str, dict[str, float]]:
    """Per arm: the issue's metric keys (P50 bitrate, P50/P90 freeze rate, P50 fps, P95 delay)."""
    out: dict[str, dict[str, float]] = {}
    for arm in dict.fromkeys(c.arm for c in calls):
        mine = [c for c in calls if c.arm == arm]
        bitrate = np.array([c.bitrate_mbps for c in mine])
        freeze = np.array([c.freeze_rate for c in mine])
        out[arm] = {
            "bitrate_p50_mbps": float(np.percentile(bitrate, 50)),
            "bitrate_p25_mbps": float(np.percentile(bitrate, 25)),
            "bitrate_p75_mbps": float(np.percentile(bitrate, 75)),
            "freeze_rate_p50": float(np.percentile(freeze, 50)),
            "freeze_rate_p75": float(np.percentile(freeze, 75)),
            "freeze_rate_p90": float(np.percentile(freeze, 90)),
            "fps_p50": float(np.percentile([c.fps for c in mine], 50)),
            "frame_delay_p95_ms": float(np.percentile([c.frame_delay_p95_ms for c in mine], 50)),
            "calls": float(len(mine)),
        }
    return out
