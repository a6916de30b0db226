"""Pan-tilt-zoom views of the panorama world, with ground truth from projection.

The orientation grid is MadEye's: pan {0, 30, ..., 330} (wrapping), tilt {-30, -15, 0, 15,
30} and zoom {1, 2, 3}, 180 orientations. A view is a pinhole camera with focal length
``0.625 * width * zoom`` pixels (77 x 48 degrees at zoom 1 for 16:9).

Rendering a view:

1. The background is resampled from the equirectangular panorama with ``cv2.remap``. The
   remap grid of each (pan, tilt, zoom, size) is computed once and cached; the panorama level
   is the pyramid level whose pixels per radian best match the view's, so zoomed-out views
   do not alias.
2. Agents are projected (all 8 corners of their 3-D box) and drawn far to near in view
   space at their projected extents: a person as head, torso and two legs; a car as body,
   cabin, windows and wheels. Anti-aliased sub-pixel drawing keeps tiny far agents faint
   rather than absent or blocky.
3. Ground truth is the projected box of every agent at least partly in view (clipped to
   the image, kept when at least ``min_box_px`` tall and 30% inside), labelled "person" or
   "car", with the agent id as ``ident``. Occlusion between agents is not removed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

from tenfold.core.config import check_choice, check_range
from tenfold.errors import ConfigError

from .frames import Box, Frame, Image, Truth
from .panorama import KINDS, AgentState, PanoramaWorld

__all__ = ["PANS", "TILTS", "ZOOMS", "Orientation", "PTZRenderer", "PanoramaSource", "camera_basis", "grid"]

PANS = tuple(range(0, 360, 30))
TILTS = (-30, -15, 0, 15, 30)
ZOOMS = (1, 2, 3)
FOCAL_FRACTION = 0.625


@dataclass(frozen=True, order=True)
class Orientation:
    """A grid orientation; anything off the grid raises ConfigError naming the value."""

    pan: int = 0
    tilt: int = 0
    zoom: int = 1

    def __post_init__(self) -> None:
        check_choice("pan", self.pan, PANS)
        check_choice("tilt", self.tilt, TILTS)
        check_choice("zoom", self.zoom, ZOOMS)

    def rotated(self, dpan: int = 0, dtilt: int = 0) -> Self:
        """Move by grid steps of degrees; pan wraps at 360, tilt must stay within +-30.

        Subclasses get their own type back (and their own validation)."""
        return type(self)((self.pan + dpan) % 360, self.tilt + dtilt, self.zoom)

    def neighbours(self) -> list[Self]:
        """The up-to-8 pan/tilt neighbours at the same zoom (pan wraps, tilt does not)."""
        out = []
        for dt in (-15, 0, 15):
            for dp in (-30, 0, 30):
                if (dp or dt) and self.tilt + dt in TILTS:
                    out.append(self.rotated(dp, dt))
        return out


def grid() -> list[Orientation]:
    """All 180 grid orientations in (pan, tilt, zoom) order."""
    return [Orientation(p, t, z) for p in PANS for t in TILTS for z in ZOOMS]


def camera_basis(pan_deg: float, tilt_deg: float) -> tuple[npt.NDArray[np.float64], ...]:
    """The view's forward, right and up unit vectors (y up; pan 0, tilt 0 looks along +z)."""
    th, ph = np.radians(pan_deg), np.radians(tilt_deg)
    fwd = np.array([np.sin(th) * np.cos(ph), np.sin(ph), np.cos(th) * np.cos(ph)])
    right = np.array([np.cos(th), 0.0, -np.sin(th)])
    up = np.array([-np.sin(th) * np.sin(ph), np.cos(ph), -np.cos(th) * np.sin(ph)])
    return fwd, right, up


