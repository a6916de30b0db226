"""Boxes in panorama angles, cross-view de-duplication and SORT-style global tracks.

Spec §2: "boxes are compared across views in panorama angles". A pixel box in view
(pan, tilt, zoom) becomes an *angle box* (azimuth relative to a reference pan, minus
elevation), in degrees, through the renderer's pinhole model (f = 0.625 W zoom). Angle
boxes from overlapping views (zoom 1 and zoom 3 of one cell, or two neighbouring cells)
describe the same object, so a step's detections over the region are pooled and
de-duplicated (greedy, by score, IoU in angles). :class:`PanoramaTracker` follows the
de-duplicated objects from step to step with :class:`tenfold.vision.tracker.IouTracker`
(SORT-style: constant-velocity prediction, Hungarian matching), giving every detection in
every view a global track ID. agg_count queries count these IDs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tenfold.vision.frames import Box
from tenfold.vision.metrics import iou_matrix
from tenfold.vision.ptz import FOCAL_FRACTION, camera_basis
from tenfold.vision.tracker import IouTracker

from .orientation import Orientation

__all__ = ["PanoramaTracker", "PooledObject", "angle_boxes", "dedup", "view_half_fov"]

# Design choice: views of one object at different zooms overlap well but not exactly in angles.
DEDUP_IOU = 0.4
"""Angle-box IoU at which two views' detections are one object (design choice)."""


def _rays(
    pan: float, tilt: float, f: float, xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Azimuth (relative to ``pan``) and elevation in degrees of image offsets (xs, ys)."""
    fwd, right, up = camera_basis(pan, tilt)
    ray = fwd[None, :] * f + right[None, :] * xs[:, None] - up[None, :] * ys[:, None]  # (P, 3)
    az = np.degrees(np.arctan2(ray[:, 0], ray[:, 2])) - pan
    az = ((az + 180.0) % 360.0) - 180.0
    el = np.degrees(np.arctan2(ray[:, 1], np.hypot(ray[:, 0], ray[:, 2])))
    return az, el


def angle_boxes(boxes: Sequence[Box], o: Orientation, width: int, height: int, ref_pan: float) -> list[Box]:
    """Pixel boxes of view ``o`` (``width`` x ``height``) as angle boxes relative to ``ref_pan``.

    x is azimuth minus ``ref_pan`` in [-180, 180), y is minus elevation (so y grows
    downward as in images); label, score and ident are kept.
    """
    if not boxes:
        return []
    f = FOCAL_FRACTION * width * o.zoom
    xy = np.array([b.as_tuple() for b in boxes], dtype=np.float64)  # (B, 4)
    cx, cy = (xy[:, 0] + xy[:, 2]) / 2, (xy[:, 1] + xy[:, 3]) / 2
    # Corners and edge midpoints: 8 points per box, as offsets from the image centre.
    px = np.stack([xy[:, 0], xy[:, 2], xy[:, 0], xy[:, 2], cx, cx, xy[:, 0], xy[:, 2]], 1) - width / 2
    py = np.stack([xy[:, 1], xy[:, 1], xy[:, 3], xy[:, 3], xy[:, 1], xy[:, 3], cy, cy], 1) - height / 2
    az, el = _rays(float(o.pan), float(o.tilt), f, px.reshape(-1), py.reshape(-1))
    shift = ((o.pan - ref_pan + 180.0) % 360.0) - 180.0
    az = (az + shift).reshape(-1, 8)
    el = el.reshape(-1, 8)
    return [
        Box(float(a.min()), float(-e.max()), float(a.max()), float(-e.min()), b.label, b.score, b.ident)
        for a, e, b in zip(az, el, boxes, strict=True)
    ]


def view_half_fov(width: int, height: int, zoom: int) -> tuple[float, float]:
    """Half the horizontal and vertical field of view of a view, degrees."""
    f = FOCAL_FRACTION * width * zoom
    return float(np.degrees(np.arctan(width / 2 / f))), float(np.degrees(np.arctan(height / 2 / f)))


@dataclass(frozen=True)
class PooledObject:
    """One de-duplicated object of a step: its best angle box and the views that saw it."""

    box: Box
    views: tuple[tuple[int, int], ...]
    """(view position, box index) of every detection merged into it."""


def dedup(per_view: Sequence[Sequence[Box]], iou: float = DEDUP_IOU) -> list[PooledObject]:
    """Pool angle boxes of several views and merge those of one object.

    Greedy by descending score (ties: view order): a box joins the first kept object of its
    label with angle IoU >= ``iou``, else starts a new object.
    """
    flat = [(b.score, v, i, b) for v, boxes in enumerate(per_view) for i, b in enumerate(boxes)]
    flat.sort(key=lambda x: (-x[0], x[1], x[2]))
    kept: list[Box] = []
    members: list[list[tuple[int, int]]] = []
    for _s, v, i, b in flat:
        if kept:
            ious = iou_matrix([b], kept)[0]
            same = np.array([k.label == b.label for k in kept])
            ious = np.where(same, ious, 0.0)
            j = int(np.argmax(ious))
            if ious[j] >= iou:
                members[j].append((v, i))
                continue
        kept.append(b)
        members.append([(v, i)])
    return [PooledObject(b, tuple(m)) for b, m in zip(kept, members, strict=True)]


class PanoramaTracker:
    """Global track IDs for de-duplicated objects across steps (SORT-style, in angles)."""

    def __init__(self, *, iou_threshold: float = 0.2, max_age: int = 5, min_hits: int = 2) -> None:
        # Design choice: SORT's velocity model is vision.IouTracker's EMA (no Kalman filter).
        # Design choice: a lower IoU gate than pixel SORT (0.2): a car at 10 m/s moves a
        # good part of its angular width in one 0.2 s step.
        self._tracker = IouTracker(iou_threshold=iou_threshold, max_age=max_age, min_hits=min_hits)

    def update(self, objects: Sequence[PooledObject]) -> list[int]:
        """Feed one step's objects; returns each object's track ID.

        Tentative tracks get their ID too; offline scoring keeps only IDs that end up in
        :attr:`confirmed_ids` (seen on ``min_hits`` steps), so a one-step false positive
        never counts, while a confirmed object counts from its first step.
        """
        dets = [Box(*o.box.as_tuple(), label=o.box.label, score=o.box.score, ident=k) for k, o in enumerate(objects)]
        self._tracker.update(dets)
        ids = [-1] * len(objects)
        for t in self._tracker.tracks:
            if t.age == 0 and t.box.ident >= 0:
                ids[t.box.ident] = t.ident
        return ids

    @property
    def confirmed_ids(self) -> set[int]:
        return set(self._tracker.confirmed_ids)

    @property
    def unique_count(self) -> int:
        return self._tracker.unique_count
