"""The compared arms, each at full strength (spec §6), and MadEye itself as an arm.

- :class:`MadEyePolicy`: camera + server with distilled approximation ranking and
  continual distillation; ``oracle_rank=True`` ranks (and updates the shape) with the
  backends' own outputs inside S (the ``madeye_oracle_rank`` ablation, the only arm that
  reads backend counts on the camera side).
- :class:`BestFixed`: the N fixed orientations chosen greedily *in hindsight* on the
  evaluated steps; an upper bound for static placement, labelled hindsight.
- :class:`Panoptes`: the bootstrap top-4 views dwelling 16, 9, 4 and 1 steps, cycled (the
  dwell counter resets on each advance); if another schedule view's approximation count
  rose, the largest riser is visited for one step. N = 1.
- :class:`PTZTracking`: follow the largest-area track of the strongest backend; return
  to the anchor when the track is lost. N = 1.
- :class:`EpsilonGreedyMAB`: epsilon = 0.15; reward = EWMA (alpha = 0.7, last 5
  observations) of the backend count on sent frames, car weight = share of car queries;
  every arm is pulled once first; sends the top N.
- :class:`BestDynamic`: the oracle: each step the true top-N orientations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tenfold.core.config import check_range
from tenfold.vision.frames import Box
from tenfold.vision.tracker import IouTracker

from .approx import ApproxModel, ViewModel
from .backends import PROJECT_BACKENDS
from .camera import MadEyeCamera
from .config import MadEyeConfig
from .evaluate import BackendViewModel, Episode, PolicyRun, spearman
from .orientation import Orientation
from .server import MadEyeServer, SentFrame
from .tracker import angle_boxes, view_half_fov

__all__ = ["BestDynamic", "BestFixed", "EpsilonGreedyMAB", "MadEyePolicy", "PTZTracking", "Panoptes"]


def _backend_count(ep: Episode, step: int, o: Orientation, car_weight: float) -> float:
    """Backend count on a sent frame, averaged over the workload's models (server feedback)."""
    total = 0.0
    for m in ep.workload.models:
        boxes = [b for b in ep.store.boxes(m, step, o) if b.score >= ep.config.backend_threshold(b.label)]
        total += sum(car_weight if b.label == "car" else 1.0 - car_weight for b in boxes)
    return total / len(ep.workload.models)


@dataclass
class MadEyePolicy:
    """MadEye: the shape search, approximation ranking and continual distillation."""

    config: MadEyeConfig | None = None
    """The camera's and server's config; None: the episode's (its seed included)."""
    oracle_rank: bool = False
    name: str = "madeye"
    hindsight: bool = False

    @property
    def n_send(self) -> int:
        return (self.config or MadEyeConfig()).n_send

    def run(self, ep: Episode) -> PolicyRun:
        cfg = self.config or ep.config
        models: dict[str, ViewModel]
        if self.oracle_rank:
            models = {m: BackendViewModel(ep.store, m, cfg) for m in ep.workload.models}
        else:
            models = {m: ApproxModel(a.backend, a.detector, cfg) for m, a in ep.approx.items()}
        w, h = ep.source.size
        camera = MadEyeCamera(models, ep.region, ep.workload, config=cfg, weights=ep.weights, frame_size=(w, h))
        server = MadEyeServer(ep.backends, ep.workload, cfg)
        sent_all: list[list[Orientation]] = []
        rho: list[float] = []
        rho_old: list[float] = []
        rho_new: list[float] = []
        previous: dict[str, ViewModel] | None = None
        updates = 0
        for t in ep.steps:
            shape = camera.shape
            views = {o: ep.view(o, t) for o in shape}
            sent = camera.step(views, t)
            server.process([SentFrame(t, o, views[o]) for o in sent])
            sent_all.append(sent)
            # Evaluation only: the approximation's rank agreement with the backend inside S.
            for m in ep.workload.models:
                objs = {lab for mm, lab in ep.workload.pairs if mm == m}
                truth = [
                    sum(
                        1
                        for b in ep.store.boxes(m, t, o)
                        if b.label in objs and b.score >= cfg.backend_threshold(b.label)
                    )
                    for o in shape
                ]
                approx = [sum(1 for b in camera.last_outputs[o][m] if b.label in objs) for o in shape]
                rho.append(spearman(approx, truth))
                if previous is not None and updates == 1:
                    old = previous[m].detect_views(t, shape, [views[o] for o in shape])
                    rho_old.append(spearman([sum(1 for b in bs if b.label in objs) for bs in old], truth))
                    rho_new.append(rho[-1])
            if server.due and not self.oracle_rank:
                if updates == 0:
                    previous = dict(camera.approx)
                server.distill_update(camera)
                updates += 1
        metrics = {"distill_updates": float(updates)}
        # NaN (no step with varied counts on both sides) is left out rather than written.
        for key, vals in (("spearman", rho), ("spearman_before_update", rho_old), ("spearman_after_update", rho_new)):
            value = _nanmean(vals)
            if not np.isnan(value):
                metrics[key] = value
        if not self.oracle_rank:
            metrics["camera_mflops_per_view"] = (
                sum(a.flops_per_view() for a in camera.approx.values() if isinstance(a, ApproxModel)) / 1e6
            )
        return PolicyRun(sent_all, camera.views_explored, metrics)


