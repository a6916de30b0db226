"""Tarzan's networks (spec §2.2): a GRU state encoder, a tanh-Gaussian actor and quantile critics.

The state is the last 20 steps × 12 telemetry features. Each network owns its encoder (the
actor and each critic have their own), and runs it once per state: the critic embeds a state
once and scores many actions against the embedding, which is what keeps the CQL term (20
actions per state) affordable on a CPU.

Encoder + actor hold exactly 79,170 parameters, the paper's ≈79k policy.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "STATE_FEATURES",
    "STATE_STEPS",
    "DeterministicActor",
    "GaussianActor",
    "GruEncoder",
    "QuantileCritic",
]

STATE_STEPS = 20
STATE_FEATURES = 12
_LOG_STD_MIN, _LOG_STD_MAX = -20.0, 2.0


class GruEncoder(nn.Module):
    """A one-layer GRU(12→32); the state's embedding is its last hidden state."""

    def __init__(self, features: int = STATE_FEATURES, hidden: int = 32) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=1, batch_first=True)
        self.hidden = hidden

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor
        _, h = self.gru(states)  # states: (B, T, F); h: (1, B, H)
        return h[-1]  # (B, H)


def _mlp(inp: int, out: int, hidden: int = 256) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out))


class GaussianActor(nn.Module):
    """π(a|s): tanh of a Gaussian whose mean and log-std an MLP reads off the state embedding."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = GruEncoder(hidden=hidden)
        self.head = _mlp(hidden, 2)

    def dist_params(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.encoder(states))  # (B, 2)
        mu, log_std = out[:, :1], out[:, 1:]
        return mu, log_std.clamp(_LOG_STD_MIN, _LOG_STD_MAX)  # (B, 1) each

    def sample(self, states: torch.Tensor, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` reparameterised actions per state and their log-probabilities: (B, n) each."""
        mu, log_std = self.dist_params(states)
        std = log_std.exp()
        eps = torch.randn(mu.shape[0], n, dtype=mu.dtype, device=mu.device)  # (B, n)
        pre = mu + std * eps  # (B, n)
        action = torch.tanh(pre)
        # log N(pre; mu, std) minus the tanh change of variables, in a stable form.
        log_prob = (-0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi)
                    - 2.0 * (math.log(2.0) - pre - nn.functional.softplus(-2.0 * pre)))
        return action, log_prob

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s) of given actions in (-1, 1): (B, 1)."""
        mu, log_std = self.dist_params(states)
        a = actions.clamp(-1 + 1e-6, 1 - 1e-6)
        pre = torch.atanh(a)
        z = (pre - mu) / log_std.exp()
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
                - 2.0 * (math.log(2.0) - pre - nn.functional.softplus(-2.0 * pre)))

    def act(self, states: torch.Tensor) -> torch.Tensor:
        """The served action: tanh(μ), (B, 1)."""
        mu, _ = self.dist_params(states)
        return torch.tanh(mu)


class DeterministicActor(nn.Module):
    """Behaviour cloning's actor: the same encoder, a deterministic 2×256 MLP, tanh output."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = GruEncoder(hidden=hidden)
        self.head = _mlp(hidden, 1)

    def act(self, states: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(states))  # (B, 1)
        return torch.tanh(out)


class QuantileCritic(nn.Module):
    """Z(s, a) as ``n_quantiles`` quantile values (1 gives the scalar critic of ``no_qr``)."""

    def __init__(self, n_quantiles: int = 128, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = GruEncoder(hidden=hidden)
        self.head = _mlp(hidden + 1, n_quantiles)
        self.n_quantiles = n_quantiles

    def embed(self, states: torch.Tensor) -> torch.Tensor:
        emb: torch.Tensor = self.encoder(states)  # (B, H)
        return emb

    def quantiles_from(self, emb: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Quantiles for ``n`` actions per embedded state: emb (B, H), actions (B, n) -> (B, n, N)."""
        b, n = actions.shape
        e = emb.unsqueeze(1).expand(b, n, emb.shape[1])  # (B, n, H)
        out: torch.Tensor = self.head(torch.cat([e, actions.unsqueeze(-1)], dim=-1))  # (B, n, N)
        return out

    def q_from(self, emb: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q = mean of the quantiles, for ``n`` actions per embedded state: (B, n).

        The mean of a linear layer's outputs is one linear output with averaged weights, so Q
        costs a 256→1 product instead of 256→N; the value equals ``quantiles_from(...).mean(-1)``.
        """
        b, n = actions.shape
        e = emb.unsqueeze(1).expand(b, n, emb.shape[1])
        hidden: torch.Tensor = self.head[:-1](torch.cat([e, actions.unsqueeze(-1)], dim=-1))  # (B, n, 256)
        last = self.head[-1]
        assert isinstance(last, nn.Linear)
        q = nn.functional.linear(hidden, last.weight.mean(0, keepdim=True), last.bias.mean().view(1))
        return q[..., 0]

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Quantiles of one action per state: states (B, T, F), actions (B, 1) -> (B, N)."""
        return self.quantiles_from(self.embed(states), actions)[:, 0, :]
