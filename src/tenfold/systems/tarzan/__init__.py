"""Tarzan (Mowgli, NSDI'25; arXiv 2410.03339): video rate control learned offline from the
telemetry logs of the incumbent controller, GCC.

The pipeline: a faithful GCC (:mod:`.gcc`) runs emulated calls on real cellular traces
(:mod:`.session`) and writes telemetry logs (:mod:`.telemetry`); controllers are trained from
those logs only (:mod:`.train`: Tarzan's conservative distributional SAC, its ablations, BC and
CRR), evaluated closed loop on held-out traces (:mod:`.evaluate`) and served over IPC
(:mod:`.policy`).
"""

from tenfold.systems.tarzan.config import GccConfig
from tenfold.systems.tarzan.gcc import BandwidthUsage, Feedback, Gcc, PacketResult

__all__ = ["BandwidthUsage", "Feedback", "Gcc", "GccConfig", "PacketResult"]
