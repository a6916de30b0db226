"""Evaluation: the backend reference, the spec's accuracies, and policy runs (spec §2, §5).

**Reference** (:class:`ReferenceStore`). Every backend runs on every region orientation at
every evaluated step (and on sampled bootstrap steps over the whole grid): the accuracy
reference and what the hindsight/oracle arms read. Each (orientation, frame) is rendered
once and batched through all backends; outputs are cached on disk per (world, view size,
step interval, backend) so reruns are cheap. The server in simulation reads the same
cache for the frames a policy sends (:class:`ReferenceBackend`): identical to running the
deterministic backend on those pixels, without paying for it twice.

**Accuracy** (:class:`WorkloadScorer`), per backend cut-offs person 0.5 / car 0.7:

- binary: 1 if o's presence matches the region's.
- count: c(o) / max c (1 if max = 0).
- detect: AP@0.5 of o's boxes, in panorama angles, against the backend's region-pooled,
  identity-de-duplicated detections, over the maximum over o (1 when nothing is there).
- per step: the maximum over sent frames of the mean non-aggregate accuracy.
- agg_count: |global track IDs in sent frames| / |IDs a greedy best-dynamic oracle finds|,
  clipped to 1.
- workload: (n_agg/n) agg + (1 - n_agg/n) (mean over steps).

**Bootstrap** (:func:`prepare`). The first 30% of the stream: the anchor is the
best-fixed orientation there (scored over all 180), the region is +-60 degrees of pan
around it, and each backend's approximation model is distilled on its outputs over
bootstrap views of the region.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tenfold.core.api import api
from tenfold.core.assets import atomic_path, cache_dir
from tenfold.errors import AssetError, ConfigError
from tenfold.vision.frames import Box, Image
from tenfold.vision.metrics import average_precision

from .approx import ApproxModel, distill_approx
from .backends import SmallDetectorBackend, query_weight
from .config import MadEyeConfig, SimConfig, check_k_fits
from .orientation import Orientation, OrientationGrid, Region
from .server import SentFrame
from .sources import PTZSource, SimPanorama
from .tracker import PanoramaTracker, angle_boxes, dedup
from .workload import Query, Workload

__all__ = [
    "Accuracy",
    "Episode",
    "EvalResult",
    "Policy",
    "PolicyRun",
    "ReferenceBackend",
    "ReferenceStore",
    "Scenario",
    "WorkloadScorer",
    "evaluate",
    "prepare",
    "spearman",
]

Progress = Callable[[str], None]
LABELS = ("person", "car")


# -- the backend reference ----------------------------------------------------------------
class ReferenceStore:
    """Backend outputs per (step, orientation), computed on demand and cached on disk."""

    def __init__(
        self, source: SimPanorama, backends: Mapping[str, SmallDetectorBackend], sim: SimConfig, *, cache: bool = True
    ) -> None:
        self.source = source
        self.backends = dict(backends)
        self.sim = sim
        self.cache = cache
        self._boxes: dict[str, dict[tuple[int, int], list[Box]]] = {m: {} for m in self.backends}
        self._dirty: set[str] = set()
        for name in self.backends:
            path = self.path(name)
            if cache and path.exists():
                self._boxes[name] = _load_boxes(path)

    def path(self, name: str) -> Path:
        b = self.backends[name]
        key = f"{b.key}-{self.source.key()}-f{self.sim.step_frames}-floor{b.score_floor:g}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cache_dir("madeye", "reference") / f"{name}-{digest}.npz"

    def ensure(
        self, steps: Iterable[int], orientations: Sequence[Orientation], progress: Progress | None = None
    ) -> int:
        """Compute every missing (step, orientation) for all backends; returns views rendered."""
        todo = [
            (t, o)
            for t in steps
            for o in orientations
            if any((t, o.index) not in self._boxes[m] for m in self.backends)
        ]
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            images = [self.source.view(o, self.sim.frame_of(t)).image for t, o in chunk]
            for name, backend in self.backends.items():
                need = [i for i, (t, o) in enumerate(chunk) if (t, o.index) not in self._boxes[name]]
                if not need:
                    continue
                found = backend.detect_batch([images[i] for i in need])
                for i, boxes in zip(need, found, strict=True):
                    t, o = chunk[i]
                    # NOTE: rounded to float32 as the disk cache stores them, so a run that
                    # computes the reference and one that loads it give identical results.
                    self._boxes[name][(t, o.index)] = [_f32(b) for b in boxes]
                self._dirty.add(name)
            if progress is not None:
                progress(f"reference {min(start + 256, len(todo))}/{len(todo)} views")
        if self.cache:
            self.save()
        return len(todo)

    def save(self) -> None:
        for name in sorted(self._dirty):
            _save_boxes(self.path(name), self._boxes[name])
        self._dirty.clear()

    def boxes(self, model: str, step: int, o: Orientation) -> list[Box]:
        try:
            return self._boxes[model][(step, o.index)]
        except KeyError:
            raise ConfigError("reference", f"{model} step {step} {o}", "was never computed (call ensure)") from None


def _f32(b: Box) -> Box:
    x1, y1, x2, y2, score = (float(v) for v in np.array([*b.as_tuple(), b.score], dtype=np.float32))
    return Box(x1, y1, x2, y2, b.label, score, b.ident)


def _save_boxes(path: Path, table: Mapping[tuple[int, int], list[Box]]) -> None:
    keys = sorted(table)
    counts = np.array([len(table[k]) for k in keys], dtype=np.int32)
    flat = [b for k in keys for b in table[k]]
    arr = np.array([[*b.as_tuple(), b.score] for b in flat], dtype=np.float32).reshape(-1, 5)
    labels = np.array([LABELS.index(b.label) for b in flat], dtype=np.int8)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(
            fh, keys=np.array(keys, dtype=np.int32).reshape(-1, 2), counts=counts, boxes=arr, labels=labels
        )


def _load_boxes(path: Path) -> dict[tuple[int, int], list[Box]]:
    try:
        with np.load(path) as data:
            keys, counts, arr, labels = data["keys"], data["counts"], data["boxes"], data["labels"]
        out: dict[tuple[int, int], list[Box]] = {}
        pos = 0
        for (t, oi), n in zip(keys.tolist(), counts.tolist(), strict=True):
            out[(t, oi)] = [
                Box(
                    float(arr[j, 0]),
                    float(arr[j, 1]),
                    float(arr[j, 2]),
                    float(arr[j, 3]),
                    LABELS[int(labels[j])],
                    float(arr[j, 4]),
                )
                for j in range(pos, pos + n)
            ]
            pos += n
    except Exception as exc:
        raise AssetError(
            f"madeye reference cache {path} is corrupt ({type(exc).__name__}: {exc}); delete it to recompute"
        ) from None
    return out


# Design choice: in simulation the server reads the cached output of the same deterministic model.
class ReferenceBackend:
    """The server's backend in simulation: the cached outputs for the sent (step, orientation)."""

    def __init__(self, store: ReferenceStore, model: str) -> None:
        self.store = store
        self.name = model
        self.stands_for = store.backends[model].stands_for

    def detect_frames(self, frames: Sequence[SentFrame]) -> list[list[Box]]:
        return [self.store.boxes(self.name, f.step, f.orientation) for f in frames]


