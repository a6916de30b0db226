"""Frame, Box, Truth and the scripted source."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.errors import ConfigError, VideoError
from tenfold.vision import Box, Frame, ScriptedSource, Truth, check_image, take


def _images(n: int, h: int = 6, w: int = 8) -> list[np.ndarray]:
    return [np.full((h, w, 3), i, dtype=np.uint8) for i in range(n)]


def test_box_geometry() -> None:
    b = Box(1.0, 2.0, 5.0, 10.0, "car")
    assert (b.width, b.height, b.area, b.center) == (4.0, 8.0, 32.0, (3.0, 6.0))
    assert b.clipped(3, 4) == Box(1.0, 2.0, 3.0, 4.0, "car")
    assert Box.from_xyxy(np.array([1, 2, 3, 4]), "person", 0.5, 7) == Box(1.0, 2.0, 3.0, 4.0, "person", 0.5, 7)
    assert b.scaled(2, 0.5).as_tuple() == (2.0, 1.0, 10.0, 5.0)


def test_truth_counts_by_label() -> None:
    t = Truth((Box(0, 0, 1, 1, "car"), Box(0, 0, 1, 1, "person"), Box(0, 0, 2, 2, "car")), scene="day")
    assert (t.count(), t.count("car"), t.count("bus")) == (3, 2, 0)


def test_scripted_source_yields_indexed_timed_frames() -> None:
    truths = [Truth((Box(0, 0, 1, 1),)), None, None]
    src = ScriptedSource(_images(3), fps=10.0, truths=truths)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.t for f in frames] == [0.0, 0.1, 0.2]
    assert frames[0].truth == truths[0] and frames[1].truth is None
    assert src.size == (8, 6) and frames[2].size == (8, 6) and len(src) == 3
    assert int(frames[2].image[0, 0, 0]) == 2


def test_take_stops_early() -> None:
    src = ScriptedSource(_images(5))
    assert [f.index for f in take(src, 2)] == [0, 1]
    assert take(src, 0) == []
    assert len(take(src, 99)) == 5
    with pytest.raises(ConfigError, match="'n'"):
        take(src, -1)


def test_bad_inputs_name_the_value() -> None:
    with pytest.raises(VideoError, match="HxWx3 uint8"):
        check_image(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(VideoError, match="image 1"):
        ScriptedSource([np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.float32)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="same shape"):
        ScriptedSource([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8)])
    with pytest.raises(ConfigError, match="'fps'"):
        ScriptedSource(_images(1), fps=0)
    with pytest.raises(ConfigError, match="one entry per image"):
        ScriptedSource(_images(2), truths=[None])


def test_frame_is_a_small_value_object() -> None:
    f = Frame(3, 0.1, np.zeros((2, 4, 3), np.uint8))
    assert f.size == (4, 2) and "image" not in repr(f)
