"""Detection metrics: IoU, average precision at an IoU threshold, and count errors.

Average precision follows PASCAL VOC 2010+ / COCO-style all-point interpolation: detections
of one class, pooled over all images, are sorted by score (ties keep input order); each is a
true positive if it overlaps an unmatched ground-truth box of that class in its image with
IoU >= the threshold, matched greedily to the best such box; the precision envelope is
integrated over recall. mAP is the mean over classes that have ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tenfold.core.config import check_range

from .frames import Box

__all__ = ["CountStats", "average_precision", "count_stats", "iou", "iou_matrix", "mean_average_precision"]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> npt.NDArray[np.float64]:
    """(len(a), len(b)) pairwise IoU."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    pa = np.array([x.as_tuple() for x in a], dtype=np.float64)  # (A, 4)
    pb = np.array([x.as_tuple() for x in b], dtype=np.float64)  # (B, 4)
    w = np.clip(np.minimum(pa[:, None, 2], pb[None, :, 2]) - np.maximum(pa[:, None, 0], pb[None, :, 0]), 0, None)
    h = np.clip(np.minimum(pa[:, None, 3], pb[None, :, 3]) - np.maximum(pa[:, None, 1], pb[None, :, 1]), 0, None)
    inter = w * h  # (A, B)
    area_a = np.clip(pa[:, 2] - pa[:, 0], 0, None) * np.clip(pa[:, 3] - pa[:, 1], 0, None)
    area_b = np.clip(pb[:, 2] - pb[:, 0], 0, None) * np.clip(pb[:, 3] - pb[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(
    detections: Sequence[Sequence[Box]],
    truths: Sequence[Sequence[Box]],
    label: str,
    iou_threshold: float = 0.5,
) -> float:
    """AP of class ``label`` over images (``detections[i]`` against ``truths[i]``).

    Returns NaN when no image has a ground-truth box of ``label``.
    """
    check_range("iou_threshold", iou_threshold, 0.0, 1.0, lo_open=True)
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} truth lists")
    gts = [[b for b in t if b.label == label] for t in truths]
    n_gt = sum(len(g) for g in gts)
    if n_gt == 0:
        return float("nan")
    flat = [(d.score, i, d) for i, ds in enumerate(detections) for d in ds if d.label == label]
    flat.sort(key=lambda x: -x[0])
    used = [np.zeros(len(g), dtype=bool) for g in gts]
    tp = np.zeros(len(flat))
    for k, (_score, i, det) in enumerate(flat):
        if not gts[i]:
            continue
        ious = iou_matrix([det], gts[i])[0]
        ious[used[i]] = -1.0
        j = int(np.argmax(ious))
        if ious[j] >= iou_threshold:
            used[i][j] = True
            tp[k] = 1.0
    if not flat:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(flat) + 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def mean_average_precision(
    detections: Sequence[Sequence[Box]],
    truths: Sequence[Sequence[Box]],
    labels: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
) -> float:
    """Mean AP over ``labels`` (default: every label in the truth) that have ground truth."""
    chosen = sorted({b.label for t in truths for b in t}) if labels is None else list(labels)
    aps = [average_precision(detections, truths, lab, iou_threshold) for lab in chosen]
    valid = [a for a in aps if not np.isnan(a)]
    return float(np.mean(valid)) if valid else float("nan")


@dataclass(frozen=True)
class CountStats:
    """Per-image object counts compared with the truth."""

    mean_abs_error: float
    """Mean of |detected - true| over images."""
    exact: float
    """Fraction of images whose count is exactly right."""
    mean_true: float
    mean_detected: float


def count_stats(detections: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]],
                label: str | None = None) -> CountStats:
    """Count agreement of ``label`` (all labels when None) per image."""
    if len(detections) != len(truths) or not truths:
        raise ValueError(f"need equal, non-empty lists; got {len(detections)} and {len(truths)}")
    det = np.array([sum(1 for b in d if label is None or b.label == label) for d in detections], dtype=np.float64)
    tru = np.array([sum(1 for b in t if label is None or b.label == label) for t in truths], dtype=np.float64)
    return CountStats(float(np.abs(det - tru).mean()), float((det == tru).mean()), float(tru.mean()),
                      float(det.mean()))
