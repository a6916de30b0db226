"""g-init: the first program inside the sandbox (spec section 2, "g-init").

Run as ``python -m tenfold.systems.guillotine.sandbox_init`` by the backend, with its plan
in ``GUILLOTINE_INIT`` (JSON). In order:

0. connect the control and port sockets (before seccomp forbids ``connect``);
1. rlimits and ``PR_SET_NO_NEW_PRIVS``; all capabilities are already dropped by the backend
   (``--cap-drop ALL``), and g-init checks ``CapEff`` is zero;
2. Landlock (:mod:`.landlock`): read-only system, read-write workdir, TCP denied, abstract
   sockets and signals scoped;
3. seccomp (:mod:`.seccomp_filter`), sending the user-notify listener fd to the supervisor
   over ``SCM_RIGHTS`` and closing it (``load_filter`` keeps no copy, so g-init holds no
   listener afterwards);
4. fork + ``exec`` of the agent, then report the agent's wait status (SIGSYS included)
   to the supervisor over the control socket. g-init is a child subreaper, so orphaned
   grandchildren are reaped by it too, and every process killed by SIGSYS is reported
   (``{"event": "sigsys"}``), not only the agent itself.

Before anything else g-init makes itself non-dumpable (``PR_SET_DUMPABLE 0``: the agent, same
uid, cannot open its ``/proc/<pid>/{environ,mem,fd}``) and wipes ``GUILLOTINE_INIT`` (which
carries the port token) from its environment block; ``pidfd_getfd`` is killed by seccomp.

Any failure before step 4 exits 121 after telling the supervisor why: the sandbox never
runs a step short.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import socket
import sys
from typing import Any

from tenfold.systems.guillotine.landlock import LandlockRules, restrict_self
from tenfold.systems.guillotine.ports import write_frame
from tenfold.systems.guillotine.seccomp_filter import load_filter

__all__ = ["main"]

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39
EXIT_INIT_FAILED = 121


def _send(ctl: socket.socket, event: dict[str, Any], fds: list[int] | None = None) -> None:
    """A frame, then (when ``fds``) one byte carrying them over SCM_RIGHTS."""
    write_frame(ctl, event)
    if fds:
        socket.send_fds(ctl, [b"F"], fds)


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


def _scrub_plan_env(libc: Any) -> None:
    """Zero ``GUILLOTINE_INIT=...`` in the process's environment block (what /proc/PID/environ shows)."""
    os.environ.pop("GUILLOTINE_INIT", None)
    key = b"GUILLOTINE_INIT="
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    i = 0
    while environ[i]:
        addr = environ[i]
        entry = ctypes.string_at(addr)
        if entry.startswith(key):
            ctypes.memset(addr + len(key), 0, len(entry) - len(key))
        i += 1


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    plan = json.loads(os.environ["GUILLOTINE_INIT"])
    _scrub_plan_env(libc)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.connect(plan["socket"])
    write_frame(ctl, {"role": "ctl", "token": plan["token"]})
    port = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    port.connect(plan["socket"])
    write_frame(port, {"role": "port", "token": plan["token"]})
    abi, notify_fd = 0, None
    try:
        for name, value in plan["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        if plan.get("harden", True):
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
                raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
            if _cap_eff() != 0:
                raise PermissionError(f"capabilities not dropped: CapEff={_cap_eff():x}")
            abi = restrict_self(LandlockRules(tuple(plan["ro"]), tuple(plan["rw"])))
            notify_fd = load_filter(notify=plan["notify"])
    except Exception as exc:
        _send(ctl, {"event": "init_failed", "error": f"{type(exc).__name__}: {exc}"})
        return EXIT_INIT_FAILED
    _send(ctl, {"event": "armed", "landlock_abi": abi, "notify": notify_fd is not None,
                "harden": bool(plan.get("harden", True))},
          [notify_fd] if notify_fd is not None else None)
    if notify_fd is not None:
        os.close(notify_fd)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    port.set_inheritable(True)
    env = dict(plan["env"], GUILLOTINE_PORT_FD=str(port.fileno()))
    pid = os.fork()
    if pid == 0:
        ctl.close()
        try:
            os.execve(plan["argv"][0], plan["argv"], env)
        finally:
            os._exit(127)
    port.close()
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    status = _reap_until(ctl, pid)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + sig
    with contextlib.suppress(OSError):
        _send(ctl, {"event": "exit", "code": code, "signal": sig})
    return code


def _reap_until(ctl: socket.socket, pid: int) -> int:
    """Reap every child (as subreaper: grandchildren too) until ``pid`` exits; return its status.

    Every other process killed by SIGSYS is reported as ``{"event": "sigsys", "pid": ...}``.
    """
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:  # pragma: no cover - pid is our child, so this cannot happen first
            return 0
        if reaped == pid:
            break
        _report_sigsys(ctl, reaped, status)
    with contextlib.suppress(ChildProcessError):  # orphans already dead
        while (found := os.waitpid(-1, os.WNOHANG))[0] != 0:
            _report_sigsys(ctl, *found)
    return status


def _report_sigsys(ctl: socket.socket, reaped: int, status: int) -> None:
    """Tell the supervisor about a reaped process that seccomp killed."""
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS:
        with contextlib.suppress(OSError):
            _send(ctl, {"event": "sigsys", "pid": reaped})


if __name__ == "__main__":
    sys.exit(main())
