"""Network-namespace testbeds: namespaces, veth pairs with addresses, commands and sockets
inside, and cleanup that always runs.

Real-network checks (the relay link, scallop's SFU, tarzan's real-network mode) need
hosts that exchange real packets through the kernel yet never touch the machine's own
network. A namespace per host, joined by veth pairs with private addresses (e.g.
``10.201.x.y``), gives that: nothing leaves the namespaces we create. Everything is made
through ``ip`` (Debian package ``iproute2``) and needs root.

:class:`Testbed` is a context manager: on exit, including after an exception or a failed
assertion, it closes the sockets it opened, stops the processes it started, and deletes
its namespaces (which deletes their veth ends). Sockets are created inside a namespace by
a short-lived thread that enters it with ``setns(2)``; a socket keeps the namespace it was
created in, so the calling thread never changes namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tenfold.core.api import api
from tenfold.errors import TenfoldError

__all__ = ["NetnsError", "Testbed", "require_root"]

_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")


class NetnsError(TenfoldError, RuntimeError):
    """A namespace testbed could not be built: not root, no ``ip``, or a command failed."""


def require_root() -> None:
    """Raise :class:`NetnsError` naming what is missing unless namespaces can be made."""
    if os.geteuid() != 0:
        raise NetnsError(f"network namespaces need root (CAP_SYS_ADMIN); this process runs as uid {os.geteuid()}. "
                         "Run as root (CI does), e.g. with sudo")
    if shutil.which("ip") is None:
        raise NetnsError("the 'ip' command is missing; install it with: apt-get install iproute2")


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"'ip {' '.join(args)}' failed ({proc.returncode}): {proc.stderr.strip()}")


@api(stability="beta")
class Testbed:
    """Namespaces named ``<prefix>-<role>`` and the veth pairs between them."""

    __test__ = False  # the name starts with "Test"; keep pytest from collecting it

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"tf{secrets.token_hex(3)}"
        if len(self.prefix) > 9 or not self.prefix.isalnum():
            raise NetnsError(f"testbed prefix {self.prefix!r} must be 1-9 letters or digits (interface names "
                             "are limited to 15 characters)")
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._sockets: list[socket.socket] = []
        self._veths = 0

    def __enter__(self) -> Testbed:
        require_root()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- building ---------------------------------------------------------------------------

    def namespace(self, role: str) -> str:
        """Create namespace ``<prefix>-<role>`` with loopback up; return its name."""
        require_root()
        name = f"{self.prefix}-{role}"
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str, *, mtu: int = 9000) -> tuple[str, str]:
        """A veth pair between two of our namespaces, with CIDR addresses, up; returns its names.

        The MTU defaults to 9000 so that emulated 1500-byte datagrams are not fragmented.
        """
        for ns in (ns_a, ns_b):
            if ns not in self.namespaces:
                raise NetnsError(f"namespace {ns!r} is not part of this testbed; known: {', '.join(self.namespaces)}")
        self._veths += 1
        end_a, end_b = f"{self.prefix}v{self._veths}a", f"{self.prefix}v{self._veths}b"
        _ip("link", "add", end_a, "netns", ns_a, "mtu", str(mtu), "type", "veth", "peer", "name", end_b,
            "netns", ns_b, "mtu", str(mtu))
        for ns, end, addr in ((ns_a, end_a, addr_a), (ns_b, end_b, addr_b)):
            _ip("-n", ns, "addr", "add", addr, "dev", end)
            _ip("-n", ns, "link", "set", end, "up")
        return end_a, end_b

    def route(self, ns: str, destination: str, via: str) -> None:
        _ip("-n", ns, "route", "add", destination, "via", via)

    def enable_forwarding(self, ns: str) -> None:
        self.run(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    # -- using ------------------------------------------------------------------------------

    def run(self, ns: str, argv: Sequence[str], *, timeout: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``ns`` and wait; NetnsError on a non-zero exit when ``check``."""
        proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise NetnsError(f"{' '.join(argv)!r} in {ns} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return proc

    def popen(self, ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``ns``; it is stopped when the testbed closes."""
        proc: subprocess.Popen[Any] = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)
        self._procs.append(proc)
        return proc

    def in_namespace(self, ns: str, fn: Callable[[], _T]) -> _T:
        """Call ``fn`` on a thread that has entered ``ns`` (for creating sockets there)."""
        path = Path("/var/run/netns") / ns
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(path, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise NetnsError(f"setns into {ns} failed: {os.strerror(err)}")
                finally:
                    os.close(fd)
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"setns-{ns}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def udp_socket(self, ns: str, bind: tuple[str, int]) -> socket.socket:
        """A UDP socket bound inside ``ns``; closed when the testbed closes."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.bind(bind)
            return sock

        sock = self.in_namespace(ns, make)
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        """Close sockets, stop processes, delete namespaces; safe to call twice."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=3)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self._procs.clear()
        errors = []
        for ns in reversed(self.namespaces):
            done = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0:
                errors.append(f"{ns}: {done.stderr.strip()}")
        self.namespaces.clear()
        if errors:
            raise NetnsError("could not delete namespaces: " + "; ".join(errors))
