"""Module-level sweep functions (workers import them by name)."""

from __future__ import annotations

import numpy as np


def noisy_sum(item: tuple[dict[str, float], int]) -> float:
    """A pure function of (config, seed): seeded noise around a config-dependent mean."""
    config, seed = item
    rng = np.random.default_rng(seed)
    return float(config["scale"] * rng.normal(size=1000).sum() + config["offset"])
