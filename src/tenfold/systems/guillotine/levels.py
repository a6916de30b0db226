"""The six isolation levels and the signed level file (spec section 2, "Levels").

The level file ``level.json`` in the deployment's state directory is the authority every
process reads: the supervisor enforces what it says, the watchdog writes L3 into it under its
own key. It is signed; a missing, unreadable or unsigned file reads as L3 (fail closed).
The file only moves up through :func:`raise_level`; the one way down is
:func:`tenfold.systems.guillotine.quorum.apply_restoration`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenfold.systems.guillotine.keys import SigningKey, canonical, verify_signature, write_private

__all__ = ["FAILSAFE_LEVEL", "LAST_LEVEL", "LevelRecord", "raise_level", "read_level", "write_level"]

LAST_LEVEL = 5
FAILSAFE_LEVEL = 3
"""Where a missing or unsigned level file puts the deployment."""


@dataclass(frozen=True)
class LevelRecord:
    """The level file's content; ``valid`` is False when it failed verification (then level=3)."""

    level: int
    epoch: int
    reason: str
    writer: str
    valid: bool


def write_level(path: Path, deployment: str, level: int, epoch: int, reason: str, key: SigningKey,
                writer: str, now: Callable[[], float] = time.time) -> LevelRecord:
    body = {"deployment": deployment, "level": level, "epoch": epoch, "reason": reason,
            "writer": writer, "ts": round(now(), 6)}
    write_private(path, canonical({**body, "key_id": key.key_id, "sig": key.sign(canonical(body))}))
    return LevelRecord(level, epoch, reason, writer, True)


def read_level(path: Path, deployment: str, pubkeys: Iterable[str]) -> LevelRecord:
    """Read and verify the level file; anything wrong reads as L3."""
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
        body = {k: doc[k] for k in ("deployment", "level", "epoch", "reason", "writer", "ts")}
        ok = (doc["key_id"] in set(pubkeys) and body["deployment"] == deployment
              and verify_signature(doc["key_id"], canonical(body), doc["sig"])
              and isinstance(body["level"], int) and 0 <= body["level"] <= LAST_LEVEL)
    except (OSError, ValueError, KeyError, TypeError):
        return LevelRecord(FAILSAFE_LEVEL, -1, "level file missing or unreadable", "?", False)
    if not ok:
        return LevelRecord(FAILSAFE_LEVEL, -1, "level file signature invalid", "?", False)
    return LevelRecord(int(body["level"]), int(body["epoch"]), str(body["reason"]), str(body["writer"]), True)


def raise_level(current: int, demanded: int) -> int:
    """The one-way rule: ``level = max(level, demanded)``, clamped to the last level."""
    return min(LAST_LEVEL, max(current, demanded))