class BackendViewModel:
    """Backend outputs as a camera ranking model: the ``madeye_oracle_rank`` ablation only."""

    def __init__(self, store: ReferenceStore, model: str, config: MadEyeConfig) -> None:
        self.store = store
        self.model = model
        self.name = f"oracle[{model}]"
        self.config = config

    def detect_views(self, step: int, orientations: Sequence[Orientation], images: Sequence[Image]) -> list[list[Box]]:
        del images
        return [
            [b for b in self.store.boxes(self.model, step, o) if b.score >= self.config.backend_threshold(b.label)]
            for o in orientations
        ]


# -- accuracy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accuracy:
    """Workload accuracy of one run, with its parts."""

    workload: float
    non_aggregate: float | None
    aggregate: float | None
    per_step: tuple[float, ...]


class WorkloadScorer:
    """The spec's accuracies of every region orientation at every step, for one workload."""

    def __init__(
        self, store: ReferenceStore, workload: Workload, region: Region, steps: Sequence[int], config: MadEyeConfig
    ) -> None:
        self.workload = workload
        self.region = region
        self.steps = list(steps)
        self.config = config
        w, h = store.source.size
        views = list(region.orientations)
        n_t, n_r = len(self.steps), len(views)
        # kept[model][t][r]: the backend's boxes at its cut-offs; angles[model][t][r]: same in angles
        kept: dict[str, list[list[list[Box]]]] = {}
        angles: dict[str, list[list[list[Box]]]] = {}
        for m in workload.models:
            kept[m] = [
                [[b for b in store.boxes(m, t, o) if b.score >= config.backend_threshold(b.label)] for o in views]
                for t in self.steps
            ]
            angles[m] = [
                [angle_boxes(bs, o, w, h, region.anchor.pan) for bs, o in zip(row, views, strict=True)]
                for row in kept[m]
            ]
        self.acc_q: dict[Query, npt.NDArray[np.float64]] = {}
        for q in workload.non_aggregate:
            self.acc_q[q] = self._query_table(q, kept[q.model], angles[q.model], n_t, n_r)
        if workload.non_aggregate:
            self.acc = np.mean([self.acc_q[q] for q in workload.non_aggregate], axis=0)  # (T, R)
        else:
            self.acc = np.zeros((n_t, n_r))
        # ids[model][t][r]: {(label, track id)} seen by view r at step t (confirmed tracks only)
        self.ids: dict[str, list[list[frozenset[tuple[str, int]]]]] = {}
        for m in {q.model for q in workload.aggregate}:
            self.ids[m] = self._track_ids(angles[m], n_r)
        self._denominators: dict[tuple[Query, int], int] = {}

    @staticmethod
    def _query_table(
        q: Query, kept: list[list[list[Box]]], angles: list[list[list[Box]]], n_t: int, n_r: int
    ) -> npt.NDArray[np.float64]:
        out = np.ones((n_t, n_r))
        for t in range(n_t):
            counts = np.array([sum(1 for b in bs if b.label == q.object) for bs in kept[t]], dtype=np.float64)
            if q.task == "binary":
                out[t] = (counts > 0) == (counts.max() > 0)
            elif q.task == "count":
                out[t] = counts / counts.max() if counts.max() > 0 else 1.0
            else:  # detect
                per_view = [[b for b in bs if b.label == q.object] for bs in angles[t]]
                # Design choice: detect AP is against *all* region-pooled objects (recall counts coverage).
                pooled = [p.box for p in dedup(per_view)]
                # Design choice: nothing pooled means nothing to detect; every view scores 1.0.
                if not pooled:
                    continue
                aps = np.array([average_precision([bs], [pooled], q.object) for bs in per_view])
                out[t] = aps / aps.max() if aps.max() > 0 else 1.0
        return out

    @staticmethod
    def _track_ids(angles: list[list[list[Box]]], n_r: int) -> list[list[frozenset[tuple[str, int]]]]:
        tracker = PanoramaTracker()
        raw: list[list[set[tuple[str, int]]]] = []
        for row in angles:
            objects = dedup(row)
            ids = tracker.update(objects)
            seen: list[set[tuple[str, int]]] = [set() for _ in range(n_r)]
            for obj, ident in zip(objects, ids, strict=True):
                for v, _i in obj.views:
                    seen[v].add((obj.box.label, ident))
            raw.append(seen)
        confirmed = tracker.confirmed_ids
        return [[frozenset(x for x in s if x[1] in confirmed) for s in row] for row in raw]

    def _view_ids(self, q: Query, t: int, r: int) -> set[int]:
        return {i for lab, i in self.ids[q.model][t][r] if lab == q.object}

    def _greedy_ids(self, q: Query, n: int) -> set[int]:
        """IDs a greedy best-dynamic oracle collects: each step, N views adding the most new IDs."""
        found: set[int] = set()
        for t in range(len(self.steps)):
            for _ in range(n):
                gains = [len(self._view_ids(q, t, r) - found) for r in range(len(self.region))]
                r = int(np.argmax(gains))
                if gains[r] == 0:
                    break
                found |= self._view_ids(q, t, r)
        return found

    def agg_denominator(self, q: Query, n: int) -> int:
        """|IDs| the greedy best-dynamic oracle finds for agg query ``q`` sending ``n`` per step."""
        if (q, n) not in self._denominators:
            self._denominators[(q, n)] = len(self._greedy_ids(q, n))
        return self._denominators[(q, n)]

    def positions(self, sent: Sequence[Orientation]) -> list[int]:
        return [self.region.position(o) for o in sent]

    def score(self, sent: Sequence[Sequence[Orientation]]) -> Accuracy:
        """Workload accuracy of sending ``sent[t]`` at step t (one list per evaluated step)."""
        if len(sent) != len(self.steps):
            raise ConfigError("sent", len(sent), f"must hold one list per evaluated step ({len(self.steps)})")
        per_step = []
        for t, frames in enumerate(sent):
            pos = self.positions(frames)
            per_step.append(float(self.acc[t, pos].max()) if pos else 0.0)
        non_agg = float(np.mean(per_step)) if self.workload.non_aggregate else None
        agg = None
        if self.workload.aggregate:
            parts = []
            for q in self.workload.aggregate:
                got: set[int] = set()
                for t, frames in enumerate(sent):
                    for r in self.positions(frames):
                        got |= self._view_ids(q, t, r)
                denom = self.agg_denominator(q, max((len(f) for f in sent), default=1))
                parts.append(1.0 if denom == 0 else min(1.0, len(got) / denom))
            agg = float(np.mean(parts))
        share = self.workload.agg_share
        value = share * (agg or 0.0) + (1 - share) * (non_agg or 0.0)
        return Accuracy(value, non_agg, agg, tuple(per_step))

    def oracle(self, n: int) -> list[list[Orientation]]:
        """Best dynamic: each step the true top-N views (greedy on new IDs for agg_count)."""
        views = self.region.orientations
        share = self.workload.agg_share
        found: dict[Query, set[int]] = {q: set() for q in self.workload.aggregate}
        out: list[list[Orientation]] = []
        for t in range(len(self.steps)):
            chosen: list[int] = []
            for _ in range(min(n, len(views))):
                best_acc = max((self.acc[t, r] for r in chosen), default=0.0)
                gains = np.maximum(self.acc[t] - best_acc, 0.0) * (1 - share)
                for q in self.workload.aggregate:
                    new = np.array([len(self._view_ids(q, t, r) - found[q]) for r in range(len(views))], float)
                    gains = gains + share / len(self.workload.aggregate) * new / max(1.0, float(new.max()))
                # Design choice: mixed workloads take frames by greedy marginal gain of the combined objective.
                if not chosen:
                    gains = gains + 1e-9 * self.acc[t]
                gains[chosen] = -1.0
                r = int(np.argmax(gains))
                chosen.append(r)
                for q in self.workload.aggregate:
                    found[q] |= self._view_ids(q, t, r)
            out.append([views[r] for r in chosen])
        return out

    def best_fixed(self, n: int) -> list[Orientation]:
        """Best fixed (hindsight): N orientations chosen greedily on the evaluated steps."""
        chosen: list[Orientation] = []
        for _ in range(min(n, len(self.region))):
            best, best_val = None, -1.0
            for o in self.region.orientations:
                if o in chosen:
                    continue
                val = self.score([[*chosen, o]] * len(self.steps)).workload
                if val > best_val + 1e-12:
                    best, best_val = o, val
            assert best is not None
            chosen.append(best)
        return chosen


