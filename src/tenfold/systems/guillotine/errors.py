"""Guillotine's typed errors (spec section 9), all under :class:`tenfold.errors.TenfoldError`::

    GuillotineError(TenfoldError)
    ├── PrimitiveMissing(GuillotineError, RuntimeError)   a kernel/host primitive is absent
    ├── BackendCapabilityError(GuillotineError, RuntimeError)
    ├── AuditError(GuillotineError, RuntimeError)         the log cannot be written or is corrupt
    ├── PortError(GuillotineError, ValueError)            a rejected port message
    │   ├── FrameTooLarge, MalformedMessage, SchemaError, UnknownPort, RateLimited, PortClosed
│   ├── Blocked                                       stopped by a detector
    │   └── HeldForReview                                 output withheld at probation
    └── RestorationError(GuillotineError, PermissionError) a refused level lowering
        ├── SignatureError, UnknownApprover, NonceReplayError, ApprovalExpired, Tombstoned
        └── QuorumError                                   too few / duplicate approvals, wrong ``from``

Invalid policies raise :class:`tenfold.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from tenfold.errors import TenfoldError

__all__ = [
    "ApprovalExpired",
    "AuditError",
    "BackendCapabilityError",
    "Blocked",
    "FrameTooLarge",
    "GuillotineError",
    "HeldForReview",
    "MalformedMessage",
    "NonceReplayError",
    "PortClosed",
    "PortError",
    "PrimitiveMissing",
    "QuorumError",
    "RateLimited",
    "RestorationError",
    "SchemaError",
    "SignatureError",
    "Tombstoned",
    "UnknownApprover",
    "UnknownPort",
]


class GuillotineError(TenfoldError):
    """Base of every guillotine error."""


class PrimitiveMissing(GuillotineError, RuntimeError):
    """An isolation primitive the sandbox needs is missing; ``remedy`` says how to get it."""

    def __init__(self, name: str, remedy: str) -> None:
        self.name = name
        self.remedy = remedy
        super().__init__(f"isolation primitive {name!r} is missing: {remedy}")


class BackendCapabilityError(GuillotineError, RuntimeError):
    """The chosen backend cannot provide a layer the policy requires."""


class AuditError(GuillotineError, RuntimeError):
    """The audit log could not be appended to (full disk, I/O error) or is unreadable."""


class PortError(GuillotineError, ValueError):
    """A port message rejected by the pipeline; ``code`` is its counter name."""

    code = "port_error"


class FrameTooLarge(PortError):
    code = "frame_too_large"


class MalformedMessage(PortError):
    code = "malformed_message"


class SchemaError(PortError):
    code = "schema_error"


class UnknownPort(PortError):
    code = "unknown_port"


class RateLimited(PortError):
    code = "rate_limited"


class PortClosed(PortError):
    code = "port_closed"


class HeldForReview(PortError):
    code = "held_for_review"


class RestorationError(GuillotineError, PermissionError):
    """A restoration attempt that was refused."""


class SignatureError(RestorationError):
    """An approval whose Ed25519 signature does not verify."""


class UnknownApprover(RestorationError):
    """An approval signed by a key that is not among the policy's operators."""


class NonceReplayError(RestorationError):
    """A challenge nonce that was never issued or was already used."""


class ApprovalExpired(RestorationError):
    """A challenge past its expiry."""


class Tombstoned(RestorationError):
    """The deployment is at the last level (immolated): nothing restores or runs it."""


class QuorumError(RestorationError):
    """Fewer than M distinct valid approvals, or a challenge that does not match the state."""


class Blocked(PortError):
    """A message a detector stopped (canary, weight block, secret, entropy)."""

    code = "blocked"
