"""A folder of still images as a video stream.

Images are read in name order (PNG, JPEG, BMP, TIFF, WebP) with OpenCV and converted to RGB.
All images must share the first one's size, since a :class:`FrameSource` has one ``size``;
an unreadable or differently sized image raises VideoError naming the file and its index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tenfold.errors import ConfigError, VideoError

from .frames import Frame, Image

__all__ = ["IMAGE_SUFFIXES", "ImageFolderSource", "read_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path, index: int = 0) -> Image:
    """Read one image file as HxWx3 uint8 RGB; VideoError names the file when it fails."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise VideoError(f"{path}: no such image file (frame {index})")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"{path}: cannot decode image (frame {index})")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)


class ImageFolderSource:
    """The images in ``folder`` (sorted by name) as frames at ``fps``."""

    def __init__(self, folder: str | Path, fps: float = 30.0) -> None:
        if fps <= 0:
            raise ConfigError("fps", fps, "must be > 0")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise VideoError(f"{self.folder}: not a directory of images (frame 0)")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise VideoError(f"{self.folder}: holds no images with suffix {', '.join(IMAGE_SUFFIXES)} (frame 0)")
        first = read_image(self.files[0], 0)
        self._size = (int(first.shape[1]), int(first.shape[0]))
        self._fps = float(fps)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            image = read_image(path, i)
            if (image.shape[1], image.shape[0]) != self._size:
                raise VideoError(
                    f"{path}: frame {i} is {image.shape[1]}x{image.shape[0]}, "
                    f"the folder's first image is {self._size[0]}x{self._size[1]}"
                )
            yield Frame(i, i / self._fps, image, None)
