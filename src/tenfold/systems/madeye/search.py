"""The shape search: MadEye's core algorithm (spec §2, "Shape update"; paper §4.1).

The camera visits a shape S of at most K contiguous orientations each step. After ranking
and sending, S is updated from the approximation models' outputs on its members:

1. **Factor.** f(o) = sum over queries of w(model, object) x term: presence (binary),
   count (count), box area over frame area (detect), count x (3 + min(age, 3)) / 6
   (agg_count; age = steps since o was last sent).
2. **Potential** = 0.3 f + 0.7 trend; trend = 0.7 d1 + 0.2 d2 + 0.1 d3 over o's last 4
   ranking scores if its 4th-last visit is under 30 steps old, else 0.3 f.
3. **Swap pass.** S sorted ascending by potential, L = 0, R = |S| - 1. L is skipped if it
   is the best member by f or was added last step. A swap (drop L, add R's best untried
   candidate) happens when f(R)/f(L) >= 1.5 (1.75 on R's 2nd expansion, 2.0 on its 3rd or
   later) or f(L) = 0; a swap advances L and R's count, a failed ratio or no feasible
   candidate moves R down and resets the count. The first 3 updates allow one change.
4. **Neighbours.** R's candidates are its 8-neighbours in the region outside S, ranked by
   viability x (number of adjacent members); viability sums, over adjacent members o,
   (d_centre - d_centroid) / d_centre, distances from the centre of o's frame and from
   the centroid of o's box centres to o's frame edge facing the candidate (perpendicular)
   or, for a diagonal candidate, to the facing corner. Candidates whose pan/tilt cell
   already holds a member are excluded: S holds at most one orientation per cell.
5. **Peek.** A new member touching >= 2 members also brings the next orientation beyond it
   (if in the region, outside S and |S| < K); next step a peek with f < mean f / 4 is
   dropped.
6. **Initial S:** the anchor and its 4 neighbours, shifted inward at region edges.
7. **Zoom rule.** A member whose boxes (>= 1) all fit the central 1/z window (z = 3 tried
   first) is replaced by its zoom-z view for 3 steps, then reverts.

Invariants after every update (tested over 1,000 random steps): S is 8-connected (by
cells), inside the region, and 1 <= |S| <= K.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tenfold.vision.frames import Box

from .config import MadEyeConfig, check_k_fits
from .orientation import Cell, Orientation, Region, cell_direction
from .ranking import ViewOutputs, area_of, count_of
from .workload import Workload

__all__ = ["ShapeSearch", "ShapeUpdate", "swap_threshold", "viability"]

POTENTIAL_F, POTENTIAL_TREND = 0.3, 0.7
TREND_WEIGHTS = (0.7, 0.2, 0.1)
NO_TREND = 0.3  # trend = 0.3 f when o's history is too short or too old
GROWTH_RATIOS = (1.1, 2.0, 2.5)


def swap_threshold(expansions: int, ratios: Sequence[float] = (1.5, 1.75, 2.0)) -> float:
    """f(R)/f(L) needed for R's next swap, given its swaps so far in this pass."""
    return ratios[min(expansions, len(ratios) - 1)]


def viability(centroid: tuple[float, float] | None, direction: tuple[int, int], width: int, height: int) -> float:
    """(d_centre - d_centroid) / d_centre toward the frame edge or corner facing ``direction``.

    ``direction`` is (dpan, dtilt) in grid steps; pan grows to the right and tilt upward, so
    tilt +1 faces the top edge (y = 0). Toward an edge (one of dpan, dtilt is 0) both
    distances are perpendicular to that edge; toward a corner they are to the corner point
    (spec §2, shape update 4). No boxes (``centroid`` None) gives 0.
    """
    if centroid is None:
        return 0.0
    dp, dt = direction
    # The facing edge is the line x = fx (dp != 0) or y = fy (dt != 0); a diagonal faces both: the corner.
    fx, fy = width / 2 * (1 + dp), height / 2 * (1 - dt)
    d_centre = float(np.hypot(abs(dp) * (fx - width / 2), abs(dt) * (fy - height / 2)))
    d_centroid = float(np.hypot(abs(dp) * (fx - centroid[0]), abs(dt) * (fy - centroid[1])))
    return (d_centre - d_centroid) / d_centre


@dataclass
class _Member:
    orientation: Orientation
    added: int | None
    """The update that added it (None for the initial shape)."""
    peek: bool = False
    base_zoom: int | None = None
    """Set while a zoom-rule replacement is held: the zoom it reverts to."""
    hold_until: int = -1


