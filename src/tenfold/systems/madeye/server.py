"""The server side: backends on sent frames, continual distillation (spec §2, §11).

:meth:`MadEyeServer.process` runs every backend the workload uses on the frames the camera
sent and keeps (frame, backend boxes) pairs. :meth:`MadEyeServer.distill_update`, due
every ``distill_every`` steps, fine-tunes each approximation model's heads on the frames
sent since the last update with the server config's ``distill_epochs``, ``distill_lr`` and
``distill_batch`` (AdamW; by default lr 1e-4, batch 4, 6 epochs) and pushes the new model
to the camera. The labels are the backend's boxes at its cut-offs (person 0.5, car 0.7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tenfold.core.api import api
from tenfold.vision.frames import Box, Image

from .approx import ApproxModel
from .backends import Backend
from .camera import MadEyeCamera
from .config import MadEyeConfig
from .orientation import Orientation
from .workload import Workload

__all__ = ["FrameBackend", "MadEyeServer", "SentFrame", "StepResult"]


@dataclass(frozen=True)
class SentFrame:
    """One uplinked frame: the step, the orientation it was taken at, and its pixels."""

    step: int
    orientation: Orientation
    image: Image = field(repr=False)


@dataclass(frozen=True)
class StepResult:
    """The backends' answers for one step's sent frames: ``detections[model][i]``."""

    step: int
    frames: tuple[SentFrame, ...]
    detections: Mapping[str, list[list[Box]]]


@runtime_checkable
class FrameBackend(Protocol):
    """A backend that also needs to know where and when a frame was taken (simulation)."""

    name: str
    stands_for: str | None

    def detect_frames(self, frames: Sequence[SentFrame]) -> list[list[Box]]: ...


def run_backend(backend: Backend | FrameBackend, frames: Sequence[SentFrame]) -> list[list[Box]]:
    if isinstance(backend, FrameBackend):
        return backend.detect_frames(frames)
    return backend.detect_batch([f.image for f in frames])


@api(stability="alpha")
class MadEyeServer:
    """Runs the workload's backends on sent frames and distils them into the camera."""

    def __init__(
        self, backends: Mapping[str, Backend | FrameBackend], workload: Workload, config: MadEyeConfig | None = None
    ) -> None:
        workload.check_models(backends)
        self.backends = dict(backends)
        self.workload = workload
        self.config = config or MadEyeConfig()
        self.steps = 0
        self.updates = 0
        self._buffer: dict[str, list[tuple[Image, list[Box]]]] = {m: [] for m in workload.models}

    def process(self, frames: Sequence[SentFrame]) -> StepResult:
        """Run each backend on the sent frames; buffer them for the next distillation."""
        step = frames[0].step if frames else self.steps
        detections: dict[str, list[list[Box]]] = {}
        for name in self.workload.models:
            found = run_backend(self.backends[name], frames) if frames else []
            detections[name] = found
            for frame, boxes in zip(frames, found, strict=True):
                kept = [b for b in boxes if b.score >= self.config.backend_threshold(b.label)]
                self._buffer[name].append((frame.image, kept))
        self.steps += 1
        return StepResult(step, tuple(frames), detections)

    @property
    def due(self) -> bool:
        """Whether a continual-distillation update is due after the steps processed so far."""
        return self.config.continual_distill and self.steps > 0 and self.steps % self.config.distill_every == 0

    def distill_update(self, camera: MadEyeCamera) -> dict[str, int]:
        """Fine-tune the camera's approximation heads on the frames sent since the last update.

        Returns the number of frames each backend's approximation learnt from.
        """
        used: dict[str, int] = {}
        for name, pairs in self._buffer.items():
            model = camera.approx.get(name)
            if not pairs or not isinstance(model, ApproxModel):
                continue
            images = [p[0] for p in pairs]
            boxes = [p[1] for p in pairs]
            cfg = self.config  # the server's schedule, not the camera model's (spec §11: the server distils)
            tuned = model.fine_tuned(
                images, boxes, epochs=cfg.distill_epochs, lr=cfg.distill_lr, batch=cfg.distill_batch, seed=cfg.seed
            )
            camera.set_approx(name, tuned)
            used[name] = len(pairs)
            pairs.clear()
        self.updates += 1
        return used