def _nanmean(values: Sequence[float]) -> float:
    arr = np.array([v for v in values if not np.isnan(v)])
    return float(arr.mean()) if arr.size else float("nan")


@dataclass
class BestFixed:
    """Best fixed orientation(s), chosen greedily in hindsight on the evaluated steps."""

    n_send: int = 2
    name: str = "best_fixed"
    hindsight: bool = True

    def run(self, ep: Episode) -> PolicyRun:
        chosen = ep.scorer.best_fixed(self.n_send)
        return PolicyRun([list(chosen) for _ in ep.steps], len(chosen) * len(ep.steps), {"hindsight": 1.0})


@dataclass
class BestDynamic:
    """The best-dynamic oracle: the true top-N orientations each step."""

    n_send: int = 2
    name: str = "best_dynamic"
    hindsight: bool = True

    def run(self, ep: Episode) -> PolicyRun:
        sent = ep.scorer.oracle(self.n_send)
        zoomed = float(np.mean([s[0].zoom > 1 for s in sent]))
        return PolicyRun(sent, len(ep.region) * len(ep.steps), {"hindsight": 1.0, "zoomed_share": zoomed})


@dataclass
class Panoptes:
    """Panoptes (IPSN'17): a dwell-time schedule over the bootstrap top-4, with interrupts."""

    dwell: tuple[int, ...] = (16, 9, 4, 1)
    n_send: int = 1
    name: str = "panoptes"
    hindsight: bool = False

    def run(self, ep: Episode) -> PolicyRun:
        schedule = ep.bootstrap_ranking[: len(self.dwell)]
        approx = ep.approx
        current, counter = 0, 0
        last: dict[Orientation, int] = {}
        sent_all: list[list[Orientation]] = []
        interrupts = 0
        for t in ep.steps:
            images = [ep.view(o, t) for o in schedule]
            counts = dict.fromkeys(schedule, 0)
            for m in ep.workload.models:
                for o, boxes in zip(schedule, approx[m].detect(images), strict=True):
                    counts[o] += sum(1 for b in boxes if (m, b.label) in ep.workload.pairs)
            risers = [
                (counts[o] - last[o], -o.index, o)
                for o in schedule
                if o != schedule[current] and o in last and counts[o] > last[o]
            ]
            last = counts
            if risers:
                # Design choice: an interrupt step does not consume the dwell counter.
                sent_all.append([max(risers)[2]])  # the largest riser, for one step
                interrupts += 1
                continue
            sent_all.append([schedule[current]])
            counter += 1
            if counter >= self.dwell[current]:
                current, counter = (current + 1) % len(schedule), 0
        return PolicyRun(sent_all, len(schedule) * len(ep.steps), {"interrupts": float(interrupts)})


