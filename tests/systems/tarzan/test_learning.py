"""Tarzan's networks and losses on fixed batches (spec acceptance 9 and 10)."""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.losses import cql_penalty, quantile_midpoints, quantile_td_loss
from tenfold.systems.tarzan.models import GaussianActor, QuantileCritic
from tenfold.systems.tarzan.train import ALGORITHMS, Transitions, train


def _batch(n: int = 64, seed: int = 0) -> Transitions:
    g = torch.Generator().manual_seed(seed)
    states = torch.rand(n, 20, 12, generator=g)
    # Logged actions follow a feature so that behaviour cloning has something to learn.
    actions = torch.tanh(2 * states[:, -1, :1] - 1)
    rewards = states[:, -1, 1] - states[:, -1, 2]
    next_states = torch.roll(states, 1, dims=0)
    return Transitions(states, actions, rewards, next_states, torch.zeros(n))


def test_policy_has_79170_parameters_and_is_fast() -> None:
    torch.set_num_threads(1)
    actor = GaussianActor()
    assert sum(p.numel() for p in actor.parameters()) == 79_170
    state = torch.rand(1, 20, 12)
    times = []
    with torch.no_grad():
        for _ in range(50):
            t0 = time.perf_counter()
            actor.act(state)
            times.append(time.perf_counter() - t0)
    assert statistics.median(times) <= 0.006


def test_quantile_midpoints_and_hand_computed_loss() -> None:
    assert quantile_midpoints(4).tolist() == [0.125, 0.375, 0.625, 0.875]
    theta = torch.tensor([[0.0, 1.0]])  # τ̂ = 0.25, 0.75
    target = torch.tensor([[0.5, 3.0]])
    # i=0 (θ=0, τ=.25): y=.5 -> .25*.125, y=3 -> .25*2.5 ; i=1 (θ=1, τ=.75): y=.5 -> .25*.125, y=3 -> .75*1.5
    expected = ((0.25 * 0.125 + 0.25 * 2.5) / 2) + ((0.25 * 0.125 + 0.75 * 1.5) / 2)
    assert float(quantile_td_loss(theta, target)) == pytest.approx(expected)


def test_quantile_loss_value_and_gradient_equal_autograd_through_the_formula() -> None:
    torch.manual_seed(0)
    theta = (torch.randn(8, 16) * 2).requires_grad_()
    target = torch.randn(8, 16) * 2
    tau = quantile_midpoints(16)
    u = target.unsqueeze(1) - theta.unsqueeze(2)
    huber = torch.where(u.abs() <= 1.0, 0.5 * u * u, u.abs() - 0.5)
    reference = ((tau.view(1, -1, 1) - (u.detach() < 0).float()).abs() * huber).mean(2).sum(1).mean()
    (want,) = torch.autograd.grad(3 * reference, theta)
    loss = quantile_td_loss(theta, target)
    (got,) = torch.autograd.grad(3 * loss, theta)
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    assert torch.allclose(got, want, atol=1e-7)


def test_q_from_equals_the_mean_of_the_quantiles() -> None:
    torch.manual_seed(0)
    critic = QuantileCritic(128)
    emb = critic.embed(torch.rand(5, 20, 12))
    actions = torch.rand(5, 3) * 2 - 1
    assert torch.allclose(critic.q_from(emb, actions), critic.quantiles_from(emb, actions).mean(-1), atol=1e-6)


def test_bc_warmup_pulls_the_sac_actor_to_the_logged_actions() -> None:
    data = _batch(256)
    cfg = TrainConfig(algo="tarzan", steps=150, batch_size=64, bc_warmup_steps=150, actor_lr=1e-3, seed=0)
    warm = train(data, cfg).policy
    cold = train(data, TrainConfig(algo="tarzan", steps=150, batch_size=64, actor_lr=1e-3, seed=0)).policy
    with torch.no_grad():
        err_warm = float((warm.act(data.states) - data.actions).abs().mean())
        err_cold = float((cold.act(data.states) - data.actions).abs().mean())
    assert err_warm < 0.5 * err_cold


