"""cgroup drivers for the sandbox: v1 and v2, detected from ``/proc/self/mountinfo`` (spec section 2).

Each driver creates one cgroup per run under the caller's own cgroup, sets the caps, lets the
launcher join (``join(pid)`` before ``exec``), and offers the containment primitives:

- v1: ``memory.limit_in_bytes``, ``pids.max``, ``cpu.cfs_quota_us``, ``cpuset`` (``mems``
  before ``cpus``), ``freezer.state``. :meth:`kill` loops freeze -> SIGKILL every pid of
  ``cgroup.procs`` -> thaw until the group is empty.
- v2: ``memory.max``, ``pids.max``, ``cpu.max``, ``cpuset.cpus`` where the controller is
  enabled, ``cgroup.freeze`` confirmed through ``cgroup.events``, ``cgroup.kill``.

On the hybrid CI layout (v1 controllers, a v2 mount with no resource controllers) both run:
v1 carries the limits, v2 adds a second, independent freeze/kill switch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from tenfold.systems.guillotine.errors import PrimitiveMissing

__all__ = ["CgroupLimits", "CgroupV1", "CgroupV2", "Mounts", "detect_mounts"]

REQUIRED_V1 = ("memory", "pids", "cpuset", "freezer")


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    pids: int
    cpu_pct: int
    cpus: str
    """cpuset list for the sandbox (from :mod:`topology`)."""


@dataclass(frozen=True)
class Mounts:
    v1: dict[str, Path]
    """controller -> hierarchy mount point."""
    v2: Path | None


def detect_mounts(mountinfo: str = "/proc/self/mountinfo") -> Mounts:
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in Path(mountinfo).read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if not rfields:
            continue
        fstype, opts = rfields[0], rfields[2].split(",") if len(rfields) > 2 else []
        if fstype == "cgroup2":
            v2 = Path(fields[4])
        elif fstype == "cgroup":
            for opt in opts:
                if opt in ("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"):
                    v1[opt] = Path(fields[4])
    return Mounts(v1, v2)


def _own_path(controller: str) -> str:
    """This process's cgroup path in ``controller``'s hierarchy ('' for v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
            return path.lstrip("/")
    return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


class CgroupV1:
    """The v1 driver: one directory per controller."""

    version = 1

    def __init__(self, name: str, mounts: Mounts | None = None) -> None:
        mounts = mounts or detect_mounts()
        missing = [c for c in REQUIRED_V1 if c not in mounts.v1]
        if missing:
            raise PrimitiveMissing(f"cgroup v1 controllers {missing}", "mount them or use the v2 driver")
        self.dirs: dict[str, Path] = {}
        for ctrl in ("memory", "pids", "cpu", "cpuset", "freezer"):
            if ctrl in mounts.v1:
                self.dirs[ctrl] = mounts.v1[ctrl] / _own_path(ctrl) / "tenfold-guillotine" / name

    @classmethod
    def attach(cls, dirs: dict[str, str]) -> CgroupV1:
        """Re-open an existing group from :meth:`paths` (the watchdog does this)."""
        g = cls.__new__(cls)
        g.dirs = {k: Path(v) for k, v in dirs.items()}
        return g

    def paths(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.dirs.items()}

    @property
    def freezer(self) -> Path:
        return self.dirs["freezer"]

    def create(self, limits: CgroupLimits) -> None:
        for ctrl, d in self.dirs.items():
            if ctrl == "cpuset":
                self._cpuset_parents(d)
            d.mkdir(parents=True, exist_ok=True)
        mem = self.dirs["memory"]
        _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
        with contextlib.suppress(OSError):  # only with swap accounting
            _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        with contextlib.suppress(OSError):
            _write(mem / "memory.oom_control", "0")
        _write(self.dirs["pids"] / "pids.max", str(limits.pids))
        if "cpu" in self.dirs:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", "100000")
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(1000 * limits.cpu_pct))
        cs = self.dirs["cpuset"]
        _write(cs / "cpuset.mems", (cs.parent / "cpuset.mems").read_text().strip())
        _write(cs / "cpuset.cpus", limits.cpus)

    @staticmethod
    def _cpuset_parents(d: Path) -> None:
        """Intermediate cpuset dirs start empty; copy mems/cpus down before any join."""
        chain = [p for p in reversed(d.parents) if not p.exists()] + [d]
        for p in chain:
            p.mkdir(exist_ok=True)
            for f in ("cpuset.mems", "cpuset.cpus"):
                if not (p / f).read_text().strip():
                    _write(p / f, (p.parent / f).read_text().strip())

    def join(self, pid: int) -> None:
        for d in self.dirs.values():
            _write(d / "cgroup.procs", str(pid))

    def procs(self) -> list[int]:
        return _procs(self.freezer)

    def freeze(self, timeout_s: float = 1.0) -> bool:
        """FROZEN, read back from ``freezer.state``."""
        _write(self.freezer / "freezer.state", "FROZEN")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (self.freezer / "freezer.state").read_text().strip() == "FROZEN":
                return True
            time.sleep(0.001)  # NOTE: bounded poll of the kernel's FREEZING -> FROZEN
            _write(self.freezer / "freezer.state", "FROZEN")
        return False

    def state(self) -> str:
        try:
            return (self.freezer / "freezer.state").read_text().strip()
        except FileNotFoundError:
            return "GONE"

    def kill(self, timeout_s: float = 2.0) -> bool:
        """freeze -> SIGKILL all -> thaw, until empty. True when the group is empty."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.procs()
            if not pids:
                return True
            self.freeze(0.2)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _write(self.freezer / "freezer.state", "THAWED")
            time.sleep(0.002)  # NOTE: bounded poll; SIGKILL delivery needs the thaw to run
        return not self.procs()

    def counters(self) -> dict[str, int]:
        """OOM and pids-limit hits (triggers)."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            out["memory_failcnt"] = int((self.dirs["memory"] / "memory.failcnt").read_text())
        with contextlib.suppress(OSError, ValueError):
            for line in (self.dirs["memory"] / "memory.oom_control").read_text().splitlines():
                k, v = line.split()
                if k == "oom_kill":
                    out["oom_kill"] = int(v)
        with contextlib.suppress(OSError, ValueError):
            out["pids_max_events"] = int((self.dirs["pids"] / "pids.events").read_text().split()[1])
        return out

    def destroy(self) -> None:
        self.kill()
        for d in self.dirs.values():
            for p in (d, d.parent):
                with contextlib.suppress(OSError):
                    p.rmdir()