@dataclass
class PTZTracking:
    """PTZ tracking: follow the largest-area track of the strongest backend (N = 1)."""

    n_send: int = 1
    name: str = "tracking"
    hindsight: bool = False

    def run(self, ep: Episode) -> PolicyRun:
        def size(m: str) -> int:
            return PROJECT_BACKENDS.get(m).width * PROJECT_BACKENDS.get(m).height if m in PROJECT_BACKENDS else 0

        # Design choice: "strongest" = the backend with the largest input.
        model = max(ep.workload.models, key=size)
        w, h = ep.source.size
        tracker = IouTracker(iou_threshold=0.2, max_age=3, min_hits=1)
        current = ep.region.anchor
        target: int | None = None
        sent_all: list[list[Orientation]] = []
        for t in ep.steps:
            sent_all.append([current])
            boxes = [
                b
                for b in ep.backends[model].detect_frames([SentFrame(t, current, ep.view(current, t))])[0]
                if b.score >= ep.config.backend_threshold(b.label)
            ]
            tracks = tracker.update(angle_boxes(boxes, current, w, h, ep.region.anchor.pan))
            by_id = {b.ident: b for b in tracks}
            if target not in by_id:
                target = max(tracks, key=lambda b: b.area).ident if tracks else None
            if target is None:
                current = ep.region.anchor
                continue
            current = self._aim(ep, by_id[target], w, h)
        return PolicyRun(sent_all, len(ep.steps), {})

    @staticmethod
    def _aim(ep: Episode, box: Box, w: int, h: int) -> Orientation:
        """The region view nearest the target's centre, at the largest zoom that keeps it in view."""
        cx, cy = box.center  # degrees: pan offset from the anchor, minus elevation
        el = -cy
        best = min(
            (o for o in ep.region.orientations if o.zoom == 1),
            key=lambda o: (abs(ep.region.pan_offset(o.pan) - cx) + abs(o.tilt - el), o.index),
        )
        # Design choice: the largest zoom that keeps the target inside 80% of the half field of view.
        for z in (3, 2):
            hw, hh = view_half_fov(w, h, z)
            dx = abs(ep.region.pan_offset(best.pan) - cx) + box.width / 2
            dy = abs(best.tilt - el) + box.height / 2
            if dx <= 0.8 * hw and dy <= 0.8 * hh:
                return best.with_zoom(z)
        return best


@dataclass
class EpsilonGreedyMAB:
    """epsilon-greedy bandit over the region's orientations (spec §6)."""

    n_send: int = 2
    epsilon: float = 0.15
    alpha: float = 0.7
    window: int = 5
    seed: int | None = None
    """Seed of the epsilon draws, >= 0; None: the episode's ``MadEyeConfig.seed``."""
    name: str = "mab"
    hindsight: bool = False

    def __post_init__(self) -> None:
        if self.seed is not None:
            check_range("seed", self.seed, lo=0)

    def run(self, ep: Episode) -> PolicyRun:
        rng = np.random.default_rng([ep.config.seed if self.seed is None else self.seed, 11])
        arms = list(ep.region.orientations)
        n_car = sum(q.object == "car" for q in ep.workload.queries)
        # Design choice: person weight = share of person queries, car weight = share of car queries.
        car_weight = n_car / len(ep.workload.queries)
        obs: dict[Orientation, deque[float]] = {o: deque(maxlen=self.window) for o in arms}
        unpulled = list(arms)
        sent_all: list[list[Orientation]] = []
        for t in ep.steps:
            if unpulled:
                sent = unpulled[: self.n_send]
                unpulled = unpulled[self.n_send :]
            elif float(rng.random()) < self.epsilon:
                sent = [arms[i] for i in sorted(rng.choice(len(arms), self.n_send, replace=False).tolist())]
            else:
                reward = {o: self._ewma(obs[o]) for o in arms}
                sent = sorted(arms, key=lambda o: (-reward[o], o.index))[: self.n_send]
            for o in sent:
                obs[o].append(_backend_count(ep, t, o, car_weight))
            sent_all.append(sent)
        return PolicyRun(sent_all, self.n_send * len(ep.steps), {})

    def _ewma(self, values: deque[float]) -> float:
        if not values:
            return 0.0
        out = values[0]
        for v in list(values)[1:]:
            out = self.alpha * v + (1 - self.alpha) * out
        return out
