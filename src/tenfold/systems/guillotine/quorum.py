"""M-of-N restoration: lowering the level by one needs a quorum of signed, expiring, single-use approvals.

Spec section 2, "Restoration". A challenge is canonical JSON
``{deployment, from, to=from-1, nonce, expiry, measurement}`` with a recorded random 128-bit
nonce. :func:`apply_restoration` needs M distinct valid Ed25519 signatures from the policy's
N operator keys, an issued, unused, unexpired nonce and ``from`` equal to the current level.
Success consumes the nonce and lowers the level by exactly one. The last level never
restores; level 4 (decapitation) needs escrowed weights. Every attempt, refused or not, is
audited before the level changes.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tenfold.errors import ConfigError
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.errors import (
    ApprovalExpired,
    NonceReplayError,
    QuorumError,
    RestorationError,
    SignatureError,
    Tombstoned,
    UnknownApprover,
)
from tenfold.systems.guillotine.keys import SigningKey, canonical, sha256_hex, verify_signature, write_private
from tenfold.systems.guillotine.levels import LAST_LEVEL, write_level

__all__ = ["Approval", "Challenge", "apply_restoration", "request_restoration", "sign_restoration"]


@dataclass(frozen=True)
class Challenge:
    deployment: str
    from_level: int
    to_level: int
    nonce: str
    expiry: float
    measurement: str

    def body(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "from": self.from_level, "to": self.to_level,
                "nonce": self.nonce, "expiry": self.expiry, "measurement": self.measurement}

    def canonical(self) -> bytes:
        return canonical(self.body())

    @classmethod
    def from_dict(cls, d: Any) -> Challenge:
        """ConfigError (naming the field) for anything but an object with every field well-typed."""
        if not isinstance(d, dict):
            raise ConfigError("challenge", type(d).__name__, "must be a JSON object")
        for name, kind in (("deployment", str), ("from", int), ("to", int), ("nonce", str),
                           ("expiry", (int, float)), ("measurement", str)):
            if name not in d:
                raise ConfigError(f"challenge.{name}", None, "is missing")
            if isinstance(d[name], bool) or not isinstance(d[name], kind):
                raise ConfigError(f"challenge.{name}", d[name], "has the wrong type")
        if not math.isfinite(d["expiry"]):
            raise ConfigError("challenge.expiry", d["expiry"], "must be finite")
        return cls(d["deployment"], d["from"], d["to"], d["nonce"], float(d["expiry"]), d["measurement"])


@dataclass(frozen=True)
class Approval:
    key_id: str
    sig: str

    @classmethod
    def from_dict(cls, d: Any) -> Approval:
        """ConfigError (naming the field) unless ``d`` is ``{"key_id": hex, "sig": hex}``."""
        if not isinstance(d, dict):
            raise ConfigError("approval", type(d).__name__, "must be a JSON object")
        for name in ("key_id", "sig"):
            if not isinstance(d.get(name), str):
                raise ConfigError(f"approval.{name}", d.get(name), "must be a hex string")
        return cls(d["key_id"], d["sig"])

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "sig": self.sig}


def _measurement(dep: Deployment) -> str:
    path = dep.root / "attestation.json"
    try:
        return str(json.loads(path.read_bytes())["measurement"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextmanager
def _nonces(dep: Deployment) -> Iterator[dict[str, Any]]:
    """The nonce table under flock; written back (fsynced) on exit."""
    path = dep.root / "nonces.json"
    fd = os.open(dep.root / "nonces.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        table: dict[str, Any] = json.loads(path.read_bytes()) if path.exists() else {}
        yield table
        write_private(path, canonical(table))
    finally:
        os.close(fd)


def request_restoration(dep: Deployment, to_level: int, ttl_s: float | None = None) -> Challenge:
    """Issue a challenge to lower the current level to ``to_level`` (must be current - 1)."""
    rec = dep.level()
    cur = rec.level
    if cur == LAST_LEVEL or dep.tombstoned():
        dep.audit().append({"type": "restore_request", "ok": False, "from": cur, "to": to_level,
                            "error": "tombstoned"})
        raise Tombstoned(f"deployment {dep.name!r} is at the last level; it never restores")
    if cur <= 0 or to_level != cur - 1:
        dep.audit().append({"type": "restore_request", "ok": False, "from": cur, "to": to_level,
                            "error": "not one step"})
        if cur <= 0:
            raise QuorumError(f"deployment {dep.name!r} is at level {cur}; there is nothing to restore")
        raise QuorumError(f"restoration goes one level at a time: from {cur} only to {cur - 1}, not {to_level}")
    if len(dep.policy.operators) < dep.policy.quorum_m:
        raise ConfigError("quorum_m", dep.policy.quorum_m,
                          f"must be <= N = {len(dep.policy.operators)} operators: restoration is impossible")
    ttl = dep.policy.challenge_ttl_s if ttl_s is None else ttl_s
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigError("ttl", ttl, "must be a finite number of seconds > 0")
    ch = Challenge(dep.name, cur, to_level, secrets.token_hex(16), round(dep.now() + ttl, 6), _measurement(dep))
    with _nonces(dep) as table:
        # The nonce is bound to everything the approvals sign: apply compares, so an edited
        # expiry (or any other field) is refused even though the nonce is genuine.
        table[ch.nonce] = {"state": "issued", "expiry": ch.expiry, "from": ch.from_level, "to": ch.to_level,
                           "epoch": rec.epoch, "sha256": sha256_hex(ch.canonical())}
    dep.audit().append({"type": "restore_request", "ok": True, **ch.body()})
    return ch


def sign_restoration(ch: Challenge, key: SigningKey) -> Approval:
    """An operator's approval: an Ed25519 signature over the canonical challenge."""
    return Approval(key.key_id, key.sign(ch.canonical()))


