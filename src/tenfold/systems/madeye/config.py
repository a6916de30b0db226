"""MadEye's configuration: the camera's search and distillation knobs, and the simulation.

:class:`MadEyeConfig` holds what the paper's camera and server decide with (spec §2): the
shape size K, frames sent N, the swap ratios, the trend window, the zoom rule, the camera's
and backends' score cut-offs and the continual-distillation schedule. :class:`SimConfig`
holds the simulated stream (spec §4-5): view size, steps, bootstrap share and how the
approximation models are distilled. Both are frozen, validated and serialisable.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenfold.core.config import Config, check_choice, check_range
from tenfold.errors import ConfigError

from .orientation import OrientationGrid

__all__ = ["NEIGHBOUR_RULES", "AccuracyBenchConfig", "MadEyeConfig", "SimConfig", "check_k_fits", "region_cells"]

NEIGHBOUR_RULES = ("viability", "random")


@dataclass(frozen=True)
class MadEyeConfig(Config):
    """The camera's shape search and the server's continual distillation (spec §2)."""

    k_explore: int = 10
    """K: most orientations in the shape per step (rotation speed x step interval); >= 1."""
    n_send: int = 2
    """N: frames sent to the server per step; 1 <= N <= K."""
    zoom_rule: bool = True
    """Replace a member by a zoomed view when all its boxes fit the central 1/z window."""
    allow_expand: bool = False
    """The release's (dead) growth branch: grow S without dropping while |S| < K."""
    zoom_neighbours: bool = False
    """Extension (off by default, not in the spec): the other zooms of a member's cell are candidates too."""
    neighbour_rule: str = "viability"
    """How candidate neighbours are ranked: 'viability' (box centroids) or 'random' (ablation)."""
    continual_distill: bool = True
    """Fine-tune the approximation heads on sent frames every ``distill_every`` steps."""
    distill_every: int = 90
    """Steps between continual-distillation updates; >= 1."""
    distill_epochs: int = 6
    """Epochs of each head-only update; >= 1."""
    distill_lr: float = 1e-4
    """AdamW learning rate of each head-only update; > 0."""
    distill_batch: int = 4
    """Batch size of each head-only update; >= 1."""
    swap_ratios: tuple[float, float, float] = (1.5, 1.75, 2.0)
    """f(R)/f(L) needed to swap on R's 1st, 2nd, and 3rd-or-later expansion in one pass."""
    trend_window: int = 30
    """The trend is used only if o's 4th-last visit is fewer than this many steps old."""
    zoom_hold: int = 3
    """Steps a zoomed replacement is held before it reverts to its original zoom."""
    warm_steps: int = 3
    """The first this many updates allow one change each."""
    camera_person: float = 0.2
    """Approximation-model score cut-off for people; in [0, 1]."""
    camera_car: float = 0.3
    """Approximation-model score cut-off for cars; in [0, 1]."""
    backend_person: float = 0.5
    """Backend score cut-off for people (the accuracy reference); in [0, 1]."""
    backend_car: float = 0.7
    """Backend score cut-off for cars (the accuracy reference); in [0, 1]."""
    seed: int = 0
    """Seed of the camera's own randomness (the random-neighbour ablation only); >= 0."""

    def __post_init__(self) -> None:
        check_range("k_explore", self.k_explore, lo=1)
        check_range("n_send", self.n_send, lo=1)
        if self.n_send > self.k_explore:
            raise ConfigError("n_send", self.n_send, f"n_send={self.n_send} exceeds k_explore={self.k_explore}")
        check_choice("neighbour_rule", self.neighbour_rule, NEIGHBOUR_RULES)
        check_range("distill_every", self.distill_every, lo=1)
        check_range("distill_epochs", self.distill_epochs, lo=1)
        check_range("distill_lr", self.distill_lr, lo=0.0, lo_open=True)
        check_range("distill_batch", self.distill_batch, lo=1)
        if len(self.swap_ratios) != 3 or any(r < 1.0 for r in self.swap_ratios):
            raise ConfigError("swap_ratios", self.swap_ratios, "must be three ratios >= 1")
        check_range("trend_window", self.trend_window, lo=1)
        check_range("zoom_hold", self.zoom_hold, lo=1)
        check_range("warm_steps", self.warm_steps, lo=0)
        for name in ("camera_person", "camera_car", "backend_person", "backend_car"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("seed", self.seed, lo=0)

    def camera_threshold(self, label: str) -> float:
        return self.camera_person if label == "person" else self.camera_car

    def backend_threshold(self, label: str) -> float:
        return self.backend_person if label == "person" else self.backend_car


def check_k_fits(k_explore: int, cells: int) -> None:
    """ConfigError unless a shape of ``k_explore`` members fits a region of ``cells`` pan/tilt cells."""
    if k_explore > cells:
        raise ConfigError("k_explore", k_explore, f"must be <= the region's {cells} pan/tilt cells")


def region_cells(half_width: int) -> int:
    """Pan/tilt cells of a region of +-``half_width`` degrees of pan, widened as the spec says.

    The grid is symmetric in pan, so every anchor's region holds the same number of cells.
    """
    grid = OrientationGrid.default()
    return len(grid.region(grid[0], half_width).cells)


@dataclass(frozen=True)
class SimConfig(Config):
    """The simulated stream, the bootstrap and the approximation models' distillation."""

    eval_steps: int = 300
    """Evaluated steps (the last 70% of the stream); >= 1."""
    step_frames: int = 6
    """A step happens every this many frames (30 fps: 5 steps per second); >= 1."""
    bootstrap_frac: float = 0.3
    """Share of the stream used for bootstrap (anchor, region, distillation); in (0, 0.9]."""
    view_width: int = 192
    """Rendered view width in pixels."""
    view_height: int = 108
    """Rendered view height in pixels."""
    region_half_width: int = 60
    """Region: orientations within +-this many degrees of pan from the anchor."""
    anchor_stride: int = 3
    """Every this many bootstrap steps are scored on all 180 orientations to pick the anchor."""
    approx_images: int = 1500
    """Bootstrap views (region orientations x bootstrap steps) the approximation models learn from."""
    approx_epochs: int = 12
    """Epochs of the initial distillation; >= 1."""
    approx_width: int = 96
    """Approximation-model input width (spec: 96x54)."""
    approx_height: int = 54
    """Approximation-model input height."""
    approx_channels: tuple[int, int, int, int] = (8, 12, 16, 24)
    """Approximation-model encoder widths (narrower than every backend)."""
    score_floor: float = 0.25
    """Backend detections below this score are not cached (the AP tail starts here); in [0, 1]."""

    def __post_init__(self) -> None:
        check_range("eval_steps", self.eval_steps, lo=1)
        check_range("step_frames", self.step_frames, lo=1)
        # > 0: the bootstrap must not overlap the evaluated steps (bootstrap_steps is >= 1).
        check_range("bootstrap_frac", self.bootstrap_frac, 0.0, 0.9, lo_open=True)
        check_range("view_width", self.view_width, 32, 1920)
        check_range("view_height", self.view_height, 18, 1080)
        check_range("region_half_width", self.region_half_width, 0, 180)
        check_range("anchor_stride", self.anchor_stride, lo=1)
        check_range("approx_images", self.approx_images, lo=8)
        check_range("approx_epochs", self.approx_epochs, lo=1)
        check_range("approx_width", self.approx_width, 32, 1024)
        check_range("approx_height", self.approx_height, 32, 1024)
        if any(c < 1 for c in self.approx_channels):
            raise ConfigError("approx_channels", self.approx_channels, "must all be >= 1")
        check_range("score_floor", self.score_floor, 0.0, 1.0)

    @property
    def bootstrap_steps(self) -> int:
        """Steps before evaluation: bootstrap / (bootstrap + eval) = ``bootstrap_frac``, at least 1.

        The anchor and the approximation models come from these steps only, so at least one
        of them must precede the first evaluated step.
        """
        return max(1, round(self.eval_steps * self.bootstrap_frac / (1.0 - self.bootstrap_frac)))

    @property
    def region_cells(self) -> int:
        """Pan/tilt cells of the region (the same around every anchor): K may not exceed it."""
        return region_cells(self.region_half_width)

    @property
    def total_steps(self) -> int:
        return self.bootstrap_steps + self.eval_steps

    def frame_of(self, step: int) -> int:
        """The stream frame index of step ``step`` (step 0 is frame 0)."""
        return step * self.step_frames


@dataclass(frozen=True)
class AccuracyBenchConfig(Config):
    """The ``madeye/accuracy`` benchmark grid (spec §7)."""

    seeds: tuple[int, ...] = (0, 1)
    """World seeds (one stream each); distinct, each >= 0."""
    workloads: tuple[str, ...] = ("W1", "W2")
    """Named workloads (W1, W2, W3); distinct."""
    eval_steps: int = 200
    """Evaluated steps per stream (after a 30% bootstrap)."""
    n_values: tuple[int, ...] = (1, 2)
    """Frames sent per step, N, swept for every N-dependent arm."""
    k_explore: int = 10
    """K for the main MadEye arms; from 2 (the ablations send N=2) to the region's cells."""
    k_sweep: tuple[int, ...] = ()
    """Extra K values for MadEye at every N of ``n_values`` (full runs: 5, 15); each from
    max(n_values) to the region's cells."""
    headline_n: int = 2
    """N of the headline comparison."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds", self.seeds, "must hold at least one seed")
        if any(s < 0 for s in self.seeds):
            raise ConfigError("seeds", self.seeds, "must all be >= 0")
        if not self.workloads:
            raise ConfigError("workloads", self.workloads, "must name at least one workload")
        for name in ("seeds", "workloads", "n_values", "k_sweep"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(name, values, "must not repeat a value")
        check_range("eval_steps", self.eval_steps, lo=1)
        cells = SimConfig(eval_steps=self.eval_steps).region_cells
        if not 2 <= self.k_explore <= cells:
            raise ConfigError(
                "k_explore", self.k_explore, f"must be in [2, {cells}]: the ablations send N=2, and K may not "
                f"exceed the region's {cells} pan/tilt cells"
            )
        if not self.n_values or any(n < 1 or n > self.k_explore for n in self.n_values):
            raise ConfigError("n_values", self.n_values, f"must be non-empty, each in [1, k_explore={self.k_explore}]")
        if self.headline_n not in self.n_values:
            raise ConfigError("headline_n", self.headline_n, f"must be one of n_values {self.n_values}")
        if any(not max(self.n_values) <= k <= cells for k in self.k_sweep):
            raise ConfigError(
                "k_sweep", self.k_sweep, f"each must be in [{max(self.n_values)}, {cells}]: at least every N of "
                f"n_values, at most the region's {cells} pan/tilt cells"
            )

    @classmethod
    def quick(cls) -> AccuracyBenchConfig:
        return cls()

    @classmethod
    def full(cls) -> AccuracyBenchConfig:
        return cls(
            seeds=tuple(range(10)), workloads=("W1", "W2", "W3"), eval_steps=600, n_values=(1, 2, 3), k_sweep=(5, 15)
        )
