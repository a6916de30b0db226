"""Resumable training: the whole state of an offline training run, saved every N steps.

The spec trains 100,000 steps, hours on a CPU. A run given a :class:`StateFile` writes every
network, optimizer, the entropy temperature, both random generators (the batch sampler's and
torch's global one, which draws the policy's and CQL's actions), the step reached and the
loss log. A later run with the same file resumes from there, with the same result as an
uninterrupted run at the same thread count: training is seeded, and the state holds every
random source (CPU matmuls may round differently under another thread count).

Passing a larger ``steps`` extends a finished run: no schedule depends on ``steps``. Every
other field of :class:`TrainConfig` that changes what is learned must match the saved run
(``threads`` and ``log_every`` may differ). A mismatch raises ``ConfigError`` naming the field.
Writes go through :func:`tenfold.core.assets.atomic_path`, so a killed run leaves the last
complete state behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tenfold.core.assets import atomic_path
from tenfold.core.config import check_positive
from tenfold.errors import ConfigError
from tenfold.systems.tarzan.config import TrainConfig
from tenfold.systems.tarzan.policy import CheckpointError

__all__ = ["Part", "StateFile", "restore", "save"]

FORMAT = "tarzan.trainstate/1"
FREE_FIELDS = frozenset({"steps", "threads", "log_every"})
"""TrainConfig fields a resumed run may change."""

Part = torch.nn.Module | torch.optim.Optimizer | torch.Tensor
"""What a training state holds by name: networks, optimizers and free tensors (log α)."""


@dataclass(frozen=True)
class StateFile:
    """Where a training run keeps its resumable state, and how often it writes it."""

    path: Path
    every: int = 1000
    """Steps between writes; the last step is always written."""

    def __post_init__(self) -> None:
        check_positive("state_every", self.every)

    def due(self, done: int, total: int) -> bool:
        """Whether to write after ``done`` completed steps of ``total``."""
        return done % self.every == 0 or done == total


def restore(state: StateFile | None, cfg: TrainConfig, parts: Mapping[str, Part],
            gen: torch.Generator) -> tuple[int, list[dict[str, float]]]:
    """Load a saved run into ``parts`` and ``gen``; returns (steps done, loss log).

    With no state, or no file yet, nothing changes and the run starts at step 0.
    """
    if state is None or not state.path.exists():
        return 0, []
    blob = _load(state.path)
    # A field added after the state was written counts as its default (``engine``: torch).
    saved = {**TrainConfig().to_dict(), **blob["config"]}
    for name, value in cfg.to_dict().items():
        if name not in FREE_FIELDS and saved[name] != value:
            raise ConfigError(name, value, f"differs from the run saved in {state.path} ({saved[name]!r})")
    done = int(blob["step"])
    if done > cfg.steps:
        raise ConfigError("steps", cfg.steps, f"is below the {done} steps already done in {state.path}")
    if set(blob["parts"]) != set(parts):
        raise CheckpointError(f"training state {state.path} holds {sorted(blob['parts'])}, "
                              f"not the parts of {cfg.algo!r}: {sorted(parts)}")
    for name, part in parts.items():
        if isinstance(part, torch.Tensor):
            with torch.no_grad():
                part.copy_(blob["parts"][name])
        else:
            part.load_state_dict(blob["parts"][name])
    gen.set_state(blob["generator"])
    torch.set_rng_state(blob["torch_rng"])
    return done, list(blob["log"])


def save(state: StateFile | None, cfg: TrainConfig, parts: Mapping[str, Part], gen: torch.Generator, done: int,
         log: list[dict[str, float]]) -> None:
    """Write the state after ``done`` steps, atomically, when a write is due (never without a state)."""
    if state is None or not state.due(done, cfg.steps):
        return
    blob = {
        "format": FORMAT,
        "config": cfg.to_dict(),
        "step": done,
        "parts": {name: p.detach().clone() if isinstance(p, torch.Tensor) else p.state_dict()
                  for name, p in parts.items()},
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "log": log,
    }
    with atomic_path(state.path) as tmp:
        torch.save(blob, tmp)


def _load(path: Path) -> dict[str, Any]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: name it, never retrain silently over it
        raise CheckpointError(f"training state {path} cannot be read: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{path} is not a training state of format {FORMAT} (found {found!r})")
    return blob
