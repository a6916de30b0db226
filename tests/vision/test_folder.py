"""Image folders as streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.errors import VideoError
from tenfold.vision import ImageFolderSource, read_image


def _write(path: Path, image: np.ndarray) -> None:
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_folder_frames_in_name_order_as_rgb(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        img = np.zeros((10, 12, 3), np.uint8)
        img[..., 0] = 50 * i  # red channel carries the index
        _write(tmp_path / f"f{i}.png", img)
    (tmp_path / "notes.txt").write_text("ignored")
    src = ImageFolderSource(tmp_path, fps=5)
    frames = list(src)
    assert src.size == (12, 10) and len(src) == 3
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]
    assert [f.t for f in frames] == [0.0, 0.2, 0.4]


def test_bad_image_names_file_and_index(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"b\.png: cannot decode image \(frame 1\)"):
        list(ImageFolderSource(tmp_path))


def test_size_change_and_empty_folder(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "b.png", np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(VideoError, match=r"b\.png: frame 1 is 4x5"):
        list(ImageFolderSource(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="holds no images"):
        ImageFolderSource(empty)
    with pytest.raises(VideoError, match="no such image"):
        read_image(tmp_path / "nope.png")
