"""Ranking the shape's views from approximation outputs (spec §2, "Ranking score").

Every score is relative within the shape S (the camera never sees the rest), averaged
over the workload's queries; ties go to the lower grid index. Per query with count c(o)
of its object in view o's approximation output:

- binary: 1[c > 0]
- count: c / max_S c
- detect: 0.7 c/max + 0.3 area/max_area for people, 0.6 / 0.4 for cars
- agg_count: c / max x {1.4, 1.2, 1.1} when o's share of sent frames is below
  {1%, 4%, 7%} (a bonus for rarely sent views, where new objects are likelier)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tenfold.vision.frames import Box

from .orientation import Orientation
from .workload import Query, Workload

__all__ = ["AGG_BONUS", "DETECT_MIX", "ViewOutputs", "count_of", "rank", "ranking_scores"]

ViewOutputs = Mapping[str, Sequence[Box]]
"""One view's boxes per model (already cut at the relevant score threshold)."""

DETECT_MIX = {"person": (0.7, 0.3), "car": (0.6, 0.4)}
AGG_BONUS = ((0.01, 1.4), (0.04, 1.2), (0.07, 1.1))


def count_of(out: ViewOutputs, model: str, label: str) -> int:
    return sum(1 for b in out.get(model, ()) if b.label == label)


def area_of(out: ViewOutputs, model: str, label: str) -> float:
    return sum(b.area for b in out.get(model, ()) if b.label == label)


def _ratio(x: float, top: float) -> float:
    return x / top if top > 0 else 0.0


def agg_bonus(share: float) -> float:
    for limit, bonus in AGG_BONUS:
        if share < limit:
            return bonus
    return 1.0


def _query_scores(
    q: Query, outputs: Mapping[Orientation, ViewOutputs], sent_share: Mapping[Orientation, float]
) -> dict[Orientation, float]:
    counts = {o: count_of(out, q.model, q.object) for o, out in outputs.items()}
    top = max(counts.values(), default=0)
    if q.task == "binary":
        return {o: float(c > 0) for o, c in counts.items()}
    if q.task == "count":
        return {o: _ratio(c, top) for o, c in counts.items()}
    if q.task == "detect":
        areas = {o: area_of(out, q.model, q.object) for o, out in outputs.items()}
        top_area = max(areas.values(), default=0.0)
        wc, wa = DETECT_MIX[q.object]
        return {o: wc * _ratio(counts[o], top) + wa * _ratio(areas[o], top_area) for o in outputs}
    return {o: _ratio(c, top) * agg_bonus(sent_share.get(o, 0.0)) for o, c in counts.items()}


def ranking_scores(
    workload: Workload,
    outputs: Mapping[Orientation, ViewOutputs],
    sent_share: Mapping[Orientation, float] | None = None,
) -> dict[Orientation, float]:
    """Each view's ranking score: the mean over queries of its per-query score within S.

    ``sent_share[o]`` is o's share of all frames sent so far (agg_count bonus only).
    """
    share = sent_share or {}
    total = dict.fromkeys(outputs, 0.0)
    for q in workload.queries:
        for o, s in _query_scores(q, outputs, share).items():
            total[o] += s
    return {o: s / len(workload.queries) for o, s in total.items()}


def rank(scores: Mapping[Orientation, float]) -> list[Orientation]:
    """Views by descending score; ties go to the lower grid index."""
    return sorted(scores, key=lambda o: (-scores[o], o.index))
