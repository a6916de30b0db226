"""The drive world: a seeded dashcam / drone stream through recurring scene families.

The camera moves forward along a road through a persistent layout, so consecutive frames are
near-duplicates (temporal correlation), and the stream is cut into segments, each in one
scene family. Families recur: with the defaults, 6 of the 8 families are drawn per seed and
each appears twice, shuffled with no back-to-back repeat.

A family sets (:data:`FAMILIES`):

- photometrics: brightness, contrast, colour tint, haze toward a fog colour with distance,
  blur, sensor noise, rain streaks or snow flakes, headlight glow at night;
- background: sky and ground colours, roadside objects (buildings, trees, tunnel walls);
- object scale (a drone view sees smaller objects) and class priors over the six classes
  car, truck, bus, person, cyclist and sign.

Objects are anchored in the world (position along the road, lateral offset, own speed), so
they approach, grow and leave the view smoothly. Ground truth is each object's projected
box; :meth:`DriveWorld.crops` cuts labelled square crops for classification tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tenfold.core.config import Config, check_positive, check_range
from tenfold.core.registry import Registry
from tenfold.errors import ConfigError

from .frames import Box, Frame, Image, Truth

__all__ = ["CLASSES", "FAMILIES", "Crop", "DriveConfig", "DriveSource", "DriveWorld", "Family"]

CLASSES = ("car", "truck", "bus", "person", "cyclist", "sign")
# Real sizes (width, height) in metres and lateral placement ("road" or "side").
_SIZES = {"car": (1.8, 1.5), "truck": (2.5, 3.4), "bus": (2.6, 3.2), "person": (0.55, 1.75),
          "cyclist": (0.7, 1.8), "sign": (0.8, 2.6)}
_ON_ROAD = {"car", "truck", "bus"}


@dataclass(frozen=True)
class Family:
    """One scene family's look and content."""

    sky: tuple[int, int, int]
    ground: tuple[int, int, int]
    roadside: str
    """'buildings', 'trees' or 'tunnel'."""
    brightness: float
    contrast: float
    tint: tuple[float, float, float]
    haze: float
    """Fog density per 100 m (0 = clear)."""
    blur: float
    """Gaussian blur sigma in pixels."""
    noise: float
    """Sensor noise standard deviation, 0..255 scale."""
    weather: str
    """'', 'rain' or 'snow'."""
    scale: float
    """Object size multiplier (drone-like views < 1)."""
    priors: tuple[float, float, float, float, float, float]
    """Class probabilities in :data:`CLASSES` order."""


FAMILIES: Registry[Family] = Registry("scene family")
for _name, _fam in {
    "day": Family((135, 180, 235), (95, 150, 80), "buildings", 1.0, 1.0, (1.0, 1.0, 1.0), 0.0, 0.0, 2.0, "", 1.0,
                  (0.35, 0.12, 0.08, 0.2, 0.1, 0.15)),
    "night": Family((10, 12, 30), (25, 30, 25), "buildings", 0.35, 1.2, (0.8, 0.85, 1.2), 0.0, 0.4, 6.0, "", 1.0,
                    (0.5, 0.15, 0.1, 0.1, 0.05, 0.1)),
    "fog": Family((200, 200, 205), (120, 130, 115), "trees", 0.95, 0.7, (1.0, 1.0, 1.02), 2.2, 0.8, 3.0, "", 1.0,
                  (0.4, 0.2, 0.1, 0.1, 0.05, 0.15)),
    "rain": Family((95, 100, 110), (70, 80, 70), "buildings", 0.7, 0.9, (0.92, 0.97, 1.05), 0.6, 0.6, 4.0, "rain",
                   1.0, (0.45, 0.15, 0.15, 0.1, 0.0, 0.15)),
    "snow": Family((210, 215, 225), (235, 238, 245), "trees", 1.05, 0.85, (0.97, 1.0, 1.06), 0.4, 0.3, 3.0,
                   "snow", 1.0, (0.45, 0.25, 0.1, 0.1, 0.0, 0.1)),
    "tunnel": Family((40, 35, 30), (60, 55, 50), "tunnel", 0.8, 1.1, (1.2, 1.0, 0.7), 0.3, 0.3, 4.0, "", 1.0,
                     (0.55, 0.3, 0.15, 0.0, 0.0, 0.0)),
    "rural": Family((150, 195, 240), (110, 160, 70), "trees", 1.05, 1.0, (1.02, 1.0, 0.95), 0.1, 0.0, 2.0, "",
                    0.6, (0.25, 0.35, 0.05, 0.1, 0.15, 0.1)),
    "urban": Family((165, 185, 210), (110, 110, 110), "buildings", 0.95, 1.05, (1.0, 1.0, 1.0), 0.15, 0.0, 2.0,
                    "", 1.0, (0.3, 0.05, 0.15, 0.3, 0.12, 0.08)),
}.items():
    FAMILIES.add(_name, _fam)


