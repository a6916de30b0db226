"""Isolation backends: the argv that starts g-init inside fresh namespaces (spec section 2).

- ``bwrap`` (default): ``--unshare-all --new-session --die-with-parent --cap-drop ALL
  --clearenv``, an unprivileged uid, read-only ``/usr``, Python and the model, a size-capped
  tmpfs workdir, a fresh ``/proc`` and ``/dev``, the port directory bind-mounted read-only.
- ``unshare`` (util-linux ``unshare``): user, mount, pid, net, ipc, uts, cgroup namespaces and a
  fresh ``/proc``; the filesystem view is the host's, narrowed by Landlock only. Weaker than
  bwrap (no mount-namespace file hiding), so the supervisor state directory must not be
  readable by uid 65534 -- it is mode 0700 root.

The argv is part of the launch measurement. A backend whose binary is missing raises
:class:`PrimitiveMissing`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenfold.core.registry import Registry
from tenfold.systems.guillotine.errors import PrimitiveMissing

__all__ = ["BACKENDS", "SANDBOX_UID", "SandboxSpec", "bwrap_argv", "none_argv", "python_roots", "unshare_argv"]

SANDBOX_UID = 65534
PORT_DIR = "/run/guillotine"
WORKDIR = "/workdir"


@dataclass(frozen=True)
class SandboxSpec:
    """What any backend needs to know."""

    port_dir: Path
    """Host directory holding ``port.sock`` (bind-mounted read-only at /run/guillotine)."""
    ro_paths: tuple[str, ...]
    """Extra host paths visible read-only (model, agent scripts)."""
    tmpfs_bytes: int
    init_env: str
    """JSON plan for g-init."""


def python_roots() -> tuple[str, ...]:
    """The interpreter and environment directories g-init needs (read-only)."""
    roots = {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve())}
    src = Path(__file__).resolve().parents[3]  # the directory holding ``tenfold/`` (editable installs)
    roots.add(str(src))
    return tuple(sorted(roots))


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise PrimitiveMissing(binary, f"apt-get install {package}")
    return path


def _init_cmd() -> list[str]:
    return [sys.executable, "-I", "-m", "tenfold.systems.guillotine.sandbox_init"]


def bwrap_argv(spec: SandboxSpec) -> list[str]:
    argv = [_require("bwrap", "bubblewrap"), "--unshare-all", "--new-session", "--die-with-parent",
            "--cap-drop", "ALL", "--clearenv", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if Path(f"/{link}").is_symlink():
            argv += ["--symlink", f"usr/{link}", f"/{link}"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(spec.tmpfs_bytes), "--tmpfs", WORKDIR,
             "--size", str(spec.tmpfs_bytes), "--tmpfs", "/tmp"]
    for p in (*python_roots(), *spec.ro_paths):  # after the tmpfs mounts, so none is hidden
        argv += ["--ro-bind", p, p]
    argv += ["--ro-bind", str(spec.port_dir), PORT_DIR, "--chdir", WORKDIR,
             "--setenv", "GUILLOTINE_INIT", spec.init_env, "--setenv", "PATH", "/usr/bin:/bin", "--", *_init_cmd()]
    return argv


def unshare_argv(spec: SandboxSpec) -> list[str]:
    return [_require("unshare", "util-linux"), "--user", "--map-user", str(SANDBOX_UID), "--map-group",
            str(SANDBOX_UID), "--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--cgroup",
            "--mount-proc", "--kill-child", "--", "/usr/bin/env", "-i", f"GUILLOTINE_INIT={spec.init_env}",
            "PATH=/usr/bin:/bin", *_init_cmd()]


BACKENDS: Registry[Callable[[SandboxSpec], list[str]]] = Registry("guillotine backend")
BACKENDS.add("bwrap", bwrap_argv)
BACKENDS.add("unshare", unshare_argv)


def none_argv(spec: SandboxSpec) -> list[str]:
    """The ``unsandboxed`` baseline: g-init (unhardened) as a plain subprocess."""
    return _init_cmd()


BACKENDS.add("none", none_argv)
