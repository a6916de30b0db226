"""FLOP counting, device profiles and the deterministic FLOP clock."""

from __future__ import annotations

import pytest
import torch

from tenfold.core.clock import SimClock
from tenfold.errors import ConfigError, UnknownNameError
from tenfold.vision import PROFILES, DeviceProfile, FlopClock, count_flops


def _conv() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)


def test_conv_flops_match_a_hand_count() -> None:
    # Each of the 8 x 16 x 16 outputs is a 3 x 3 x 3 dot product: 27 multiply-adds = 54 FLOPs.
    hand = 2 * 8 * 16 * 16 * (3 * 3 * 3)
    assert hand == 110_592
    conv = _conv()
    assert count_flops(conv, torch.zeros(1, 3, 16, 16)) == hand
    assert count_flops(conv, torch.zeros(4, 3, 16, 16)) == 4 * hand
    # Backward of a first layer: only the weight gradient (one more forward's worth); the
    # input needs no gradient.
    assert count_flops(conv, torch.zeros(1, 3, 16, 16), "train") == 2 * hand
    assert all(p.grad is None for p in conv.parameters())


def test_flop_clock_advances_by_flops_over_throughput() -> None:
    profile = DeviceProfile("test", infer_flops_s=1e6, train_flops_s=5e5, mem_bytes=1 << 20, unified=False,
                            copy_bytes_s=1e3)
    sim = SimClock()
    clock = FlopClock(profile, sim)
    conv = _conv()
    x = torch.zeros(1, 3, 16, 16)
    assert clock.charge_model(conv, x) == pytest.approx(110_592 / 1e6)
    assert clock.charge_model(conv, x, "train", steps=2) == pytest.approx(2 * 2 * 110_592 / 5e5)
    assert clock.charge_copy(500) == pytest.approx(0.5)
    assert sim.now() == pytest.approx(0.110592 + 0.884736 + 0.5)
    assert clock.total_flops == {"inference": 110_592.0, "train": 442_368.0}


def test_unified_memory_copies_are_free_and_profiles_are_named() -> None:
    clock = FlopClock(DeviceProfile.named("soc-constrained"))
    assert clock.charge_copy(10**9) == 0.0 and clock.now() == 0.0
    assert set(PROFILES.names()) >= {"soc-constrained", "soc-abundant", "server-discrete"}
    assert DeviceProfile.named("server-discrete").unified is False
    with pytest.raises(UnknownNameError, match="known: cpu-2core, server-discrete, soc-abundant, soc-constrained"):
        DeviceProfile.named("jetson")


def test_bad_profiles_name_the_field() -> None:
    with pytest.raises(ConfigError, match="'train_flops_s' = 0"):
        DeviceProfile(train_flops_s=0)
    with pytest.raises(ConfigError, match="'flops'"):
        DeviceProfile().seconds(-1)
    with pytest.raises(ConfigError, match="'phase'"):
        count_flops(_conv(), torch.zeros(1, 3, 4, 4), "eval")  # type: ignore[arg-type]
