"""The shape update (spec §2; acceptance 2 and 10): swap ratios, f(L)=0, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.systems.madeye import MadEyeConfig, OrientationGrid, Query, ShapeSearch, Workload
from tenfold.systems.madeye.orientation import Orientation as O
from tenfold.systems.madeye.orientation import Region
from tenfold.systems.madeye.search import swap_threshold, viability
from tenfold.vision.frames import Box

WORKLOAD = Workload("w", (Query("m", "count", "person"),))


def _search(**cfg: object) -> ShapeSearch:
    region = OrientationGrid.default().region(O(0, 0, 1))
    return ShapeSearch(region, WORKLOAD, {}, MadEyeConfig(warm_steps=0, **cfg))  # type: ignore[arg-type]


def _swaps(f: dict[O, float]) -> list[tuple[str, str]]:
    s = _search()
    assert set(s.members) == set(f)
    change = s.swap_pass(f, {o: 0.51 * v for o, v in f.items()})
    return [(str(a), str(b)) for a, b in change.swaps]


CROSS = [O(0, 0, 1), O(330, 0, 1), O(30, 0, 1), O(0, -15, 1), O(0, 15, 1)]


def test_initial_shape_is_the_cross_shifted_inward_at_tilt_edges() -> None:
    assert set(_search().shape) == set(CROSS)
    region = OrientationGrid.default().region(O(0, 30, 2))
    s = ShapeSearch(region, WORKLOAD, {}, MadEyeConfig())
    assert set(s.shape) == {O(0, 15, 2), O(330, 15, 2), O(30, 15, 2), O(0, 0, 2), O(0, 30, 2)}
    k1 = ShapeSearch(region, WORKLOAD, {}, MadEyeConfig(k_explore=1, n_send=1))
    assert k1.shape == [O(0, 30, 2)]


def test_thresholds() -> None:
    assert [swap_threshold(i) for i in range(5)] == [1.5, 1.75, 2.0, 2.0, 2.0]


def test_ratio_149_does_not_swap_and_150_does() -> None:
    low = {o: 1.49 for o in CROSS} | {O(330, 0, 1): 1.0}
    assert _swaps(low) == []
    high = {o: 1.5 for o in CROSS} | {O(330, 0, 1): 1.0}
    assert _swaps(high) == [("p330t0z1", "p30t-15z1")]


def test_second_expansion_needs_175_and_third_needs_2() -> None:
    base = {o: 1.0 for o in CROSS}
    assert len(_swaps(base | {O(30, 0, 1): 1.74})) == 1
    assert len(_swaps(base | {O(30, 0, 1): 1.75})) == 2
    assert len(_swaps(base | {O(30, 0, 1): 1.99})) == 2
    assert len(_swaps(base | {O(30, 0, 1): 2.0})) >= 3


def test_zero_factor_always_swaps() -> None:
    f = {o: 0.0 for o in CROSS} | {O(0, 0, 1): 1.0}
    swaps = _swaps(f)
    assert swaps and swaps[0][0] == "p0t-15z1"
    # Even when R's factor is zero too (nothing seen anywhere but the best member).
    f2 = {o: 0.0 for o in CROSS} | {O(0, 15, 1): 0.2}
    assert _swaps(f2)[0][0] == "p0t-15z1"


def test_best_member_and_last_added_are_skipped() -> None:
    s = _search()
    f = {o: 1.0 for o in CROSS} | {O(30, 0, 1): 5.0}
    s.swap_pass(f, f)
    added = [o for o, m in s.members.items() if m.added == 0 and not m.peek]
    s.updates = 1
    f2 = {o: (0.0 if o in added else 5.0) for o in s.members}
    change = s.swap_pass(f2, f2)
    assert all(d not in added for d, _ in change.swaps)


def test_first_updates_allow_one_change() -> None:
    region = OrientationGrid.default().region(O(0, 0, 1))
    s = ShapeSearch(region, WORKLOAD, {}, MadEyeConfig())
    f = {o: 1.0 for o in CROSS} | {O(30, 0, 1): 9.0}
    assert len(s.swap_pass(f, f).swaps) == 1


def test_viability_faces_the_edge_or_corner() -> None:
    assert viability(None, (1, 0), 192, 108) == 0.0
    # Toward an edge: perpendicular distances (d_centre = 96 to the right edge, 54 to the top).
    assert viability((192, 54), (1, 0), 192, 108) == 1.0  # on the right edge, moving right
    assert viability((192, 0), (1, 0), 192, 108) == 1.0  # anywhere on that edge, not only its midpoint
    assert viability((96, 54), (1, 0), 192, 108) == 0.0
    assert viability((0, 54), (1, 0), 192, 108) == -1.0
    assert viability((48, 10), (1, 0), 192, 108) == -0.5  # (96 - 144) / 96
    assert viability((30, 27), (-1, 0), 192, 108) == 0.6875  # (96 - 30) / 96
    assert viability((96, 0), (0, 1), 192, 108) == 1.0  # tilt up faces the top edge
    assert viability((30, 27), (0, 1), 192, 108) == 0.5  # (54 - 27) / 54
    assert viability((30, 81), (0, -1), 192, 108) == 0.5  # (54 - 27) / 54 to the bottom edge
    # Toward a corner: distances to the corner point.
    assert viability((192, 0), (1, 1), 192, 108) == 1.0  # the top-right corner
    assert viability((96, 54), (1, 1), 192, 108) == 0.0
    assert viability((144, 81), (1, -1), 192, 108) == pytest.approx(0.5)  # halfway to the bottom-right corner


def test_candidates_skip_cells_the_shape_holds_at_any_zoom() -> None:
    s = _search()
    s.members[O(30, 0, 1)].orientation = O(30, 0, 3)  # a zoom-rule replacement, held in its cell
    cands = s.candidates(O(30, 0, 1))
    # (30, 0)'s zoom-3 neighbours, less the cells the cross holds at zoom 1: (0, -15), (0, 0), (0, 15).
    assert cands and {o.zoom for o in cands} == {3}
    assert {o.cell for o in cands} == {(30, -15), (60, -15), (60, 0), (30, 15), (60, 15)}


def test_viability_steers_toward_the_boxes() -> None:
    for x1, first in ((170, True), (2, False)):  # boxes at the right edge, then at the left
        s = _search()
        outputs = {o: {"m": [Box(x1, 40, x1 + 20, 70, "person")]} for o in CROSS}
        s.update(0, outputs, {o: 1.0 for o in CROSS}, [])
        cands = s.candidates(O(30, 0, 1))
        ahead = cands.index(O(60, 0, 1)) < min(cands.index(O(60, 15, 1)), cands.index(O(60, -15, 1)))
        assert ahead is first


def _check(shape: list[O], region: Region, k: int) -> None:
    assert 1 <= len(shape) <= k
    assert all(o in region for o in shape)
    assert region.is_connected([o.cell for o in shape])
    assert len({o.cell for o in shape}) == len(shape)  # at most one orientation per cell


@pytest.mark.parametrize(
    ("k", "rule", "zoom"),
    [
        (10, "viability", True),
        (3, "random", True),
        (1, "viability", False),
        (6, "viability", True),
        (8, "expand", True),
    ],
)
def test_invariants_over_1000_random_steps(k: int, rule: str, zoom: bool) -> None:
    rng = np.random.default_rng(k)
    region = OrientationGrid.default().region(O(30, 0, 1))
    expand = rule == "expand"
    rule = "viability" if expand else rule
    cfg = MadEyeConfig(k_explore=k, n_send=1, neighbour_rule=rule, zoom_rule=zoom, seed=k, allow_expand=expand)
    workload = Workload(
        "w",
        (
            Query("m", "count", "person"),
            Query("m", "detect", "car"),
            Query("m", "agg_count", "person"),
            Query("m", "binary", "car"),
        ),
    )
    s = ShapeSearch(region, workload, {("m", "car"): 0.7}, cfg)
    sizes = set()
    zoomed = 0
    for step in range(1000):
        shape = s.shape
        outputs = {}
        for o in shape:
            boxes = []
            for _ in range(int(rng.integers(0, 4))):
                label = str(rng.choice(["person", "car"]))
                if rng.random() < 0.6:  # small central boxes, so the zoom rule fires
                    x, y = rng.uniform(85, 100), rng.uniform(48, 55)
                    boxes.append(Box(x, y, x + 3, y + 3, label))
                else:
                    x, y = rng.uniform(0, 170), rng.uniform(0, 90)
                    boxes.append(Box(x, y, x + rng.uniform(2, 22), y + rng.uniform(2, 18), label))
            outputs[o] = {"m": boxes}
        scores = {o: float(rng.random()) for o in shape}
        zoomed += len(s.update(step, outputs, scores, shape[:1]).zoomed)
        _check(s.shape, region, k)
        sizes.add(len(s.shape))
    assert max(sizes) <= k
    assert (zoomed > 0) == zoom  # members at several zooms were exercised


def test_allow_expand_grows_without_dropping() -> None:
    from tenfold.systems.madeye import ShapeUpdate

    s = _search(allow_expand=True)
    f = {o: 1.0 for o in CROSS} | {O(30, 0, 1): 2.2}
    change = ShapeUpdate()
    s._grow(f, f, change)
    assert len(change.grown) == 2 and len(s.members) == 7  # 2.2 >= 1.1 and 2.0, < 2.5
    assert set(CROSS) <= set(s.members)
