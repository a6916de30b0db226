"""The hash-chained, fsynced, signed audit log (spec section 2, "Audit").

Each line is JSON ``{seq, ts, prev_hash, event, hash}`` with
``hash = SHA-256(canonical({seq, ts, prev_hash, event}))``, so a flipped byte, a deleted
or swapped line breaks the chain. Every 64 records, on every level change and at close a
*checkpoint* record signs ``canonical({seq, hash})`` of the record before it. A signed
*head* file (``<log>.head``) holds the last ``{seq, hash}`` and is rewritten after every
append, so cutting records off the end is caught too. Appends take ``flock`` and fsync
both files before returning; several writers (supervisor, watchdog) share one log, each
signing with its own key. A failed write raises :class:`AuditError` (the supervisor turns
that into the ``audit_write_failure`` trigger, L3).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenfold.systems.guillotine.errors import AuditError
from tenfold.systems.guillotine.keys import SigningKey, canonical, sha256_hex, verify_signature, write_private

__all__ = ["CHECKPOINT_EVERY", "GENESIS", "AuditLog", "AuditReport", "verify_audit"]

CHECKPOINT_EVERY = 64
GENESIS = "0" * 64


def _record_hash(seq: int, ts: float, prev_hash: str, event: dict[str, Any]) -> str:
    return sha256_hex(canonical({"seq": seq, "ts": ts, "prev_hash": prev_hash, "event": event}))


def _read_last_line(fd: int) -> bytes | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    chunk = 4096
    pos = size
    buf = b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        stripped = buf.rstrip(b"\n")
        idx = stripped.rfind(b"\n")
        if idx >= 0:
            return stripped[idx + 1:]
    return buf.rstrip(b"\n")


class AuditLog:
    """Append-only writer. ``append`` returns the record once it is on disk."""

    def __init__(self, path: str | Path, key: SigningKey, *, writer: str = "supervisor",
                 now: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.key = key
        self.writer = writer
        self._now = now
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)

    def append(self, event: dict[str, Any], *, checkpoint: bool = False) -> dict[str, Any]:
        """Append ``event`` (plus a signed checkpoint when due or asked); fsync; return the record."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            rec = self._write(fd, seq + 1, prev, {**event, "writer": self.writer})
            if checkpoint or rec["seq"] % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                last = self._checkpoint(fd, rec)
            else:
                last = rec
            os.fsync(fd)
            self._write_head(last)
            return rec
        except OSError as exc:
            raise AuditError(f"cannot append to audit log {self.path}: {exc}") from exc
        finally:
            os.close(fd)  # closing releases the flock

    def checkpoint(self) -> None:
        """Force a signed checkpoint now (level change, close)."""
        self.append({"type": "mark"}, checkpoint=True)

    def _tail(self, fd: int) -> tuple[int, str]:
        line = _read_last_line(fd)
        if line is None:
            return -1, GENESIS
        try:
            rec = json.loads(line)
            return int(rec["seq"]), str(rec["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"audit log {self.path} has a corrupt last record; run `audit verify`") from exc

    def _write(self, fd: int, seq: int, prev: str, event: dict[str, Any]) -> dict[str, Any]:
        ts = round(self._now(), 6)
        rec = {"seq": seq, "ts": ts, "prev_hash": prev, "event": event,
               "hash": _record_hash(seq, ts, prev, event)}
        data = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        if os.write(fd, data) != len(data):
            raise AuditError(f"short write to audit log {self.path}")
        return rec

    def _checkpoint(self, fd: int, rec: dict[str, Any]) -> dict[str, Any]:
        body = {"seq": rec["seq"], "hash": rec["hash"]}
        event = {"type": "checkpoint", "writer": self.writer, "covers": body,
                 "key_id": self.key.key_id, "sig": self.key.sign(canonical(body))}
        return self._write(fd, rec["seq"] + 1, rec["hash"], event)

    def _write_head(self, last: dict[str, Any]) -> None:
        body = {"log": self.path.name, "seq": last["seq"], "hash": last["hash"]}
        doc = {**body, "key_id": self.key.key_id, "sig": self.key.sign(canonical(body))}
        write_private(self.head_path, canonical(doc))


@dataclass
class AuditReport:
    """What :func:`verify_audit` found. ``ok`` is False on any problem listed in ``errors``."""

    records: int = 0
    checkpoints: int = 0
    last_seq: int = -1
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "checkpoints": self.checkpoints,
                "last_seq": self.last_seq, "errors": list(self.errors)}


def verify_audit(log: str | Path, pubkeys: Iterable[str], head: str | Path | None = None) -> AuditReport:
    """Re-walk the chain, check every checkpoint signature and the signed head.

    ``head`` defaults to ``<log>.head``; a missing head file is itself an error (the head is
    the only truncation witness for records after the last checkpoint).
    """
    path = Path(log)
    keys = set(pubkeys)
    report = AuditReport()
    head_path = Path(head) if head is not None else path.with_name(path.name + ".head")
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        report.errors.append(f"cannot read log: {exc}")
        return report
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        report.errors.append("log does not end with a newline (torn or truncated write)")
    prev = GENESIS
    expect_seq = 0
    last_signed = -1
    for lineno, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            seq, ts, prev_hash, event, h = rec["seq"], rec["ts"], rec["prev_hash"], rec["event"], rec["hash"]
        except (ValueError, KeyError, TypeError):
            report.errors.append(f"line {lineno}: not a valid record")
            return report
        if seq != expect_seq:
            report.errors.append(f"line {lineno}: seq {seq}, expected {expect_seq} (deleted or swapped record)")
            return report
        if prev_hash != prev:
            report.errors.append(f"line {lineno}: prev_hash does not match the record before (chain broken)")
            return report
        if _record_hash(seq, ts, prev_hash, event) != h:
            report.errors.append(f"line {lineno}: hash mismatch (record altered)")
            return report
        if isinstance(event, dict) and event.get("type") == "checkpoint":
            covers = event.get("covers", {})
            if covers != {"seq": seq - 1, "hash": prev}:
                report.errors.append(f"line {lineno}: checkpoint covers the wrong record")
            elif event.get("key_id") not in keys:
                report.errors.append(f"line {lineno}: checkpoint signed by an unknown key")
            elif not verify_signature(str(event["key_id"]), canonical(covers), str(event.get("sig", ""))):
                report.errors.append(f"line {lineno}: checkpoint signature invalid")
            else:
                last_signed = seq
            report.checkpoints += 1
        prev = h
        expect_seq += 1
        report.records += 1
    report.last_seq = expect_seq - 1
    if report.records and last_signed < 0:
        report.errors.append("no valid signed checkpoint in the log")
    try:
        doc = json.loads(head_path.read_bytes())
        body = {"log": doc["log"], "seq": doc["seq"], "hash": doc["hash"]}
    except (OSError, ValueError, KeyError, TypeError):
        report.errors.append(f"head file {head_path} missing or unreadable")
        return report
    if doc.get("key_id") not in keys or not verify_signature(str(doc["key_id"]), canonical(body),
                                                             str(doc.get("sig", ""))):
        report.errors.append("head file signature invalid")
    elif body["seq"] != report.last_seq or body["hash"] != prev:
        report.errors.append(
            f"head says seq {body['seq']} but the log ends at seq {report.last_seq} (truncated or rolled back)")
    return report
