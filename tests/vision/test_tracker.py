"""The SORT-style IoU tracker counts unique objects."""

from __future__ import annotations

import pytest

from tenfold.errors import ConfigError
from tenfold.vision import Box, IouTracker


def _moving(x0: float, dx: float, t: int, label: str = "person") -> Box:
    return Box(x0 + dx * t, 10, x0 + dx * t + 10, 30, label)


def test_two_moving_objects_are_two_tracks() -> None:
    tr = IouTracker()
    for t in range(20):
        out = tr.update([_moving(0, 3, t), _moving(100, -3, t)])
    assert tr.unique_count == 2
    assert sorted(b.ident for b in out) == [0, 1]


def test_crossing_objects_keep_their_identity_by_velocity() -> None:
    tr = IouTracker(iou_threshold=0.2)
    idents = []
    for t in range(30):
        out = tr.update([_moving(0, 4, t), _moving(116, -4, t, "person")])
        idents.append({round(b.x1): b.ident for b in out})
    assert tr.unique_count == 2


def test_gap_longer_than_max_age_starts_a_new_track() -> None:
    tr = IouTracker(max_age=2)
    box = Box(0, 0, 10, 10)
    for frames in ([box] * 5, [], [], [], [box] * 5):
        for dets in frames if frames else [[]] * 1:
            tr.update([dets] if isinstance(dets, Box) else dets)
    assert tr.unique_count == 2


def test_short_gap_keeps_the_track_and_flicker_is_not_counted() -> None:
    tr = IouTracker(max_age=3, min_hits=2)
    box = Box(0, 0, 10, 10)
    for dets in ([box], [box], [], [box], [box]):
        tr.update(dets)
    tr.update([Box(200, 200, 210, 210)])  # a single-frame flicker never confirms
    assert tr.unique_count == 1


def test_labels_do_not_match_across_classes() -> None:
    tr = IouTracker(min_hits=1)
    tr.update([Box(0, 0, 10, 10, "car")])
    tr.update([Box(0, 0, 10, 10, "person")])
    assert tr.unique_count == 2


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="iou_threshold"):
        IouTracker(iou_threshold=1.5)


def test_zero_threshold_never_matches_disjoint_boxes_or_other_labels() -> None:
    tr = IouTracker(iou_threshold=0.0, min_hits=1)
    first = tr.update([Box(0, 0, 10, 10, "person")])
    assert [b.ident for b in first] == [0]
    # no overlap at all: a new track, not a match
    assert [b.ident for b in tr.update([Box(50, 50, 60, 60, "person")])] == [1]
    # full overlap with track 1's box but another label: a new track
    assert [b.ident for b in tr.update([Box(50, 50, 60, 60, "car")])] == [2]
    # touching overlap of the same label still matches at threshold 0
    assert [b.ident for b in tr.update([Box(55, 55, 65, 65, "car")])] == [2]
    assert tr.unique_count == 3
