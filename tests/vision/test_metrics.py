"""IoU, average precision and count statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenfold.errors import ConfigError
from tenfold.vision import Box, average_precision, count_stats, iou, iou_matrix, mean_average_precision, nms


def test_iou_hand_values() -> None:
    a = Box(0, 0, 2, 2)
    assert iou(a, Box(1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou(a, a) == 1.0
    assert iou(a, Box(2, 0, 4, 2)) == 0.0
    m = iou_matrix([a, Box(0, 0, 1, 2)], [a])
    assert m.shape == (2, 1) and m[1, 0] == pytest.approx(0.5)
    assert iou_matrix([], [a]).shape == (0, 1)


def test_ap_perfect_and_with_a_top_ranked_false_positive() -> None:
    truth = [[Box(0, 0, 10, 10, "car")], [Box(0, 0, 10, 10, "car")]]
    perfect = [[Box(0, 0, 10, 10, "car", 0.9)], [Box(1, 0, 10, 10, "car", 0.8)]]
    assert average_precision(perfect, truth, "car") == pytest.approx(1.0)
    # Ranked: FP (0.95), TP (0.9), TP (0.8): precision 0, 1/2, 2/3 at recall 0, .5, 1 -> AP = 2/3.
    with_fp = [[Box(50, 50, 60, 60, "car", 0.95), Box(0, 0, 10, 10, "car", 0.9)], [Box(0, 0, 10, 10, "car", 0.8)]]
    assert average_precision(with_fp, truth, "car") == pytest.approx(2 / 3)
    # A duplicate of a matched box is a false positive; a miss caps recall at 1/2.
    missed = [[Box(0, 0, 10, 10, "car", 0.9), Box(0, 0, 10, 10, "car", 0.85)], []]
    assert average_precision(missed, truth, "car") == pytest.approx(0.5)


def test_map_averages_classes_with_truth() -> None:
    truth = [[Box(0, 0, 10, 10, "car"), Box(20, 20, 30, 40, "person")]]
    dets = [[Box(0, 0, 10, 10, "car", 0.9)]]
    assert mean_average_precision(dets, truth) == pytest.approx(0.5)
    assert mean_average_precision(dets, truth, labels=["car", "bus"]) == pytest.approx(1.0)
    assert math.isnan(average_precision(dets, truth, "bus"))
    with pytest.raises(ConfigError, match="iou_threshold"):
        average_precision(dets, truth, "car", iou_threshold=0.0)


def test_count_stats() -> None:
    truth = [[Box(0, 0, 1, 1)] * 2, [], [Box(0, 0, 1, 1)]]
    dets = [[Box(0, 0, 1, 1)] * 2, [Box(0, 0, 1, 1)], []]
    s = count_stats(dets, truth)
    assert (s.mean_abs_error, s.exact, s.mean_true, s.mean_detected) == pytest.approx((2 / 3, 1 / 3, 1.0, 1.0))
    assert np.isclose(count_stats(dets, truth, label="car").exact, 1.0)


_coord = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
_size = st.floats(min_value=0.5, max_value=50, allow_nan=False, allow_infinity=False)


@st.composite
def _boxes(draw: st.DrawFn) -> Box:
    x, y, w, h = draw(_coord), draw(_coord), draw(_size), draw(_size)
    return Box(x, y, x + w, y + h)


@given(_boxes(), _boxes())
def test_iou_is_symmetric_bounded_and_matches_the_matrix(a: Box, b: Box) -> None:
    v = iou(a, b)
    assert 0.0 <= v <= 1.0 + 1e-12
    assert v == pytest.approx(iou(b, a))
    assert iou_matrix([a], [b])[0, 0] == pytest.approx(v, abs=1e-9)
    assert iou(a, a) == pytest.approx(1.0)


@given(st.lists(_boxes(), min_size=1, max_size=12), st.floats(min_value=0.1, max_value=0.9))
def test_nms_keeps_the_best_and_no_two_kept_overlap(boxes: list[Box], thr: float) -> None:
    arr = np.array([b.as_tuple() for b in boxes], dtype=np.float32)
    scores = np.linspace(1.0, 0.1, len(boxes)).astype(np.float32)
    keep = nms(arr, scores, thr)
    assert keep[0] == 0
    kept = [boxes[i] for i in keep]
    m = iou_matrix(kept, kept)
    assert (m[~np.eye(len(kept), dtype=bool)] <= thr + 1e-5).all()