class PTZRenderer:
    """Renders views of one :class:`PanoramaWorld` at ``width`` x ``height`` pixels."""

    def __init__(self, world: PanoramaWorld, width: int = 192, height: int = 108, *,
                 min_box_px: float = 2.0, cache_size: int = 256) -> None:
        check_range("width", width, 16, 4096)
        check_range("height", height, 16, 4096)
        self.world = world
        self.width = int(width)
        self.height = int(height)
        self.min_box_px = min_box_px
        self._grids: OrderedDict[tuple[float, float, int], tuple[npt.NDArray[np.float32], ...]] = OrderedDict()
        self._cache_size = cache_size

    def focal(self, zoom: float) -> float:
        return FOCAL_FRACTION * self.width * zoom

    def _grid(self, pan: float, tilt: float, zoom: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int]:
        key = (pan, tilt, zoom)
        hit = self._grids.get(key)
        if hit is not None:
            self._grids.move_to_end(key)
            return hit[0], hit[1], int(hit[2][0])
        f = self.focal(zoom)
        pano_w = self.world.config.pano_width
        level = 0
        while level < 4 and pano_w / 2 ** (level + 1) / (2 * np.pi) >= f:
            level += 1
        w_l = pano_w / 2**level
        fwd, right, up = camera_basis(pan, tilt)
        xs = np.arange(self.width, dtype=np.float64) + 0.5 - self.width / 2
        ys = np.arange(self.height, dtype=np.float64) + 0.5 - self.height / 2
        ray = fwd * f + right * xs[None, :, None] - up * ys[:, None, None]  # (H, W, 3)
        az = np.arctan2(ray[..., 0], ray[..., 2]) % (2 * np.pi)
        el = np.arctan2(ray[..., 1], np.hypot(ray[..., 0], ray[..., 2]))
        map_x = (az / (2 * np.pi) * w_l - 0.5).astype(np.float32)
        map_y = ((np.pi / 2 - el) / np.pi * (w_l / 2) - 0.5).astype(np.float32)
        self._grids[key] = (map_x, map_y, np.array([level], dtype=np.float32))
        if len(self._grids) > self._cache_size:
            self._grids.popitem(last=False)
        return map_x, map_y, level

    @property
    def cached_grids(self) -> int:
        return len(self._grids)

    def background(self, pan: float, tilt: float, zoom: int) -> Image:
        """The static scene in this view (no agents)."""
        import cv2

        map_x, map_y, level = self._grid(float(pan) % 360.0, float(tilt), zoom)
        pano = self.world.pyramid(level)
        out = cv2.remap(pano, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        return np.ascontiguousarray(out, dtype=np.uint8)

    def project(self, agents: AgentState, pan: float, tilt: float, zoom: int) -> tuple[npt.NDArray[np.float64], ...]:
        """Projected boxes (N, 4) x1, y1, x2, y2 (NaN when behind the camera) and depths (N,)."""
        n = len(agents)
        if n == 0:
            return np.zeros((0, 4)), np.zeros(0)
        fwd, right, up = camera_basis(pan, tilt)
        cam_h = self.world.config.camera_height
        w, length, h = agents.size[:, 0], agents.size[:, 1], agents.size[:, 2]
        hx, hz = np.sin(agents.heading), np.cos(agents.heading)  # along-track unit
        corners = []
        for sl in (-0.5, 0.5):
            for sw in (-0.5, 0.5):
                cx = agents.x + hx * length * sl + hz * w * sw
                cz = agents.z + hz * length * sl - hx * w * sw
                for y in (np.zeros(n), h):
                    corners.append(np.stack([cx, y - cam_h, cz], axis=1))
        pts = np.stack(corners, axis=1)  # (N, 8, 3)
        zc = pts @ fwd  # (N, 8)
        xc, yc = pts @ right, pts @ up
        f = self.focal(zoom)
        ok = (zc > 0.5).all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            px = self.width / 2 + f * xc / zc
            py = self.height / 2 - f * yc / zc
        boxes = np.stack([px.min(1), py.min(1), px.max(1), py.max(1)], axis=1)
        boxes[~ok] = np.nan
        depth = np.hypot(agents.x, agents.z)
        return boxes, depth

    def render(self, orientation: Orientation, index: int) -> Frame:
        """Frame ``index`` of the world seen from a grid orientation."""
        return self.render_at(orientation.pan, orientation.tilt, orientation.zoom, index)

    def render_at(self, pan: float, tilt: float, zoom: int, index: int) -> Frame:
        """Like :meth:`render` for any angles (pan wraps at 360; |tilt| <= 60, zoom 1..8)."""
        check_range("tilt", tilt, -60.0, 60.0)
        check_range("zoom", zoom, 1, 8)
        if index < 0:
            raise ConfigError("index", index, "must be >= 0")
        pan = float(pan) % 360.0
        t = index / self.world.config.fps
        image = self.background(pan, tilt, zoom).copy()
        agents = self.world.agents_at(t)
        boxes, depth = self.project(agents, pan, tilt, zoom)
        truth: list[Box] = []
        for i in np.argsort(-depth, kind="stable"):
            b = boxes[i]
            if np.isnan(b).any() or b[2] < 0 or b[0] > self.width or b[3] < 0 or b[1] > self.height:
                continue
            if b[2] - b[0] > 4 * self.width:
                continue
            kind = int(agents.kind[i])
            _draw_agent(image, b, kind, agents.colors[i], float(agents.phase[i]))
            full = Box.from_xyxy(b, KINDS[kind], 1.0, int(agents.ident[i]))
            clip = full.clipped(self.width, self.height)
            if clip.height >= self.min_box_px and clip.area >= 0.3 * full.area:
                truth.append(clip)
        return Frame(index, t, image, Truth(tuple(sorted(truth, key=lambda b: b.ident)), scene="panorama"))


def _draw_agent(image: Image, b: npt.NDArray[np.float64], kind: int,
                colors: npt.NDArray[np.uint8], phase: float) -> None:
    """Paint one agent into its projected box (anti-aliased, 4 fractional bits)."""
    import cv2 as _cv

    s = 16.0

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(x * s), round(y * s)

    def disc(x: float, y: float, r: float, color: tuple[int, ...]) -> None:
        # NOTE: cv2.circle ignores ``shift`` in the radius with LINE_AA; a 16-gon does not.
        ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        poly = np.stack([np.round((x + r * np.cos(ang)) * s), np.round((y + r * np.sin(ang)) * s)], 1)
        _cv.fillPoly(image, [poly.astype(np.int32)], color, aa, 4)

    x1, y1, x2, y2 = map(float, b)
    w, h = x2 - x1, y2 - y1
    main = tuple(int(c) for c in colors[0])
    other = tuple(int(c) for c in colors[1])
    aa = _cv.LINE_AA
    if kind == 0:  # person: legs, torso, arms, head
        swing = 0.18 * w * np.sin(phase)
        legw = max(1, round(0.3 * w))  # thickness is in whole pixels (shift does not apply)
        hip_y, foot_y = y1 + 0.55 * h, y2
        for sgn in (-1.0, 1.0):
            _cv.line(image, pt(x1 + w / 2, hip_y), pt(x1 + w / 2 + sgn * swing + sgn * 0.12 * w, foot_y),
                     other, legw, aa, 4)
        _cv.rectangle(image, pt(x1 + 0.12 * w, y1 + 0.2 * h), pt(x2 - 0.12 * w, hip_y), main, -1, aa, 4)
        r = max(0.2 * w, 0.07 * h)
        disc(x1 + w / 2, y1 + r, r, (224, 180, 150))
    else:  # car: body, cabin with windows, wheels
        body_top = y1 + 0.45 * h
        _cv.rectangle(image, pt(x1, body_top), pt(x2, y2 - 0.12 * h), main, -1, aa, 4)
        _cv.rectangle(image, pt(x1 + 0.2 * w, y1), pt(x2 - 0.2 * w, body_top), main, -1, aa, 4)
        _cv.rectangle(image, pt(x1 + 0.25 * w, y1 + 0.08 * h), pt(x2 - 0.25 * w, body_top), (40, 50, 70), -1, aa, 4)
        rw = min(0.12 * w, 0.16 * h)
        for fx in (0.2, 0.8):
            disc(x1 + fx * w, y2 - 0.14 * h, rw, (20, 20, 20))


class PanoramaSource:
    """A :class:`~.frames.FrameSource` of one fixed orientation of a panorama world."""

    def __init__(self, world: PanoramaWorld, orientation: Orientation, *, width: int = 192, height: int = 108,
                 start: int = 0, frames: int | None = None, renderer: PTZRenderer | None = None) -> None:
        self.renderer = renderer or PTZRenderer(world, width, height)
        self.orientation = orientation
        self.start = start
        total = world.n_frames - start
        self.frames = total if frames is None else min(frames, total)
        if self.frames <= 0:
            raise ConfigError("start", start, f"must leave frames in the world's {world.n_frames}")

    @property
    def fps(self) -> float:
        return self.renderer.world.config.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.renderer.width, self.renderer.height

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[Frame]:
        for k in range(self.frames):
            frame = self.renderer.render(self.orientation, self.start + k)
            yield Frame(k, k / self.fps, frame.image, frame.truth)
