"""Offline training from GCC logs only (spec §2.2, §6): Tarzan, its ablations, BC and CRR.

Every algorithm reads a :class:`Transitions` batch built from telemetry logs and nothing else:
no simulator, no trace capacity. ``tarzan`` is SAC with two 128-quantile critics and the CQL
penalty at α = 0.01; ``no_cql`` sets α = 0, ``no_qr`` uses scalar critics with MSE TD,
``no_prev_action`` zeroes feature 7 (the previous action). ``bc`` regresses GCC's actions with
a deterministic actor; ``crr`` weights the log-likelihood of logged actions by
min(exp(A/β), 20) with A = Q(s, a) − mean of Q over 4 policy actions and a hard target copy
every 100 steps (d3rlpy's CRR defaults).

The SAC step itself is :class:`SacLearner`, which the online-RL baseline (:mod:`.online`, the
only trainer that touches the emulator) reuses on its own calls.

Every algorithm names the parts of its state (networks, optimizers, log α) so that a run given
a :class:`~tenfold.systems.tarzan.trainstate.StateFile` can stop and resume exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tenfold.core.registry import Registry
from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.features import FEATURE_NAMES, zeroed_features
from tenfold.systems.tarzan.losses import actor_loss, cql_penalty, quantile_td_loss, temperature_loss
from tenfold.systems.tarzan.models import DeterministicActor, GaussianActor, QuantileCritic
from tenfold.systems.tarzan.trainstate import Part, StateFile, restore, save

if TYPE_CHECKING:
    from tenfold.systems.tarzan.d3rlpy_engine import D3rlpyLearner

__all__ = ["ALGORITHMS", "SacLearner", "TrainResult", "Transitions", "train", "train_from_logs"]

PREV_ACTION_FEATURE = FEATURE_NAMES.index("prev_action")  # 6: feature 7 of the spec, 0-based


@dataclass(frozen=True)
class Transitions:
    """(s, a, r, s′, done) tensors: states (N, 20, 12), actions (N, 1) in [−1, 1], rewards (N,)."""

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_states: torch.Tensor
    dones: torch.Tensor

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.states[idx], self.actions[idx], self.rewards[idx], self.next_states[idx], self.dones[idx])

    def without(self, features: tuple[str, ...]) -> Transitions:
        """The same transitions with the named features zeroed in every state and next state."""
        states = self.states.clone()
        nxt = self.next_states.clone()
        for name in features:
            states[:, :, FEATURE_NAMES.index(name)] = 0.0
            nxt[:, :, FEATURE_NAMES.index(name)] = 0.0
        return Transitions(states, self.actions, self.rewards, nxt, self.dones)

    def without_prev_action(self) -> Transitions:
        return self.without(("prev_action",))


@dataclass
class TrainResult:
    """The trained policy network and the per-step loss log."""

    algo: str
    policy: GaussianActor | DeterministicActor
    losses: list[dict[str, float]]


Progress = Callable[[Iterable[int]], Iterator[int]]
TrainFn = Callable[[Transitions, TrainConfig, Progress, StateFile | None], TrainResult]
ALGORITHMS: Registry[TrainFn] = Registry("training algorithm")


def _indices(gen: torch.Generator, n: int, batch: int) -> torch.Tensor:
    return torch.randint(0, n, (batch,), generator=gen)


def _polyak(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1 - tau).add_(s, alpha=tau)


class SacLearner:
    """Tarzan's learner: the actor, two quantile critics, their Polyak targets, the entropy
    temperature and their optimizers, with one gradient step on a batch (spec §2.2).

    Offline arms feed it batches of logged transitions; the online-RL baseline
    (:mod:`.online`) feeds it batches of its own replay buffer. Construction draws from torch's
    global generator, so seed it (``torch.manual_seed``) first.
    """

    def __init__(self, cfg: TrainConfig, cql_alpha: float, n_quantiles: int) -> None:
        self.cfg = cfg
        self.cql_alpha = cql_alpha
        self.actor = GaussianActor()
        self.critics = (QuantileCritic(n_quantiles), QuantileCritic(n_quantiles))
        self.targets = tuple(copy.deepcopy(c).requires_grad_(False) for c in self.critics)
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.opt_critic = torch.optim.Adam([p for c in self.critics for p in c.parameters()], lr=cfg.critic_lr)
        self.opt_temp = torch.optim.Adam([self.log_alpha], lr=cfg.temperature_lr)

    def parts(self) -> dict[str, Part]:
        """Everything a resumable run saves, by name."""
        return {"actor": self.actor, "critic0": self.critics[0], "critic1": self.critics[1],
                "target0": self.targets[0], "target1": self.targets[1], "log_alpha": self.log_alpha,
                "opt_actor": self.opt_actor, "opt_critic": self.opt_critic, "opt_temp": self.opt_temp}

    def update(self, batch: tuple[torch.Tensor, ...], step: int) -> dict[str, float]:
        """One gradient step on (s, a, r, s′, done); returns the step's losses."""
        cfg, actor, critics, targets, log_alpha = self.cfg, self.actor, self.critics, self.targets, self.log_alpha
        s, a, r, s2, d = batch
        with torch.no_grad():
            a2, logp2 = actor.sample(s2, 1)  # (B, 1)
            t0, t1 = targets[0](s2, a2), targets[1](s2, a2)  # (B, N) each
            # θ̄ comes from the target critic with the smaller mean.
            theta_bar = torch.where((t0.mean(-1) <= t1.mean(-1)).unsqueeze(-1), t0, t1)
            y = r.unsqueeze(-1) + cfg.gamma * (1 - d.unsqueeze(-1)) * (theta_bar - log_alpha.exp() * logp2)
        td = sum((quantile_td_loss(c(s, a), y) for c in critics), torch.zeros(()))
        cql = sum((cql_penalty(c, actor, s, a, self.cql_alpha) for c in critics), torch.zeros(()))
        self.opt_critic.zero_grad()
        (td + cql).backward()
        self.opt_critic.step()
        if step < cfg.bc_warmup_steps:
            # CQL's reference code (policy_eval_start) trains the actor by behaviour cloning
            # while the critics warm up: α·log π(ã|s) − log π(a_data|s), still entropy-regularised.
            _, logp_pi = actor.sample(s, 1)
            pi_loss = (log_alpha.exp().detach() * logp_pi[:, 0] - actor.log_prob(s, a)[:, 0]).mean()
            logp = logp_pi.detach()
        else:
            pi_loss, logp = actor_loss(actor, critics, s, log_alpha)
        self.opt_actor.zero_grad()
        pi_loss.backward()
        self.opt_actor.step()
        temp = temperature_loss(log_alpha, logp)
        self.opt_temp.zero_grad()
        temp.backward()
        self.opt_temp.step()
        for t, c in zip(targets, critics, strict=True):
            _polyak(t, c, cfg.tau)
        return {"td": float(td.detach()), "cql": float(cql.detach()), "actor": float(pi_loss.detach()),
                "alpha": float(log_alpha.detach().exp())}


