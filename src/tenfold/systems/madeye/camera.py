"""The camera side: visit the shape, rank its views, send the top N (spec §2 "Step").

Each step :meth:`MadEyeCamera.step` receives the images of the current shape S, runs the
approximation model of every backend the workload uses, scores each view relative to the
others in S (:mod:`.ranking`), returns the top ``n_send`` orientations to uplink, and
updates S (:mod:`.search`). The camera never sees backend outputs; the server pushes new
approximation heads to it (:meth:`set_approx`) after continual distillation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from tenfold.core.api import api
from tenfold.errors import ConfigError
from tenfold.vision.frames import Box, Image

from .approx import ViewModel
from .config import MadEyeConfig
from .orientation import Orientation, Region
from .ranking import rank, ranking_scores
from .search import ShapeSearch
from .workload import Workload

__all__ = ["MadEyeCamera"]


@api(stability="alpha")
class MadEyeCamera:
    """The on-camera loop: shape S, approximation ranking, top-N selection."""

    def __init__(
        self,
        approx: Mapping[str, ViewModel],
        region: Region,
        workload: Workload,
        *,
        k_explore: int | None = None,
        n_send: int | None = None,
        zoom_rule: bool | None = None,
        config: MadEyeConfig | None = None,
        weights: Mapping[tuple[str, str], float] | None = None,
        frame_size: tuple[int, int] = (192, 108),
    ) -> None:
        cfg = config or MadEyeConfig()
        overrides = {
            k: v for k, v in (("k_explore", k_explore), ("n_send", n_send), ("zoom_rule", zoom_rule)) if v is not None
        }
        self.config = cfg.replace(**overrides) if overrides else cfg
        workload.check_models(approx)
        self.approx: dict[str, ViewModel] = dict(approx)
        self.workload = workload
        self.region = region
        self.search = ShapeSearch(
            region,
            workload,
            weights or {},
            self.config,
            frame_size=frame_size,
            rng=np.random.default_rng(self.config.seed),
        )
        self.sent_counts: Counter[Orientation] = Counter()
        self.total_sent = 0
        self.views_explored = 0
        self.steps = 0
        self.last_outputs: dict[Orientation, dict[str, list[Box]]] = {}
        self.last_scores: dict[Orientation, float] = {}

    @property
    def shape(self) -> list[Orientation]:
        """The orientations to visit this step (S, in grid order)."""
        return self.search.shape

    def set_approx(self, backend: str, model: ViewModel) -> None:
        """Install new approximation weights for ``backend`` (pushed by the server)."""
        if backend not in self.approx:
            raise ConfigError("backend", backend, "must be one of " + ", ".join(map(repr, sorted(self.approx))))
        self.approx[backend] = model

    def step(self, views: Mapping[Orientation, Image], step: int | None = None) -> list[Orientation]:
        """Rank the views of S and return the top ``n_send`` to send; then update S."""
        t = self.steps if step is None else step
        shape = self.shape
        missing = [str(o) for o in shape if o not in views]
        if missing:
            raise ConfigError("views", missing, "must include an image for every member of the shape")
        images = [views[o] for o in shape]
        outputs: dict[Orientation, dict[str, list[Box]]] = {o: {} for o in shape}
        for name in self.workload.models:
            for o, boxes in zip(shape, self.approx[name].detect_views(t, shape, images), strict=True):
                outputs[o][name] = boxes
        share = {o: self.sent_counts[o] / self.total_sent if self.total_sent else 0.0 for o in shape}
        scores = ranking_scores(self.workload, outputs, share)
        sent = rank(scores)[: self.config.n_send]
        self.sent_counts.update(sent)
        self.total_sent += len(sent)
        self.views_explored += len(shape)
        self.last_outputs, self.last_scores = outputs, scores
        self.search.update(t, outputs, scores, sent)
        self.steps += 1
        return sent
