"""The panorama world and its PTZ renderer: grid, wrap, determinism, zoom, dynamics."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.errors import ConfigError
from tenfold.vision import Orientation, PanoramaConfig, PanoramaSource, PanoramaWorld, PTZRenderer, grid, take


@pytest.fixture(scope="module")
def world() -> PanoramaWorld:
    return PanoramaWorld(seed=1)


@pytest.fixture(scope="module")
def renderer(world: PanoramaWorld) -> PTZRenderer:
    return PTZRenderer(world)


def test_grid_has_180_orientations_and_pan_wraps() -> None:
    g = grid()
    assert len(g) == 180 and len(set(g)) == 180
    assert Orientation(330, 0, 1).rotated(30) == Orientation(0, 0, 1)
    assert Orientation(0, 0, 2).rotated(-30) == Orientation(330, 0, 2)
    top = Orientation(90, 30, 1).neighbours()
    assert len(top) == 5 and all(o.tilt in (15, 30) for o in top)
    assert len(Orientation(0, 0, 3).neighbours()) == 8


@pytest.mark.parametrize(("pan", "tilt", "zoom", "field"), [(45, 0, 1, "pan"), (360, 0, 1, "pan"), (0, 20, 1, "tilt"),
                                                           (0, 45, 1, "tilt"), (0, 0, 4, "zoom"), (0, 0, 0, "zoom")])
def test_off_grid_orientation_is_a_config_error(pan: int, tilt: int, zoom: int, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{field}' = {[pan, tilt, zoom][['pan', 'tilt', 'zoom'].index(field)]}"):
        Orientation(pan, tilt, zoom)
    with pytest.raises(ConfigError):
        Orientation(0, 0, 1).rotated(0, 45)


def test_pan_wraps_at_360_in_pixels(renderer: PTZRenderer) -> None:
    a = renderer.render(Orientation(0, 0, 1), 30)
    b = renderer.render_at(360.0, 0, 1, 30)
    c = renderer.render_at(-360.0, 0, 1, 30)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.image, c.image)
    assert a.truth == b.truth
    # A view straddling the seam (pan 345) is continuous: its halves come from both ends.
    seam = renderer.render_at(345.0, 0, 1, 30).image
    assert seam.shape == (108, 192, 3) and seam.std() > 10


def test_same_seed_renders_byte_identical_frames() -> None:
    o = Orientation(60, -15, 2)
    a = PTZRenderer(PanoramaWorld(seed=7)).render(o, 100)
    b = PTZRenderer(PanoramaWorld(seed=7)).render(o, 100)
    assert a.image.tobytes() == b.image.tobytes() and a.truth == b.truth
    c = PTZRenderer(PanoramaWorld(seed=8)).render(o, 100)
    assert a.image.tobytes() != c.image.tobytes()


def test_remap_grids_are_cached(world: PanoramaWorld) -> None:
    r = PTZRenderer(world)
    r.render(Orientation(0, 0, 1), 0)
    r.render(Orientation(0, 0, 1), 1)
    assert r.cached_grids == 1
    r.render(Orientation(30, 0, 1), 0)
    assert r.cached_grids == 2


def test_truth_boxes_grow_with_zoom(renderer: PTZRenderer) -> None:
    """The same agent's box is about z times taller at zoom z (pinhole, f proportional to z)."""
    for index in range(0, 3000, 150):
        near = renderer.render(Orientation(0, 0, 1), index).truth
        far = renderer.render(Orientation(0, 0, 3), index).truth
        assert near is not None and far is not None
        z1 = {b.ident: b for b in near.boxes if 40 < b.center[0] < 152 and b.y2 < 100}
        z3 = {b.ident: b for b in far.boxes if b.y2 < 100 and b.x1 > 0 and b.x2 < 192}
        common = sorted(set(z1) & set(z3))
        if common:
            ratio = z3[common[0]].height / z1[common[0]].height
            assert 2.4 < ratio < 3.6
            return
    pytest.fail("no agent visible at both zooms")


def test_far_agents_are_tiny_at_zoom_1(renderer: PTZRenderer, world: PanoramaWorld) -> None:
    frame = renderer.render(Orientation(0, 0, 1), 300)
    assert frame.truth is not None
    agents = world.agents_at(frame.t)
    dist = dict(zip(agents.ident.tolist(), np.hypot(agents.x, agents.z).tolist(), strict=True))
    far = [b for b in frame.truth.boxes if dist[b.ident] > 80 and b.label == "person"]
    assert far and max(b.height for b in far) < 6


def test_world_moves_and_hotspot_rates_change(world: PanoramaWorld) -> None:
    counts = [len(world.agents_at(t)) for t in range(0, 600, 60)]
    assert min(counts) > 0 and len(set(counts)) > 3
    windows = [world.active_hotspot_rates(t, window=30.0) for t in range(30, 600, 30)]
    per_hotspot = np.array(windows).T  # (hotspots, windows)
    assert (per_hotspot.max(axis=1) > per_hotspot.min(axis=1)).sum() >= len(world.hotspots) // 2
    a = PTZRenderer(world).render(Orientation(0, 0, 1), 0).image
    b = PTZRenderer(world).render(Orientation(0, 0, 1), 15).image
    assert not np.array_equal(a, b)


def test_people_and_cars_both_appear(world: PanoramaWorld) -> None:
    kinds = set()
    for t in range(0, 600, 20):
        kinds |= set(world.agents_at(t).kind.tolist())
    assert kinds == {0, 1}


def test_source_and_config_errors(world: PanoramaWorld) -> None:
    src = PanoramaSource(world, Orientation(90, 0, 1), frames=3, start=10)
    frames = take(src, 5)
    assert len(frames) == 3 and frames[0].truth is not None and frames[0].truth.scene == "panorama"
    with pytest.raises(ConfigError, match="street_half"):
        PanoramaConfig(street_half=3.0)
    with pytest.raises(ConfigError, match="'index'"):
        PTZRenderer(world).render(Orientation(), -1)


def test_unknown_world_lists_the_known_ones() -> None:
    from tenfold.errors import UnknownNameError
    from tenfold.vision import world_source

    with pytest.raises(UnknownNameError, match="unknown world 'moon'; known: drive, panorama"):
        world_source("moon")
