"""One conformance suite for every FrameSource: files, folders, worlds and the scripted fake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tenfold.vision import (
    DriveConfig,
    DriveSource,
    DriveWorld,
    FrameSource,
    ImageFolderSource,
    Orientation,
    PanoramaSource,
    PanoramaWorld,
    ScriptedSource,
    Truth,
    VideoSource,
    clip_path,
    packaged_clip,
    take,
    world_source,
)

N = 4


def _scripted(_tmp: Path) -> FrameSource:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20, 30, 3), dtype=np.uint8) for _ in range(N)]
    return ScriptedSource(images, fps=12.0, truths=[Truth()] * N)


def _clip(_tmp: Path) -> FrameSource:
    return packaged_clip("carphone_pristine", max_frames=N)


def _video_path(_tmp: Path) -> FrameSource:
    return VideoSource(clip_path("bikes"), max_frames=N)


def _folder(tmp: Path) -> FrameSource:
    import cv2

    rng = np.random.default_rng(1)
    for i in range(N):
        cv2.imwrite(str(tmp / f"{i:03d}.png"), rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
    return ImageFolderSource(tmp, fps=5.0)


def _panorama(_tmp: Path) -> FrameSource:
    return PanoramaSource(PanoramaWorld(seed=2), Orientation(0, 0, 2), frames=N, start=60)


def _drive(_tmp: Path) -> FrameSource:
    return DriveSource(DriveWorld(DriveConfig(segment_frames=2), seed=2), frames=N)


def _registry_world(_tmp: Path) -> FrameSource:
    return world_source("drive", seed=4, frames=N)


SOURCES: dict[str, Callable[[Path], FrameSource]] = {
    "scripted": _scripted, "packaged-clip": _clip, "video-file": _video_path, "image-folder": _folder,
    "panorama": _panorama, "drive": _drive, "world-registry": _registry_world,
}
WITH_TRUTH = {"scripted", "panorama", "drive", "world-registry"}


@pytest.fixture(params=sorted(SOURCES))
def named_source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, FrameSource]:
    name = str(request.param)
    return name, SOURCES[name](tmp_path)


def test_is_a_frame_source(named_source: tuple[str, FrameSource]) -> None:
    _, src = named_source
    assert isinstance(src, FrameSource)
    assert src.fps > 0
    w, h = src.size
    assert w > 0 and h > 0


def test_frames_are_rgb_uint8_indexed_and_timed(named_source: tuple[str, FrameSource]) -> None:
    name, src = named_source
    frames = take(src, N)
    assert len(frames) == N
    for i, f in enumerate(frames):
        assert f.index == i
        assert f.t == pytest.approx(i / src.fps)
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert f.size == src.size
        assert f.image.flags.c_contiguous
        if name in WITH_TRUTH:
            assert isinstance(f.truth, Truth)
            w, h = src.size
            assert all(0 <= b.x1 <= b.x2 <= w and 0 <= b.y1 <= b.y2 <= h for b in f.truth.boxes)
        else:
            assert f.truth is None


def test_iterating_again_restarts_identically(named_source: tuple[str, FrameSource]) -> None:
    _, src = named_source
    first = [f.image.tobytes() for f in take(src, N)]
    second = [f.image.tobytes() for f in take(src, N)]
    assert first == second


def test_frames_are_not_all_identical(named_source: tuple[str, FrameSource]) -> None:
    _, src = named_source
    frames = take(src, N)
    assert any(not np.array_equal(frames[0].image, f.image) for f in frames[1:])
    assert frames[0].image.std() > 1.0
