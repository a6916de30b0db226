"""MadEye on a real source: bootstrap, distil, then steer (spec §4 "Real use").

:func:`run_live` runs the whole system on any :class:`~.sources.PTZSource` (a 360-degree
video, digital PTZ over a wide video, or an ONVIF camera) with any backends:

1. **Bootstrap** (``bootstrap_steps`` steps): every backend on every region view; these
   (view, backend boxes) pairs are the distillation set.
2. **Distil** one approximation model per backend (96x54, narrower) on them.
3. **Steer** for ``steps`` steps: the camera visits its shape, ranks with the approximation
   models and sends the top N; the server runs the backends on the sent frames only and
   fine-tunes the approximation heads every ``distill_every`` steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenfold.core.config import check_range
from tenfold.errors import ConfigError
from tenfold.vision.frames import Box, Image
from tenfold.vision.trained import DetectorTrainConfig, fit_detector

from .approx import ApproxModel
from .backends import Backend, query_weight
from .camera import MadEyeCamera
from .config import MadEyeConfig, check_k_fits
from .orientation import Orientation, OrientationGrid, Region
from .server import MadEyeServer, SentFrame
from .sources import PTZSource
from .workload import Workload

__all__ = ["check_schedule", "live_region", "run_live"]


def live_region(anchor: Orientation | None, half_width: int) -> Region:
    """The region :func:`run_live` explores: exactly +-``half_width`` degrees of pan.

    Design choice: unlike the simulation's region (widened to +-90, then +-120, below 60
    orientations), the user's half-width is kept as given; ``tenfold madeye grid`` shows
    this region too.
    """
    grid = OrientationGrid.default()
    return grid.region(anchor or grid[0], half_width, min_size=1)


def check_schedule(n_frames: int | None, *, steps: int, bootstrap_steps: int, step_frames: int) -> None:
    """ConfigError unless the step counts are >= 1 and, when the source's length
    ``n_frames`` is known, the run's last frame lies inside it (checked before any work)."""
    check_range("steps", steps, lo=1)
    check_range("bootstrap_steps", bootstrap_steps, lo=1)
    check_range("step_frames", step_frames, lo=1)
    last = (bootstrap_steps + steps - 1) * step_frames
    if n_frames is not None and last >= n_frames:
        raise ConfigError(
            "steps", steps, f"with bootstrap_steps={bootstrap_steps} and step_frames={step_frames} the run needs "
            f"frame {last}, past the source's {n_frames} frames"
        )


def run_live(
    source: PTZSource,
    backends: Mapping[str, Backend],
    workload: Workload,
    config: MadEyeConfig,
    *,
    steps: int = 20,
    bootstrap_steps: int = 2,
    anchor: Orientation | None = None,
    half_width: int = 60,
    step_frames: int = 6,
    distill_epochs: int = 8,
) -> dict[str, Any]:
    """Bootstrap, distil and run MadEye live; returns a JSON-ready report.

    Bad arguments raise ConfigError before any bootstrap or distillation work.
    """
    workload.check_models(backends)
    check_schedule(source.n_frames, steps=steps, bootstrap_steps=bootstrap_steps, step_frames=step_frames)
    region = live_region(anchor, half_width)
    check_k_fits(config.k_explore, len(region.cells))
    w, h = source.size
    data: dict[str, tuple[list[Image], list[list[Box]]]] = {m: ([], []) for m in workload.models}
    for t in range(bootstrap_steps):
        images = [source.view(o, t * step_frames).image for o in region]
        for m in workload.models:
            found = backends[m].detect_batch(images)
            data[m][0].extend(images)
            data[m][1].extend([[b for b in bs if b.score >= config.backend_threshold(b.label)] for bs in found])
    approx: dict[str, ApproxModel] = {}
    for m, (images, boxes) in data.items():
        tcfg = DetectorTrainConfig(
            width=96, height=54, channels=(8, 12, 16, 24), epochs=distill_epochs, batch=16, min_box_px=2.0
        )
        approx[m] = ApproxModel(m, fit_detector(tcfg, images, boxes, seed=config.seed), config)
    weights = {(m, lab): query_weight(backends[m], lab) for m in workload.models for lab in ("person", "car")}
    camera = MadEyeCamera(approx, region, workload, config=config, weights=weights, frame_size=(w, h))
    server = MadEyeServer(backends, workload, config)
    log = []
    for t in range(bootstrap_steps, bootstrap_steps + steps):
        views = {o: source.view(o, t * step_frames).image for o in camera.shape}
        sent = camera.step(views, t)
        result = server.process([SentFrame(t, o, views[o]) for o in sent])
        counts = {
            str(q): [
                sum(
                    1
                    for b in result.detections[q.model][i]
                    if b.label == q.object and b.score >= config.backend_threshold(b.label)
                )
                for i in range(len(sent))
            ]
            for q in workload.queries
        }
        log.append({"step": t, "shape": [str(o) for o in views], "sent": [str(o) for o in sent], "counts": counts})
        if server.due:
            server.distill_update(camera)
    return {
        "region": len(region),
        "bootstrap_views": bootstrap_steps * len(region),
        "steps": log,
        "frames_sent": camera.total_sent,
        "views_explored": camera.views_explored,
        "distill_updates": server.updates,
    }
