"""A deployment's trusted state directory and the one-way escalation rule.

Layout (``<state_dir>/<deployment>/``, mode 0700, never mounted into the sandbox)::

    policy.json         canonical policy (the measurement hashes it)
    keys/supervisor.key keys/watchdog.key   Ed25519 private keys (0600)
    audit.log  audit.log.head               the hash-chained log and its signed head
    level.json                              the signed current level
    nonces.json                             issued / used restoration nonces
    tombstone.json                          written at the last level; ``run`` refuses then
    data.key                                the AES-256-GCM data key (destroyed at L4)

Level changes take ``flock`` on ``level.lock``, so the supervisor, the watchdog and
operators' CLI calls serialise; containment is written first, then audited.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenfold.errors import ConfigError
from tenfold.systems.guillotine.audit import AuditLog
from tenfold.systems.guillotine.config import Policy
from tenfold.systems.guillotine.errors import Tombstoned
from tenfold.systems.guillotine.keys import SigningKey, canonical, sha256_hex, write_private
from tenfold.systems.guillotine.levels import LAST_LEVEL, LevelRecord, raise_level, read_level, write_level

__all__ = ["DEFAULT_STATE_DIR", "Deployment", "init_deployment", "open_deployment"]

DEFAULT_STATE_DIR = Path(os.environ.get("TENFOLD_GUILLOTINE_STATE", "/var/lib/tenfold/guillotine"))


@dataclass
class Deployment:
    """Handle on one deployment's state directory."""

    name: str
    root: Path
    policy: Policy
    now: Callable[[], float] = time.time
    _keys: dict[str, SigningKey] = field(default_factory=dict, repr=False)

    # --- paths and keys -------------------------------------------------------------------
    @property
    def audit_path(self) -> Path:
        return self.root / "audit.log"

    @property
    def level_path(self) -> Path:
        return self.root / "level.json"

    @property
    def tombstone_path(self) -> Path:
        return self.root / "tombstone.json"

    def key(self, role: str) -> SigningKey:
        if role not in self._keys:
            self._keys[role] = SigningKey.load(self.root / "keys" / f"{role}.key")
        return self._keys[role]

    def trusted_keys(self) -> list[str]:
        """Keys that may sign audit checkpoints, heads and level files."""
        return [self.key("supervisor").key_id, self.key("watchdog").key_id]

    def audit(self, writer: str = "supervisor") -> AuditLog:
        return AuditLog(self.audit_path, self.key(writer), writer=writer, now=self.now)

    # --- level ----------------------------------------------------------------------------
    def level(self) -> LevelRecord:
        return read_level(self.level_path, self.name, self.trusted_keys())

    @contextmanager
    def level_lock(self) -> Iterator[None]:
        fd = os.open(self.root / "level.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def escalate(self, demanded: int, reason: str, *, writer: str = "supervisor",
                 detail: dict[str, Any] | None = None) -> int:
        """Raise the level to at least ``demanded`` (never lower); write, then audit. Returns the level."""
        if not 0 <= demanded <= LAST_LEVEL:
            raise ConfigError("level", demanded, f"must be in [0, {LAST_LEVEL}]")
        with self.level_lock():
            cur = self.level()
            new = raise_level(cur.level, demanded)
            if new != cur.level or not cur.valid:
                write_level(self.level_path, self.name, new, cur.epoch + 1, reason, self.key(writer), writer,
                            self.now)
                self._state_actions(cur.level, new, reason, writer)
                self.audit(writer).append({"type": "level", "from": cur.level, "to": new, "reason": reason,
                                           "detail": detail or {}}, checkpoint=True)
            return new

    def _state_actions(self, old: int, new: int, reason: str, writer: str) -> None:
        """The level actions that live in the state directory, so they hold with or without a
        running supervisor: L4 shreds the data key (decryption then fails); L5 also destroys
        the escrow, actuates the SIMULATED relay and flood and writes the signed tombstone."""
        from tenfold.systems.guillotine.failsafe import CryptoShredder, SimulatedFlood, SimulatedRelay

        if new >= 4 > old:
            CryptoShredder(self.root / "data.key").actuate(reason)
        if new == LAST_LEVEL:
            escrow = self.root / "escrow"
            if escrow.exists():
                CryptoShredder(escrow).actuate(reason)
            for dev in (SimulatedRelay(self.root, self.audit(writer)), SimulatedFlood(self.root, self.audit(writer))):
                dev.actuate(reason)
            self._write_tombstone(reason, writer)

    def _write_tombstone(self, reason: str, writer: str) -> None:
        body = {"deployment": self.name, "reason": reason, "ts": round(self.now(), 6)}
        key = self.key(writer)
        write_private(self.tombstone_path, canonical({**body, "key_id": key.key_id,
                                                      "sig": key.sign(canonical(body))}))

    def tombstoned(self) -> bool:
        """True when a tombstone exists; signed or not, its presence refuses ``run`` (fail closed)."""
        return self.tombstone_path.exists()

    def check_runnable(self) -> None:
        if self.tombstoned():
            raise Tombstoned(f"deployment {self.name!r} is tombstoned (immolated); it never runs again")


