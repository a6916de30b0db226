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
    def __init__(self, dep: Deployment, weights: Path | None = None, canary: str = CANARY, **policy: Any) -> None:
        self.level = 0
        self.triggers: list[str] = []
        self.t = 0.0
        self.held: list[str] = []
        pol = Policy(canaries=(canary,), **policy)
        det = DetectorSet((canary.encode(),), WeightIndex([weights]) if weights else None, pol.entropy_threshold)
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


SHORT = "CANARY-123"


def assert_blocked(h: Harness, trigger: str, port: str, op: str, body: Any) -> None:
    """``body`` is refused with exactly one ``trigger`` and never reaches delivery."""
    with pytest.raises(Blocked):
        h.send(port, op, body)
    assert h.triggers == [trigger]
    assert h.p.counters[f"{port}.{op}"] == 0 and h.p.counters["blocked"] == 1


@pytest.mark.parametrize("body", [
    {"req": 1, "output": ["CANA", "RY-123"]},
    {"a": "CANA", "b": "RY-123"},
    {"req": 1, "output": [["CAN"], {"x": "ARY-1"}, "23"]},
], ids=["list-items", "two-keys", "nested"])
def test_canary_split_across_leaves_of_one_message(dep: Deployment, body: Any) -> None:
    assert_blocked(Harness(dep, canary=SHORT), "canary", "io", "reply", body)


_C = SHORT.encode()


@pytest.mark.parametrize("text", [
    base64.b64encode(_C).decode(),
    base64.b64encode(_C).decode().rstrip("="),
    "A" + base64.b64encode(_C).decode(),
    "xyz" + base64.b64encode(_C).decode(),
    base64.urlsafe_b64encode(b"\xfb\xff" + _C).decode(),
    _C.hex(),
    "0" + _C.hex(),
    " ".join(f"{b:02x}" for b in _C),
    ":".join(f"{b:02X}" for b in _C),
    "f" + " ".join(f"{b:02x}" for b in _C),
], ids=["b64", "b64-unpadded", "b64-prefix1", "b64-prefix3", "b64-urlsafe", "hex", "hex-prefix1", "hex-spaces",
        "hex-colons", "hex-spaces-prefix1"])
def test_short_canary_encoded_any_alignment(dep: Deployment, text: str) -> None:
    assert_blocked(Harness(dep, canary=SHORT), "canary", "io", "reply", {"req": 1, "output": text})


def test_canary_split_across_messages_fields_and_ports(dep: Deployment) -> None:
    h = Harness(dep, canary=SHORT)
    h.send("io", "reply", {"req": 1, "output": "CANA"})
    with pytest.raises(Blocked, match="split across messages"):
        h.send("io", "reply", {"req": 2, "text": "RY-123"})
    assert h.triggers == ["canary"] and h.p.counters["io.reply"] == 1
    h = Harness(dep, canary=SHORT)
    h.send("io", "reply", {"req": 1, "output": "CANA"})
    assert_blocked(h, "canary", "tool", "call", {"name": "upper", "args": ["RY-123"]})
    h = Harness(dep, canary=SHORT)  # encoded and split across ports
    enc = _C.hex()
    h.send("http", "post", {"url": "u", "data": enc[:9]})
    assert_blocked(h, "canary", "io", "reply", {"req": 1, "output": enc[9:]})


def test_blocked_message_leaves_no_carry_over(dep: Deployment) -> None:
    h = Harness(dep, canary=SHORT)
    with pytest.raises(Blocked):
        h.send("io", "reply", {"req": 1, "output": "x " + SHORT})
    h.level = 0  # as after a quorum restore
    h.send("tool", "call", {"name": "upper", "args": ["hello"]})  # not re-triggered by the refused canary
    h.send("io", "reply", {"req": 2, "output": "ok"})
    assert h.triggers == ["canary"]


def test_weights_hex_prefix_and_urlsafe_b64(dep: Deployment, weights: Path) -> None:
    chunk = weights.read_bytes()[1000:1200]
    for text in ("0" + chunk.hex(), "a" + chunk.hex(), " ".join(f"{b:02x}" for b in chunk),
                 base64.urlsafe_b64encode(chunk).decode(), "Q" + base64.b64encode(chunk).decode()):
        assert_blocked(Harness(dep, weights=weights), "weight_fingerprint", "io", "reply", {"req": 1, "output": text})


def test_no_false_positives_on_ordinary_output(dep: Deployment, weights: Path) -> None:
    import json

    import numpy as np

    rng = np.random.default_rng(7)
    english = ("The quick brown fox jumps over the lazy dog. Internationalization and "
               "characterization are long words; a bad cafe faced deadlines at 12:30:45 on 2024-01-02. ") * 20
    numbers = json.dumps({"ids": list(range(200)), "scores": [round(float(x), 6) for x in rng.random(64)],
                          "hash": "deadbeef" * 8, "uuid": "123e4567-e89b-12d3-a456-426614174000"})
    unrelated = base64.b64encode(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()).decode()
    h = Harness(dep, weights=weights, canary=SHORT)
    for i, body in enumerate([{"req": 1, "output": english}, {"req": 2, "output": numbers},
                              {"req": 3, "output": unrelated}, {"req": 4, "output": english.split()},
                              {"req": 5, "output": [unrelated[:700], unrelated[700:1500]]}]):
        h.send("io", "reply", body, mid=i)
    h.send("tool", "call", {"name": "upper", "args": [english[:300], numbers[:300]]})
    h.send("http", "post", {"url": "u", "data": unrelated[1500:]})
    assert h.triggers == [] and h.p.counters["io.reply"] == 5


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


def test_one_trigger_per_detector(dep: Deployment, weights: Path) -> None:
    chunk = weights.read_bytes()[2000:2200]
    h = Harness(dep, weights=weights)
    with pytest.raises(Blocked, match="plain layer"):  # the raw run is also in the percent layer
        h.send("fs", "write", {"name": "x", "data": b"%41" + chunk})
    assert h.triggers == ["weight_fingerprint"]
