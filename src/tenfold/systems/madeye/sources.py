"""PTZ sources: where the camera's views come from (spec §3, §4).

A :class:`PTZSource` renders (or captures) the view of a grid orientation at a frame
index. Implementations:

- :class:`SimPanorama`: the vision layer's seeded panorama world through
  :class:`~tenfold.vision.ptz.PTZRenderer` (192x108 views with ground truth).
- :class:`Equirect360Video`: a 2:1 equirectangular 360-degree video decoded by PyAV, each
  view projected with a cached ``cv2.remap`` grid (the same pinhole model, f = 0.625 W z).
- :class:`VirtualPTZ`: digital pan/tilt/zoom crops of any wide video (or frame source).
- :class:`OnvifPTZ`: a real ONVIF PTZ camera (``onvif-zeep-async``): AbsoluteMove to the
  orientation mapped onto the camera's normalised ranges, frames from its RTSP stream.

A missing or undecodable file or an unreachable camera raises :class:`SourceError`
(a :class:`~tenfold.errors.VideoError`) naming the path or host.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from tenfold.core.config import check_range
from tenfold.errors import ConfigError, VideoError
from tenfold.vision.frames import Frame, FrameSource, Image
from tenfold.vision.panorama import PanoramaConfig, PanoramaWorld
from tenfold.vision.ptz import FOCAL_FRACTION, PTZRenderer

from .orientation import Orientation

__all__ = ["Equirect360Video", "OnvifPTZ", "PTZSource", "SimPanorama", "SourceError", "VirtualPTZ"]


class SourceError(VideoError):
    """A source that cannot deliver frames: the message names the path or host."""


@runtime_checkable
class PTZSource(Protocol):
    """Views of grid orientations at frame indices (``size`` is the view's (width, height))."""

    @property
    def fps(self) -> float: ...

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def n_frames(self) -> int | None:
        """Frames in the stream (None: live, unbounded)."""
        ...

    def view(self, orientation: Orientation, index: int) -> Frame: ...


class SimPanorama:
    """The simulated street panorama (vision layer) seen through the PTZ grid."""

    def __init__(
        self, seed: int = 0, config: PanoramaConfig | None = None, *, width: int = 192, height: int = 108
    ) -> None:
        check_range("seed", seed, lo=0)
        self.seed = int(seed)
        self.world = PanoramaWorld(config, self.seed)
        self.renderer = PTZRenderer(self.world, width, height, cache_size=512)

    @property
    def fps(self) -> float:
        return self.world.config.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.renderer.width, self.renderer.height

    @property
    def n_frames(self) -> int | None:
        return self.world.n_frames

    def view(self, orientation: Orientation, index: int) -> Frame:
        return self.renderer.render(orientation, index)

    def key(self) -> str:
        """A cache key of the world (config and seed) and the view size."""
        return f"{self.world.config.key()}-s{self.seed}-{self.size[0]}x{self.size[1]}"


def equirect_maps(
    pano_w: int, pano_h: int, o: Orientation, width: int, height: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``cv2.remap`` grids projecting an equirectangular image into view ``o``."""
    f = FOCAL_FRACTION * width * o.zoom
    th, ph = np.radians(o.pan), np.radians(o.tilt)
    fwd = np.array([np.sin(th) * np.cos(ph), np.sin(ph), np.cos(th) * np.cos(ph)])
    right = np.array([np.cos(th), 0.0, -np.sin(th)])
    up = np.array([-np.sin(th) * np.sin(ph), np.cos(ph), -np.cos(th) * np.sin(ph)])
    xs = np.arange(width, dtype=np.float64) + 0.5 - width / 2
    ys = np.arange(height, dtype=np.float64) + 0.5 - height / 2
    ray = fwd * f + right * xs[None, :, None] - up * ys[:, None, None]  # (H, W, 3)
    az = np.arctan2(ray[..., 0], ray[..., 2]) % (2 * np.pi)
    el = np.arctan2(ray[..., 1], np.hypot(ray[..., 0], ray[..., 2]))
    map_x = (az / (2 * np.pi) * pano_w - 0.5).astype(np.float32)
    map_y = ((np.pi / 2 - el) / np.pi * pano_h - 0.5).astype(np.float32)
    return map_x, map_y


class _SequentialFrames:
    """Random access by index over a forward-only frame stream (re-opens to go back)."""

    def __init__(self, source: FrameSource, what: str) -> None:
        self.source = source
        self.what = what
        self._it: Iterator[Frame] | None = None
        self._current: Frame | None = None

    def get(self, index: int) -> Frame:
        if index < 0:
            raise ConfigError("index", index, "must be >= 0")
        if self._current is None or index < self._current.index:
            self._it = iter(self.source)
            self._current = None
        assert self._it is not None
        while self._current is None or self._current.index < index:
            try:
                self._current = next(self._it)
            except StopIteration:
                raise SourceError(f"{self.what}: frame {index} is past the end of the stream") from None
        return self._current


class Equirect360Video:
    """A 2:1 equirectangular 360-degree video: views projected with cached remap grids.

    NOTE: ``py360convert.e2p`` costs about 15 ms per 320x180 view; a cached remap grid
    costs well under 1 ms, so py360convert is a reference only (spec §4).
    """

    def __init__(self, path: str | Path, *, width: int = 192, height: int = 108) -> None:
        from tenfold.vision.video import VideoSource

        check_range("width", width, 16, 4096)
        check_range("height", height, 16, 4096)
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such 360-degree video file")
        try:
            video = VideoSource(self.path)
        except VideoError as exc:
            raise SourceError(f"{self.path}: cannot decode as video ({exc})") from None
        w, h = video.size
        if w != 2 * h:
            raise ConfigError(
                "video", f"{self.path} ({w}x{h})", f"an equirectangular video must be 2:1; its shape is {w}x{h}"
            )
        self._video = video
        self._frames = _SequentialFrames(video, str(self.path))
        self.width, self.height = int(width), int(height)
        self._maps: dict[Orientation, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = {}

    @property
    def fps(self) -> float:
        return self._video.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def n_frames(self) -> int | None:
        return self._video.declared_frames or None

    def view(self, orientation: Orientation, index: int) -> Frame:
        import cv2

        frame = self._frames.get(index)
        pano = frame.image
        if orientation not in self._maps:
            self._maps[orientation] = equirect_maps(pano.shape[1], pano.shape[0], orientation, self.width, self.height)
        mx, my = self._maps[orientation]
        image = np.ascontiguousarray(
            cv2.remap(pano, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP), dtype=np.uint8
        )
        return Frame(index, frame.t, image, None)


class VirtualPTZ:
    """Digital pan/tilt/zoom: crops of a wide video (or any frame source), resized.

    The frame spans ``hfov`` degrees of pan and ``hfov * H / W`` of tilt around pan 0 and
    tilt 0 (design choice: a linear angle-to-pixel map, exact enough for crops). A view at
    (pan, tilt, zoom) is the 16:9 crop centred on that angle, 77 degrees wide at zoom 1
    divided by the zoom, resized to ``width`` x ``height``.

    An orientation whose pan lies outside the frame's +-``hfov``/2 raises ConfigError
    (:meth:`check_region` checks a whole region up front). Within that span a crop that
    sticks out of the frame is shifted inside it (clamped), and so is any tilt past the
    frame's +-``hfov * H / W``/2 (design choice: the grid's tilts +-30 are in every region,
    and a wide video rarely spans them), so such views show the frame's edge instead.
    """

    def __init__(
        self, source: FrameSource | str | Path, *, width: int = 192, height: int = 108, hfov: float = 180.0
    ) -> None:
        from tenfold.vision.video import VideoSource

        check_range("hfov", hfov, 10.0, 360.0)
        if isinstance(source, (str, Path)):
            if not Path(source).is_file():
                raise SourceError(f"{source}: no such video file")
            try:
                source = VideoSource(source)
            except VideoError as exc:
                raise SourceError(f"{source}: cannot decode as video ({exc})") from None
        self.source: FrameSource = source
        self._frames = _SequentialFrames(source, getattr(source, "path", type(source).__name__))
        self.width, self.height = int(width), int(height)
        self.hfov = float(hfov)

    @property
    def fps(self) -> float:
        return self.source.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def n_frames(self) -> int | None:
        n = getattr(self.source, "declared_frames", None) or getattr(self.source, "__len__", None)
        if callable(n):
            return int(n())
        return int(n) if n else None

    def check_region(self, orientations: Iterable[Orientation]) -> None:
        """ConfigError naming the first orientation whose pan lies outside the video's field of view."""
        for o in orientations:
            pan = ((o.pan + 180) % 360) - 180
            if abs(pan) > self.hfov / 2:
                raise ConfigError(
                    "orientation", str(o), f"pan {pan} is outside the video's field of view "
                    f"(hfov={self.hfov:g} spans pan -{self.hfov / 2:g}..{self.hfov / 2:g})"
                )

    def crop_box(self, orientation: Orientation, frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
        """The (x1, y1, x2, y2) pixel crop of ``orientation`` in a ``frame_w`` x ``frame_h`` frame."""
        self.check_region([orientation])
        px_per_deg = frame_w / self.hfov
        half_w_deg = np.degrees(np.arctan(0.5 / FOCAL_FRACTION)) / orientation.zoom
        cw = min(frame_w, max(8, round(2 * half_w_deg * px_per_deg)))
        ch = min(frame_h, max(8, round(cw * self.height / self.width)))
        pan = ((orientation.pan + 180) % 360) - 180
        cx = frame_w / 2 + pan * px_per_deg
        cy = frame_h / 2 - orientation.tilt * px_per_deg
        x1 = int(np.clip(round(cx - cw / 2), 0, frame_w - cw))
        y1 = int(np.clip(round(cy - ch / 2), 0, frame_h - ch))
        return x1, y1, x1 + cw, y1 + ch

    def view(self, orientation: Orientation, index: int) -> Frame:
        import cv2

        frame = self._frames.get(index)
        h, w = frame.image.shape[:2]
        x1, y1, x2, y2 = self.crop_box(orientation, w, h)
        crop = frame.image[y1:y2, x1:x2]
        image = np.ascontiguousarray(
            cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
        return Frame(index, frame.t, image, None)


class OnvifPTZ:
    """A real ONVIF PTZ camera: ``onvif://user:password@host[:port]``.

    AbsoluteMove maps pan 0..330 onto the camera's normalised pan range [-1, 1), tilt
    -30..30 onto [-1, 1] scaled by ``tilt_span`` and zoom 1..3 onto [0, 1]; frames come from
    the camera's RTSP stream through PyAV. Needs ``pip install onvif-zeep-async``.
    """

    def __init__(
        self,
        uri: str,
        *,
        rtsp: str | None = None,
        width: int = 192,
        height: int = 108,
        tilt_span: float = 90.0,
        settle_frames: int = 3,
    ) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "onvif" or not parsed.hostname:
            raise ConfigError("source", uri, "must be onvif://user:password@host[:port]")
        try:
            port = parsed.port
        except ValueError:  # not an integer, or outside 0..65535
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError("source", uri, "port must be an integer in 1..65535")
        self.host = parsed.hostname
        self.port = port or 80
        self.user = parsed.username or "admin"
        self.password = parsed.password or ""
        self.width, self.height = int(width), int(height)
        self.tilt_span = float(tilt_span)
        self.settle_frames = int(settle_frames)
        try:
            from onvif import ONVIFCamera  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise SourceError(
                f"{self.host}: ONVIF support needs the 'onvif-zeep-async' package; "
                "install it with: pip install onvif-zeep-async"
            ) from None
        self._camera_cls: Any = ONVIFCamera
        self._rtsp = rtsp or f"rtsp://{self.user}:{self.password}@{self.host}:554/"
        self._ptz: Any = None
        self._token: Any = None
        self._frames: Iterator[Frame] | None = None

    def _connect(self) -> None:
        import asyncio

        async def setup() -> tuple[Any, Any]:
            cam = self._camera_cls(self.host, self.port, self.user, self.password)
            await cam.update_xaddrs()
            media = await cam.create_media_service()
            profiles = await media.GetProfiles()
            ptz = await cam.create_ptz_service()
            return ptz, profiles[0].token

        try:
            self._ptz, self._token = asyncio.run(setup())
        except Exception as exc:
            raise SourceError(f"{self.host}:{self.port}: ONVIF camera unreachable or without PTZ ({exc})") from None

    def normalised(self, o: Orientation) -> tuple[float, float, float]:
        """(pan, tilt, zoom) in ONVIF's generic normalised spaces."""
        # Design choice: ONVIF generic spaces: pan [-1, 1) over 360 degrees, zoom [0, 1] over 1x..3x.
        pan = ((o.pan + 180) % 360) / 180.0 - 1.0
        tilt = float(np.clip(o.tilt / (self.tilt_span / 2), -1.0, 1.0))
        return pan, tilt, (o.zoom - 1) / 2.0

    @property
    def fps(self) -> float:
        return 30.0

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def n_frames(self) -> int | None:
        return None

    def view(self, orientation: Orientation, index: int) -> Frame:
        import asyncio

        import cv2

        from tenfold.vision.video import VideoSource

        if self._ptz is None:
            self._connect()
        pan, tilt, zoom = self.normalised(orientation)
        request = {"ProfileToken": self._token, "Position": {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}}
        try:
            asyncio.run(self._ptz.AbsoluteMove(request))
        except Exception as exc:
            raise SourceError(f"{self.host}: AbsoluteMove failed ({exc})") from None
        if self._frames is None:
            self._frames = iter(VideoSource(self._rtsp, check_length=False))
        frame: Frame | None = None
        for _ in range(self.settle_frames):
            try:
                frame = next(self._frames)
            except StopIteration:
                raise SourceError(f"{self.host}: the RTSP stream ended") from None
        assert frame is not None
        image: Image = np.ascontiguousarray(
            cv2.resize(frame.image, (self.width, self.height), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
        return Frame(index, frame.t, image, None)
