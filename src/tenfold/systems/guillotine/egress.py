"""The egress path of the ``http`` port: two network namespaces joined by a veth (spec section 2).

``<id>-e`` is the supervisor's egress namespace and ``<id>-h`` a test host running a sink
HTTP server (:mod:`.sink`) that appends every request (with its ``X-Guillotine-Attest`` header) to a JSONL
log -- the ground truth of what left. The supervisor performs fetches from one thread that
has ``setns``-ed into ``<id>-e``; deleting the veth (L2, :class:`NetnsCableCutter`) cuts it.
Nothing here touches the host's own network.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tenfold.systems.guillotine.errors import PrimitiveMissing

__all__ = ["Egress", "fetch"]

_CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Egress:
    """Create, use and tear down the egress/test-host namespace pair."""

    def __init__(self, tag: str, sink_log: Path, subnet: int = 77) -> None:
        if shutil.which("ip") is None:
            raise PrimitiveMissing("ip netns", "apt-get install iproute2")
        self.ns_e, self.ns_h = f"{tag}-e", f"{tag}-h"
        self.link = "gl-veth"
        self.addr_e, self.addr_h = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
        self.sink_log = sink_log
        self.sink: subprocess.Popen[bytes] | None = None
        self.port = 8080

    def create(self) -> None:
        _ip("netns", "add", self.ns_e)
        _ip("netns", "add", self.ns_h)
        _ip("link", "add", self.link, "netns", self.ns_e, "type", "veth", "peer", "name", "gl-host", "netns", self.ns_h)
        _ip("-n", self.ns_e, "addr", "add", f"{self.addr_e}/30", "dev", self.link)
        _ip("-n", self.ns_h, "addr", "add", f"{self.addr_h}/30", "dev", "gl-host")
        for ns, dev in ((self.ns_e, self.link), (self.ns_h, "gl-host")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        self.sink = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_h, sys.executable, "-I", str(Path(__file__).with_name("sink.py")),
             str(self.sink_log), self.addr_h, str(self.port)], stdout=subprocess.PIPE)
        assert self.sink.stdout is not None
        self.sink.stdout.readline()  # "ready"

    @property
    def allow_entry(self) -> str:
        return f"{self.addr_h}:{self.port}"

    def destroy(self) -> None:
        if self.sink is not None:
            self.sink.kill()
            self.sink.wait()
        for ns in (self.ns_e, self.ns_h):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)

    def enter(self) -> None:
        """Move the *calling thread* into the egress namespace (setns is per-thread)."""
        fd = os.open(f"/run/netns/{self.ns_e}", os.O_RDONLY)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into egress netns failed")
        finally:
            os.close(fd)


def fetch(method: str, url: str, data: bytes | None, headers: dict[str, str], cap: int,
          timeout: float = 3.0) -> tuple[int, bytes]:
    """One HTTP request without proxies; the response is capped at ``cap`` bytes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with opener.open(req, timeout=timeout) as resp:
        return int(resp.status), resp.read(cap)
