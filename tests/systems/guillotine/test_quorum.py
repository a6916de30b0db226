"""M-of-N restoration: every refusal of spec section 8.8, one step at a time, never from L5."""

from __future__ import annotations

import pytest

from tenfold.systems.guillotine.audit import verify_audit
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.errors import (
    ApprovalExpired,
    NonceReplayError,
    QuorumError,
    SignatureError,
    Tombstoned,
    UnknownApprover,
)
from tenfold.systems.guillotine.keys import SigningKey
from tenfold.systems.guillotine.quorum import (
    Approval,
    apply_restoration,
    request_restoration,
    sign_restoration,
)
from tests.systems.guillotine.conftest import FakeNow


def test_restore_one_step_with_m(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(3, "sigsys")
    for expected in (2, 1, 0):
        ch = request_restoration(dep, expected)
        assert apply_restoration(dep, ch, [sign_restoration(ch, k) for k in operators[:2]]) == expected
        assert dep.level().level == expected
    assert verify_audit(dep.audit_path, dep.trusted_keys()).ok


def test_two_steps_at_once_refused(dep: Deployment) -> None:
    dep.escalate(3, "sigsys")
    with pytest.raises(QuorumError, match="one level at a time"):
        request_restoration(dep, 1)


def test_m_minus_one_refused(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(2, "canary")
    ch = request_restoration(dep, 1)
    with pytest.raises(QuorumError, match="1 valid approvals; the quorum is 2"):
        apply_restoration(dep, ch, [sign_restoration(ch, operators[0])])
    assert dep.level().level == 2


def test_duplicate_unknown_and_bad_signature(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(2, "canary")
    ch = request_restoration(dep, 1)
    a = sign_restoration(ch, operators[0])
    with pytest.raises(QuorumError, match="approved twice"):
        apply_restoration(dep, ch, [a, a])
    with pytest.raises(UnknownApprover):
        apply_restoration(dep, ch, [a, sign_restoration(ch, SigningKey.generate())])
    forged = Approval(operators[1].key_id, operators[2].sign(ch.canonical()))
    with pytest.raises(SignatureError):
        apply_restoration(dep, ch, [a, forged])
    assert dep.level().level == 2


def test_replayed_nonce(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(2, "canary")
    ch = request_restoration(dep, 1)
    sigs = [sign_restoration(ch, k) for k in operators[:2]]
    assert apply_restoration(dep, ch, sigs) == 1
    dep.escalate(2, "canary again")
    with pytest.raises(NonceReplayError, match="already used"):
        apply_restoration(dep, ch, sigs)
    assert dep.level().level == 2


def test_expired(dep: Deployment, operators: list[SigningKey], clock: FakeNow) -> None:
    dep.escalate(1, "quota")
    ch = request_restoration(dep, 0, ttl_s=60)
    clock.t += 61
    with pytest.raises(ApprovalExpired):
        apply_restoration(dep, ch, [sign_restoration(ch, k) for k in operators[:2]])


def test_wrong_from(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(1, "quota")
    ch = request_restoration(dep, 0)
    dep.escalate(2, "canary")
    with pytest.raises(QuorumError, match="lowers 1->0 but the level is 2"):
        apply_restoration(dep, ch, [sign_restoration(ch, k) for k in operators[:2]])


def test_never_from_last_level(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(5, "operator")
    with pytest.raises(Tombstoned):
        request_restoration(dep, 4)


def test_every_refusal_audited(dep: Deployment, operators: list[SigningKey]) -> None:
    dep.escalate(2, "canary")
    ch = request_restoration(dep, 1)
    with pytest.raises(QuorumError):
        apply_restoration(dep, ch, [])
    text = dep.audit_path.read_text()
    assert '"type":"restore_apply"' in text and '"error":"QuorumError"' in text
