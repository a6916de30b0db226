"""The registry of procedural worlds, so CLIs and configs pick a world by name.

- ``panorama``: the 360-degree street intersection seen through a PTZ camera
  (:mod:`.panorama`, :mod:`.ptz`); a source needs an :class:`~.ptz.Orientation`.
- ``drive``: the dashcam / drone stream through recurring scene families (:mod:`.drive`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenfold.core.registry import Registry

from .drive import DriveSource, DriveWorld
from .frames import FrameSource
from .panorama import PanoramaWorld
from .ptz import Orientation, PanoramaSource

__all__ = ["WORLDS", "WorldSpec", "world_source"]


@dataclass(frozen=True)
class WorldSpec:
    """A named world: a description and a factory of a FrameSource from (seed, orientation)."""

    description: str
    source: Callable[[int, Orientation, int, int | None], FrameSource]


def _panorama(seed: int, orientation: Orientation, start: int, frames: int | None) -> FrameSource:
    return PanoramaSource(PanoramaWorld(seed=seed), orientation, start=start, frames=frames)


def _drive(seed: int, _orientation: Orientation, start: int, frames: int | None) -> FrameSource:
    return DriveSource(DriveWorld(seed=seed), start=start, frames=frames)


WORLDS: Registry[WorldSpec] = Registry("world")
WORLDS.add("panorama", WorldSpec("360-degree street scene through a pan-tilt-zoom camera", _panorama))
WORLDS.add("drive", WorldSpec("dashcam/drone stream through recurring scene families", _drive))


def world_source(name: str, seed: int = 0, orientation: Orientation | None = None, *, start: int = 0,
                 frames: int | None = None) -> FrameSource:
    """A FrameSource over world ``name`` (UnknownNameError lists the known worlds)."""
    spec = WORLDS.get(name)
    return spec.source(seed, orientation or Orientation(), start, frames)
