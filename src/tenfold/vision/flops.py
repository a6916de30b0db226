"""Device profiles and a deterministic FLOP clock.

A :class:`DeviceProfile` describes an accelerator by its sustained inference and training
throughput (FLOP/s), its memory and whether that memory is unified with the host (a Jetson
SoC) or discrete (a server GPU, where host data pays ``copy_bytes_s``).

:func:`count_flops` counts a model's FLOPs with ``torch.utils.flop_counter.FlopCounterMode``
(a multiply-add is 2 FLOPs; phase "train" adds the backward pass), cached per (model, input
shape, phase). :class:`FlopClock` turns FLOPs into seconds on a
:class:`~tenfold.core.clock.SimClock`, so simulated runs are deterministic and independent
of the machine they run on; wall-clock timings are reported beside, never mixed in.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tenfold.core.clock import SimClock
from tenfold.core.config import Config, check_positive
from tenfold.core.registry import Registry
from tenfold.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["PROFILES", "DeviceProfile", "FlopClock", "Phase", "count_flops"]

Phase = Literal["inference", "train"]


@dataclass(frozen=True)
class DeviceProfile(Config):
    """An accelerator's throughput and memory (sustained, not peak, numbers)."""

    name: str = "soc-constrained"
    """A label for reports."""
    infer_flops_s: float = 2.0e11
    """Sustained inference throughput, FLOP/s; > 0."""
    train_flops_s: float = 1.0e11
    """Sustained training throughput (forward + backward), FLOP/s; > 0."""
    mem_bytes: int = 8 * 2**30
    """Memory capacity in bytes; > 0."""
    unified: bool = True
    """True when host and device share memory (no copies), False for a discrete GPU."""
    copy_bytes_s: float = 12.0e9
    """Host-to-device copy bandwidth in bytes/s; used only when not unified; > 0."""

    def __post_init__(self) -> None:
        check_positive("infer_flops_s", self.infer_flops_s)
        check_positive("train_flops_s", self.train_flops_s)
        check_positive("mem_bytes", self.mem_bytes)
        check_positive("copy_bytes_s", self.copy_bytes_s)

    @classmethod
    def named(cls, name: str) -> DeviceProfile:
        """A registered profile (UnknownNameError lists the known ones)."""
        return PROFILES.get(name)

    def seconds(self, flops: float, phase: Phase = "inference") -> float:
        """Time to run ``flops`` FLOPs in ``phase``."""
        if flops < 0:
            raise ConfigError("flops", flops, "must be >= 0")
        rate = self.infer_flops_s if phase == "inference" else self.train_flops_s
        return flops / rate

    def copy_seconds(self, nbytes: float) -> float:
        """Time to move ``nbytes`` from host to device memory (0 when unified)."""
        if nbytes < 0:
            raise ConfigError("nbytes", nbytes, "must be >= 0")
        return 0.0 if self.unified else nbytes / self.copy_bytes_s


PROFILES: Registry[DeviceProfile] = Registry("device profile")
PROFILES.add("soc-constrained", DeviceProfile("soc-constrained", 2.0e11, 1.0e11, 8 * 2**30, True))
PROFILES.add("soc-abundant", DeviceProfile("soc-abundant", 1.6e12, 8.0e11, 16 * 2**30, True))
PROFILES.add("server-discrete", DeviceProfile("server-discrete", 4.0e12, 2.0e12, 2**30, False, 12.0e9))
PROFILES.add("cpu-2core", DeviceProfile("cpu-2core", 2.0e10, 8.0e9, 24 * 2**30, True))

_flop_cache: weakref.WeakKeyDictionary[object, dict[tuple[tuple[int, ...], str], int]] = weakref.WeakKeyDictionary()


def count_flops(model: torch.nn.Module, example: torch.Tensor, phase: Phase = "inference") -> int:
    """FLOPs of one forward pass (``inference``) or forward + backward (``train``).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on ``example``, which sets the
    batch size. In ``train`` the input gets no gradient (as for a network's first layer), so
    a conv layer costs forward + weight gradient = 2x its forward. Results are cached per
    (model, shape, phase); ``model`` itself is not run (a copy is), so its state is untouched.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if phase not in ("inference", "train"):
        raise ConfigError("phase", phase, "must be 'inference' or 'train'")
    key = (tuple(example.shape), phase)
    per_model = _flop_cache.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    # NOTE: count on a copy, so batch-norm statistics and gradients of ``model`` stay untouched.
    probe = copy.deepcopy(model)
    counter = FlopCounterMode(display=False)
    if phase == "inference":
        with counter, torch.no_grad():
            probe(example)
    else:
        with counter:
            out = probe(example.detach().clone())
            out.float().sum().backward()
    flops = int(counter.get_total_flops())
    per_model[key] = flops
    return flops


class FlopClock:
    """Advances a SimClock by FLOPs / throughput of a :class:`DeviceProfile`.

    ``charge`` and ``charge_model`` return the seconds they added; ``total_flops`` keeps the
    per-phase sums so a run can report compute beside time.
    """

    def __init__(self, profile: DeviceProfile, clock: SimClock | None = None) -> None:
        self.profile = profile
        self.clock = clock if clock is not None else SimClock()
        self.total_flops: dict[str, float] = {"inference": 0.0, "train": 0.0}
        self.copy_bytes = 0.0

    def now(self) -> float:
        return self.clock.now()

    def charge(self, flops: float, phase: Phase = "inference") -> float:
        """Advance by the time ``flops`` take in ``phase``."""
        seconds = self.profile.seconds(flops, phase)
        self.total_flops[phase] += flops
        self.clock.advance(seconds)
        return seconds

    def charge_copy(self, nbytes: float) -> float:
        """Advance by a host-to-device copy of ``nbytes`` (free on unified memory)."""
        seconds = self.profile.copy_seconds(nbytes)
        self.copy_bytes += 0.0 if self.profile.unified else nbytes
        self.clock.advance(seconds)
        return seconds

    def charge_model(self, model: torch.nn.Module, example: torch.Tensor, phase: Phase = "inference",
                     steps: int = 1) -> float:
        """Charge ``steps`` passes of ``model`` on inputs shaped like ``example``."""
        if steps < 0:
            raise ConfigError("steps", steps, "must be >= 0")
        return self.charge(float(count_flops(model, example, phase)) * steps, phase)
