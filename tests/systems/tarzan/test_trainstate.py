"""Resumable training: a run split at any step equals the uninterrupted run, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.policy import CheckpointError
from tenfold.systems.tarzan.train import Transitions, train
from tenfold.systems.tarzan.trainstate import FORMAT, StateFile


def _batch(n: int = 96) -> Transitions:
    g = torch.Generator().manual_seed(5)
    states = torch.rand(n, 20, 12, generator=g)
    actions = torch.tanh(2 * states[:, -1, :1] - 1)
    rewards = states[:, -1, 1] - states[:, -1, 2]
    return Transitions(states, actions, rewards, torch.roll(states, 1, dims=0), torch.zeros(n))


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.state_dict().values()]


@pytest.mark.parametrize("algo", ["tarzan", "bc", "crr"])
def test_a_resumed_run_equals_the_uninterrupted_one(algo: str, tmp_path: Path) -> None:
    data = _batch()
    # bc_warmup_steps 3 puts the split (step 6) after the actor's switch from imitation to SAC.
    full_cfg = TrainConfig(algo=algo, steps=10, batch_size=16, log_every=5, seed=2,
                           bc_warmup_steps=3 if algo == "tarzan" else 0)
    whole = train(data, full_cfg)
    state = StateFile(tmp_path / "run.state", every=4)
    first = train(data, TrainConfig.from_dict({**full_cfg.to_dict(), "steps": 6}), state=state)
    saved = torch.load(state.path, weights_only=True)
    assert saved["format"] == FORMAT and saved["step"] == 6  # written at 4, then at the last step
    assert [e["step"] for e in first.losses] == [0, 5]
    resumed = train(data, full_cfg, state=state)
    assert [e["step"] for e in resumed.losses] == [0, 5, 9]
    assert resumed.losses == whole.losses
    for a, b in zip(_weights(resumed.policy), _weights(whole.policy), strict=True):
        assert torch.equal(a, b)
    assert torch.load(state.path, weights_only=True)["step"] == 10
    # A finished run asked for the same steps does nothing more and returns the same policy.
    again = train(data, full_cfg, state=state)
    assert again.losses == whole.losses
    for a, b in zip(_weights(again.policy), _weights(whole.policy), strict=True):
        assert torch.equal(a, b)


def test_a_resumed_run_refuses_another_config_and_fewer_steps(tmp_path: Path) -> None:
    data = _batch()
    state = StateFile(tmp_path / "run.state", every=2)
    cfg = TrainConfig(algo="bc", steps=4, batch_size=16, seed=1)
    train(data, cfg, state=state)
    other_lr = r"'actor_lr' = 0\.001: differs from the run saved in .*run\.state \(0\.0001\)"
    with pytest.raises(ConfigError, match=other_lr):
        train(data, TrainConfig(algo="bc", steps=8, batch_size=16, seed=1, actor_lr=1e-3), state=state)
    with pytest.raises(ConfigError, match="'algo' = 'crr': differs from the run saved"):
        train(data, TrainConfig(algo="crr", steps=8, batch_size=16, seed=1), state=state)
    with pytest.raises(ConfigError, match="'steps' = 3: is below the 4 steps already done in"):
        train(data, TrainConfig(algo="bc", steps=3, batch_size=16, seed=1), state=state)
    # threads and log_every may change between sessions.
    train(data, TrainConfig(algo="bc", steps=6, batch_size=16, seed=1, threads=2, log_every=3), state=state)
    assert torch.load(state.path, weights_only=True)["step"] == 6
    # A state written before the `engine` field existed resumes as the torch engine's.
    blob = torch.load(state.path, weights_only=True)
    del blob["config"]["engine"]
    torch.save(blob, state.path)
    train(data, TrainConfig(algo="bc", steps=7, batch_size=16, seed=1), state=state)
    assert torch.load(state.path, weights_only=True)["step"] == 7


def test_a_damaged_or_foreign_state_file_is_named(tmp_path: Path) -> None:
    data = _batch()
    cfg = TrainConfig(algo="bc", steps=2, batch_size=16)
    torn = tmp_path / "torn.state"
    torn.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"training state .*torn\.state cannot be read"):
        train(data, cfg, state=StateFile(torn))
    foreign = tmp_path / "policy.pt"
    torch.save({"format": "tarzan.policy/1"}, foreign)
    with pytest.raises(CheckpointError, match=r"policy\.pt is not a training state of format "
                                              r"tarzan\.trainstate/1 \(found 'tarzan\.policy/1'\)"):
        train(data, cfg, state=StateFile(foreign))
    with pytest.raises(ConfigError, match="'state_every' = 0"):
        StateFile(tmp_path / "x.state", every=0)


def test_cli_train_resumes_and_names_a_changed_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.cli import main
    from tenfold.systems.tarzan.adapters import ingest
    from tenfold.systems.tarzan.telemetry import write_log
    from tests.systems.tarzan.test_data_and_serving import _rows

    # Training reads the shards a manifest lists: ingest writes one for emulator-format shards.
    ingest("emulator", [write_log(_rows("a", 40) + _rows("b", 30), tmp_path / "src" / "shard.parquet")],
           tmp_path / "logs")
    base = ["tarzan", "train", "--logs", str(tmp_path / "logs"), "--algo", "bc", "--batch-size", "8",
            "--threads", "1", "--bc-warmup-steps", "0",
            "--out", str(tmp_path / "bc.pt"), "--state", str(tmp_path / "bc.state"), "--state-every", "2"]
    assert main([*base, "--steps", "3"]) == 0
    assert torch.load(tmp_path / "bc.state", weights_only=True)["step"] == 3
    assert main([*base, "--steps", "5"]) == 0
    assert torch.load(tmp_path / "bc.state", weights_only=True)["step"] == 5
    capsys.readouterr()
    assert main([*base[:-4], "--state", str(tmp_path / "bc.state"), "--steps", "7", "--seed", "9"]) == 2
    assert "config field 'seed' = 9: differs from the run saved in" in capsys.readouterr().err
