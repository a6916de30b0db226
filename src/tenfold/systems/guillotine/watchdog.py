"""The watchdog dead-man switch (spec section 2, "Watchdog").

A double-forked process outside the sandbox cgroup (re-parented away from the supervisor).
It holds a ``pidfd`` of the supervisor (death, even by ``kill -9``) and a heartbeat socket
(a byte every ``heartbeat_ms``; silence past ``deadline_ms`` means a hang or ``SIGSTOP``).
When either fires it freezes and kills the sandbox cgroups, deletes the egress veth and
writes L3 into the level file and the audit log under its *own* key. A ``B`` byte on the
socket is the supervisor's clean goodbye.

Run by :func:`spawn_watchdog` as ``python -I watchdog.py FD PLAN``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from typing import Any

__all__ = ["spawn_watchdog", "watchdog_main"]


def spawn_watchdog(plan: dict[str, Any]) -> tuple[int, socket.socket]:
    """Start the watchdog; return its pid (a grandchild, not our child) and our heartbeat socket."""
    ours, theirs = socket.socketpair()
    # Run by path, not ``-m``: the package import then happens after the double fork, while
    # the supervisor goes on (heartbeats queue in the socket meanwhile).
    proc = subprocess.Popen([sys.executable, "-I", __file__, str(theirs.fileno()), json.dumps(plan)],
                            pass_fds=[theirs.fileno()], start_new_session=True, stdout=subprocess.DEVNULL)
    theirs.close()
    proc.wait()  # the intermediate exits at once; the grandchild reports its pid
    ours.settimeout(10)
    pid = int(ours.recv(32).decode().strip())
    ours.settimeout(None)
    return pid, ours


def _contain(plan: dict[str, Any], reason: str) -> None:
    from tenfold.systems.guillotine.cgroup import CgroupV1, CgroupV2
    from tenfold.systems.guillotine.deployment import open_deployment
    from tenfold.systems.guillotine.failsafe import CgroupPower, NetnsCableCutter

    t0 = time.monotonic()
    groups: list[CgroupV1 | CgroupV2] = []
    if plan.get("v2"):
        groups.append(CgroupV2.attach(plan["v2"]))
    if plan.get("v1"):
        groups.append(CgroupV1.attach(plan["v1"]))
    power = CgroupPower(groups).actuate(reason)
    cut = None
    if plan.get("netns"):
        cut = NetnsCableCutter(plan["netns"], plan["link"]).actuate(reason)
    dep = open_deployment(plan["deployment"], state_dir=plan["state_dir"])
    dep.escalate(3, f"watchdog: {reason}", writer="watchdog",
                 detail={"power": power.detail, "cable": cut.detail if cut else None,
                         "contain_ms": round(1000 * (time.monotonic() - t0), 3)})
    if plan.get("sink_pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(plan["sink_pid"]), 9)


def watchdog_main(fd: int, plan: dict[str, Any]) -> int:
    sock = socket.socket(fileno=fd)
    if os.fork() > 0:  # double fork: the intermediate exits, we are re-parented
        os._exit(0)
    os.setsid()
    sock.sendall(f"{os.getpid()}\n".encode())
    pidfd = os.pidfd_open(int(plan["supervisor_pid"]))
    # Warm the imports _contain needs: containment must not wait on them.
    for mod in ("tenfold.systems.guillotine.deployment", "tenfold.systems.guillotine.failsafe"):
        importlib.import_module(mod)
    deadline = plan["deadline_ms"] / 1000.0
    last = time.monotonic()
    while True:
        left = max(0.0, last + deadline - time.monotonic())
        ready, _, _ = select.select([pidfd, sock.fileno()], [], [], left)
        if pidfd in ready:
            _contain(plan, "supervisor died")
            return 0
        if sock.fileno() in ready:
            data = sock.recv(4096)
            if not data:
                _contain(plan, "heartbeat channel lost")
                return 0
            if b"B" in data:
                return 0
            last = time.monotonic()
        elif time.monotonic() - last >= deadline:
            _contain(plan, f"heartbeat missed for {deadline * 1000:.0f} ms")
            return 0


if __name__ == "__main__":
    sys.exit(watchdog_main(int(sys.argv[1]), json.loads(sys.argv[2])))