def init_deployment(name: str, policy: Policy, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                    now: Callable[[], float] = time.time) -> Deployment:
    """Create the state directory, keys, level file (L0) and the first audit record.

    Re-running on an existing deployment is allowed only with the *same* policy: replacing a
    policy (operators, quorum, triggers...) would let one operator undo the M-of-N rule, so a
    different one is a ConfigError naming the deployment. A tombstoned deployment is refused
    before anything is written.
    """
    if policy.deployment != name:
        policy = policy.replace(deployment=name)
    root = Path(state_dir) / name
    if (root / "tombstone.json").exists():
        raise Tombstoned(f"deployment {name!r} is tombstoned (immolated); it never runs again")
    new_bytes = policy.canonical()
    policy_path = root / "policy.json"
    if policy_path.exists():
        try:
            old = Policy.from_dict(json.loads(policy_path.read_bytes())).canonical()
        except (ValueError, TypeError) as exc:
            raise ConfigError("deployment", name, f"has an unreadable policy.json ({exc}); not replacing it") from None
        if old != new_bytes:
            raise ConfigError("deployment", name,
                              f"already exists at {root} with a different policy (sha256 {sha256_hex(old)[:16]}); "
                              "replacing a deployment's policy is refused (it would bypass the M-of-N "
                              "quorum) -- use a new deployment name")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    (root / "keys").mkdir(exist_ok=True, mode=0o700)
    for role in ("supervisor", "watchdog"):
        path = root / "keys" / f"{role}.key"
        if not path.exists():
            SigningKey.generate().save(path)
    dep = Deployment(name, root, policy, now)
    if not policy_path.exists():
        write_private(policy_path, new_bytes)
        if dep.level_path.exists():  # a half-initialised directory: still record the write
            dep.audit().append({"type": "policy", "policy_sha256": sha256_hex(new_bytes)}, checkpoint=True)
    if not dep.level_path.exists():
        write_level(dep.level_path, name, 0, 0, "init", dep.key("supervisor"), "supervisor", now)
        dep.audit().append({"type": "init", "policy_sha256": sha256_hex(new_bytes)}, checkpoint=True)
    return dep


def open_deployment(name: str, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                    now: Callable[[], float] = time.time) -> Deployment:
    root = Path(state_dir) / name
    if not (root / "policy.json").is_file():
        raise ConfigError("deployment", name, f"no deployment at {root}; run `tenfold guillotine init` first")
    try:
        data = json.loads((root / "policy.json").read_bytes())
    except ValueError as exc:
        raise ConfigError("policy.json", str(root / "policy.json"), f"is not valid JSON: {exc}") from None
    policy = Policy.from_dict(data)
    return Deployment(name, root, policy, now)