@dataclass(frozen=True)
class DriveConfig(Config):
    """Stream layout: size, rate, segments and which families recur."""

    width: int = 256
    height: int = 144
    fps: float = 30.0
    segment_frames: int = 1200
    """Frames per segment (one family each); >= 1."""
    families: tuple[str, ...] = ("day", "night", "fog", "rain", "snow", "tunnel", "rural", "urban")
    """Families to draw from."""
    families_per_seed: int = 6
    """Distinct families in one stream; <= len(families)."""
    repeats: int = 2
    """Times each chosen family occurs; segments = families_per_seed * repeats."""
    speed: float = 12.0
    """Camera speed along the road, m/s."""
    density: float = 0.12
    """Objects per metre of road."""

    def __post_init__(self) -> None:
        check_range("width", self.width, 32, 4096)
        check_range("height", self.height, 32, 4096)
        check_positive("fps", self.fps)
        check_range("segment_frames", self.segment_frames, 1)
        for f in self.families:
            FAMILIES.get(f)
        check_range("families_per_seed", self.families_per_seed, 1, len(self.families))
        check_range("repeats", self.repeats, 1)
        if self.families_per_seed == 1 and self.repeats > 1:
            raise ConfigError("repeats", self.repeats, "must be 1 when families_per_seed is 1 (no back-to-back repeat)")
        check_positive("speed", self.speed)
        check_range("density", self.density, 0.0, 2.0)

    @property
    def segments(self) -> int:
        return self.families_per_seed * self.repeats


@dataclass(frozen=True)
class Crop:
    """A square object crop with its class label and source box."""

    image: Image
    label: str
    box: Box


@dataclass(frozen=True)
class _Segment:
    family: str
    z: npt.NDArray[np.float64]  # (N,) position along the road at segment start, m
    x: npt.NDArray[np.float64]  # (N,) lateral offset, m
    v: npt.NDArray[np.float64]  # (N,) own speed along the road, m/s
    cls: npt.NDArray[np.int64]  # (N,) index into CLASSES
    color: npt.NDArray[np.uint8]  # (N, 3)
    side_z: npt.NDArray[np.float64]  # roadside element positions, m
    side_h: npt.NDArray[np.float64]  # their heights, m
    side_c: npt.NDArray[np.uint8]  # their colours


