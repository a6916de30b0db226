"""Frames and the :class:`FrameSource` protocol every video source implements.

A source yields :class:`Frame` objects: an index, a timestamp in seconds, an HxWx3 uint8
RGB image and, when the source knows it, the ground truth (:class:`Truth`: labelled boxes
and a scene label). Video files, image folders and the procedural worlds all follow the
same protocol, so systems consume any of them the same way; :class:`ScriptedSource` is the
in-memory fake the tests use (httpx's ``MockTransport`` pattern).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tenfold.errors import ConfigError, VideoError

__all__ = ["Box", "Frame", "FrameSource", "Image", "ScriptedSource", "Truth", "check_image", "take"]

Image = npt.NDArray[np.uint8]
"""An HxWx3 uint8 RGB image."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels, ``x1 <= x2`` and ``y1 <= y2``, with a class label.

    ``score`` is 1.0 for ground truth; ``ident`` is the object's identity where known (a world
    agent id or a tracker id), else -1.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    label: str = "person"
    score: float = 1.0
    ident: int = -1

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    @classmethod
    def from_xyxy(cls, xyxy: Sequence[float] | npt.NDArray[np.floating], label: str = "person", score: float = 1.0,
                  ident: int = -1) -> Box:
        """A box from any four numbers x1, y1, x2, y2 (a list or a numpy row)."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        return cls(x1, y1, x2, y2, label, float(score), int(ident))

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.x1, self.y1, self.x2, self.y2

    def clipped(self, width: int, height: int) -> Box:
        """This box cut to the image ``[0, width] x [0, height]``."""
        return Box(
            min(max(self.x1, 0.0), width), min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width), min(max(self.y2, 0.0), height),
            self.label, self.score, self.ident,
        )

    def scaled(self, sx: float, sy: float) -> Box:
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy, self.label, self.score, self.ident)


@dataclass(frozen=True)
class Truth:
    """What a source knows about a frame: labelled boxes and an optional scene label."""

    boxes: tuple[Box, ...] = ()
    scene: str | None = None

    def count(self, label: str | None = None) -> int:
        """Boxes of ``label`` (all boxes when None)."""
        return sum(1 for b in self.boxes if label is None or b.label == label)


@dataclass(frozen=True)
class Frame:
    """One frame: ``image`` is HxWx3 uint8 RGB; ``t`` is seconds since the stream began."""

    index: int
    t: float
    image: Image = field(repr=False)
    truth: Truth | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@runtime_checkable
class FrameSource(Protocol):
    """A stream of frames with a nominal rate and size.

    ``size`` is (width, height); every yielded frame has it. Frame indices count from 0
    and ``t == index / fps``. Iterating again starts the stream again from frame 0.
    """

    @property
    def fps(self) -> float: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def __iter__(self) -> Iterator[Frame]: ...


def check_image(image: npt.NDArray[np.generic], what: str = "image") -> Image:
    """Return ``image`` if it is HxWx3 uint8, else raise VideoError naming its shape."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise VideoError(f"{what} must be an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
    return image.astype(np.uint8, copy=False)


def take(source: FrameSource, n: int) -> list[Frame]:
    """The first ``n`` frames of ``source`` (fewer if it ends sooner)."""
    if n < 0:
        raise ConfigError("n", n, "must be >= 0")
    out: list[Frame] = []
    if n == 0:
        return out
    for frame in source:
        out.append(frame)
        if len(out) >= n:
            break
    return out


class ScriptedSource:
    """An in-memory fake source: the given images (and truths) at ``fps``."""

    def __init__(
        self,
        images: Sequence[Image],
        fps: float = 30.0,
        truths: Sequence[Truth | None] | None = None,
    ) -> None:
        if fps <= 0:
            raise ConfigError("fps", fps, "must be > 0")
        if not images:
            raise ConfigError("images", "[]", "must hold at least one image")
        checked = [check_image(np.asarray(im), f"image {i}") for i, im in enumerate(images)]
        shapes = {im.shape for im in checked}
        if len(shapes) != 1:
            raise ConfigError("images", sorted(shapes), "must all have the same shape")
        if truths is not None and len(truths) != len(checked):
            raise ConfigError("truths", len(truths), f"must have one entry per image ({len(checked)})")
        self._images = checked
        self._truths: list[Truth | None] = list(truths) if truths is not None else [None] * len(checked)
        self._fps = float(fps)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        h, w = self._images[0].shape[:2]
        return int(w), int(h)

    def __len__(self) -> int:
        return len(self._images)

    def __iter__(self) -> Iterator[Frame]:
        for i, (image, truth) in enumerate(zip(self._images, self._truths, strict=True)):
            yield Frame(i, i / self._fps, image, truth)
