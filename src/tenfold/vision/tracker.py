"""A SORT-style IoU tracker for unique-object counts.

After Bewley et al., "Simple Online and Realtime Tracking" (ICIP 2016): each track predicts
its next box with a constant-velocity model, detections are matched to predictions by IoU
(an optimal assignment: Hungarian via ``scipy.optimize.linear_sum_assignment``), unmatched
detections start tentative tracks, and a track is confirmed after ``min_hits``
matches and dropped after ``max_age`` frames without one. The velocity is an exponential
average of box-centre and size changes rather than SORT's Kalman filter (design choice:
the same prediction on constant-velocity motion, with two parameters fewer).

``unique_count`` is the number of confirmed tracks ever, the quantity agg_count queries use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tenfold.core.config import check_range

from .frames import Box
from .metrics import iou_matrix

__all__ = ["IouTracker", "Track"]


@dataclass
class Track:
    """One tracked object; ``box`` is its last matched box."""

    ident: int
    box: Box
    hits: int = 1
    age: int = 0
    """Frames since the last match."""
    confirmed: bool = False
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    """EMA of (dx1, dy1, dx2, dy2) per frame."""

    def predicted(self) -> Box:
        steps = self.age + 1
        x1, y1, x2, y2 = np.array(self.box.as_tuple()) + self.velocity * steps
        return Box(float(x1), float(y1), float(x2), float(y2), self.box.label, self.box.score, self.ident)


class IouTracker:
    """Tracks boxes frame to frame; one label's boxes only match that label's tracks."""

    def __init__(self, *, iou_threshold: float = 0.3, max_age: int = 3, min_hits: int = 2,
                 smoothing: float = 0.5) -> None:
        check_range("iou_threshold", iou_threshold, 0.0, 1.0)
        check_range("max_age", max_age, 0)
        check_range("min_hits", min_hits, 1)
        check_range("smoothing", smoothing, 0.0, 1.0)
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.min_hits = min_hits
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._next_id = 0
        self.confirmed_ids: set[int] = set()

    @property
    def unique_count(self) -> int:
        """Confirmed tracks so far: the number of unique objects seen."""
        return len(self.confirmed_ids)

    def update(self, detections: Sequence[Box]) -> list[Box]:
        """Feed one frame's detections; returns the confirmed tracks' boxes with ``ident`` set."""
        from scipy.optimize import linear_sum_assignment

        preds = [t.predicted() for t in self.tracks]
        ious = iou_matrix(preds, list(detections))
        same = np.array([[p.label == d.label for d in detections] for p in preds], dtype=bool).reshape(ious.shape)
        ious = np.where(same, ious, 0.0)
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if ious.size:
            rows, cols = linear_sum_assignment(-ious)
            for r, c in zip(rows, cols, strict=True):
                # a match needs overlap and the same label, even at iou_threshold 0
                if same[r, c] and ious[r, c] > 0.0 and ious[r, c] >= self.iou_threshold:
                    self._match(self.tracks[r], detections[c])
                    matched_t.add(int(r))
                    matched_d.add(int(c))
        for i, track in enumerate(self.tracks):
            if i not in matched_t:
                track.age += 1
        for j, det in enumerate(detections):
            if j not in matched_d:
                self.tracks.append(Track(self._next_id, det, confirmed=self.min_hits <= 1))
                if self.min_hits <= 1:
                    self.confirmed_ids.add(self._next_id)
                self._next_id += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        return [
            Box(*t.box.as_tuple(), label=t.box.label, score=t.box.score, ident=t.ident)
            for t in self.tracks
            if t.confirmed and t.age == 0
        ]

    def _match(self, track: Track, det: Box) -> None:
        delta = (np.array(det.as_tuple()) - np.array(track.box.as_tuple())) / (track.age + 1)
        track.velocity = self.smoothing * track.velocity + (1 - self.smoothing) * delta
        track.box = det
        track.hits += 1
        track.age = 0
        if track.hits >= self.min_hits and not track.confirmed:
            track.confirmed = True
            self.confirmed_ids.add(track.ident)