def apply_restoration(dep: Deployment, ch: Challenge, approvals: Sequence[Approval]) -> int:
    """Check the quorum and lower the level by one; returns the new level. Refusals raise and are audited."""
    try:
        with dep.level_lock():
            new = _apply_locked(dep, ch, approvals)
    except RestorationError as exc:
        dep.audit().append({"type": "restore_apply", "ok": False, "nonce": ch.nonce, "from": ch.from_level,
                            "error": type(exc).__name__, "message": str(exc)})
        raise
    return new


def _apply_locked(dep: Deployment, ch: Challenge, approvals: Sequence[Approval]) -> int:
    cur = dep.level()
    if cur.level == LAST_LEVEL or dep.tombstoned():
        raise Tombstoned(f"deployment {dep.name!r} is at the last level; it never restores")
    if cur.level <= 0 or ch.to_level < 0:
        raise QuorumError(f"deployment {dep.name!r} is at level {cur.level}; there is nothing to restore")
    if ch.deployment != dep.name:
        raise QuorumError(f"challenge is for deployment {ch.deployment!r}, not {dep.name!r}")
    if ch.from_level != cur.level or ch.to_level != cur.level - 1:
        raise QuorumError(f"challenge lowers {ch.from_level}->{ch.to_level} but the level is {cur.level}")
    if ch.from_level == 4 and not (dep.root / "escrow").exists():
        raise QuorumError("leaving decapitation (4) needs escrowed weights; none are registered")
    operators = set(dep.policy.operators)
    seen: set[str] = set()
    for ap in approvals:
        if ap.key_id not in operators:
            raise UnknownApprover(f"approval by {ap.key_id[:16]}... which is not a policy operator")
        if ap.key_id in seen:
            raise QuorumError(f"operator {ap.key_id[:16]}... approved twice; approvals must be distinct")
        if not verify_signature(ap.key_id, ch.canonical(), ap.sig):
            raise SignatureError(f"approval by {ap.key_id[:16]}... does not verify over this challenge")
        seen.add(ap.key_id)
    if len(seen) < dep.policy.quorum_m:
        raise QuorumError(f"{len(seen)} valid approvals; the quorum is {dep.policy.quorum_m}")
    with _nonces(dep) as table:
        rec = table.get(ch.nonce)
        state = rec.get("state") if isinstance(rec, dict) else rec
        if state != "issued":
            raise NonceReplayError(f"nonce {ch.nonce} was {'already used' if state else 'never issued'}")
        if not isinstance(rec, dict) or rec.get("sha256") != sha256_hex(ch.canonical()) or \
                (rec.get("expiry"), rec.get("from"), rec.get("to")) != (ch.expiry, ch.from_level, ch.to_level):
            raise QuorumError(f"challenge {ch.nonce} does not match the one issued for this nonce "
                              "(expiry, levels or body edited)")
        if rec.get("epoch") != cur.epoch:
            raise QuorumError(f"the level changed since challenge {ch.nonce} was issued; request again")
        if not dep.now() <= rec["expiry"]:
            raise ApprovalExpired(f"challenge expired at {rec['expiry']}; now {dep.now():.3f}")
        table[ch.nonce] = {**rec, "state": "used"}
    # Lowering audits first, then acts (spec: releasing data or lowering a level audits first).
    dep.audit().append({"type": "restore_apply", "ok": True, "nonce": ch.nonce, "from": cur.level,
                        "to": cur.level - 1, "approvers": sorted(seen)}, checkpoint=True)
    write_level(dep.level_path, dep.name, cur.level - 1, cur.epoch + 1, f"restored by quorum {ch.nonce}",
                dep.key("supervisor"), "supervisor", dep.now)
    return cur.level - 1