class DriveWorld:
    """One seeded drive stream; frames are rendered on demand by index."""

    def __init__(self, config: DriveConfig | None = None, seed: int = 0) -> None:
        check_range("seed", seed, lo=0)  # numpy seeds are non-negative
        self.config = config or DriveConfig()
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 11])
        chosen = list(rng.choice(self.config.families, size=self.config.families_per_seed, replace=False))
        order: list[str] = []
        for _ in range(1000):
            order = [str(f) for f in rng.permutation(chosen * self.config.repeats)]
            if all(a != b for a, b in itertools.pairwise(order)):
                break
        self.schedule: tuple[str, ...] = tuple(order)

    @property
    def n_frames(self) -> int:
        return self.config.segments * self.config.segment_frames

    def family_at(self, index: int) -> str:
        return self.schedule[min(index // self.config.segment_frames, len(self.schedule) - 1)]

    def _segment(self, k: int) -> _Segment:
        return _segment(self.config, self.seed, k, self.schedule[k])

    def render(self, index: int) -> Frame:
        """Frame ``index`` with its truth boxes (labels from :data:`CLASSES`) and family."""
        cfg = self.config
        if not 0 <= index < self.n_frames:
            raise ConfigError("index", index, f"must be in [0, {self.n_frames})")
        k, local = divmod(index, cfg.segment_frames)
        seg = self._segment(k)
        fam = FAMILIES.get(seg.family)
        t = local / cfg.fps
        cam_z = cfg.speed * t
        w, h = cfg.width, cfg.height
        horizon = 0.42 * h
        f = 0.9 * w
        cam_h = 1.4 / fam.scale  # a drone-like family flies higher: objects look smaller
        img = np.empty((h, w, 3), np.float32)
        rows = np.arange(h, dtype=np.float32)[:, None]
        sky_t = np.clip(rows / horizon, 0, 1)
        img[:] = (1 - sky_t)[..., None] * np.array(fam.sky, np.float32) * 0.85 + sky_t[..., None] * np.array(fam.sky)
        ground = rows >= horizon
        img = np.where(ground[..., None], np.array(fam.ground, np.float32), img)
        # Road: a trapezoid to the vanishing point, with lane dashes fixed in the world.
        dist_rows = np.where(ground, cam_h * f / np.maximum(rows - horizon, 0.5), 1e4)[:, 0]  # (H,)
        half_road = 4.0 * f / dist_rows  # px
        xs = np.arange(w, dtype=np.float32)[None, :]
        road = (np.abs(xs - w / 2) < half_road[:, None]) & ground
        img = np.where(road[..., None], np.array([85, 85, 90], np.float32) * (1.4 if fam.weather == "snow" else 1), img)
        dash = (np.abs(xs - w / 2) < np.maximum(0.08 * f / dist_rows, 0.4)[:, None]) & road
        dash &= (np.mod(dist_rows + cam_z, 9.0) < 4.5)[:, None]
        img = np.where(dash[..., None], np.float32(230), img)
        image = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
        # Roadside elements and objects, far to near.
        items: list[tuple[float, int, int]] = []  # (depth, kind 0 side / 1 object, index)
        dz_side = seg.side_z - cam_z
        items += [(float(d), 0, i) for i, d in enumerate(dz_side) if 2.0 < d < 150.0]
        obj_z = seg.z + seg.v * t - cam_z
        items += [(float(d), 1, i) for i, d in enumerate(obj_z) if 7.0 < d < 120.0]
        boxes: list[Box] = []
        for depth, kind, i in sorted(items, reverse=True):
            s = f / depth
            fog = 1.0 - np.exp(-fam.haze * depth / 100.0)
            if kind == 0:
                _draw_side(image, fam.roadside, w / 2, horizon, s, cam_h, float(seg.side_h[i]),
                           seg.side_c[i], fog, fam.sky)
                continue
            name = CLASSES[int(seg.cls[i])]
            ow, oh = _SIZES[name]
            cx = w / 2 + s * seg.x[i]
            y2 = horizon + s * cam_h
            b = Box(cx - s * ow / 2, y2 - s * oh, cx + s * ow / 2, y2, name, 1.0, int(i) + 100000 * k)
            if b.x2 < 0 or b.x1 > w or b.y1 > h:
                continue
            _draw_object(image, b, name, seg.color[i], fog, fam.sky, fam.brightness < 0.5)
            clip = b.clipped(w, h)
            if clip.height >= 2 and clip.area >= 0.5 * b.area:
                boxes.append(clip)
        image = _photometrics(image, fam, np.random.default_rng([self.seed, index, 7]), cam_z)
        return Frame(index, index / cfg.fps, image, Truth(tuple(boxes), scene=seg.family))

    def crops(self, frame: Frame, size: int = 32, min_px: float = 8.0) -> list[Crop]:
        """Square crops (``size`` px) of the frame's truth boxes at least ``min_px`` tall."""
        import cv2

        check_range("size", size, 16, 256)
        out: list[Crop] = []
        if frame.truth is None:
            return out
        h, w = frame.image.shape[:2]
        for b in frame.truth.boxes:
            if b.height < min_px:
                continue
            side = max(b.width, b.height) * 1.15
            cx, cy = b.center
            x1, y1 = round(cx - side / 2), round(cy - side / 2)
            x2, y2 = x1 + max(round(side), 2), y1 + max(round(side), 2)
            pad = cv2.copyMakeBorder(frame.image, max(0, -y1), max(0, y2 - h), max(0, -x1), max(0, x2 - w),
                                     cv2.BORDER_REPLICATE)
            ox, oy = max(0, -x1), max(0, -y1)
            patch = pad[y1 + oy : y2 + oy, x1 + ox : x2 + ox]
            crop = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
            out.append(Crop(np.ascontiguousarray(crop, dtype=np.uint8), b.label, b))
        return out


@lru_cache(maxsize=64)
def _segment(cfg: DriveConfig, seed: int, k: int, family: str) -> _Segment:
    fam = FAMILIES.get(family)
    rng = np.random.default_rng([seed, k, 13])
    length = cfg.speed * cfg.segment_frames / cfg.fps + 200.0
    n = int(rng.poisson(cfg.density * length))
    cls = rng.choice(len(CLASSES), size=n, p=np.array(fam.priors) / sum(fam.priors)).astype(np.int64)
    on_road = np.array([CLASSES[c] in _ON_ROAD for c in cls], dtype=bool)
    lane = rng.choice([-1.9, 1.9], size=n)
    side = rng.choice([-1.0, 1.0], size=n) * rng.uniform(4.8, 7.0, size=n)
    x = np.where(on_road, lane, side)
    v = np.where(on_road, np.where(lane > 0, rng.uniform(6, 14, n), -rng.uniform(8, 14, n)), rng.uniform(-1, 1, n))
    v = np.where(cls == CLASSES.index("sign"), 0.0, v)
    side_z = np.arange(0.0, length + 150.0, 9.0 if fam.roadside != "tunnel" else 6.0)
    tall = fam.roadside == "buildings"
    side_h = rng.uniform(4, 18, side_z.shape[0]) if tall else rng.uniform(3, 9, side_z.shape[0])
    side_c = rng.integers(40, 200, size=(side_z.shape[0], 3)).astype(np.uint8)
    return _Segment(family, rng.uniform(0, length, n), x, v, cls, rng.integers(30, 230, (n, 3)).astype(np.uint8),
                    side_z, side_h, side_c)


def _mix(color: npt.NDArray[np.uint8] | tuple[int, ...], fog: float, sky: tuple[int, int, int]) -> tuple[int, int, int]:
    c = np.asarray(color, np.float32) * (1 - fog) + np.asarray(sky, np.float32) * fog
    return int(c[0]), int(c[1]), int(c[2])


def _draw_side(image: Image, kind: str, cx: float, horizon: float, s: float, cam_h: float,
               height: float, color: npt.NDArray[np.uint8], fog: float, sky: tuple[int, int, int]) -> None:
    import cv2 as _cv

    ground_y = horizon + s * cam_h
    for sign in (-1.0, 1.0):
        if kind == "tunnel":
            x = cx + sign * 6.0 * s
            col = _mix((120, 110, 95), fog, sky)
            _cv.rectangle(image, (int(x - sign * 0.5 * s), int(ground_y - 6 * s)), (int(x), int(ground_y)), col, -1)
            _cv.circle(image, (int(cx), int(horizon + s * (cam_h - 5.5))), max(1, int(0.3 * s)), (255, 200, 120), -1)
        elif kind == "buildings":
            x = cx + sign * 12.0 * s
            _cv.rectangle(image, (int(x - 4 * s), int(ground_y - height * s)), (int(x + 4 * s), int(ground_y)),
                          _mix(color, fog, sky), -1)
        else:
            x = cx + sign * (10.0 + (height % 3)) * s
            _cv.line(image, (int(x), int(ground_y)), (int(x), int(ground_y - 0.4 * height * s)),
                     _mix((90, 60, 30), fog, sky), max(1, int(0.3 * s)))
            pts = np.array([[x - 1.5 * s, ground_y - 0.3 * height * s], [x + 1.5 * s, ground_y - 0.3 * height * s],
                            [x, ground_y - height * s]], dtype=np.int32)
            _cv.fillPoly(image, [pts], _mix((30, int(color[1]) // 2 + 60, 40), fog, sky))


def _draw_object(image: Image, b: Box, name: str, color: npt.NDArray[np.uint8], fog: float,
                 sky: tuple[int, int, int], night: bool) -> None:
    import cv2 as _cv

    x1, y1, x2, y2 = (round(v) for v in b.as_tuple())
    w, h = x2 - x1, y2 - y1
    main = _mix(color, fog, sky)
    dark = _mix((30, 30, 35), fog, sky)
    if name in ("car", "truck", "bus"):
        top = y1 + (h * 2) // 5 if name == "car" else y1
        _cv.rectangle(image, (x1, top), (x2, y2 - max(1, h // 8)), main, -1)
        if name == "car":
            _cv.rectangle(image, (x1 + w // 5, y1), (x2 - w // 5, top), main, -1)
            _cv.rectangle(image, (x1 + w // 4, y1 + h // 10), (x2 - w // 4, top), dark, -1)
        elif name == "bus":
            for k in range(4):
                wx = x1 + w // 10 + k * w // 4
                _cv.rectangle(image, (wx, y1 + h // 8), (wx + w // 6, y1 + h // 3), dark, -1)
        else:
            _cv.rectangle(image, (x1 + w // 8, y1 + h // 10), (x2 - w // 8, y1 + h // 3), dark, -1)
        for fx in (0.2, 0.8):
            _cv.circle(image, (int(x1 + fx * w), y2 - max(1, h // 10)), max(1, h // 8), (15, 15, 15), -1)
        if night:
            for fx in (0.15, 0.85):
                _cv.circle(image, (int(x1 + fx * w), y2 - h // 3), max(1, h // 10), (255, 240, 200), -1)
    elif name in ("person", "cyclist"):
        head = max(1, w // 4)
        _cv.circle(image, ((x1 + x2) // 2, y1 + head), head, _mix((225, 185, 150), fog, sky), -1)
        _cv.rectangle(image, (x1 + w // 4, y1 + 2 * head), (x2 - w // 4, y1 + (h * 3) // 5), main, -1)
        if name == "person":
            _cv.rectangle(image, (x1 + w // 4, y1 + (h * 3) // 5), (x2 - w // 4, y2), dark, -1)
        else:
            r = max(1, h // 6)
            for fx in (0.0, 1.0):
                _cv.circle(image, (int(x1 + fx * w), y2 - r), r, dark, max(1, r // 3))
    else:  # sign: pole and a plate
        _cv.line(image, ((x1 + x2) // 2, y2), ((x1 + x2) // 2, y1 + h // 3), (120, 120, 120), max(1, w // 6))
        plate = _mix((220, 30, 30) if int(color[0]) % 2 else (30, 60, 200), fog, sky)
        _cv.rectangle(image, (x1, y1), (x2, y1 + h // 3), plate, -1)


def _photometrics(image: Image, fam: Family, rng: np.random.Generator, cam_z: float) -> Image:
    import cv2 as _cv

    img = image.astype(np.float32)
    mean = img.mean()
    img = (img - mean) * fam.contrast + mean
    img = img * fam.brightness * np.array(fam.tint, np.float32)
    h, w = image.shape[:2]
    if fam.weather == "rain":
        for _ in range(int(0.004 * w * h)):
            x, y = int(rng.integers(w)), int(rng.integers(h))
            _cv.line(img, (x, y), (x - 2, y + 7), (170, 175, 190), 1)
    elif fam.weather == "snow":
        for _ in range(int(0.006 * w * h)):
            _cv.circle(img, (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, 3)), (250, 250, 250), -1)
    if fam.blur > 0:
        img = _cv.GaussianBlur(img, (0, 0), fam.blur)
    if fam.noise > 0:
        img = img + rng.normal(0, fam.noise, img.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


class DriveSource:
    """A :class:`~.frames.FrameSource` over ``frames`` frames of a drive world from ``start``."""

    def __init__(self, world: DriveWorld, *, start: int = 0, frames: int | None = None) -> None:
        if not 0 <= start < world.n_frames:
            raise ConfigError("start", start, f"must be in [0, {world.n_frames})")
        self.world = world
        self.start = start
        total = world.n_frames - start
        self.frames = total if frames is None else max(0, min(frames, total))

    @property
    def fps(self) -> float:
        return self.world.config.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.world.config.width, self.world.config.height

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[Frame]:
        for k in range(self.frames):
            frame = self.world.render(self.start + k)
            yield Frame(k, k / self.fps, frame.image, frame.truth)
