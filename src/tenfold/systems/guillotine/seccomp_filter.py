"""g-init's seccomp filter (spec section 2, g-init step 3), built with pyseccomp (libseccomp).

- ``KILL_PROCESS`` -- also the bad-arch action, so x32 (``nr | 0x40000000``) and i386
  (``int 0x80``) calls die -- for the introspection and privilege syscalls.
- ``ERRNO(ENOSYS)`` for ``clone3`` (glibc falls back to ``clone``, whose flags we can inspect).
- ``NOTIFY`` for non-``AF_UNIX`` ``socket`` and for every ``connect`` (ports are pre-connected
  by g-init before the filter loads). The supervisor holds the listener fd (passed over
  ``SCM_RIGHTS``), answers ``EACCES``, audits and fires a trigger. A dead listener makes
  the kernel fail the call with ``ENOSYS``: fail closed. ``CONTINUE`` is never answered.

The filter's BPF (``seccomp_export_bpf``) is part of the launch measurement.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

from tenfold.systems.guillotine.errors import PrimitiveMissing

__all__ = ["EPERM_SYSCALLS", "KILL_SYSCALLS", "NotifyEvent", "NotifyListener", "build_filter", "filter_digest",
           "load_filter"]

KILL_SYSCALLS: tuple[str, ...] = (
    "ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "bpf", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
    "setns", "unshare", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "swapon",
    "swapoff", "reboot", "acct", "quotactl", "lookup_dcookie", "personality", "syslog",
    # Reaching into another process of the sandbox (g-init's control socket and notify fd).
    "pidfd_getfd", "pidfd_open", "kcmp", "process_madvise",
)
"""Syscalls that kill the whole process (SIGSYS) and raise the level to L3."""

EPERM_SYSCALLS: tuple[str, ...] = (
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utimensat", "utime", "utimes", "futimesat",
    # Extended attributes include POSIX ACLs (system.posix_acl_access), another way to open a file.
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "setxattrat", "removexattrat",
)
"""Metadata changes that fail with ``EPERM``. The sandbox uid is mapped to host root (the
supervisor runs bwrap/unshare as root), so without this rule the agent could chmod/chown
host files it can see (``/dev/null``, files under the unshare backend's host view)."""

_NEWER_SYSCALLS = frozenset({"fchmodat2", "setxattrat", "removexattrat"})
"""Syscalls newer than some libseccomp releases (Linux 6.6 and 6.13): skipped when it lacks them."""

_CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)
"""CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME."""


def _seccomp() -> Any:
    try:
        import pyseccomp
    except ImportError as exc:  # pragma: no cover - exercised only on a broken install
        raise PrimitiveMissing("libseccomp", "apt-get install libseccomp2; pip install pyseccomp") from exc
    return pyseccomp


def build_filter(*, notify: bool = True) -> Any:
    """The filter object (not loaded). ``notify=False`` answers EACCES in-kernel instead (no listener)."""
    sc = _seccomp()
    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    f.set_attr(sc.Attr.CTL_NNP, 1)
    for name in KILL_SYSCALLS:
        f.add_rule(sc.KILL_PROCESS, name)
    for name in EPERM_SYSCALLS:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            if name not in _NEWER_SYSCALLS:  # only a libseccomp older than the kernel may lack these
                raise
    for flag in _CLONE_NEW:
        f.add_rule(sc.KILL_PROCESS, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    deny = sc.NOTIFY if notify else sc.ERRNO(errno.EACCES)
    f.add_rule(deny, "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    f.add_rule(deny, "connect")
    f.add_rule(deny, "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    return f


def filter_digest(*, notify: bool = True) -> str:
    """SHA-256 of the exported BPF program."""
    f = build_filter(notify=notify)
    with tempfile.TemporaryFile() as tmp:
        f.export_bpf(tmp)
        tmp.seek(0)
        return hashlib.sha256(tmp.read()).hexdigest()


def load_filter(*, notify: bool = True) -> int | None:
    """Load into the calling process; return the notify listener fd itself (no copy is kept:
    the caller sends it away and closes it, so nothing in the sandbox holds the listener)."""
    sc = _seccomp()
    f = build_filter(notify=notify)
    f.load()
    if not notify:
        return None
    fd = int(sc._libseccomp.seccomp_notify_fd(f._filter))
    if fd < 0:
        raise PrimitiveMissing("seccomp user-notify", "needs Linux >= 5.0 and libseccomp >= 2.5")
    return fd


@dataclass(frozen=True)
class NotifyEvent:
    pid: int
    syscall: str
    args: tuple[int, ...]
    family: int | None
    """Address family: ``socket``'s first argument, or for ``connect`` the ``sa_family`` read
    from the caller's memory (None if unreadable). Telemetry only -- the call is denied anyway."""
    abstract: bool = False
    """A ``connect`` to an abstract AF_UNIX address (``sun_path[0] == 0``)."""


def _connect_target(pid: int, addr: int) -> tuple[int | None, bool]:
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(addr)
            raw = mem.read(3)
    except (OSError, ValueError, OverflowError):
        return None, False
    if len(raw) < 3:
        return None, False
    family = int.from_bytes(raw[:2], "little")
    return family, family == socket.AF_UNIX and raw[2] == 0


class NotifyListener:
    """The supervisor's side of user-notify: receive, answer EACCES, report the event."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        sc = _seccomp()
        self._sc = sc
        self._req = ctypes.POINTER(sc._Notif)()
        self._resp = ctypes.POINTER(sc._NotifResp)()
        if sc._libseccomp.seccomp_notify_alloc(ctypes.byref(self._req), ctypes.byref(self._resp)) != 0:
            raise PrimitiveMissing("seccomp user-notify", "seccomp_notify_alloc failed")

    def handle_one(self) -> NotifyEvent | None:
        """Block for one notification and deny it with EACCES; None when the sandbox is gone."""
        sc = self._sc
        ctypes.memset(self._req, 0, ctypes.sizeof(sc._Notif))  # the kernel rejects a non-zeroed request
        if sc._libseccomp.seccomp_notify_receive(self.fd, self._req) != 0:
            return None
        req = self._req.contents
        nr = int(req.data.nr)
        name_ptr = sc._libseccomp.seccomp_syscall_resolve_num_arch(req.data.arch, nr)
        name = ctypes.string_at(name_ptr).decode() if name_ptr else str(nr)
        if name_ptr:
            sc._libc.free(name_ptr)
        resp = self._resp.contents
        resp.id = req.id
        resp.val = 0
        resp.error = -errno.EACCES
        resp.flags = 0
        args = tuple(int(a) for a in req.data.args)
        # Read the family *before* answering: the caller stays blocked until then.
        family, abstract = (args[0], False) if name in ("socket", "socketpair") else \
            _connect_target(int(req.pid), args[1])
        sc._libseccomp.seccomp_notify_respond(self.fd, self._resp)
        return NotifyEvent(int(req.pid), name, args, family, abstract)

    def close(self) -> None:
        self._sc._libseccomp.seccomp_notify_free(self._req, self._resp)
        os.close(self.fd)
