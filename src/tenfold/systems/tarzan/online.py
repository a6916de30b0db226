"""The online-RL baseline (spec §6): Tarzan's SAC learning by calling over the emulator.

It is the same learner as Tarzan (:class:`~tenfold.systems.tarzan.train.SacLearner`: the GRU
actor, two 128-quantile critics, the entropy temperature) with the conservative weight at 0,
trained on its own experience instead of GCC's logs. That is what the paper argues against:
a policy that explores does so during real users' calls. So every training call is also run
with GCC on the same chunk, and the run reports the share of training calls in which the
exploring policy did worse than GCC, on bitrate and on freezes (paper: 62% and 43%).

The loop, top to bottom:

1. Play one training call with the current actor, *sampling* its actions (a tanh-Gaussian
   policy explores by itself; the untrained actor's actions spread over the whole range,
   SAC's usual random start). Its telemetry rows become transitions exactly as logged calls
   do (:func:`~tenfold.systems.tarzan.dataset.build_transitions`) and join the replay buffer.
2. Take as many gradient steps as the call added transitions (an update-to-data ratio of 1,
   SAC's default; a design choice, the paper is silent), each on a batch drawn uniformly from
   the whole buffer.
3. Repeat until ``cfg.steps`` gradient steps are done: the same number as an offline arm
   ("matched steps"). Calls visit the training chunks in a seeded random order, reshuffled
   after each pass.

Every call must last at least two 50 ms steps (0.1 s), or it yields no transition to learn
from; shorter calls are refused up front, and a call that still yields none raises
``ConfigError`` instead of looping forever.

The spec's online arm is not resumable: its state includes the replay buffer. BC warm-up
does not apply (there are no logged actions), so ``bc_warmup_steps`` must be 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tenfold.errors import ConfigError
from tenfold.systems.tarzan.collect import ChunkRef, call_spec
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.dataset import TransitionArrays, build_transitions
from tenfold.systems.tarzan.features import STEP_MS, action_to_bps
from tenfold.systems.tarzan.gcc import Gcc
from tenfold.systems.tarzan.models import GaussianActor
from tenfold.systems.tarzan.policy import Policy
from tenfold.systems.tarzan.session import CallResult, GccController, run_call
from tenfold.systems.tarzan.telemetry import write_text_atomic
from tenfold.systems.tarzan.train import Progress, SacLearner

__all__ = ["MIN_CALL_SECONDS", "ExploringController", "OnlineCall", "OnlineResult", "train_online"]

MIN_CALL_SECONDS = 2 * STEP_MS / 1000.0
"""The shortest training call: two steps, so one transition."""


class ExploringController:
    """The training policy in the loop: an action sampled from π(·|window) at every step."""

    name = "online"

    def __init__(self, actor: GaussianActor) -> None:
        self.actor = actor

    def decide(self, step: int, window: np.ndarray, gcc: Gcc, now_ms: float) -> float:
        with torch.no_grad():
            action, _ = self.actor.sample(torch.tensor(window, dtype=torch.float32)[None], 1)
        return action_to_bps(float(action[0, 0]))


@dataclass(frozen=True)
class OnlineCall:
    """One training call of the exploring policy, beside GCC's call on the same chunk."""

    call_id: str
    first_step: int
    """Gradient steps done before this call was played."""
    bitrate_mbps: float
    freeze_rate: float
    gcc_bitrate_mbps: float
    gcc_freeze_rate: float

    @property
    def worse_bitrate(self) -> bool:
        return self.bitrate_mbps < self.gcc_bitrate_mbps

    @property
    def worse_freezes(self) -> bool:
        return self.freeze_rate > self.gcc_freeze_rate