def test_qr_differs_from_mse_and_cql_changes_the_loss() -> None:
    torch.manual_seed(0)
    data = _batch()
    critic_qr, critic_mse = QuantileCritic(128), QuantileCritic(1)
    actor = GaussianActor()
    y = data.rewards.unsqueeze(-1).expand(-1, 128)
    qr = quantile_td_loss(critic_qr(data.states, data.actions), y)
    mse = quantile_td_loss(critic_qr(data.states, data.actions).mean(-1, keepdim=True), y[:, :1])
    assert float(qr.detach()) != pytest.approx(float(mse.detach()))
    assert float(quantile_td_loss(critic_mse(data.states, data.actions), y[:, :1]).detach()) > 0
    torch.manual_seed(1)
    with_cql = cql_penalty(critic_qr, actor, data.states, data.actions, alpha=0.01)
    torch.manual_seed(1)
    without = cql_penalty(critic_qr, actor, data.states, data.actions, alpha=0.0)
    assert float(without.detach()) == 0.0
    assert float(with_cql.detach()) != 0.0


@pytest.mark.parametrize("algo", ["tarzan", "no_cql", "no_qr", "no_prev_action", "crr", "bc"])
def test_every_algorithm_trains_on_logs_deterministically(algo: str) -> None:
    data = _batch(128)
    cfg = TrainConfig(algo=algo, steps=6, batch_size=32, log_every=5, seed=3)
    first = train(data, cfg)
    second = train(data, cfg)
    assert first.algo == algo
    assert [e["step"] for e in first.losses] == [0, 5]
    assert first.losses == second.losses  # seeded: identical runs
    out = first.policy.act(data.states[:4])
    assert out.shape == (4, 1) and bool((out.abs() <= 1).all())


def test_behaviour_cloning_learns_the_logged_mapping() -> None:
    data = _batch(512)
    result = train(data, TrainConfig(algo="bc", steps=300, batch_size=64, actor_lr=3e-3, log_every=299))
    assert result.losses[-1]["mse"] < 0.2 * result.losses[0]["mse"]


def test_no_prev_action_zeroes_feature_7() -> None:
    data = _batch().without_prev_action()
    assert float(data.states[:, :, 6].abs().sum()) == 0.0
    assert float(data.states[:, :, 5].abs().sum()) > 0.0


def test_bad_training_config() -> None:
    with pytest.raises(ConfigError, match="'algo' = 'ppo'"):
        TrainConfig(algo="ppo")
    with pytest.raises(ConfigError, match=r"'gamma' = 1\.0"):
        TrainConfig(gamma=1.0)
    with pytest.raises(UnknownNameError, match="unknown training algorithm 'ppo'"):
        ALGORITHMS.get("ppo")


def test_oracle_rank_matches_targets_to_capacity() -> None:
    from tenfold.systems.tarzan.oracle import ReorderOracle, smoothed_capacity_bps

    oracle = ReorderOracle.from_gcc_run([1e6, 3e6, 2e6, 5e5], [4e6, 1e6, 8e6, 2e6])
    assert oracle.schedule_bps.tolist() == [2e6, 5e5, 3e6, 1e6]
    assert sorted(oracle.schedule_bps.tolist()) == [5e5, 1e6, 2e6, 3e6]  # same values, new times
    assert oracle.target_bps(99) == 1_000_000
    cap = smoothed_capacity_bps([1] * 40, window_steps=20)
    assert cap.tolist() == [1500 * 8 / 0.05] * 40
    step = smoothed_capacity_bps([0] * 20 + [2] * 20, window_steps=20)
    assert step[0] == 0.0 and step[-1] == 2 * 1500 * 8 / 0.05
    assert step[20] == pytest.approx(step[-1] * 10 / 20)
    with pytest.raises(ConfigError, match="must be a non-empty 1-D series"):
        ReorderOracle.from_gcc_run([1.0, 2.0], [1.0])


def test_quick_bench_trains_every_issue_arm_but_not_the_sensitivity_arm() -> None:
    from tenfold.systems.tarzan.bench import LEARNED, QUICK, BitrateBenchConfig

    assert QUICK.learned_arms == ("bc", "crr", "tarzan", "tarzan_no_cql", "tarzan_no_quantile")
    assert BitrateBenchConfig().learned_arms == tuple(LEARNED)
    assert not QUICK.online and BitrateBenchConfig().online  # the online-RL baseline runs in full runs only
    with pytest.raises(ConfigError, match="'dqn'"):
        BitrateBenchConfig(learned_arms=("tarzan", "dqn"))
    with pytest.raises(ConfigError, match="learned_arms"):
        BitrateBenchConfig(learned_arms=("bc",))
