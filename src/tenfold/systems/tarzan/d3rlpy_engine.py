"""The d3rlpy engine (spec §2.2 "Engines"): Tarzan's SAC arms trained by d3rlpy 2.8.1's CQL.

Installed with the extra ``tenfold[tarzan-d3rlpy]``. The networks are the torch engine's: a
GRU(12→32) encoder per network (:func:`gru_encoder_factory`), 2×256 MLPs, 128-quantile critics
(``QRQFunctionFactory``; the ``no_qr`` arm uses the scalar ``MeanQFunctionFactory``), and the
spec's ``CQLConfig`` (``conservative_weight`` = α, ``alpha_learning_rate=0``,
``initial_alpha=1``, ``n_action_samples=10``), so d3rlpy's effective CQL weight is exactly α.
``soft_q_backup=True`` gives the spec's TD target, r + γ(θ̄(s′, a′) − α_ent·log π(a′|s′)) with
a′ ∼ π; d3rlpy's default backs up Q(s′, tanh μ(s′)) without the entropy term.

Batches are drawn by the same seeded sampler as the torch engine and handed to
``CQL.update``; d3rlpy never sees a dataset object, a simulator or trace capacity. The trained
policy is copied into a :class:`~.models.GaussianActor` (d3rlpy's ``_mu`` and ``_logstd``
rows become the actor's last layer), so checkpoints, serving and evaluation are shared.

What differs from the torch engine is d3rlpy's own code, not a choice made here:

* the CQL log-sum-exp also scores 10 policy actions drawn at the *next* state (30 actions
  per state instead of 20), and subtracts ``alpha_threshold`` (a constant: no gradient);
* the temperature loss is −exp(log α_ent)·(log π − 1) rather than −log α_ent·(log π − 1)
  (same fixed point, another step size);
* there is no behaviour-cloning warm-up, so ``bc_warmup_steps`` must be 0;
* runs are not resumable (``--state``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.models import STATE_FEATURES, STATE_STEPS, GaussianActor, GruEncoder, QuantileCritic
from tenfold.systems.tarzan.trainstate import Part

__all__ = ["D3RLPY_VERSION", "D3rlpyLearner", "gru_encoder_factory", "require_d3rlpy"]

D3RLPY_VERSION = "2.8.1"
"""The engine reads d3rlpy's module layout (policy and Q-function attributes), so it pins the version."""


def require_d3rlpy() -> Any:
    """Import d3rlpy, or raise a ConfigError that says how to install it."""
    try:
        # d3rlpy imports gym 0.26, which prints a deprecation banner on import.
        with contextlib.redirect_stderr(io.StringIO()):
            import d3rlpy
    except ImportError as exc:
        raise ConfigError("engine", "d3rlpy", "needs d3rlpy 2.8.1: pip install 'tenfold[tarzan-d3rlpy]'") from exc
    if d3rlpy.__version__ != D3RLPY_VERSION:
        raise ConfigError("d3rlpy", d3rlpy.__version__, f"the d3rlpy engine needs d3rlpy {D3RLPY_VERSION}")
    return d3rlpy


class _GruMlp(nn.Module):
    """The torch engine's :class:`~.models.GruEncoder`, then (⊕ the action) → 256 → 256, ReLU."""

    def __init__(self, action_size: int = 0, hidden: int = 32, width: int = 256) -> None:
        super().__init__()
        self.encoder = GruEncoder(hidden=hidden)
        self.fc1 = nn.Linear(hidden + action_size, width)
        self.fc2 = nn.Linear(width, width)

    def features(self, x: torch.Tensor, action: torch.Tensor | None) -> torch.Tensor:
        h = self.encoder(x)
        z = h if action is None else torch.cat([h, action], dim=-1)
        out: torch.Tensor = torch.relu(self.fc2(torch.relu(self.fc1(z))))
        return out


