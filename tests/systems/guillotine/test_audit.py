"""The audit log: chain, signed checkpoints and head; tampering of each kind is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenfold.systems.guillotine.audit import CHECKPOINT_EVERY, AuditLog, verify_audit
from tenfold.systems.guillotine.errors import AuditError
from tenfold.systems.guillotine.keys import SigningKey


def _log(tmp_path: Path, n: int = 10) -> tuple[Path, SigningKey]:
    key = SigningKey.generate()
    log = AuditLog(tmp_path / "audit.log", key)
    for i in range(n):
        log.append({"type": "msg", "i": i})
    log.checkpoint()
    return log.path, key


def test_clean_log_verifies(tmp_path: Path) -> None:
    path, key = _log(tmp_path, 70)
    rep = verify_audit(path, [key.key_id])
    assert rep.ok, rep.errors
    # 70 events + 1 periodic checkpoint after seq 63 + mark + its checkpoint
    assert rep.records == 73 and rep.checkpoints == 2
    assert rep.last_seq == 72


def test_periodic_checkpoint_position(tmp_path: Path) -> None:
    path, _ = _log(tmp_path, CHECKPOINT_EVERY)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[CHECKPOINT_EVERY]["event"]["type"] == "checkpoint"
    assert lines[CHECKPOINT_EVERY]["event"]["covers"]["seq"] == CHECKPOINT_EVERY - 1


def test_byte_flip_detected(tmp_path: Path) -> None:
    path, key = _log(tmp_path)
    data = bytearray(path.read_bytes())
    idx = data.index(b'"i":3') + 4
    data[idx] = ord("7")
    path.write_bytes(bytes(data))
    rep = verify_audit(path, [key.key_id])
    assert not rep.ok and rep.errors == ["line 4: hash mismatch (record altered)"]


def test_deletion_detected(tmp_path: Path) -> None:
    path, key = _log(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[5]
    path.write_bytes(b"".join(lines))
    rep = verify_audit(path, [key.key_id])
    assert rep.errors == ["line 6: seq 6, expected 5 (deleted or swapped record)"]


def test_swap_detected(tmp_path: Path) -> None:
    path, key = _log(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    rep = verify_audit(path, [key.key_id])
    assert rep.errors == ["line 3: seq 3, expected 2 (deleted or swapped record)"]


def test_truncation_detected_by_head(tmp_path: Path) -> None:
    path, key = _log(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))
    rep = verify_audit(path, [key.key_id])
    assert rep.errors == ["no valid signed checkpoint in the log",
                          "head says seq 11 but the log ends at seq 8 (truncated or rolled back)"]


def test_missing_head_and_unknown_key(tmp_path: Path) -> None:
    path, key = _log(tmp_path)
    other = SigningKey.generate()
    assert verify_audit(path, [other.key_id]).errors[0] == "line 12: checkpoint signed by an unknown key"
    path.with_name("audit.log.head").unlink()
    assert verify_audit(path, [key.key_id]).errors == [f"head file {path}.head missing or unreadable"]


def test_forged_checkpoint_signature(tmp_path: Path) -> None:
    path, key = _log(tmp_path, 3)
    text = path.read_text()
    rec = json.loads(text.splitlines()[-1])
    sig = rec["event"]["sig"]
    path.write_text(text.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:]))
    assert not verify_audit(path, [key.key_id]).ok


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    la, lb = AuditLog(tmp_path / "a.log", a), AuditLog(tmp_path / "a.log", b, writer="watchdog")
    la.append({"type": "x"})
    lb.append({"type": "y"}, checkpoint=True)
    la.append({"type": "z"}, checkpoint=True)
    rep = verify_audit(tmp_path / "a.log", [a.key_id, b.key_id])
    assert rep.ok and rep.records == 5


def test_unwritable_log_raises_audit_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", SigningKey.generate())
    log.path.unlink()
    log.path.mkdir()
    with pytest.raises(AuditError):
        log.append({"type": "x"})
