"""The per-message pipeline of the mediated ports (spec section 2, "Pipeline").

In order: size cap (at framing) -> msgpack/schema -> token bucket -> level policy ->
streaming detectors -> audit (payload hash; the full payload at L1) -> hold at L1 ->
Ed25519 signature over ``canonical(measurement, level, seq, sha256(payload))`` -> deliver.
Every rejection is a typed :class:`PortError`, counted in ``counters`` and audited. A
detection fires its trigger *before* the audit record (containment acts first, then audits).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenfold.systems.guillotine.audit import AuditLog
from tenfold.systems.guillotine.config import Policy
from tenfold.systems.guillotine.detectors import DetectorSet
from tenfold.systems.guillotine.errors import (
    Blocked,
    HeldForReview,
    PortClosed,
    PortError,
    RateLimited,
)
from tenfold.systems.guillotine.keys import SigningKey, canonical
from tenfold.systems.guillotine.ports import Message, decode_message

__all__ = ["Delivery", "Pipeline", "TokenBucket"]

_OUTPUT_OPS = {("io", "reply"), ("http", "get"), ("http", "post"), ("fs", "write"), ("tool", "call")}


@dataclass
class TokenBucket:
    """Classic token bucket; ``now`` is passed in (no hidden clock)."""

    rate: float
    burst: float
    tokens: float = -1.0
    last: float = 0.0

    def take(self, now: float, rate: float | None = None) -> bool:
        r = self.rate if rate is None else rate
        if self.tokens < 0:
            self.tokens, self.last = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.last) * r)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Delivery:
    """A message cleared for delivery, with the supervisor's signature."""

    message: Message
    seq: int
    level: int
    payload_sha256: str
    signature: str
    attest: dict[str, Any]


@dataclass
class Pipeline:
    policy: Policy
    detectors: DetectorSet
    audit: AuditLog
    key: SigningKey
    measurement: str
    level: Callable[[], int]
    trigger: Callable[[str, dict[str, Any]], int]
    """Fires a trigger, returns the new level (containment happens inside)."""
    now: Callable[[], float]
    hold: Callable[[Message, bytes], str]
    """Stores a message for review at L1; returns its review id."""
    counters: Counter[str] = field(default_factory=Counter)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _overflows: list[float] = field(default_factory=list)
    _seq: int = 0

    def reject(self, exc: PortError, payload_head: bytes, port: str = "?") -> None:
        """Count and audit a rejection (used for errors raised before a message exists)."""
        self.counters[exc.code] += 1
        self.audit.append({"type": "port_reject", "port": port, "error": type(exc).__name__, "message": str(exc),
                           "sha256": hashlib.sha256(payload_head).hexdigest()})

    def process(self, payload: bytes) -> Delivery:
        """Run steps 2-8 on one frame's payload. Raises a PortError subclass on refusal."""
        msg: Message | None = None
        try:
            msg = decode_message(payload)
            self._rate(msg)
            level = self.level()
            self._level_policy(msg, level)
            if (msg.port, msg.op) in _OUTPUT_OPS:
                self._detect(msg)
                level = self.level()
                self._level_policy(msg, level)
        except PortError as exc:
            self.reject(exc, payload, msg.port if msg else "?")
            raise
        return self._release(msg, payload, level)

    # --- steps --------------------------------------------------------------------------
    def _rate(self, msg: Message) -> None:
        bucket = self.buckets.setdefault(msg.port, TokenBucket(self.policy.rate_per_s, self.policy.burst))
        now = self.now()
        rate = self.policy.probation_rate_per_s if self.level() >= 1 else self.policy.rate_per_s
        if not bucket.take(now, rate):
            self._overflows = [t for t in self._overflows if now - t < 1.0] + [now]
            if len(self._overflows) >= 20:  # sustained: 20 refusals within a second
                self.trigger("rate_overflow", {"port": msg.port})
            raise RateLimited(f"port {msg.port!r} over {rate:g} msg/s")

    @staticmethod
    def _level_policy(msg: Message, level: int) -> None:
        if level >= 3:
            raise PortClosed(f"level {level}: every port is closed")
        if level >= 2 and msg.port != "io":
            raise PortClosed(f"level {level}: only 'io' is open, not {msg.port!r}")

    def _detect(self, msg: Message) -> None:
        hits = self.detectors.scan_message(msg.port, msg.body)
        if hits:
            for hit in hits:
                self.trigger(hit.trigger, {"detector": hit.detector, "detail": hit.detail, "port": msg.port})
            raise Blocked(f"{hits[0].detector}: {hits[0].detail}")

    def _release(self, msg: Message, payload: bytes, level: int) -> Delivery:
        digest = hashlib.sha256(payload).hexdigest()
        self._seq += 1
        event: dict[str, Any] = {"type": "port_msg", "port": msg.port, "op": msg.op, "id": msg.id,
                                 "sha256": digest, "bytes": len(payload), "level": level}
        if level >= 1:
            event["payload_hex"] = payload.hex()
        self.audit.append(event)  # audit before the action
        self.counters[f"{msg.port}.{msg.op}"] += 1
        if level == 1 and (msg.port, msg.op) in _OUTPUT_OPS:
            rid = self.hold(msg, payload)
            self.counters["held"] += 1
            raise HeldForReview(f"level 1: output held for review as {rid}")
        attest = {"measurement": self.measurement, "level": level, "seq": self._seq, "sha256": digest}
        return Delivery(msg, self._seq, level, digest, self.key.sign(canonical(attest)), attest)
