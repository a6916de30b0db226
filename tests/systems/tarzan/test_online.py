"""The online-RL baseline: SAC with α = 0 learning from its own emulated calls, beside GCC."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tenfold.cli import main
from tenfold.errors import ConfigError
from tenfold.systems.tarzan.collect import ChunkRef
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.features import MAX_BPS, MIN_BPS
from tenfold.systems.tarzan.gcc import Gcc
from tenfold.systems.tarzan.models import GaussianActor
from tenfold.systems.tarzan.online import ExploringController, train_online
from tenfold.systems.tarzan.policy import Policy
from tenfold.systems.tarzan.train import Transitions, train

REPO = Path(__file__).resolve().parents[3]
VERIZON = REPO / "data" / "traces" / "mahimahi" / "Verizon-LTE-short.down"
REFS = [ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 5.0), ChunkRef(str(VERIZON), 1, 1.5, 40.0, 0, 5.0)]


def test_online_rl_calls_learns_from_its_calls_and_is_compared_with_gcc() -> None:
    cfg = TrainConfig(algo="online", steps=150, batch_size=16, log_every=50, seed=3)
    result = train_online(REFS, cfg)
    # A 5 s call is 100 steps, so 99 transitions: the first call pays for steps 0-98, the second for 99-149.
    assert [c.first_step for c in result.calls] == [0, 99]
    assert sorted(c.call_id for c in result.calls) == sorted(r.call_id for r in REFS)
    assert [e["step"] for e in result.losses] == [0, 50, 100, 149]
    assert all(e["cql"] == 0.0 for e in result.losses)  # the spec's online arm has no conservative term
    # The untrained tanh-Gaussian policy explores around the middle of [50 kbps, 6 Mbps] on a
    # 1.5 Mbps link: more bitrate than GCC, and more freezes, in every training call.
    for call in result.calls:
        assert call.bitrate_mbps > 5 * call.gcc_bitrate_mbps
        assert call.freeze_rate > call.gcc_freeze_rate
    assert (result.share_worse_bitrate, result.share_worse_freezes) == (0.0, 1.0)
    again = train_online(REFS, cfg)
    assert again.calls == result.calls and again.losses == result.losses  # seeded end to end
    for name, p in result.policy.state_dict().items():
        assert torch.equal(p, again.policy.state_dict()[name])


def test_the_exploring_controller_samples_within_the_action_range() -> None:
    torch.manual_seed(0)
    controller = ExploringController(GaussianActor())
    window = np.zeros((20, 12), dtype=np.float32)
    picks = [controller.decide(i, window, Gcc(), 50.0 * i) for i in range(20)]
    assert len(set(picks)) == 20  # sampled, not the served tanh(μ)
    assert all(MIN_BPS <= b <= MAX_BPS for b in picks)


def test_online_rl_bad_input() -> None:
    cfg = TrainConfig(algo="online", steps=10, batch_size=8)
    with pytest.raises(ConfigError, match="'refs' = \\[\\]"):
        train_online([], cfg)
    with pytest.raises(ConfigError, match="'bc_warmup_steps' = 5: must be 0 for online RL"):
        train_online(REFS, TrainConfig(algo="online", steps=10, bc_warmup_steps=5))
    data = Transitions(torch.zeros(4, 20, 12), torch.zeros(4, 1), torch.zeros(4), torch.zeros(4, 20, 12),
                       torch.zeros(4))
    with pytest.raises(ConfigError, match="'algo' = 'online': learns by calling over the emulator"):
        train(data, cfg)


def test_cli_trains_online_on_a_trace_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    out = tmp_path / "online.pt"
    args = ["tarzan", "train", "--algo", "online", "--traces", str(traces), "--seconds", "3", "--limit", "1",
            "--steps", "70", "--batch-size", "8", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["checkpoint"], summary["train_calls"]) == (str(out), 2)  # 59 transitions per 3 s call
    report = json.loads(Path(summary["calls_report"]).read_text())
    # The printed keys are calls.json's (OnlineResult.summary), value for value.
    assert {k: v for k, v in summary.items() if k.startswith("train_calls")} == \
        {k: v for k, v in report.items() if k != "calls"}
    assert set(report) == {"train_calls", "train_calls_worse_bitrate_share", "train_calls_worse_freeze_share",
                           "calls"}
    assert [c["first_step"] for c in report["calls"]] == [0, 59]
    assert Policy.load(out).algo == "online"
    assert main(["tarzan", "train", "--algo", "online", "--out", str(out)]) == 2
    assert "--algo online learns by calling over trace chunks: pass --traces DIR" in capsys.readouterr().err
    assert main(["tarzan", "train", "--algo", "tarzan", "--out", str(out)]) == 2
    assert "pass --logs DIR" in capsys.readouterr().err
    assert main([*args, "--state", str(tmp_path / "s")]) == 2
    assert "not resumable" in capsys.readouterr().err


def test_the_benchmark_task_trains_online_and_reports_the_shares(tmp_path: Path) -> None:
    from dataclasses import asdict

    from tenfold.systems.tarzan.bench import _train_one

    cfg = TrainConfig(algo="online", steps=20, batch_size=8, seed=1)
    path = _train_one(("online", [asdict(r) for r in REFS], cfg.to_dict(), str(tmp_path / "online.pt")))
    assert Policy.load(path).algo == "online"
    shares = json.loads(Path(path + ".calls.json").read_text())
    assert shares["train_calls"] == 1  # 20 steps: the first 5 s call's 99 transitions pay for them all
    assert shares["train_calls_worse_bitrate_share"] in (0.0, 1.0)
    assert shares["train_calls_worse_freeze_share"] in (0.0, 1.0)


def test_online_refuses_calls_too_short_to_yield_a_transition(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = TrainConfig(algo="online", steps=5, batch_size=4)
    short = [ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 0.05)]  # one 50 ms step: no transition
    with pytest.raises(ConfigError, match=r"'seconds' = 0\.05: must be >= 0\.1 s for online RL: a call needs at "
                                          r"least 2 steps of 50 ms to yield a transition"):
        train_online(short, cfg)
    # A call that yields nothing anyway (here: forced) raises instead of looping forever.
    from tenfold.systems.tarzan import online
    from tenfold.systems.tarzan.dataset import build_transitions

    monkeypatch.setattr(online, "build_transitions", lambda rows: build_transitions(rows[:1]))
    with pytest.raises(ConfigError, match=r"'seconds' = 0\.1: call Verizon-LTE-short\.down#0\|rtt100\|L1\.5\|s0 "
                                          r"yielded no transitions \(need >= 2 steps per call\)"):
        train_online([ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 0.1)], cfg)


def test_cli_online_refuses_a_too_short_call_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    assert main(["tarzan", "train", "--algo", "online", "--traces", str(traces), "--seconds", "0.05", "--limit", "1",
                 "--steps", "3", "--out", str(tmp_path / "o.pt")]) == 2
    assert "'seconds' = 0.05: must be >= 0.1 s for online RL" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