# -- policies -------------------------------------------------------------------------------
@dataclass
class PolicyRun:
    """What a policy did: the frames it sent each step and the views it looked at."""

    sent: list[list[Orientation]]
    views_explored: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Episode:
    """One evaluated stream: what a policy may use. ``scorer`` is for hindsight arms only."""

    source: PTZSource
    region: Region
    anchor: Orientation
    workload: Workload
    steps: list[int]
    sim: SimConfig
    config: MadEyeConfig
    approx: dict[str, ApproxModel]
    backends: dict[str, ReferenceBackend]
    store: ReferenceStore
    bootstrap_ranking: list[Orientation]
    scorer: WorkloadScorer
    weights: dict[tuple[str, str], float]

    def view(self, o: Orientation, step: int) -> Image:
        return self.source.view(o, self.sim.frame_of(step)).image


class Policy(Protocol):
    """An orientation policy: ``run`` returns what it sent at every evaluated step."""

    name: str
    hindsight: bool

    @property
    def n_send(self) -> int: ...

    def run(self, episode: Episode) -> PolicyRun: ...


@dataclass(frozen=True)
class EvalResult:
    """The outcome of one policy on one stream and workload."""

    policy: str
    accuracy: float
    non_aggregate: float | None
    aggregate: float | None
    frames_sent: int
    views_explored: int
    steps: int
    hindsight: bool
    metrics: Mapping[str, float]

    @property
    def frames_per_step(self) -> float:
        return self.frames_sent / self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "accuracy": self.accuracy,
            "non_aggregate": self.non_aggregate,
            "aggregate": self.aggregate,
            "frames_sent": self.frames_sent,
            "views_explored": self.views_explored,
            "steps": self.steps,
            "hindsight": self.hindsight,
            "metrics": dict(self.metrics),
        }