class CgroupV2:
    """The v2 driver on a cgroup2 mount (pure v2 or the hybrid ``unified`` mount)."""

    version = 2

    def __init__(self, name: str, mounts: Mounts | None = None) -> None:
        mounts = mounts or detect_mounts()
        if mounts.v2 is None:
            raise PrimitiveMissing("cgroup2 mount", "mount -t cgroup2 none /sys/fs/cgroup/unified")
        self.dir = mounts.v2 / _own_path("") / "tenfold-guillotine" / name
        self.controllers: set[str] = set()

    @classmethod
    def attach(cls, path: str) -> CgroupV2:
        g = cls.__new__(cls)
        g.dir, g.controllers = Path(path), set()
        return g

    def paths(self) -> str:
        return str(self.dir)

    def create(self, limits: CgroupLimits | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.controllers = set((self.dir / "cgroup.controllers").read_text().split())
        if limits is None:
            return
        if "memory" in self.controllers:
            _write(self.dir / "memory.max", str(limits.memory_bytes))
        if "pids" in self.controllers:
            _write(self.dir / "pids.max", str(limits.pids))
        if "cpu" in self.controllers:
            _write(self.dir / "cpu.max", f"{1000 * limits.cpu_pct} 100000")
        if "cpuset" in self.controllers:
            _write(self.dir / "cpuset.cpus", limits.cpus)

    def join(self, pid: int) -> None:
        _write(self.dir / "cgroup.procs", str(pid))

    def procs(self) -> list[int]:
        return _procs(self.dir)

    def _events(self) -> dict[str, str]:
        try:
            return dict(line.split() for line in (self.dir / "cgroup.events").read_text().splitlines())
        except FileNotFoundError:
            return {}

    def freeze(self, timeout_s: float = 1.0) -> bool:
        """``cgroup.freeze=1``, confirmed by ``frozen 1`` in ``cgroup.events``."""
        _write(self.dir / "cgroup.freeze", "1")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._events().get("frozen") == "1":
                return True
            time.sleep(0.001)  # NOTE: bounded poll of the kernel's confirmation
        return False

    def state(self) -> str:
        ev = self._events()
        if not ev:
            return "GONE"
        return "FROZEN" if ev.get("frozen") == "1" else "THAWED"

    def kill(self, timeout_s: float = 2.0) -> bool:
        """``cgroup.kill`` (kills every process, frozen or not); True once ``populated 0``."""
        _write(self.dir / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._events().get("populated") == "0":
                return True
            time.sleep(0.001)
        return self._events().get("populated") == "0"

    def counters(self) -> dict[str, int]:
        return {}

    def destroy(self) -> None:
        if self.dir.exists():
            self.kill()
        for p in (self.dir, self.dir.parent):
            with contextlib.suppress(OSError):
                p.rmdir()
