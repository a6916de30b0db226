"""The d3rlpy engine against the torch engine on fixed batches (spec §2.2 "Engines", acceptance 9).

d3rlpy is installed by ``make setup`` (extra ``tarzan-d3rlpy``); these tests fail, not skip,
when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tenfold.cli import main
from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.d3rlpy_engine import D3rlpyLearner
from tenfold.systems.tarzan.losses import quantile_td_loss
from tenfold.systems.tarzan.policy import Policy
from tenfold.systems.tarzan.train import Transitions, train
from tenfold.systems.tarzan.trainstate import StateFile


def _batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, 20, 12, generator=g)
    a = torch.rand(n, 1, generator=g) * 2 - 1
    r = torch.rand(n, generator=g) - 0.5
    s2 = torch.rand(n, 20, 12, generator=g)
    d = (torch.arange(n) % 5 == 4).float()  # a few episode ends, so the (1 − d) mask is exercised
    return s, a, r, s2, d


def _learner(alpha: float = 0.01, n_quantiles: int = 128, seed: int = 0) -> D3rlpyLearner:
    torch.manual_seed(seed)
    return D3rlpyLearner(TrainConfig(batch_size=16), alpha, n_quantiles)


def test_networks_are_the_torch_engines_with_the_same_weights() -> None:
    learner = _learner()
    s, a, _, _, _ = _batch()
    actor = learner.actor
    assert sum(p.numel() for p in learner.impl.policy.parameters()) == 79_170
    with torch.no_grad():
        out = learner.impl.policy(s)
        mu, log_std = actor.dist_params(s)
        assert torch.allclose(out.mu, mu, atol=1e-6)
        assert torch.allclose(out.logstd, log_std, atol=1e-6)
        assert torch.allclose(out.squashed_mu, actor.act(s), atol=1e-6)
        for q, critic in zip(learner.impl.q_function, learner.critics(), strict=True):
            theirs = q(s, a)
            assert torch.allclose(theirs.quantiles, critic(s, a), atol=1e-6)
            assert torch.allclose(theirs.q_value[:, 0], critic.q_from(critic.embed(s), a)[:, 0], atol=1e-5)


def test_td_target_is_the_specs_soft_backup() -> None:
    """y = r + γ(1 − d)(θ̄(s′, a′) − α_ent·log π(a′|s′)), a′ ∼ π, θ̄ from the target critic with the smaller mean."""
    from d3rlpy.models.torch import build_squashed_gaussian_distribution, get_parameter
    from d3rlpy.torch_utility import TorchMiniBatch

    learner = _learner()
    batch = _batch()
    learner.update(batch)  # move the weights and the temperature off their initial values
    _, _, _, s2, _ = batch
    mini = TorchMiniBatch.from_batch(learner.minibatch(batch), gamma=0.98, compute_returns_to_go=False,
                                     device="cpu:0")
    with torch.no_grad():
        torch.manual_seed(7)
        theirs = learner.impl.compute_target(mini)  # θ̄ − α_ent·log π, (B, N)
        torch.manual_seed(7)  # the same draw of a′
        a2, logp2 = build_squashed_gaussian_distribution(learner.impl.policy(s2)).sample_with_log_prob()
        assert torch.allclose(logp2, learner.actor.log_prob(s2, a2), atol=1e-4)
        targets = [q(s2, a2).quantiles for q in learner.impl._modules.targ_q_funcs]
        theta_bar = torch.where((targets[0].mean(-1) <= targets[1].mean(-1)).unsqueeze(-1), *targets)
        temperature = get_parameter(learner.impl._modules.log_temp).exp()
        assert float(temperature) != 1.0
        ours = theta_bar - temperature * logp2
    assert torch.allclose(theirs, ours, atol=1e-4)


@pytest.mark.parametrize("n_quantiles", [128, 1])
def test_td_loss_agrees_with_d3rlpy_within_1e_4(n_quantiles: int) -> None:
    learner = _learner(n_quantiles=n_quantiles)
    s, a, r, _, d = _batch()
    gamma = 0.98
    target = torch.randn(len(s), n_quantiles) * 3  # θ̄ − α_ent·log π of the next state (see the test above)
    with torch.no_grad():
        theirs = learner.impl._q_func_forwarder.compute_error(
            observations=s, actions=a, rewards=r[:, None], target=target, terminals=d[:, None], gamma=gamma)
        y = r[:, None] + gamma * (1 - d[:, None]) * target
        ours = sum(quantile_td_loss(c(s, a), y) for c in learner.critics())
    assert float(theirs) > 0
    assert float(ours) == pytest.approx(float(theirs), abs=1e-4)


def test_log_probability_agrees_with_d3rlpy() -> None:
    from d3rlpy.models.torch import build_squashed_gaussian_distribution

    learner = _learner()
    s, a, _, _, _ = _batch()
    with torch.no_grad():
        theirs = build_squashed_gaussian_distribution(learner.impl.policy(s)).log_prob(a)
        ours = learner.actor.log_prob(s, a)
    assert torch.allclose(theirs, ours, atol=1e-4)


def test_conservative_weight_changes_the_policy_and_runs_repeat() -> None:
    batch = _batch()

    from d3rlpy.models.torch import get_parameter

    def trained(alpha: float) -> torch.Tensor:
        learner = _learner(alpha)
        torch.manual_seed(1)
        logs = [learner.update(batch) for _ in range(3)]
        assert all(set(log) == {"td", "cql", "actor", "alpha"} for log in logs)
        # The CQL weight is exactly α: d3rlpy's own multiplier stays at 1, with no optimizer.
        assert learner.impl._modules.alpha_optim is None
        assert float(get_parameter(learner.impl._modules.log_alpha).detach().exp()) == 1.0
        assert (logs[-1]["cql"] == 0.0) == (alpha == 0.0)
        return torch.cat([p.detach().flatten() for p in learner.actor.parameters()])

    with_cql, again, without = trained(0.01), trained(0.01), trained(0.0)
    assert torch.equal(with_cql, again)
    assert not torch.equal(with_cql, without)


def test_train_through_d3rlpy_gives_a_servable_policy(tmp_path: Path) -> None:
    s, a, r, s2, d = _batch(32)
    data = Transitions(s, a, r, s2, d)
    result = train(data, TrainConfig(engine="d3rlpy", steps=4, batch_size=8, log_every=2))
    assert result.algo == "tarzan"
    assert [row["step"] for row in result.losses] == [0, 2, 3]
    path = Policy(result.algo, result.policy).save(tmp_path / "d3.pt")
    loaded = Policy.load(path)
    with torch.no_grad():
        assert torch.allclose(loaded.network.act(s[:4]), result.policy.act(s[:4]))


def test_bad_engine_configs_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'engine' = 'jax'"):
        TrainConfig(engine="jax")
    with pytest.raises(ConfigError, match="'algo' = 'crr'"):
        TrainConfig(engine="d3rlpy", algo="crr")
    with pytest.raises(ConfigError, match="'bc_warmup_steps' = 10"):
        TrainConfig(engine="d3rlpy", bc_warmup_steps=10)
    data = Transitions(*_batch(8))
    with pytest.raises(ConfigError, match=r"'state'.*not resumable"):
        train(data, TrainConfig(engine="d3rlpy", steps=2, batch_size=4), state=StateFile(tmp_path / "s.state"))


def test_cli_names_bad_engine_and_weight_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["tarzan", "train", "--logs", str(tmp_path), "--out", str(tmp_path / "p.pt")]
    assert main([*base, "--engine", "d3rlpy", "--bc-warmup-steps", "5"]) == 2
    assert "'bc_warmup_steps' = 5" in capsys.readouterr().err
    assert main([*base, "--cql-alpha", "-1"]) == 2
    assert "'cql_alpha' = -1.0" in capsys.readouterr().err
    assert not (tmp_path / "p.pt").exists()


def test_another_d3rlpy_version_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import d3rlpy

    from tenfold.systems.tarzan.d3rlpy_engine import require_d3rlpy

    monkeypatch.setattr(d3rlpy, "__version__", "2.9.0")
    with pytest.raises(ConfigError, match=r"'d3rlpy' = '2\.9\.0': the d3rlpy engine needs d3rlpy 2\.8\.1"):
        require_d3rlpy()
    with pytest.raises(ConfigError, match=r"'d3rlpy' = '2\.9\.0'"):
        train(Transitions(*_batch(8)), TrainConfig(engine="d3rlpy", steps=1, batch_size=4))
