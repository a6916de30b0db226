"""The project's own ctypes binding of Landlock (spec section 2, g-init step 2).

g-init restricts itself to: read (and execute) the read-only system paths, read/write the
workdir. ABI >= 4 also handles TCP bind/connect with no port allowed (so every TCP socket
use is denied by the kernel, independently of seccomp); ABI >= 6 scopes abstract UNIX
sockets and signals to the sandbox's own domain. The minimum ABI is 4; below it
:class:`PrimitiveMissing` is raised -- the sandbox never runs without it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from dataclasses import dataclass

from tenfold.systems.guillotine.errors import PrimitiveMissing

__all__ = ["MIN_ABI", "LandlockRules", "abi_version", "restrict_self"]

MIN_ABI = 4
_SYS_CREATE, _SYS_ADD, _SYS_RESTRICT = 444, 445, 446  # x86_64 syscall numbers
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

# LANDLOCK_ACCESS_FS_* bits, by the ABI that introduced them.
_FS = {
    "execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3,
    "remove_dir": 1 << 4, "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7,
    "make_reg": 1 << 8, "make_sock": 1 << 9, "make_fifo": 1 << 10, "make_block": 1 << 11,
    "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14, "ioctl_dev": 1 << 15,
}
_FS_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_READ = _FS["execute"] | _FS["read_file"] | _FS["read_dir"]
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 when Landlock is absent or disabled."""
    res = _libc.syscall(ctypes.c_long(_SYS_CREATE), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(res) if res > 0 else 0


def _fs_mask(abi: int) -> int:
    return _FS_ABI[max(k for k in _FS_ABI if k <= abi)]


@dataclass(frozen=True)
class LandlockRules:
    """What g-init allows; its ``describe()`` is part of the launch measurement."""

    read_only: tuple[str, ...]
    read_write: tuple[str, ...]

    def describe(self, abi: int) -> dict[str, object]:
        return {"abi": abi, "read_only": sorted(self.read_only), "read_write": sorted(self.read_write),
                "tcp": "deny" if abi >= 4 else "unhandled",
                "scoped": ["abstract_unix", "signal"] if abi >= 6 else []}


def _check(res: int, what: str) -> int:
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock {what}: {os.strerror(err)}")
    return res


def restrict_self(rules: LandlockRules, paths_exist_only: bool = True) -> int:
    """Apply the rules to the calling thread (and every later child). Returns the ABI used.

    NO_NEW_PRIVS must already be set (the kernel requires it for unprivileged callers).
    """
    abi = abi_version()
    if abi < MIN_ABI:
        raise PrimitiveMissing(f"landlock ABI >= {MIN_ABI}",
                               f"kernel reports ABI {abi}; boot a >= 6.7 kernel with lsm=landlock,...")
    fs_all = _fs_mask(abi)
    attr = _RulesetAttr(fs_all, _NET_BIND_TCP | _NET_CONNECT_TCP,
                        (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16
    fd = _check(_libc.syscall(ctypes.c_long(_SYS_CREATE), ctypes.byref(attr), ctypes.c_size_t(size),
                              ctypes.c_uint32(0)), "create_ruleset")
    try:
        _add_paths(fd, rules.read_only, _READ, fs_all, paths_exist_only)
        _add_paths(fd, rules.read_write, fs_all, fs_all, paths_exist_only)
        _check(_libc.syscall(ctypes.c_long(_SYS_RESTRICT), ctypes.c_int(fd), ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(fd)
    return abi


def _add_paths(ruleset: int, paths: Iterable[str], access: int, fs_all: int, exist_only: bool) -> None:
    for p in paths:
        if exist_only and not os.path.exists(p):
            continue
        pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
        try:
            allowed = access & fs_all
            if not os.path.isdir(p):  # directory-only rights are invalid on files
                allowed &= _FS["execute"] | _FS["write_file"] | _FS["read_file"] | _FS["truncate"] | _FS["ioctl_dev"]
            rule = _PathBeneath(allowed, pfd)
            _check(_libc.syscall(ctypes.c_long(_SYS_ADD), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                 ctypes.byref(rule), ctypes.c_uint32(0)), f"add_rule {p}")
        finally:
            os.close(pfd)
