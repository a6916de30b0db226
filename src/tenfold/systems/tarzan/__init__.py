"""Tarzan (Mowgli, NSDI'25; arXiv 2410.03339): video rate control learned offline from the
telemetry logs of the incumbent controller, GCC.

This package holds the parts built so far: the faithful GCC (:mod:`.gcc`) that produces the
logs and serves as the baseline.
"""

from tenfold.systems.tarzan.config import GccConfig
from tenfold.systems.tarzan.gcc import BandwidthUsage, Feedback, Gcc, PacketResult

__all__ = ["BandwidthUsage", "Feedback", "Gcc", "GccConfig", "PacketResult"]
