"""The grid, neighbours, regions and off-grid errors (spec §2, acceptance 1)."""

from __future__ import annotations

import pytest

from tenfold.errors import ConfigError
from tenfold.systems.madeye import Orientation, OrientationError, OrientationGrid
from tenfold.systems.madeye.orientation import cell_direction


def test_grid_has_180_orientations_in_index_order() -> None:
    grid = OrientationGrid.default()
    assert len(grid) == 180
    assert [o.index for o in grid] == list(range(180))
    assert len(set(grid)) == 180


def test_pan_wraps_and_tilt_does_not() -> None:
    assert Orientation(330, 0, 1).rotated(30) == Orientation(0, 0, 1)
    assert Orientation(0, 15, 2).rotated(-30) == Orientation(330, 15, 2)
    with pytest.raises(OrientationError, match=r"tilt=45 not in \{-30,-15,0,15,30\}"):
        Orientation(0, 30, 1).rotated(0, 15)


def test_neighbours_never_cross_tilt_limits_and_keep_zoom() -> None:
    for o in OrientationGrid.default():
        nbrs = o.neighbours()
        assert all(abs(n.tilt) <= 30 and n.zoom == o.zoom for n in nbrs)
        assert len(nbrs) == (5 if abs(o.tilt) == 30 else 8)
    assert set(Orientation(330, -30, 3).neighbours()) == {
        Orientation(300, -30, 3),
        Orientation(0, -30, 3),
        Orientation(300, -15, 3),
        Orientation(330, -15, 3),
        Orientation(0, -15, 3),
    }


def test_off_grid_orientation_names_the_value() -> None:
    with pytest.raises(OrientationError) as info:
        Orientation(45, 0, 1)
    assert str(info.value) == "pan=45 not in {0,30,60,90,120,150,180,210,240,270,300,330}"
    assert isinstance(info.value, ConfigError)
    with pytest.raises(ConfigError, match=r"zoom=4 not in \{1,2,3\}"):
        Orientation(0, 0, 4)


def test_region_holds_75_orientations_within_60_degrees_across_the_wrap() -> None:
    grid = OrientationGrid.default()
    region = grid.region(Orientation(0, 0, 2))
    assert len(region) == 75 and region.half_width == 60
    assert {o.pan for o in region} == {300, 330, 0, 30, 60}
    assert Orientation(90, 0, 1) not in region
    assert region.neighbours(Orientation(60, 0, 1)) == [
        Orientation(30, -15, 1),
        Orientation(60, -15, 1),
        Orientation(30, 0, 1),
        Orientation(30, 15, 1),
        Orientation(60, 15, 1),
    ]


def test_region_widens_when_too_small() -> None:
    grid = OrientationGrid.default()
    assert len(grid.region(Orientation(0, 0, 1), 0, min_size=1)) == 15
    assert grid.region(Orientation(0, 0, 1), 0).half_width == 90  # 15 < 60: widened to +-90
    widened = grid.region(Orientation(0, 0, 1), 30, min_size=100)
    assert widened.half_width == 90 and len(widened) == 105


def test_connectivity_and_directions() -> None:
    grid = OrientationGrid.default()
    region = grid.region(Orientation(0, 0, 1))
    assert region.is_connected([(330, 0), (0, 15)])  # diagonal across the wrap
    assert not region.is_connected([(330, 0), (30, 0)])
    assert cell_direction((330, 0), (0, 15)) == (1, 1)
    assert region.beyond(Orientation(330, 0, 1), Orientation(0, 15, 1)) == Orientation(30, 30, 1)
    assert region.beyond(Orientation(0, 15, 1), Orientation(0, 30, 1)) is None  # tilt past 30: no peek
    with pytest.raises(ConfigError):
        cell_direction((0, 0), (60, 0))
