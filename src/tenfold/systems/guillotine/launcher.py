"""Start a supervisor process for a deployment and talk to it (spec section 3: ``launch`` / ``RunHandle``).

The supervisor is a separate process (``python -m tenfold.systems.guillotine.supervisor``);
the caller keeps only a :class:`RunHandle` speaking to its operator socket, which lives in a
per-run directory under ``/run/tenfold-guillotine`` that is never mounted into the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack

from tenfold.core.config import check_choice
from tenfold.errors import ConfigError
from tenfold.systems.guillotine.cgroup import CgroupV1, CgroupV2, detect_mounts
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.errors import GuillotineError, PrimitiveMissing
from tenfold.systems.guillotine.landlock import MIN_ABI, abi_version
from tenfold.systems.guillotine.levels import LAST_LEVEL
from tenfold.systems.guillotine.ports import read_frame, write_frame
from tenfold.systems.guillotine.seccomp_filter import build_filter

__all__ = ["RUNTIME_ROOT", "RunHandle", "check_primitives", "launch", "release_resources"]

RUNTIME_ROOT = Path(os.environ.get("TENFOLD_GUILLOTINE_RUNTIME", "/run/tenfold-guillotine"))


class RunHandle:
    """A running supervisor: ``call``, ``status``, ``escalate``, ``wait``, ``stop``."""

    def __init__(self, dep: Deployment, run_dir: Path, proc: subprocess.Popen[bytes], ready: dict[str, Any],
                 startup_s: float) -> None:
        self.dep = dep
        self.run_dir = run_dir
        self.proc = proc
        self.supervisor_pid = int(ready["supervisor_pid"])
        self.watchdog_pid = int(ready["watchdog_pid"])
        self.startup_s = startup_s
        self._sock: socket.socket | None = None

    def _request(self, req: dict[str, Any], timeout: float = 60.0) -> Any:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(str(self.run_dir / "operator.sock"))
        self._sock.settimeout(timeout + 5)
        write_frame(self._sock, req)
        return msgpack.unpackb(read_frame(self._sock, 64 << 20), raw=False)

    def call(self, body: Any, timeout: float = 60.0) -> dict[str, Any]:
        """Send ``body`` to the model over ``io``; return ``{output, attest, sig}``."""
        try:
            rep = self._request({"op": "infer", "body": body, "timeout": timeout}, timeout)
        except (OSError, ConnectionError) as exc:
            raise GuillotineError(f"supervisor gone: {exc}") from None
        if "error" in rep:
            raise GuillotineError(str(rep["error"]))
        return dict(rep)

    def status(self) -> dict[str, Any]:
        try:
            return dict(self._request({"op": "status"}, 10))
        except OSError:
            path = self.run_dir / "status.json"
            return dict(json.loads(path.read_bytes())) if path.exists() else {}

    def escalate(self, level: int, reason: str = "operator") -> int:
        """Raise the running supervisor's level to ``level`` (0-5); ConfigError outside that range."""
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= LAST_LEVEL:
            raise ConfigError("level", level, f"must be an integer in [0, {LAST_LEVEL}]")
        rep = self._request({"op": "escalate", "level": level, "reason": reason}, 10)
        if "error" in rep:
            raise GuillotineError(str(rep["error"]))
        return int(rep["level"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the supervisor to exit; return the final status."""
        self.proc.wait(timeout)
        self.close()
        path = self.run_dir / "status.json"
        return dict(json.loads(path.read_bytes())) if path.exists() else {}

    def stop(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ConnectionError):
            self._request({"op": "stop"}, 5)
        return self.wait(30)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def cleanup(self) -> None:
        """Stop the supervisor if needed, remove anything a crashed run left behind, drop the run dir."""
        self.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        release_resources(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def release_resources(run_dir: Path) -> None:
    """Kill and remove the cgroups, namespaces and helpers recorded in ``resources.json`` (idempotent)."""
    path = run_dir / "resources.json"
    if not path.exists():
        return
    res = json.loads(path.read_text())
    groups: list[CgroupV1 | CgroupV2] = []
    if res.get("v2"):
        groups.append(CgroupV2.attach(res["v2"]))
    if res.get("v1"):
        groups.append(CgroupV1.attach(res["v1"]))
    for g in groups:
        if g.state() != "GONE":
            g.destroy()
    if res.get("sink_pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(res["sink_pid"]), 9)
    for ns in res.get("netns", []):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def check_primitives(backend: str = "bwrap", egress: bool = True) -> dict[str, object]:
    """Fail loudly before anything starts: every primitive the guillotine arm needs, or PrimitiveMissing."""
    found: dict[str, object] = {}
    binary = {"bwrap": ("bwrap", "bubblewrap"), "unshare": ("unshare", "util-linux")}.get(backend)
    if binary is not None:
        path = shutil.which(binary[0])
        if path is None:
            raise PrimitiveMissing(binary[0], f"apt-get install {binary[1]}")
        found[binary[0]] = path
    abi = abi_version()
    if abi < MIN_ABI:
        raise PrimitiveMissing(f"landlock ABI >= {MIN_ABI}", f"kernel reports ABI {abi}; boot with lsm=...,landlock")
    found["landlock_abi"] = abi
    try:
        build_filter(notify=True)
    except (OSError, RuntimeError) as exc:
        raise PrimitiveMissing("libseccomp with user-notify", f"apt-get install libseccomp2 ({exc})") from None
    mounts = detect_mounts()
    missing = [c for c in ("memory", "pids", "cpuset", "freezer") if c not in mounts.v1]
    if missing and mounts.v2 is None:
        raise PrimitiveMissing(f"cgroup controllers {missing}", "mount the cgroup v1 controllers or cgroup2")
    found["cgroup"] = {"v1": sorted(mounts.v1), "v2": str(mounts.v2) if mounts.v2 else None}
    if egress and shutil.which("ip") is None:
        raise PrimitiveMissing("ip netns", "apt-get install iproute2")
    return found


def launch(dep: Deployment, argv: Sequence[str], backend: str = "bwrap", *, models: Sequence[str | Path] = (),
           ro_paths: Sequence[str] = (), egress: bool = True, notify: bool = True,
           env: dict[str, str] | None = None, mode: str = "guillotine", timeout_s: float = 60.0) -> RunHandle:
    """Start the supervisor (which starts the watchdog and the sandbox); return once it is serving.

    ``mode`` picks the arm: ``guillotine`` (everything), or the baselines ``single_boundary``
    (bwrap + allowlisting proxy; no Landlock, seccomp, detectors or levels) and ``unsandboxed``
    (a plain subprocess as uid 65534 speaking the same port protocol).
    """
    check_choice("mode", mode, ("guillotine", "single_boundary", "unsandboxed"))
    if mode == "guillotine":
        check_primitives(backend, egress)
    dep.check_runnable()
    RUNTIME_ROOT.mkdir(parents=True, exist_ok=True, mode=0o711)
    run_dir = RUNTIME_ROOT / f"{dep.name}-{secrets.token_hex(4)}"
    run_dir.mkdir(mode=0o711)
    plan = {"deployment": dep.name, "state_dir": str(dep.root.parent), "runtime_dir": str(run_dir),
            "argv": list(argv), "backend": backend, "models": [str(m) for m in models],
            "ro_paths": list(ro_paths), "egress": egress, "notify": notify, "env": env or {},
            "mode": mode}
    (run_dir / "plan.json").write_text(json.dumps(plan))
    t0 = time.monotonic()
    with open(run_dir / "supervisor.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tenfold.systems.guillotine.supervisor",
                                 str(run_dir / "plan.json")], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        if (run_dir / "ready").exists():
            ready = json.loads((run_dir / "ready").read_text())
            return RunHandle(dep, run_dir, proc, ready, time.monotonic() - t0)
        if (run_dir / "failed").exists() or proc.poll() is not None:
            proc.wait()
            why = (run_dir / "failed").read_text() if (run_dir / "failed").exists() else \
                (run_dir / "supervisor.log").read_text()[-2000:]
            shutil.rmtree(run_dir, ignore_errors=True)
            raise GuillotineError(f"supervisor failed to start: {why}")
        time.sleep(0.01)  # NOTE: bounded poll for the supervisor's ready file
    proc.kill()
    proc.wait()
    raise GuillotineError(f"supervisor not ready within {timeout_s:g} s")