@functools.cache
def _encoder_classes() -> tuple[type, type, type]:
    """d3rlpy's encoder bases and our factory, built on first use (d3rlpy is an optional extra)."""
    from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
    from d3rlpy.models.torch import Encoder, EncoderWithAction

    class GruEncoder(Encoder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = _GruMlp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.features(x, None)

    class GruEncoderWithAction(EncoderWithAction):  # type: ignore[misc]
        def __init__(self, action_size: int) -> None:
            super().__init__()
            self.net = _GruMlp(action_size)

        def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
            return self.net.features(x, action)

    @dataclasses.dataclass()
    class Factory(EncoderFactory):  # type: ignore[misc]
        """The GRU state encoder of spec §2.2 as a d3rlpy ``EncoderFactory``."""

        def create(self, observation_shape: Any) -> GruEncoder:
            _check_shape(observation_shape)
            return GruEncoder()

        def create_with_action(self, observation_shape: Any, action_size: int,
                               discrete_action: bool = False) -> GruEncoderWithAction:
            _check_shape(observation_shape)
            return GruEncoderWithAction(action_size)

        @staticmethod
        def get_type() -> str:
            return "tenfold_tarzan_gru"

    register_encoder_factory(Factory)
    return GruEncoder, GruEncoderWithAction, Factory


def _check_shape(shape: Any) -> None:
    if tuple(shape) != (STATE_STEPS, STATE_FEATURES):
        raise ConfigError("observation_shape", tuple(shape), f"must be ({STATE_STEPS}, {STATE_FEATURES})")


def gru_encoder_factory() -> Any:
    """A d3rlpy ``EncoderFactory`` for the GRU state encoder (its classes are built and registered once)."""
    require_d3rlpy()
    return _encoder_classes()[2]()


class D3rlpyLearner:
    """d3rlpy's CQL with the spec's configuration, updated on batches of (s, a, r, s′, done).

    It offers :class:`~.train.SacLearner`'s interface (``update``, ``parts``, ``actor``), so the
    training loop is the same for both engines; it has no resumable parts.
    """

    def __init__(self, cfg: TrainConfig, cql_alpha: float, n_quantiles: int) -> None:
        d3rlpy = require_d3rlpy()
        from d3rlpy.models.q_functions import MeanQFunctionFactory, QRQFunctionFactory

        q_func = QRQFunctionFactory(n_quantiles=n_quantiles) if n_quantiles > 1 else MeanQFunctionFactory()
        self.config = d3rlpy.algos.CQLConfig(
            actor_learning_rate=cfg.actor_lr, critic_learning_rate=cfg.critic_lr,
            temp_learning_rate=cfg.temperature_lr, alpha_learning_rate=0.0, initial_alpha=1.0,
            initial_temperature=1.0, batch_size=cfg.batch_size, gamma=cfg.gamma, tau=cfg.tau, n_critics=2,
            conservative_weight=cql_alpha, n_action_samples=10, soft_q_backup=True, q_func_factory=q_func,
            actor_encoder_factory=gru_encoder_factory(), critic_encoder_factory=gru_encoder_factory())
        self.algo = self.config.create(device="cpu:0")
        self.algo.create_impl((STATE_STEPS, STATE_FEATURES), 1)
        self.n_quantiles = n_quantiles

    @property
    def impl(self) -> Any:
        return self.algo.impl

    @staticmethod
    def minibatch(batch: tuple[torch.Tensor, ...]) -> Any:
        """(s, a, r, s′, done) tensors as d3rlpy's ``TransitionMiniBatch`` (one step apart: γ¹)."""
        from d3rlpy.dataset import TransitionMiniBatch

        s, a, r, s2, d = (np.ascontiguousarray(t.numpy(), dtype=np.float32) for t in batch)
        return TransitionMiniBatch(observations=s, actions=a, rewards=r[:, None], next_observations=s2,
                                   next_actions=np.zeros_like(a), terminals=d[:, None],
                                   intervals=np.ones((len(a), 1), dtype=np.float32), transitions=[])

    def parts(self) -> dict[str, Part]:
        """Nothing to save: d3rlpy runs are not resumable."""
        return {}

    def update(self, batch: tuple[torch.Tensor, ...], step: int = 0) -> dict[str, float]:
        """One d3rlpy gradient step (critics, then actor and temperature, then Polyak targets);
        ``step`` is unused (d3rlpy counts its own)."""
        out = self.algo.update(self.minibatch(batch))
        # d3rlpy's conservative loss per critic is w·(log-sum-exp over 3n actions − Q(s, a_data)
        # − alpha_threshold), times its fixed α of 1. The torch engine logs w·(log-mean-exp − Q(s,
        # a_data)), so the constants are moved: "cql" then means the same in both logs.
        cfg = self.config
        shift = cfg.n_critics * cfg.conservative_weight * (cfg.alpha_threshold - math.log(3 * cfg.n_action_samples))
        return {"td": float(out["critic_loss"]) - float(out["conservative_loss"]),
                "cql": float(out["conservative_loss"]) + shift, "actor": float(out["actor_loss"]),
                "alpha": float(out["temp"])}

    @property
    def actor(self) -> GaussianActor:
        """A copy of the policy as the torch engine's actor (the same 79,170 parameters)."""
        actor = GaussianActor()
        policy = self.impl.policy
        net: _GruMlp = policy._encoder.net
        with torch.no_grad():
            actor.encoder.load_state_dict(net.encoder.state_dict())
            _copy_linear(actor.head[0], net.fc1)
            _copy_linear(actor.head[2], net.fc2)
            last = actor.head[4]
            assert isinstance(last, nn.Linear)
            last.weight.copy_(torch.cat([policy._mu.weight, policy._logstd.weight], dim=0))
            last.bias.copy_(torch.cat([policy._mu.bias, policy._logstd.bias], dim=0))
        return actor

    def critics(self) -> tuple[QuantileCritic, QuantileCritic]:
        """d3rlpy's two critics as the torch engine's :class:`QuantileCritic` (same weights)."""
        out = []
        for q in self.impl.q_function:
            critic = QuantileCritic(self.n_quantiles)
            net: _GruMlp = q.encoder.net
            with torch.no_grad():
                critic.encoder.load_state_dict(net.encoder.state_dict())
                _copy_linear(critic.head[0], net.fc1)
                _copy_linear(critic.head[2], net.fc2)
                _copy_linear(critic.head[4], q._fc)
            out.append(critic)
        return out[0], out[1]


def _copy_linear(dst: nn.Module, src: nn.Linear) -> None:
    assert isinstance(dst, nn.Linear)
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)
