"""Approximation models: cheap on-camera detectors distilled from each backend (spec §2).

One per backend: a narrower, lower-resolution (96x54) CenterNet-style detector trained
with focal loss on *that backend's detections* (never on renderer truth) over bootstrap
frames of the region's orientations. The camera cuts its output at person 0.2 and car 0.3.
Every 90 steps the server fine-tunes the heads only (backbone frozen) on the frames sent
since the last update (:meth:`ApproxModel.fine_tuned`) on the server config's schedule:
AdamW, by default lr 1e-4, batch 4, 6 epochs.

Initial distillations are cached under ``cache_dir("madeye", "approx")`` by a hash of the
backend, the world, the region, the sampled views and the labels; a corrupt file raises
AssetError naming it (no silent retraining).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol

from tenfold.core.assets import atomic_path, cache_dir
from tenfold.vision.frames import Box, Image
from tenfold.vision.trained import DetectorTrainConfig, SmallDetector

from .config import MadEyeConfig, SimConfig
from .orientation import Orientation

__all__ = ["ApproxModel", "ViewModel", "distill_approx", "labels_digest"]


class ViewModel(Protocol):
    """What the camera ranks with: boxes for the views it visited at a step."""

    name: str

    def detect_views(
        self, step: int, orientations: Sequence[Orientation], images: Sequence[Image]
    ) -> list[list[Box]]: ...


class ApproxModel:
    """A distilled approximation of backend ``backend``; boxes cut at the camera thresholds."""

    def __init__(self, backend: str, detector: SmallDetector, config: MadEyeConfig | None = None) -> None:
        self.backend = backend
        self.name = f"approx[{backend}]"
        self.detector = detector
        self.config = config or MadEyeConfig()
        self.updates = 0

    def detect_views(self, step: int, orientations: Sequence[Orientation], images: Sequence[Image]) -> list[list[Box]]:
        del step, orientations  # the approximation model sees pixels only
        return self.detect(images)

    def detect(self, images: Sequence[Image]) -> list[list[Box]]:
        floor = min(self.config.camera_person, self.config.camera_car)
        found = self.detector.detect_batch(list(images), score_threshold=floor) if images else []
        return [[b for b in boxes if b.score >= self.config.camera_threshold(b.label)] for boxes in found]

    def fine_tuned(
        self,
        images: Sequence[Image],
        boxes: Sequence[Sequence[Box]],
        *,
        epochs: int,
        lr: float,
        batch: int,
        seed: int = 0,
    ) -> ApproxModel:
        """A copy with its heads fine-tuned on (sent frame, backend boxes) pairs (spec §2).

        The schedule (``epochs``, ``lr``, ``batch``) is the server's: it owns distillation
        (spec §2, §11), so :meth:`MadEyeServer.distill_update` passes its own config's.
        """
        from tenfold.vision.trained import fit_detector

        tuned = fit_detector(
            self.detector.config,
            images,
            boxes,
            init=self.detector,
            heads_only=True,
            epochs=epochs,
            lr=lr,
            batch=batch,
            one_cycle=False,
            seed=seed + self.updates,
        )
        out = ApproxModel(self.backend, tuned, self.config)
        out.updates = self.updates + 1
        return out

    def flops_per_view(self) -> float:
        """Inference FLOPs of one view (torch.utils.flop_counter), for reports only."""
        import torch

        from tenfold.vision.flops import count_flops

        c = self.detector.config
        return float(count_flops(self.detector.model, torch.zeros(1, 3, c.height, c.width), "inference"))


def labels_digest(boxes: Sequence[Sequence[Box]]) -> str:
    """A short hash of label lists (part of the approximation cache key)."""
    h = hashlib.sha256()
    for bs in boxes:
        h.update(json.dumps([[*b.as_tuple(), b.score, b.label] for b in bs]).encode())
        h.update(b"|")
    return h.hexdigest()[:16]


def distill_approx(
    backend: str,
    images: Sequence[Image],
    boxes: Sequence[Sequence[Box]],
    sim: SimConfig,
    config: MadEyeConfig,
    *,
    key: str,
    seed: int = 0,
) -> ApproxModel:
    """Train (or load) the approximation model of ``backend`` on its boxes for ``images``.

    ``key`` identifies the sampled views (world, region, steps); the labels' digest is
    added, so a change of backend or sample retrains.
    """
    import torch

    tcfg = DetectorTrainConfig(
        width=sim.approx_width,
        height=sim.approx_height,
        channels=sim.approx_channels,
        epochs=sim.approx_epochs,
        batch=16,
        lr=4e-3,
        seed=seed,
        # Design choice: boxes from 2 px (at 96x54) are targets; far agents matter for ranking.
        min_box_px=2.0,
    )
    blob = json.dumps(
        {"v": 2, "backend": backend, "key": key, "labels": labels_digest(boxes), "train": tcfg.to_dict()},
        sort_keys=True,
    )
    path = cache_dir("madeye", "approx") / f"approx-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"
    from tenfold.vision.trained import fit_detector, load_detector_weights

    if path.exists():
        return ApproxModel(backend, load_detector_weights(tcfg, path), config)

    student = fit_detector(tcfg, images, boxes, seed=seed)
    with atomic_path(path) as tmp:
        torch.save({"config": tcfg.to_dict(), "state": student.model.state_dict()}, tmp)
    return ApproxModel(backend, student, config)