@dataclass
class ShapeUpdate:
    """What one update changed (for logs and tests)."""

    swaps: list[tuple[Orientation, Orientation]] = field(default_factory=list)
    peeks_added: list[Orientation] = field(default_factory=list)
    peeks_dropped: list[Orientation] = field(default_factory=list)
    zoomed: list[tuple[Orientation, Orientation]] = field(default_factory=list)
    grown: list[Orientation] = field(default_factory=list)
    """Members added without a drop (``allow_expand=True`` only)."""


class ShapeSearch:
    """The shape S and its per-step update (spec §2)."""

    def __init__(
        self,
        region: Region,
        workload: Workload,
        weights: Mapping[tuple[str, str], float],
        config: MadEyeConfig | None = None,
        *,
        frame_size: tuple[int, int] = (192, 108),
        rng: np.random.Generator | None = None,
    ) -> None:
        self.config = config or MadEyeConfig()
        check_k_fits(self.config.k_explore, len(region.cells))
        self.region = region
        self.workload = workload
        self.weights = dict(weights)
        self.width, self.height = frame_size
        self.rng = rng or np.random.default_rng(self.config.seed)
        self.updates = 0
        self.history: dict[Orientation, deque[tuple[int, float]]] = {}
        self.last_sent: dict[Orientation, int] = {}
        self._centroids: dict[Orientation, tuple[float, float] | None] = {}
        self._boxes: dict[Orientation, list[Box]] = {}
        # Keyed by the orientation a member joined at (a zoom-rule replacement keeps its key).
        self.members: dict[Orientation, _Member] = {o: _Member(o, None) for o in self._initial(region.anchor)}

    # -- the shape ------------------------------------------------------------------------
    @property
    def shape(self) -> list[Orientation]:
        """The members of S in grid order."""
        return sorted((m.orientation for m in self.members.values()), key=lambda o: o.index)

    def _initial(self, anchor: Orientation) -> list[Orientation]:
        """The anchor and its 4 neighbours, the cross shifted inward at region edges.

        The region is centred on the anchor's pan, so only tilt can hit an edge: at tilt
        +-30 the cross's centre moves to +-15 (the anchor stays in S as its end). With
        K < 5, the anchor and its first K-1 in-region neighbours (left, right, up, down).
        """
        # Design choice: at tilt +-30 the cross moves inward one tilt step (the anchor stays in S).
        centre = Orientation(anchor.pan, max(-15, min(15, anchor.tilt)), anchor.zoom)
        cross = [centre, centre.rotated(-30), centre.rotated(30), centre.rotated(0, -15), centre.rotated(0, 15)]
        if self.config.k_explore >= 5 and all(o in self.region for o in cross):
            return cross
        near = [anchor.rotated(-30), anchor.rotated(30)]
        near += [anchor.rotated(0, dt) for dt in (15, -15) if abs(anchor.tilt + dt) <= 30]
        return [anchor, *[n for n in near if n in self.region]][: self.config.k_explore]

    # -- factor and potential ---------------------------------------------------------------
    def factor(self, o: Orientation, out: ViewOutputs, step: int) -> float:
        """f(o): the weighted sum of per-query terms on o's approximation output."""
        total = 0.0
        frame_area = float(self.width * self.height)
        for q in self.workload.queries:
            c = count_of(out, q.model, q.object)
            if q.task == "binary":
                term = float(c > 0)
            elif q.task == "count":
                term = float(c)
            elif q.task == "detect":
                term = area_of(out, q.model, q.object) / frame_area
            else:
                last = self.last_sent.get(o)
                age = 3 if last is None else step - last
                term = c * (3 + min(age, 3)) / 6
            total += self.weights.get(q.pair, 1.0) * term
        return total

    def potential(self, o: Orientation, f: float, step: int) -> float:
        """0.3 f + 0.7 trend over o's last 4 ranking scores (0.3 f when too few or too old)."""
        # Design choice: the history is per orientation (zoom included): a zoomed view ranks differently.
        hist = self.history.get(o, deque())
        if len(hist) >= 4 and step - hist[-4][0] < self.config.trend_window:
            s = [v for _, v in list(hist)[-4:]]
            deltas = (s[3] - s[2], s[2] - s[1], s[1] - s[0])
            trend = sum(w * d for w, d in zip(TREND_WEIGHTS, deltas, strict=True))
        else:
            trend = NO_TREND * f
        return POTENTIAL_F * f + POTENTIAL_TREND * trend

    # -- the update -------------------------------------------------------------------------
    def update(
        self,
        step: int,
        outputs: Mapping[Orientation, ViewOutputs],
        scores: Mapping[Orientation, float],
        sent: Sequence[Orientation],
    ) -> ShapeUpdate:
        """Update S after a step in which its members gave ``outputs`` and ``scores``."""
        change = ShapeUpdate()
        for o in sent:
            self.last_sent[o] = step
        f: dict[Orientation, float] = {}
        for key, m in self.members.items():
            o = m.orientation
            self.history.setdefault(o, deque(maxlen=4)).append((step, float(scores.get(o, 0.0))))
            self._boxes[o] = [b for boxes in outputs.get(o, {}).values() for b in boxes]
            centres = [b.center for b in self._boxes[o]]
            self._centroids[o] = (
                (float(np.mean([c[0] for c in centres])), float(np.mean([c[1] for c in centres]))) if centres else None
            )
            f[key] = self.factor(o, outputs.get(o, {}), step)
        self._drop_poor_peeks(f, change)
        self._expire_zoom_holds()
        potentials = {c: self.potential(self.members[c].orientation, f[c], step) for c in self.members}
        self.swap_pass(f, potentials, change)
        if self.config.allow_expand:
            self._grow(f, potentials, change)
        if self.config.zoom_rule:
            self._zoom_rule(outputs, change)
        self.updates += 1
        return change

    def swap_pass(
        self, f: Mapping[Orientation, float], potentials: Mapping[Orientation, float], change: ShapeUpdate | None = None
    ) -> ShapeUpdate:
        """Step 3: drop low-potential members for better neighbours of high-potential ones."""
        change = change if change is not None else ShapeUpdate()
        order = sorted(self.members, key=lambda c: (potentials[c], self.members[c].orientation.index))
        best = max(order, key=lambda c: (f[c], -self.members[c].orientation.index))
        limit = 1 if self.updates < self.config.warm_steps else len(order)
        tried: dict[Orientation, set[Orientation]] = {c: set() for c in order}
        left, right, expansions, changes = 0, len(order) - 1, 0, 0
        while left < right and changes < limit:
            low, high = order[left], order[right]
            if low == best or self.members[low].added == self.updates - 1:
                left += 1
                continue
            ratio_ok = f[low] == 0 or f[high] / f[low] >= swap_threshold(expansions, self.config.swap_ratios)
            added = self._best_candidate(high, low, tried[high]) if ratio_ok else None
            if added is None:
                right -= 1
                expansions = 0
                continue
            dropped = self.members.pop(low).orientation
            self.members[added] = _Member(added, self.updates)
            change.swaps.append((dropped, added))
            self._peek(self.members[high].orientation, added, change)
            left += 1
            expansions += 1
            changes += 1
        return change

    def _occupied(self, exclude: Orientation | None = None) -> set[Orientation]:
        return {m.orientation for k, m in self.members.items() if k != exclude} | {
            k for k in self.members if k != exclude
        }

    def _cells(self, exclude: Orientation | None = None) -> list[Cell]:
        return [m.orientation.cell for k, m in self.members.items() if k != exclude]

    def _grow(
        self, f: Mapping[Orientation, float], potentials: Mapping[Orientation, float], change: ShapeUpdate
    ) -> None:
        """The release's dead growth branch (``allow_expand=True`` only): add without dropping.

        Design choice (the release never runs it): while |S| < K, the highest-potential
        member R adds its best candidate when f(R) / mean f of the rest is >= 1.1, then 2.0,
        then 2.5 for its 2nd and 3rd growth in one update.
        """
        known = [c for c in f if c in self.members]
        if len(known) < 2:
            return
        high = max(known, key=lambda c: (potentials[c], self.members[c].orientation.index))
        rest = float(np.mean([f[c] for c in known if c != high]))
        tried: set[Orientation] = set()
        for ratio in GROWTH_RATIOS:
            if len(self.members) >= self.config.k_explore or not (rest == 0 or f[high] / rest >= ratio):
                return
            added = self._best_candidate(high, None, tried)
            if added is None:
                return
            self.members[added] = _Member(added, self.updates)
            change.grown.append(added)

    def candidates(self, src: Orientation, drop: Orientation | None = None) -> list[Orientation]:
        """Step 4: ``src``'s neighbours in the region whose cell S does not hold, best first.

        With ``zoom_neighbours`` (design choice, an extension) the other zooms of ``src``'s
        own cell are candidates too, scored by the share of its boxes that fit the zoomed
        window (zoom in) or touch the frame border (zoom out), times the members in reach;
        only this extension lets S hold two orientations of one cell.
        """
        origin = self.members[src].orientation
        occupied = self._occupied()
        held = set(self._cells())
        keep = [m.orientation for k, m in self.members.items() if k != drop]
        # By cell, not orientation: a zoomed member's cell is held at every zoom.
        cands = [n for n in self.region.neighbours(origin) if n.cell not in held]
        zooms = [origin.with_zoom(z) for z in (1, 2, 3) if z != origin.zoom] if self.config.zoom_neighbours else []
        zooms = [z for z in zooms if z not in occupied and z in self.region]
        if self.config.neighbour_rule == "random":
            pool = cands + zooms
            return [pool[i] for i in self.rng.permutation(len(pool))]
        score: dict[Orientation, float] = {}
        for n in cands:
            adjacent = [o for o in keep if self.region.adjacent(o.cell, n.cell)]
            via = sum(
                viability(self._centroids.get(o), cell_direction(o.cell, n.cell), self.width, self.height)
                for o in adjacent
            )
            score[n] = via * len(adjacent)
        reach = sum(1 for o in keep if o.cell == origin.cell or self.region.adjacent(o.cell, origin.cell))
        for n in zooms:
            score[n] = self._zoom_fit(origin, n.zoom) * reach
        return sorted(cands + zooms, key=lambda n: (-score[n], n.index))

    def _zoom_fit(self, o: Orientation, zoom: int) -> float:
        """Share of o's last boxes inside the zoom-``zoom`` window (in) or at its border (out)."""
        boxes = self._boxes.get(o, [])
        if not boxes:
            return 0.0
        cx, cy = self.width / 2, self.height / 2
        if zoom > o.zoom:
            hw, hh = self.width * o.zoom / zoom / 2, self.height * o.zoom / zoom / 2
            inside = [cx - hw <= b.x1 and b.x2 <= cx + hw and cy - hh <= b.y1 and b.y2 <= cy + hh for b in boxes]
            return float(np.mean(inside))
        edge = [b.x1 <= 1 or b.y1 <= 1 or b.x2 >= self.width - 1 or b.y2 >= self.height - 1 for b in boxes]
        return float(np.mean(edge))

    def _best_candidate(
        self, src: Orientation, drop: Orientation | None, tried: set[Orientation]
    ) -> Orientation | None:
        """R's best untried candidate that keeps S 8-connected once ``drop`` leaves."""
        for n in self.candidates(src, drop):
            if n in tried:
                continue
            # Design choice: feasible = S stays 8-connected (by cells) once L leaves; each candidate tried once.
            tried.add(n)
            if self.region.is_connected([*self._cells(drop), n.cell]):
                return n
        return None

    def _peek(self, src: Orientation, added: Orientation, change: ShapeUpdate) -> None:
        """Step 5: a new member touching >= 2 members brings the orientation beyond it."""
        if added.cell == src.cell:
            return  # a zoom change has no "beyond"
        # Design choice: "touches" counts members in 8-adjacent cells; the peek continues the R -> new direction.
        touching = sum(1 for c in set(self._cells(added)) if self.region.adjacent(c, added.cell))
        if touching < 2 or len(self.members) >= self.config.k_explore:
            return
        nxt = self.region.beyond(src, added)
        if nxt is None or nxt.cell in self._cells():
            return
        self.members[nxt] = _Member(nxt, self.updates, peek=True)
        change.peeks_added.append(nxt)

    def _drop_poor_peeks(self, f: Mapping[Orientation, float], change: ShapeUpdate) -> None:
        """Drop last update's peeks whose f is below a quarter of the mean f."""
        mean_f = float(np.mean(list(f.values()))) if f else 0.0
        for key, m in list(self.members.items()):
            if not m.peek:
                continue
            m.peek = False
            rest = self._cells(key)
            if f.get(key, 0.0) < mean_f / 4 and rest and self.region.is_connected(rest):
                del self.members[key]
                change.peeks_dropped.append(m.orientation)

    def _expire_zoom_holds(self) -> None:
        for m in self.members.values():
            if m.base_zoom is not None and self.updates >= m.hold_until:
                # Design choice: after its 3-step hold a zoomed member reverts; the rule may zoom it again later.
                m.orientation = m.orientation.with_zoom(m.base_zoom)
                m.base_zoom = None

    def _zoom_rule(self, outputs: Mapping[Orientation, ViewOutputs], change: ShapeUpdate) -> None:
        """Step 7: zoom into a member whose boxes all fit the central 1/z window."""
        for m in self.members.values():
            o = m.orientation
            if m.base_zoom is not None or o.zoom == 3 or o not in outputs:
                continue
            occupied = self._occupied()
            boxes = [b for bs in outputs[o].values() for b in bs]
            if not boxes:
                continue
            # Design choice: from zoom z0 the window is the central z0/z of the frame (1/z from zoom 1).
            for z in (3, 2):
                if z <= o.zoom or o.with_zoom(z) in occupied:
                    continue
                half_w, half_h = self.width * o.zoom / z / 2, self.height * o.zoom / z / 2
                cx, cy = self.width / 2, self.height / 2
                if all(
                    cx - half_w <= b.x1 and b.x2 <= cx + half_w and cy - half_h <= b.y1 and b.y2 <= cy + half_h
                    for b in boxes
                ):
                    m.orientation, m.base_zoom = o.with_zoom(z), o.zoom
                    m.hold_until = self.updates + self.config.zoom_hold
                    change.zoomed.append((o, m.orientation))
                    break