def _sac(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None,
         algo: str, cql_alpha: float, n_quantiles: int) -> TrainResult:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    learner = _learner(cfg, state, cql_alpha, n_quantiles)
    parts = learner.parts()
    start, log = restore(state, cfg, parts, gen)
    for step in progress(range(start, cfg.steps)):
        losses = learner.update(data.batch(_indices(gen, len(data), cfg.batch_size)), step)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.append({"step": step, **losses})
        save(state, cfg, parts, gen, step + 1, log)
    return TrainResult(algo, learner.actor, log)


def _learner(cfg: TrainConfig, state: StateFile | None, cql_alpha: float,
             n_quantiles: int) -> SacLearner | D3rlpyLearner:
    """The SAC learner of ``cfg.engine``: this package's losses, or d3rlpy's CQL (not resumable)."""
    if cfg.engine == "torch":
        return SacLearner(cfg, cql_alpha, n_quantiles)
    from tenfold.systems.tarzan.d3rlpy_engine import D3rlpyLearner

    if state is not None:
        raise ConfigError("state", str(state.path), "d3rlpy runs are not resumable; train without --state")
    return D3rlpyLearner(cfg, cql_alpha, n_quantiles)


@ALGORITHMS.register("tarzan")
def _tarzan(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    return _sac(data, cfg, progress, state, "tarzan", cfg.cql_alpha, cfg.n_quantiles)


@ALGORITHMS.register("no_cql")
def _no_cql(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    return _sac(data, cfg, progress, state, "no_cql", 0.0, cfg.n_quantiles)


@ALGORITHMS.register("no_qr")
def _no_qr(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    return _sac(data, cfg, progress, state, "no_qr", cfg.cql_alpha, 1)


@ALGORITHMS.register("no_prev_action")
def _no_prev(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    # Policy.act zeroes the same features (features.ZEROED_FEATURES), so serving sees what training saw.
    return _sac(data.without(zeroed_features("no_prev_action")), cfg, progress, state, "no_prev_action",
                cfg.cql_alpha, cfg.n_quantiles)


@ALGORITHMS.register("bc")
def _bc(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    actor = DeterministicActor()
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
    parts: dict[str, Part] = {"actor": actor, "opt": opt}
    start, log = restore(state, cfg, parts, gen)
    for step in progress(range(start, cfg.steps)):
        s, a, _, _, _ = data.batch(_indices(gen, len(data), cfg.batch_size))
        loss = torch.nn.functional.mse_loss(actor.act(s), a)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.append({"step": step, "mse": float(loss.detach())})
        save(state, cfg, parts, gen, step + 1, log)
    return TrainResult("bc", actor, log)


@ALGORITHMS.register("crr")
def _crr(data: Transitions, cfg: TrainConfig, progress: Progress, state: StateFile | None) -> TrainResult:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    actor = GaussianActor()
    critic = QuantileCritic(1)
    target = copy.deepcopy(critic).requires_grad_(False)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
    parts: dict[str, Part] = {"actor": actor, "critic": critic, "target": target, "opt_actor": opt_actor,
                              "opt_critic": opt_critic}
    start, log = restore(state, cfg, parts, gen)
    for step in progress(range(start, cfg.steps)):
        s, a, r, s2, d = data.batch(_indices(gen, len(data), cfg.batch_size))
        with torch.no_grad():
            a2, _ = actor.sample(s2, 1)
            y = r.unsqueeze(-1) + cfg.gamma * (1 - d.unsqueeze(-1)) * target(s2, a2)  # (B, 1)
        td = quantile_td_loss(critic(s, a), y)
        opt_critic.zero_grad()
        td.backward()
        opt_critic.step()
        with torch.no_grad():
            emb = critic.embed(s)
            q_data = critic.quantiles_from(emb, a)[:, 0, 0]  # (B,)
            samples, _ = actor.sample(s, cfg.crr_action_samples)  # (B, 4)
            baseline = critic.quantiles_from(emb, samples)[..., 0].mean(1)  # (B,)
            weight = torch.exp((q_data - baseline) / cfg.crr_beta).clamp(max=cfg.crr_max_weight)
        pi = -(actor.log_prob(s, a)[:, 0] * weight).mean()
        opt_actor.zero_grad()
        pi.backward()
        opt_actor.step()
        if step % cfg.crr_target_interval == 0:
            target.load_state_dict(critic.state_dict())
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.append({"step": step, "td": float(td.detach()), "actor": float(pi.detach())})
        save(state, cfg, parts, gen, step + 1, log)
    return TrainResult("crr", actor, log)


def train(data: Transitions, cfg: TrainConfig, progress: Progress | None = None,
          state: StateFile | None = None) -> TrainResult:
    """Train ``cfg.algo`` on logged transitions only; with ``state``, resumably (see :mod:`.trainstate`)."""
    if cfg.algo == "online":
        raise ConfigError("algo", cfg.algo, "learns by calling over the emulator, not from logs: use tarzan.online."
                                            "train_online (CLI: tarzan train --algo online --traces DIR)")
    fn = ALGORITHMS.get(cfg.algo)
    if len(data) == 0:
        raise ConfigError("data", 0, "holds no transitions (need >= 2 steps per call)")
    torch.set_num_threads(cfg.threads)
    return fn(data, cfg, progress or iter, state)


def train_from_logs(logs_dir: Path, cfg: TrainConfig, out: Path, progress: Progress | None = None,
                    state: StateFile | None = None) -> Path:
    """Train ``cfg.algo`` on the shards that ``logs_dir/manifest.json`` lists and save the policy to ``out``.

    Only listed shards are read (a stray or stale ``.parquet`` beside them never is), each must
    hold the steps the manifest gives it, and no call may appear in two shards.
    """
    from tenfold.systems.tarzan.dataset import build_transitions
    from tenfold.systems.tarzan.policy import Policy
    from tenfold.systems.tarzan.telemetry import LogFormatError, StepRow, read_log, read_manifest

    manifest = read_manifest(Path(logs_dir))
    rows: list[StepRow] = []
    owner: dict[str, Path] = {}
    for shard in manifest.shards:
        part = read_log(shard.path)
        if shard.steps is not None and len(part) != shard.steps:
            raise LogFormatError(f"{shard.path}: holds {len(part)} rows but {manifest.path} lists {shard.steps}: "
                                 "a partial or stale shard; collect or ingest again")
        for i, r in enumerate(part):
            first = owner.setdefault(r.call_id, shard.path)
            if first != shard.path:
                raise LogFormatError(f"{shard.path}: row {i} column 'call_id' is {r.call_id!r}, a call already "
                                     f"logged in {first}: two calls (or two copies of one) share a call_id")
        rows.extend(part)
    data = build_transitions(rows)
    if len(data) == 0:
        raise LogFormatError(f"{logs_dir}: holds no transitions (need >= 2 steps per call)")
    result = train(data.to_torch(), cfg, progress, state)
    return Policy(result.algo, result.policy).save(out)