# -- preparation ----------------------------------------------------------------------------
@dataclass
class Scenario:
    """A prepared stream (seed) and workload: anchor, region, reference and approximations."""

    episode: Episode

    def run(self, policy: Policy) -> EvalResult:
        ep = self.episode
        run = policy.run(ep)
        acc = ep.scorer.score(run.sent)
        return EvalResult(
            policy.name,
            acc.workload,
            acc.non_aggregate,
            acc.aggregate,
            sum(len(s) for s in run.sent),
            run.views_explored,
            len(ep.steps),
            policy.hindsight,
            run.metrics,
        )


def _full_grid_region() -> Region:
    grid = OrientationGrid.default()
    return Region(grid[0], 180, grid.orientations)


def prepare(
    source: SimPanorama,
    workload: Workload,
    *,
    sim: SimConfig | None = None,
    config: MadEyeConfig | None = None,
    backends: Mapping[str, SmallDetectorBackend] | None = None,
    progress: Progress | None = None,
    cache: bool = True,
) -> Scenario:
    """Bootstrap one stream for one workload: anchor, region, reference, distillation."""
    sim = sim or SimConfig()
    cfg = config or MadEyeConfig()
    check_k_fits(cfg.k_explore, sim.region_cells)  # before any backend, reference or distillation work
    if backends is None:
        backends = {m: SmallDetectorBackend.trained(m, score_floor=sim.score_floor) for m in workload.models}
    workload.check_models(backends)
    backends = {m: backends[m] for m in workload.models}
    n_frames = source.n_frames
    if n_frames is not None and sim.frame_of(sim.total_steps - 1) >= n_frames:
        raise ConfigError("eval_steps", sim.eval_steps, f"needs more than the source's {n_frames} frames")
    store = ReferenceStore(source, backends, sim, cache=cache)
    grid = OrientationGrid.default()
    # 1. Anchor: the best fixed orientation over sampled bootstrap steps, scored on all 180.
    # Design choice: the anchor is scored on every 3rd bootstrap step over all 180 orientations.
    boot = list(range(0, sim.bootstrap_steps, sim.anchor_stride)) or [0]
    store.ensure(boot, grid.orientations, progress)
    boot_scorer = WorkloadScorer(store, workload, _full_grid_region(), boot, cfg)
    fixed = [boot_scorer.score([[o]] * len(boot)).workload for o in grid.orientations]
    anchor = grid[int(np.argmax(fixed))]
    region = grid.region(anchor, sim.region_half_width)
    ranking = sorted(region.orientations, key=lambda o: (-fixed[o.index], o.index))
    # 2. Reference on every evaluated step over the region.
    steps = list(range(sim.bootstrap_steps, sim.total_steps))
    store.ensure(steps, region.orientations, progress)
    scorer = WorkloadScorer(store, workload, region, steps, cfg)
    # 3. Distil one approximation model per backend on its outputs over bootstrap views.
    rng = np.random.default_rng([source.seed, 7])
    # Design choice: distillation views are sampled from those bootstrap steps x the region.
    pairs = [(t, o) for t in boot for o in region.orientations]
    pick = sorted(rng.choice(len(pairs), size=min(sim.approx_images, len(pairs)), replace=False).tolist())
    sample = [pairs[i] for i in pick]
    images = [source.view(o, sim.frame_of(t)).image for t, o in sample]
    key = json.dumps(
        {
            "world": source.key(),
            "anchor": str(anchor),
            "sample": len(sample),
            "boot": [boot[0], boot[-1], sim.anchor_stride],
            "sim": sim.to_dict(),
        },
        sort_keys=True,
    )
    approx: dict[str, ApproxModel] = {}
    for m in workload.models:
        labels = [[b for b in store.boxes(m, t, o) if b.score >= cfg.backend_threshold(b.label)] for t, o in sample]
        if progress is not None:
            progress(f"distilling approx[{m}] on {len(sample)} bootstrap views")
        approx[m] = distill_approx(m, images, labels, sim, cfg, key=key, seed=source.seed)
    weights = {(m, lab): query_weight(backends[m], lab) for m in workload.models for lab in LABELS}
    episode = Episode(
        source,
        region,
        anchor,
        workload,
        steps,
        sim,
        cfg,
        approx,
        {m: ReferenceBackend(store, m) for m in workload.models},
        store,
        ranking,
        scorer,
        weights,
    )
    return Scenario(episode)


@api(stability="alpha")
def evaluate(
    policy: Policy,
    source: SimPanorama,
    workload: Workload,
    steps: int = 300,
    seed: int = 0,
    *,
    sim: SimConfig | None = None,
    config: MadEyeConfig | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Run ``policy`` on ``source`` for ``steps`` evaluated steps (after a 30% bootstrap).

    ``seed`` becomes the episode's ``MadEyeConfig.seed``: the randomness of a policy that
    carries no seed of its own (``MadEyePolicy()`` without a config, ``EpsilonGreedyMAB()``
    without ``seed``). A policy built with its own seed (``MadEyePolicy(config)``,
    ``EpsilonGreedyMAB(seed=...)``) keeps it, so one policy object gives the same run here
    and in :meth:`Scenario.run`. The world's seed is the source's.
    """
    sim = (sim or SimConfig()).replace(eval_steps=steps)
    cfg = (config or MadEyeConfig()).replace(seed=seed)
    return prepare(source, workload, sim=sim, config=cfg, progress=progress).run(policy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN if either side is constant."""
    from scipy.stats import rankdata

    if len(x) < 2:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])
