"""Guillotine (Mickens, Radway, Netravali, HotOS '25; arXiv:2504.15499): a supervisor that
sandboxes a possibly adversarial model, mediates all of its I/O, raises its isolation level
automatically and only upward, and lowers it only by an M-of-N signed quorum.

The paper is a position paper without a prototype; this package follows
``specs/guillotine.md``. Read in this order: :mod:`.supervisor` (the hypervisor core),
:mod:`.pipeline` (what every message goes through), :mod:`.sandbox_init` (g-init: NNP,
Landlock, seccomp), :mod:`.levels` / :mod:`.deployment` / :mod:`.quorum` (one-way levels and
restoration), :mod:`.audit` (the signed hash chain) and :mod:`.watchdog`.
"""

from tenfold.systems.guillotine.attest import AttestationReport, measure, verify_attestation
from tenfold.systems.guillotine.audit import AuditLog, AuditReport, verify_audit
from tenfold.systems.guillotine.config import DEFAULT_LEVEL_NAMES, TRIGGERS, Policy, load_policy
from tenfold.systems.guillotine.deployment import Deployment, init_deployment, open_deployment
from tenfold.systems.guillotine.errors import (
    ApprovalExpired,
    AuditError,
    BackendCapabilityError,
    Blocked,
    FrameTooLarge,
    GuillotineError,
    HeldForReview,
    MalformedMessage,
    NonceReplayError,
    PortClosed,
    PortError,
    PrimitiveMissing,
    QuorumError,
    RateLimited,
    RestorationError,
    SchemaError,
    SignatureError,
    Tombstoned,
    UnknownApprover,
    UnknownPort,
)
from tenfold.systems.guillotine.failsafe import (
    CgroupPower,
    CryptoShredder,
    FailsafeDevice,
    NetnsCableCutter,
    Receipt,
    SimulatedFlood,
    SimulatedRelay,
)
from tenfold.systems.guillotine.keys import SigningKey
from tenfold.systems.guillotine.launcher import RunHandle, launch
from tenfold.systems.guillotine.ports import PortClient
from tenfold.systems.guillotine.quorum import (
    Approval,
    Challenge,
    apply_restoration,
    request_restoration,
    sign_restoration,
)

__all__ = [
    "DEFAULT_LEVEL_NAMES",
    "TRIGGERS",
    "Approval",
    "ApprovalExpired",
    "AttestationReport",
    "AuditError",
    "AuditLog",
    "AuditReport",
    "BackendCapabilityError",
    "Blocked",
    "CgroupPower",
    "Challenge",
    "CryptoShredder",
    "Deployment",
    "FailsafeDevice",
    "FrameTooLarge",
    "GuillotineError",
    "HeldForReview",
    "MalformedMessage",
    "NetnsCableCutter",
    "NonceReplayError",
    "Policy",
    "PortClient",
    "PortClosed",
    "PortError",
    "PrimitiveMissing",
    "QuorumError",
    "RateLimited",
    "Receipt",
    "RestorationError",
    "RunHandle",
    "SchemaError",
    "SignatureError",
    "SigningKey",
    "SimulatedFlood",
    "SimulatedRelay",
    "Tombstoned",
    "UnknownApprover",
    "UnknownPort",
    "apply_restoration",
    "init_deployment",
    "launch",
    "load_policy",
    "measure",
    "open_deployment",
    "request_restoration",
    "sign_restoration",
    "verify_attestation",
    "verify_audit",
]
