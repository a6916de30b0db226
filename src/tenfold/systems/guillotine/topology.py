"""CPU partitioning (spec section 2, "Partitioning").

The sandbox gets cores that share no L3 with the hypervisor's where the machine allows it
(from ``/sys/devices/system/cpu/cpu*/cache/index3/shared_cpu_list``). On a machine whose
cores all share one L3 (the 2-core CI machines) the split is by core only and
``l3_shared`` is True -- shared-L3 timing channels are out of scope and ``status`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Topology", "parse_cpu_list", "plan_topology"]


def parse_cpu_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass(frozen=True)
class Topology:
    hypervisor_cpus: tuple[int, ...]
    sandbox_cpus: tuple[int, ...]
    l3_shared: bool

    @property
    def sandbox_list(self) -> str:
        return ",".join(map(str, self.sandbox_cpus))


def plan_topology(sysfs: str | Path = "/sys/devices/system/cpu") -> Topology:
    cpus = sorted(os.sched_getaffinity(0))
    groups: dict[tuple[int, ...], list[int]] = {}
    for c in cpus:
        f = Path(sysfs) / f"cpu{c}" / "cache" / "index3" / "shared_cpu_list"
        key = tuple(parse_cpu_list(f.read_text())) if f.exists() else (c,)
        groups.setdefault(key, []).append(c)
    domains = sorted(groups.values())
    if len(cpus) == 1:
        return Topology((cpus[0],), (cpus[0],), True)
    if len(domains) >= 2:  # whole L3 domains apart: hypervisor on the first, sandbox on the rest
        return Topology(tuple(domains[0]), tuple(c for d in domains[1:] for c in d), False)
    return Topology((cpus[0],), tuple(cpus[1:]), True)
