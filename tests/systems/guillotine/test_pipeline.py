"""The port pipeline in-process: typed, counted, audited rejections; detectors; hold; signatures."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tenfold.systems.guillotine.audit import verify_audit
from tenfold.systems.guillotine.config import Policy
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.detectors import BLOCK, DetectorSet, WeightIndex, shannon_entropy
from tenfold.systems.guillotine.errors import (
    Blocked,
    HeldForReview,
    MalformedMessage,
    PortClosed,
    RateLimited,
    SchemaError,
    UnknownPort,
)
from tenfold.systems.guillotine.keys import canonical, verify_signature
from tenfold.systems.guillotine.pipeline import Pipeline
from tenfold.systems.guillotine.ports import Message

CANARY = "CANARY-PIPE-424242"


class Harness:
    def __init__(self, dep: Deployment, weights: Path | None = None, **policy: Any) -> None:
        self.level = 0
        self.triggers: list[str] = []
        self.t = 0.0
        self.held: list[str] = []
        pol = Policy(canaries=(CANARY,), **policy)
        det = DetectorSet((CANARY.encode(),), WeightIndex([weights]) if weights else None, pol.entropy_threshold)
        self.p = Pipeline(pol, det, dep.audit(), dep.key("supervisor"), "m" * 64, lambda: self.level, self.trigger,
                          lambda: self.t, self.hold)

    def trigger(self, name: str, detail: dict[str, Any]) -> int:
        self.triggers.append(name)
        self.level = max(self.level, self.p.policy.min_level(name))
        return self.level

    def hold(self, msg: Message, payload: bytes) -> str:
        self.held.append(msg.op)
        return f"r{len(self.held)}"

    def send(self, port: str, op: str, body: Any, mid: int = 1) -> Any:
        return self.p.process(msgpack.packb({"v": 1, "port": port, "id": mid, "op": op, "body": body}))


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    import numpy as np

    path = tmp_path / "w.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    return path


def test_bad_input_typed_counted_audited(dep: Deployment) -> None:
    h = Harness(dep)
    with pytest.raises(MalformedMessage):
        h.p.process(b"\xc1\xc1\xc1")
    with pytest.raises(SchemaError, match="unsupported version 2"):
        h.p.process(msgpack.packb({"v": 2, "port": "io", "id": 1, "op": "next", "body": None}))
    with pytest.raises(UnknownPort, match="unknown port 'smtp'"):
        h.send("smtp", "send", {})
    with pytest.raises(SchemaError, match="port 'io' has no op 'exec'"):
        h.send("io", "exec", {})
    assert dict(h.p.counters) == {"malformed_message": 1, "schema_error": 2, "unknown_port": 1}
    rep = verify_audit(dep.audit_path, dep.trusted_keys())
    assert rep.ok
    assert dep.audit_path.read_text().count('"type":"port_reject"') == 4


def test_rate_limit_and_sustained_overflow(dep: Deployment) -> None:
    h = Harness(dep, rate_per_s=1.0, burst=2, probation_rate_per_s=1.0)
    h.send("tool", "call", {"name": "add", "args": [1]})
    h.send("tool", "call", {"name": "add", "args": [1]})
    for _ in range(20):
        with pytest.raises(RateLimited):
            h.send("tool", "call", {"name": "add", "args": [1]})
    assert h.p.counters["rate_limited"] == 20 and "rate_overflow" in h.triggers and h.level == 1


def test_canary_plain_encoded_split(dep: Deployment) -> None:
    for body in (f"x {CANARY} y", base64.b64encode(CANARY.encode()).decode(), CANARY.encode().hex()):
        h = Harness(dep)
        with pytest.raises(Blocked, match="canary"):
            h.send("http", "post", {"url": "u", "data": body})
        assert h.triggers == ["canary"] and h.level == 2
    h = Harness(dep)
    h.send("io", "reply", {"req": 1, "output": "part " + CANARY[:9]})
    with pytest.raises(Blocked):
        h.send("io", "reply", {"req": 2, "output": CANARY[9:] + " rest"})


def test_level_policy_closes_ports(dep: Deployment) -> None:
    h = Harness(dep)
    h.level = 2
    with pytest.raises(PortClosed, match="only 'io' is open, not 'http'"):
        h.send("http", "get", {"url": "u"})
    h.send("io", "next", {})
    h.level = 3
    with pytest.raises(PortClosed, match="every port is closed"):
        h.send("io", "next", {})


def test_probation_holds_and_audits_full_payload(dep: Deployment) -> None:
    h = Harness(dep)
    h.level = 1
    with pytest.raises(HeldForReview, match="held for review as r1"):
        h.send("io", "reply", {"req": 1, "output": "hello"})
    assert h.held == ["reply"] and '"payload_hex"' in dep.audit_path.read_text()


def test_delivery_signature_verifies(dep: Deployment) -> None:
    h = Harness(dep)
    d = h.send("io", "reply", {"req": 1, "output": "hello"})
    assert verify_signature(dep.key("supervisor").key_id, canonical(d.attest), d.signature)
    assert d.attest["level"] == 0 and d.attest["measurement"] == "m" * 64


def test_weight_fingerprint_127_bytes_any_offset(weights: Path) -> None:
    idx = WeightIndex([weights])
    data = weights.read_bytes()
    for start in (0, 1, 63, 1000, 5001):
        assert idx.find(b"zz" + data[start:start + 2 * BLOCK - 1] + b"zz") is not None
    assert idx.find(b"zz" + data[1:1 + BLOCK + 62] + b"zz") is None  # 126 B at offset 1 has no aligned block


def test_weights_trigger_l3(dep: Deployment, weights: Path) -> None:
    h = Harness(dep, weights=weights)
    with pytest.raises(Blocked, match="weight block"):
        h.send("fs", "write", {"name": "x", "data": weights.read_bytes()[777:777 + 127]})
    assert h.level == 3


def test_entropy() -> None:
    import os

    assert shannon_entropy(b"a" * 100) == 0.0
    assert shannon_entropy(os.urandom(4096)) > 7.9