@dataclass
class OnlineResult:
    """The trained actor, the loss log and every training call with its GCC counterpart."""

    policy: GaussianActor
    losses: list[dict[str, float]]
    calls: list[OnlineCall]

    @property
    def share_worse_bitrate(self) -> float:
        """Share of training calls with a lower bitrate than GCC's on the same chunk."""
        return sum(c.worse_bitrate for c in self.calls) / len(self.calls)

    @property
    def share_worse_freezes(self) -> float:
        """Share of training calls with a higher freeze rate than GCC's on the same chunk."""
        return sum(c.worse_freezes for c in self.calls) / len(self.calls)

    def summary(self) -> dict[str, float]:
        """The training calls' count and the two shares, as the benchmark's ``online`` row adds them."""
        return {"train_calls": float(len(self.calls)), "train_calls_worse_bitrate_share": self.share_worse_bitrate,
                "train_calls_worse_freeze_share": self.share_worse_freezes}

    def save(self, out: Path) -> tuple[Path, Path]:
        """Write the policy to ``out`` and every training call with :meth:`summary` to ``<out>.calls.json``."""
        path = Policy("online", self.policy).save(out)
        report = path.with_name(path.name + ".calls.json")
        write_text_atomic(report, json.dumps({**self.summary(), "calls": [asdict(c) for c in self.calls]}, indent=1))
        return path, report


class _ReplayBuffer:
    """Transitions of every call played so far, as growing tensors."""

    def __init__(self) -> None:
        self.parts: list[tuple[torch.Tensor, ...]] = []
        self.tensors: tuple[torch.Tensor, ...] = ()

    def add(self, arrays: TransitionArrays) -> None:
        t = arrays.to_torch()
        self.parts.append((t.states, t.actions, t.rewards, t.next_states, t.dones))
        self.tensors = tuple(torch.cat(column) for column in zip(*self.parts, strict=True))

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0]) if self.tensors else 0

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(column[idx] for column in self.tensors)


def _chunk_order(refs: Sequence[ChunkRef], seed: int) -> Iterator[ChunkRef]:
    rng = np.random.default_rng(seed)
    while True:
        for i in rng.permutation(len(refs)):
            yield refs[int(i)]


def train_online(refs: Sequence[ChunkRef], cfg: TrainConfig, progress: Progress | None = None) -> OnlineResult:
    """Train the online-RL baseline for ``cfg.steps`` gradient steps on calls over ``refs``."""
    if not refs:
        raise ConfigError("refs", [], "must name at least one training chunk")
    if cfg.bc_warmup_steps:
        raise ConfigError("bc_warmup_steps", cfg.bc_warmup_steps, "must be 0 for online RL (it has no logged actions)")
    for ref in refs:
        if not ref.seconds >= MIN_CALL_SECONDS:
            raise ConfigError("seconds", ref.seconds, f"must be >= {MIN_CALL_SECONDS:g} s for online RL: a call needs "
                                                      f"at least 2 steps of {STEP_MS:g} ms to yield a transition")
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    learner = SacLearner(cfg, cql_alpha=0.0, n_quantiles=cfg.n_quantiles)
    buffer = _ReplayBuffer()
    order = _chunk_order(refs, cfg.seed)
    gcc_runs: dict[str, CallResult] = {}
    calls: list[OnlineCall] = []
    log: list[dict[str, float]] = []
    budget = 0  # gradient steps owed to the transitions of the last call
    for step in (progress or iter)(range(cfg.steps)):
        while budget == 0:
            ref = next(order)
            spec = call_spec(ref)
            played = run_call(spec, ExploringController(learner.actor))
            if ref.call_id not in gcc_runs:
                gcc_runs[ref.call_id] = run_call(spec, GccController())
            gcc = gcc_runs[ref.call_id]
            calls.append(OnlineCall(ref.call_id, step, played.bitrate_bps / 1e6, played.qoe.freeze_rate,
                                    gcc.bitrate_bps / 1e6, gcc.qoe.freeze_rate))
            new = build_transitions(played.rows)
            if len(new) == 0:
                raise ConfigError("seconds", ref.seconds, f"call {ref.call_id} yielded no transitions "
                                                          "(need >= 2 steps per call)")
            buffer.add(new)
            budget = len(new)
        losses = learner.update(buffer.batch(torch.randint(0, len(buffer), (cfg.batch_size,), generator=gen)), step)
        budget -= 1
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.append({"step": step, **losses})
    return OnlineResult(learner.actor, log, calls)
