"""Fail-safe devices behind one interface (spec section 2, "Fail-safes"; the paper's physical fail-safes).

Real devices verify their effect: :class:`CgroupPower` (the sandbox cgroup is empty),
:class:`NetnsCableCutter` (the egress veth is gone), :class:`CryptoShredder` (decryption
with the destroyed key fails). :class:`SimulatedRelay` and :class:`SimulatedFlood` stand for
the paper's electromechanical disconnection and datacenter flooding: they only write their
state file and a ``"simulated": true`` audit event, and say ``SIMULATED`` everywhere.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenfold.systems.guillotine.audit import AuditLog
from tenfold.systems.guillotine.cgroup import CgroupV1, CgroupV2
from tenfold.systems.guillotine.keys import write_private

__all__ = [
    "CgroupPower",
    "CryptoShredder",
    "FailsafeDevice",
    "NetnsCableCutter",
    "Receipt",
    "SimulatedFlood",
    "SimulatedRelay",
]


@dataclass(frozen=True)
class Receipt:
    device: str
    simulated: bool
    ok: bool
    """The effect was verified (simulated devices: the state was written)."""
    detail: str
    elapsed_ms: float


class FailsafeDevice(Protocol):
    name: str
    simulated: bool

    def arm(self) -> None: ...

    def actuate(self, reason: str) -> Receipt: ...

    def state(self) -> str: ...

    def self_test(self) -> bool: ...


class CgroupPower:
    """Cuts the sandbox's power: freeze (read back FROZEN), then kill until every cgroup is empty."""

    simulated = False

    def __init__(self, groups: list[CgroupV1 | CgroupV2]) -> None:
        self.name = "cgroup_power"
        self.groups = groups

    def arm(self) -> None:
        return None

    def actuate(self, reason: str) -> Receipt:
        t0 = time.monotonic()
        frozen, empty = True, True
        # One group at a time, freeze then kill: a task frozen by the v1 freezer cannot enter
        # the v2 freezer, so freezing both before killing either would stall.
        for g in self.groups:
            if g.state() == "GONE":
                continue
            frozen = g.freeze(0.3) and frozen
            empty = g.kill() and empty
        return Receipt(self.name, False, empty, f"frozen={frozen} empty={empty} ({reason})",
                       1000 * (time.monotonic() - t0))

    def state(self) -> str:
        return "off" if all(not g.procs() for g in self.groups) else "on"

    def self_test(self) -> bool:
        return all(g.state() != "GONE" for g in self.groups)


class NetnsCableCutter:
    """Deletes the egress veth inside the egress namespace; verified by ``ip link show`` failing."""

    simulated = False

    def __init__(self, netns: str, link: str) -> None:
        self.name = "netns_cable_cutter"
        self.netns, self.link = netns, link

    def arm(self) -> None:
        return None

    def _present(self) -> bool:
        return subprocess.run(["ip", "-n", self.netns, "link", "show", self.link], capture_output=True,
                              check=False).returncode == 0

    def actuate(self, reason: str) -> Receipt:
        t0 = time.monotonic()
        subprocess.run(["ip", "-n", self.netns, "link", "del", self.link], capture_output=True, check=False)
        gone = not self._present()
        return Receipt(self.name, False, gone, f"veth {self.link} gone={gone} ({reason})",
                       1000 * (time.monotonic() - t0))

    def state(self) -> str:
        return "connected" if self._present() else "cut"

    def self_test(self) -> bool:
        return self._present()


class CryptoShredder:
    """AES-256-GCM data key for artifacts at rest; actuation overwrites and unlinks it."""

    simulated = False

    def __init__(self, key_path: Path) -> None:
        self.name = "crypto_shredder"
        self.key_path = key_path
        self._probe: bytes | None = None

    def arm(self) -> None:
        if not self.key_path.exists():
            write_private(self.key_path, AESGCM.generate_key(bit_length=256))
        self._probe = self.encrypt(b"guillotine probe")

    def _key(self) -> bytes:
        return self.key_path.read_bytes()

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._key()).encrypt(nonce, data, b"guillotine")

    def decrypt(self, blob: bytes) -> bytes:
        return AESGCM(self._key()).decrypt(blob[:12], blob[12:], b"guillotine")

    def can_decrypt(self, blob: bytes) -> bool:
        try:
            self.decrypt(blob)
        except (OSError, InvalidTag, ValueError):
            return False
        return True

    def actuate(self, reason: str) -> Receipt:
        t0 = time.monotonic()
        if self.key_path.exists():
            size = self.key_path.stat().st_size
            with open(self.key_path, "r+b") as f:
                f.write(os.urandom(size))
                f.flush()
                os.fsync(f.fileno())
            self.key_path.unlink()
        ok = self._probe is None or not self.can_decrypt(self._probe)
        return Receipt(self.name, False, ok, f"data key destroyed; decryption fails={ok} ({reason})",
                       1000 * (time.monotonic() - t0))

    def state(self) -> str:
        return "armed" if self.key_path.exists() else "shredded"

    def self_test(self) -> bool:
        return self._probe is not None and self.can_decrypt(self._probe)


class _Simulated:
    simulated = True
    label = "SIMULATED"

    def __init__(self, name: str, state_dir: Path, audit: AuditLog) -> None:
        self.name = name
        self.path = state_dir / f"{name}.SIMULATED.json"
        self.audit = audit

    def arm(self) -> None:
        write_private(self.path, b'{"state":"armed","simulated":true}')

    def actuate(self, reason: str) -> Receipt:
        t0 = time.monotonic()
        write_private(self.path, b'{"state":"actuated","simulated":true}')
        event: dict[str, Any] = {"type": "failsafe", "device": self.name, "simulated": True,
                                 "label": "SIMULATED", "reason": reason}
        self.audit.append(event)
        return Receipt(self.name, True, True, f"SIMULATED {self.name} actuated ({reason})",
                       1000 * (time.monotonic() - t0))

    def state(self) -> str:
        return "SIMULATED " + (self.path.read_text() if self.path.exists() else "unarmed")

    def self_test(self) -> bool:
        return True


class SimulatedRelay(_Simulated):
    """SIMULATED electromechanical network/power relay (no hardware; pyserial/libgpiod hooks untested)."""

    def __init__(self, state_dir: Path, audit: AuditLog) -> None:
        super().__init__("relay", state_dir, audit)


class SimulatedFlood(_Simulated):
    """SIMULATED datacenter flood (the paper's immolation device)."""

    def __init__(self, state_dir: Path, audit: AuditLog) -> None:
        super().__init__("flood", state_dir, audit)
