"""The orientation grid, its neighbours, and the region the camera explores (spec §2).

180 orientations: pan {0, 30, ..., 330} (wrapping) x tilt {-30, -15, 0, 15, 30} x zoom
{1, 2, 3}, built on :class:`tenfold.vision.ptz.Orientation` (which the renderer draws).
Neighbours are the 8 pan/tilt neighbours at the same zoom; tilt never wraps.

A *cell* is a (pan, tilt) pair. The shape S holds at most one orientation per cell (only
the off-by-default ``zoom_neighbours`` extension adds another zoom of a member's cell), and
its 8-connectivity is that of its cells (design choice: a zoomed member stays in its
cell, so a zoom change never disconnects the shape).

The region is every orientation within +-60 degrees of pan of the anchor (75 of them),
widened to +-90 and then +-120 if it holds fewer than 60.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tenfold.core.config import check_range
from tenfold.errors import ConfigError
from tenfold.vision.ptz import PANS, TILTS, ZOOMS
from tenfold.vision.ptz import Orientation as _VisionOrientation

__all__ = ["Cell", "Orientation", "OrientationError", "OrientationGrid", "Region", "cell_direction"]

Cell = tuple[int, int]
"""(pan, tilt) in degrees."""

PAN_STEP = 30
TILT_STEP = 15


class OrientationError(ConfigError):
    """An orientation off the grid: ``pan=45 not in {0,30,...,330}``."""

    def __init__(self, field: str, value: object, allowed: Sequence[int]) -> None:
        listing = "{" + ",".join(str(v) for v in allowed) + "}"
        super().__init__(field, value, f"not in {listing}")
        self.args = (f"{field}={value!r} not in {listing}",)


@dataclass(frozen=True, order=True)
class Orientation(_VisionOrientation):
    """A grid orientation with MadEye's grid index and cell; ``rotated`` and ``neighbours``
    (inherited) return MadEye orientations, and an off-grid value raises OrientationError."""

    def __post_init__(self) -> None:
        for name, value, allowed in (("pan", self.pan, PANS), ("tilt", self.tilt, TILTS), ("zoom", self.zoom, ZOOMS)):
            if isinstance(value, bool) or value not in allowed:
                raise OrientationError(name, value, allowed)

    @property
    def index(self) -> int:
        """Position in :meth:`OrientationGrid.default` order (pan, then tilt, then zoom)."""
        return (self.pan // PAN_STEP) * 15 + TILTS.index(self.tilt) * 3 + (self.zoom - 1)

    @property
    def cell(self) -> Cell:
        return self.pan, self.tilt

    def with_zoom(self, zoom: int) -> Orientation:
        return Orientation(self.pan, self.tilt, zoom)

    def __str__(self) -> str:
        return f"p{self.pan}t{self.tilt}z{self.zoom}"


def cell_direction(src: Cell, dst: Cell) -> tuple[int, int]:
    """Grid steps (dpan, dtilt) in {-1, 0, 1}^2 from ``src`` to the adjacent ``dst``.

    Raises ConfigError when the cells are not 8-neighbours (pan wraps).
    """
    dp = ((dst[0] - src[0] + 180) % 360) - 180
    dt = dst[1] - src[1]
    if abs(dp) > PAN_STEP or abs(dt) > TILT_STEP or (dp, dt) == (0, 0) or dp % PAN_STEP or dt % TILT_STEP:
        raise ConfigError("cell", dst, f"is not an 8-neighbour of {src}")
    return dp // PAN_STEP, dt // TILT_STEP


def _adjacent(a: Cell, b: Cell) -> bool:
    dp = abs(((a[0] - b[0] + 180) % 360) - 180)
    return a != b and dp <= PAN_STEP and abs(a[1] - b[1]) <= TILT_STEP


class OrientationGrid:
    """The 180-orientation grid (spec §2)."""

    def __init__(self) -> None:
        self.orientations: tuple[Orientation, ...] = tuple(
            Orientation(p, t, z) for p in PANS for t in TILTS for z in ZOOMS
        )

    @classmethod
    def default(cls) -> OrientationGrid:
        return cls()

    def __len__(self) -> int:
        return len(self.orientations)

    def __iter__(self) -> Iterator[Orientation]:
        return iter(self.orientations)

    def __getitem__(self, index: int) -> Orientation:
        return self.orientations[index]

    def region(self, anchor: Orientation, half_width: int = 60, *, min_size: int = 60) -> Region:
        """Orientations within +-``half_width`` degrees of pan of ``anchor`` (all tilts, zooms).

        Widens to +-90, then +-120, while the region holds fewer than ``min_size``.
        """
        check_range("half_width", half_width, 0, 180)
        anchor = Orientation(anchor.pan, anchor.tilt, anchor.zoom)
        widths = [half_width] + [w for w in (90, 120) if w > half_width]
        members: list[Orientation] = []
        for width in widths:
            members = [o for o in self.orientations if abs(_pan_offset(o.pan, anchor.pan)) <= width]
            half_width = width
            if len(members) >= min_size:
                break
        return Region(anchor, half_width, tuple(members))


def _pan_offset(pan: int, ref: int) -> int:
    """Signed degrees from ``ref`` to ``pan`` in [-180, 180)."""
    return ((pan - ref + 180) % 360) - 180


@dataclass(frozen=True)
class Region:
    """The orientations the camera may visit, in grid order, around ``anchor``."""

    anchor: Orientation
    half_width: int
    orientations: tuple[Orientation, ...]
    _set: frozenset[Orientation] = field(init=False, repr=False, compare=False)
    _cells: frozenset[Cell] = field(init=False, repr=False, compare=False)
    _pos: dict[Orientation, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.orientations:
            raise ConfigError("region", "[]", "must hold at least one orientation")
        object.__setattr__(self, "_set", frozenset(self.orientations))
        object.__setattr__(self, "_cells", frozenset(o.cell for o in self.orientations))
        object.__setattr__(self, "_pos", {o: i for i, o in enumerate(self.orientations)})

    def __len__(self) -> int:
        return len(self.orientations)

    def __iter__(self) -> Iterator[Orientation]:
        return iter(self.orientations)

    def __contains__(self, item: object) -> bool:
        return item in self._set

    @property
    def cells(self) -> frozenset[Cell]:
        return self._cells

    def position(self, o: Orientation) -> int:
        """Index of ``o`` in :attr:`orientations` (ConfigError if outside the region)."""
        try:
            return self._pos[o]
        except KeyError:
            raise ConfigError("orientation", str(o), "is outside the region") from None

    def pan_offset(self, pan: float) -> float:
        """Signed degrees of ``pan`` from the anchor's pan, in [-180, 180)."""
        return ((pan - self.anchor.pan + 180.0) % 360.0) - 180.0

    def neighbours(self, o: Orientation) -> list[Orientation]:
        """``o``'s 8-neighbours at its zoom that lie in the region."""
        return [n for n in o.neighbours() if n in self]

    def beyond(self, src: Orientation, via: Orientation) -> Orientation | None:
        """The orientation one step past ``via`` in the direction ``src`` -> ``via`` (a peek).

        Pan wraps; a tilt past +-30 or a cell outside the region gives None.
        """
        dp, dt = cell_direction(src.cell, via.cell)
        tilt = via.tilt + dt * TILT_STEP
        if tilt not in TILTS:
            return None
        out = Orientation((via.pan + dp * PAN_STEP) % 360, tilt, via.zoom)
        return out if out in self else None

    @staticmethod
    def is_connected(cells: Iterable[Cell]) -> bool:
        """Whether the cells form one 8-connected group (pan wraps)."""
        todo = set(cells)
        if not todo:
            return False
        stack = [todo.pop()]
        while stack:
            c = stack.pop()
            near = [d for d in todo if _adjacent(c, d)]
            for d in near:
                todo.discard(d)
                stack.append(d)
        return not todo

    @staticmethod
    def adjacent(a: Cell, b: Cell) -> bool:
        return _adjacent(a, b)
