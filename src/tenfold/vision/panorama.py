"""The panorama world: a seeded 360-degree street intersection with moving people and cars.

Geometry (metres; the camera sits on a pole at the origin, ``camera_height`` above the
ground; azimuth 0 looks down +z and grows toward +x):

- Two streets cross at the camera: the roadway is ``|x| < road_half`` or ``|z| < road_half``,
  sidewalks run to ``street_half``, and building facades line both streets beyond that.
  The streets end at a row of buildings ``street_length`` away, so looking down a street
  shows far-away agents, and looking between streets shows a near corner.
- The static background is one equirectangular image (2:1), ray-cast per pixel: sky,
  facades (per-building colour, height and window grid), asphalt with lane marks and
  crosswalks, paving. It is rendered once per (config, seed) and shared.
- Agents are people (about 0.5 x 0.5 x 1.7 m) on the sidewalks and cars (4.5 x 1.8 x 1.5 m)
  in the lanes, each moving along a straight path from a *hotspot* to the street's far end
  (or the opposite one). Each hotspot spawns agents as a Poisson process whose rate is
  piecewise constant, switching every 30-120 s, so where activity is changes over time.
  Spawn events are drawn up front, so the state at any time is a closed-form function of
  time: random access and byte-identical renders for a seed.

Agents are not painted into the panorama: the PTZ renderer (:mod:`.ptz`) draws them in view
space at their projected 3-D extents, so a person 100 m away is a few pixels at zoom 1 and
resolvable only at zoom 2-3. Ground truth comes from the same projection.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import ConfigError

from .frames import Image

__all__ = ["AgentState", "PanoramaConfig", "PanoramaWorld"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PanoramaConfig(Config):
    """The street world's layout and traffic."""

    pano_width: int = 2048
    """Width of the equirectangular background in pixels (height is half); >= 256."""
    camera_height: float = 6.0
    """Height of the camera above the ground, m; > 0."""
    road_half: float = 6.0
    """Half width of each roadway, m; > 0."""
    street_half: float = 9.5
    """Half width of each street including sidewalks (facades stand here), m; > road_half."""
    street_length: float = 160.0
    """Distance from the intersection to the buildings that close each street, m."""
    fps: float = 30.0
    """Frame rate of the world's streams; > 0."""
    duration_s: float = 600.0
    """Length of the simulated stream, s; > 0."""
    warmup_s: float = 120.0
    """Traffic simulated before t=0, so the streets are populated from the first frame."""
    hotspots: int = 10
    """Number of spawn hotspots; >= 1."""
    max_rate: float = 0.12
    """Highest spawn rate of a hotspot, agents per second; > 0."""
    rate_switch_s: tuple[float, float] = (30.0, 120.0)
    """Range of the interval between a hotspot's rate switches, s."""
    person_share: float = 0.6
    """Fraction of hotspots on sidewalks (spawning people); the rest spawn cars."""

    def __post_init__(self) -> None:
        check_range("pano_width", self.pano_width, 256, 16384)
        if self.pano_width % 2:
            raise ConfigError("pano_width", self.pano_width, "must be even")
        check_positive("camera_height", self.camera_height)
        check_positive("road_half", self.road_half)
        check_range("street_half", self.street_half, lo=self.road_half, lo_open=True)
        check_range("street_length", self.street_length, lo=self.street_half * 2, lo_open=True)
        check_positive("fps", self.fps)
        check_positive("duration_s", self.duration_s)
        check_range("warmup_s", self.warmup_s, lo=0.0)
        check_range("hotspots", self.hotspots, lo=1)
        check_positive("max_rate", self.max_rate)
        lo, hi = self.rate_switch_s
        if not 0 < lo <= hi:
            raise ConfigError("rate_switch_s", self.rate_switch_s, "must be (lo, hi) with 0 < lo <= hi")
        check_range("person_share", self.person_share, 0.0, 1.0)

    def key(self) -> str:
        """A short hash of every field, for caches."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AgentState:
    """Every agent alive at one instant, as parallel arrays (length N)."""

    ident: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    """0 = person, 1 = car."""
    x: F64
    z: F64
    heading: F64
    """Direction of motion as an azimuth, radians."""
    size: F64
    """(N, 3): width, length, height in metres."""
    colors: npt.NDArray[np.uint8]
    """(N, 2, 3): main and secondary RGB colour."""
    phase: F64
    """Walking / wheel phase, radians."""

    def __len__(self) -> int:
        return int(self.ident.shape[0])


KINDS = ("person", "car")


def _hash_noise(ix: npt.NDArray[np.int64], iz: npt.NDArray[np.int64], seed: int) -> F32:
    """Deterministic per-cell noise in [0, 1) from integer coordinates."""
    h = (ix * 73856093) ^ (iz * 19349663) ^ (seed * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h & 0xFFFF).astype(np.float32)) / 65536.0


class PanoramaWorld:
    """One seeded street world: its background panorama and its agents at any time."""

    def __init__(self, config: PanoramaConfig | None = None, seed: int = 0) -> None:
        check_range("seed", seed, lo=0)  # numpy seeds are non-negative
        self.config = config or PanoramaConfig()
        self.seed = int(seed)
        self._spawn()

    # -- traffic ------------------------------------------------------------------------
    def _spawn(self) -> None:
        cfg = self.config
        rng = np.random.default_rng([self.seed, 1])
        t_start, t_end = -cfg.warmup_s, cfg.duration_s
        records: list[tuple[float, float, float, float, float, float, int]] = []
        n_person = round(cfg.hotspots * cfg.person_share)
        self.hotspots: list[tuple[int, float, float, float]] = []  # (kind, x, z, heading)
        for h in range(cfg.hotspots):
            kind = 0 if h < n_person else 1
            arm = int(rng.integers(4))  # which street arm: +z, +x, -z, -x
            along = float(rng.uniform(cfg.street_half + 2, cfg.street_length * 0.9))
            if kind == 0:
                side = float(rng.choice([-1.0, 1.0])) * (cfg.road_half + cfg.street_half) / 2
            else:
                side = float(rng.choice([-1.0, 1.0])) * cfg.road_half / 2
            outward = float(rng.random()) < 0.5
            heading = arm * np.pi / 2 + (0.0 if outward else np.pi)
            ax, az = np.sin(arm * np.pi / 2), np.cos(arm * np.pi / 2)
            x, z = ax * along + az * side, az * along - ax * side
            self.hotspots.append((kind, float(x), float(z), float(heading % (2 * np.pi))))
            # Piecewise-constant rate schedule, then Poisson spawns within each piece.
            t = t_start
            while t < t_end:
                span = float(rng.uniform(*cfg.rate_switch_s))
                # Cars cross the scene about 7x faster than people walk; spawn them 3x as often.
                rate = float(rng.choice([0.0, 0.25, 0.5, 1.0])) * cfg.max_rate * (3.0 if kind else 1.0)
                n = int(rng.poisson(rate * span))
                for t0 in np.sort(rng.uniform(t, t + span, size=n)):
                    speed = float(rng.uniform(1.0, 1.8) if kind == 0 else rng.uniform(6.0, 12.0))
                    records.append((float(t0), x, z, float(heading), speed, 0.0, kind))
                t += span
        records.sort(key=lambda r: r[0])
        n = len(records)
        self._t0 = np.array([r[0] for r in records], dtype=np.float64)
        self._x0 = np.array([r[1] for r in records], dtype=np.float64)
        self._z0 = np.array([r[2] for r in records], dtype=np.float64)
        self._heading = np.array([r[3] for r in records], dtype=np.float64)
        self._speed = np.array([r[4] for r in records], dtype=np.float64)
        self._kind = np.array([r[6] for r in records], dtype=np.int64)
        # Each agent walks until it leaves the street grid (|x| or |z| beyond the street end).
        dx, dz = np.sin(self._heading), np.cos(self._heading)
        limit = cfg.street_length
        with np.errstate(divide="ignore", invalid="ignore"):
            tx = np.where(np.abs(dx) > 1e-9, (np.sign(dx) * limit - self._x0) / dx, np.inf)
            tz = np.where(np.abs(dz) > 1e-9, (np.sign(dz) * limit - self._z0) / dz, np.inf)
        self._t1 = self._t0 + np.minimum(tx, tz) / self._speed
        arng = np.random.default_rng([self.seed, 2])
        person_size = np.stack([arng.uniform(0.45, 0.6, n), arng.uniform(0.3, 0.45, n), arng.uniform(1.5, 1.9, n)], 1)
        car_size = np.stack([arng.uniform(1.7, 2.0, n), arng.uniform(4.0, 5.0, n), arng.uniform(1.4, 1.7, n)], 1)
        self._size = np.where(self._kind[:, None] == 0, person_size, car_size)
        self._colors = arng.integers(30, 235, size=(n, 2, 3)).astype(np.uint8)

    @property
    def n_agents(self) -> int:
        """Agents spawned over the whole stream, warm-up included."""
        return int(self._t0.shape[0])

    @property
    def n_frames(self) -> int:
        return round(self.config.duration_s * self.config.fps)

    def agents_at(self, t: float) -> AgentState:
        """The agents alive at time ``t`` seconds."""
        alive = np.nonzero((self._t0 <= t) & (t < self._t1))[0]
        dist = (t - self._t0[alive]) * self._speed[alive]
        heading = self._heading[alive]
        return AgentState(
            ident=alive.astype(np.int64),
            kind=self._kind[alive],
            x=self._x0[alive] + np.sin(heading) * dist,
            z=self._z0[alive] + np.cos(heading) * dist,
            heading=heading,
            size=self._size[alive],
            colors=self._colors[alive],
            phase=dist / np.where(self._kind[alive] == 0, 0.35, 0.5),
        )

    def active_hotspot_rates(self, t: float, window: float = 10.0) -> list[int]:
        """Agents spawned by each hotspot in ``[t - window, t)`` (for checks and plots)."""
        mask = (self._t0 >= t - window) & (self._t0 < t)
        counts = [0] * len(self.hotspots)
        for x, z in zip(self._x0[mask], self._z0[mask], strict=True):
            for i, (_k, hx, hz, _h) in enumerate(self.hotspots):
                if hx == x and hz == z:
                    counts[i] += 1
                    break
        return counts

    # -- background ---------------------------------------------------------------------
    @property
    def background(self) -> Image:
        """The equirectangular background, (pano_width/2, pano_width, 3) uint8 RGB."""
        return _render_background(self.config, self.seed)

    def pyramid(self, level: int) -> Image:
        """The background halved ``level`` times (anti-aliased), for zoomed-out views."""
        return _pyramid(self.config, self.seed, level)


@lru_cache(maxsize=8)
def _pyramid(config: PanoramaConfig, seed: int, level: int) -> Image:
    import cv2

    image = _render_background(config, seed)
    for _ in range(level):
        image = np.ascontiguousarray(cv2.pyrDown(image))
    image.flags.writeable = False
    return image


@lru_cache(maxsize=4)
def _render_background(cfg: PanoramaConfig, seed: int) -> Image:
    """Ray-cast every panorama pixel against the street geometry."""
    w = cfg.pano_width
    h = w // 2
    az = ((np.arange(w, dtype=np.float32) + 0.5) / w * 2 * np.pi)[None, :]  # (1, W)
    el = (np.pi / 2 - (np.arange(h, dtype=np.float32) + 0.5) / h * np.pi)[:, None]  # (H, 1)
    dx, dz = np.sin(az), np.cos(az)  # (1, W)
    adx, adz = np.maximum(np.abs(dx), 1e-6), np.maximum(np.abs(dz), 1e-6)
    s, length = cfg.street_half, cfg.street_length
    # Horizontal distance to the facade hit by each azimuth, and which wall it is.
    d_side = np.maximum(s / adx, s / adz)
    d_end = length / np.maximum(adx, adz)
    dwall = np.minimum(d_side, d_end)  # (1, W)
    end_wall = d_end < d_side
    along = np.where(end_wall, np.where(adx > adz, dz, dx) * dwall,
                     np.where(adx < adz, dz, dx) * dwall)  # coordinate along the wall, m
    wall_id = (np.where(end_wall, 8, 0) + (dx > 0) * 2 + (dz > 0) * 1 + (adx < adz) * 4).astype(np.int64)
    cam = cfg.camera_height
    tan_el = np.tan(el)  # (H, 1)
    y_wall = cam + dwall * tan_el  # (H, W): height where the ray meets the facade
    # Per-building properties from a hash of (wall, building index along it).
    b_idx = np.floor(along / 14.0).astype(np.int64)
    b_rand = _hash_noise(wall_id, b_idx, seed)  # (1, W)
    b_height = 9.0 + 24.0 * b_rand
    base_rgb = np.stack([0.45 + 0.4 * _hash_noise(b_idx, wall_id + 1, seed),
                         0.35 + 0.35 * _hash_noise(b_idx, wall_id + 2, seed),
                         0.3 + 0.35 * _hash_noise(b_idx, wall_id + 3, seed)], -1)  # (1, W, 3)
    img = np.zeros((h, w, 3), dtype=np.float32)
    # Sky: a vertical gradient with soft hashed clouds.
    sky_t = np.clip(el / (np.pi / 2), 0, 1)[..., None]  # (H, 1, 1)
    sky = (1 - sky_t) * np.array([0.78, 0.86, 0.95], np.float32) + sky_t * np.array([0.35, 0.55, 0.85], np.float32)
    img[:] = sky
    # Facades: window grid on a per-building colour, doors darker near the ground.
    facade = (y_wall >= 0) & (y_wall <= b_height)
    floor_frac = np.mod(y_wall, 3.2) / 3.2
    col_frac = np.mod(along, 2.6) / 2.6
    window = (floor_frac > 0.35) & (floor_frac < 0.8) & (col_frac > 0.25) & (col_frac < 0.75) & (y_wall > 3.0)
    lit = _hash_noise(np.floor(along / 2.6).astype(np.int64), np.floor(y_wall / 3.2).astype(np.int64), seed + 7)
    fac_rgb = np.broadcast_to(base_rgb, (h, w, 3)) * (0.85 + 0.15 * (np.mod(y_wall, 0.4) > 0.2))[..., None]
    win_rgb = np.where((lit > 0.8)[..., None], np.array([0.9, 0.85, 0.6], np.float32),
                       np.array([0.15, 0.2, 0.28], np.float32))
    fac = np.where(window[..., None], win_rgb, fac_rgb)
    fac = np.where(((y_wall < 2.6) & (col_frac > 0.4) & (col_frac < 0.6))[..., None], fac * 0.45, fac)
    img = np.where(facade[..., None], fac, img)
    # Ground: where the ray meets y=0 before the facade.
    r = np.minimum(cam / np.maximum(-tan_el, 1e-9), 1e5)  # (H, 1); capped, so no inf reaches the hashes
    ground = (r < dwall) & (tan_el < 0)
    gx, gz = r * dx, r * dz  # (H, W)
    ax_, az_ = np.abs(gx), np.abs(gz)
    road = (ax_ < cfg.road_half) | (az_ < cfg.road_half)
    cell = _hash_noise(np.floor(gx * 3).astype(np.int64), np.floor(gz * 3).astype(np.int64), seed + 3)
    asphalt = (0.28 + 0.06 * cell)[..., None] * np.ones(3, np.float32)
    paving = (0.62 + 0.08 * cell)[..., None] * np.array([1.0, 0.96, 0.9], np.float32)
    joint = (np.mod(gx, 1.5) < 0.08) | (np.mod(gz, 1.5) < 0.08)
    paving = np.where(joint[..., None], paving * 0.8, paving)
    # Lane marks: dashed centre lines outside the junction, crosswalk bars at its edges.
    dash_z = (ax_ < 0.12) & (np.mod(gz, 6.0) < 3.0) & (az_ > cfg.street_half + 3)
    dash_x = (az_ < 0.12) & (np.mod(gx, 6.0) < 3.0) & (ax_ > cfg.street_half + 3)
    cross_z = (az_ > cfg.street_half) & (az_ < cfg.street_half + 3) & (ax_ < cfg.road_half) & (np.mod(gx, 1.0) < 0.5)
    cross_x = (ax_ > cfg.street_half) & (ax_ < cfg.street_half + 3) & (az_ < cfg.road_half) & (np.mod(gz, 1.0) < 0.5)
    marks = dash_z | dash_x | cross_z | cross_x
    ground_rgb = np.where(road[..., None], np.where(marks[..., None], np.float32(0.88), asphalt), paving)
    img = np.where(ground[..., None], ground_rgb, img)
    out: Image = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out
