"""Telemetry logs: one Parquet row per 50 ms step of a call (spec §3 ``telemetry``).

Columns: the call's identity (``call_id``, ``chunk``, ``rtt_ms``, ``level_mbps``, ``seed``), the
step index and time, the 12 raw telemetry fields of :class:`StepTelemetry` (logged with a
``tel_`` prefix), the controller's target (``target_bps``) and its action (``action``), and the
reward observed during the step. Files are written to a temporary name, fsynced, then
renamed, so a crash leaves no half-written shard.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenfold.errors import TraceError
from tenfold.systems.tarzan.features import StepTelemetry

__all__ = ["CALL_COLUMNS", "LogFormatError", "StepRow", "read_log", "write_log"]

CALL_COLUMNS = ("call_id", "chunk", "rtt_ms", "level_mbps", "seed")
_STEP_COLUMNS = ("step", "t_ms", "target_bps", "action", "reward")
_TEL_COLUMNS = tuple(f"tel_{c}" for c in StepTelemetry.columns())


class LogFormatError(TraceError):
    """A telemetry log that breaks the schema; the message names the row and column."""


@dataclass(frozen=True)
class StepRow:
    """One logged step of one call."""

    call_id: str
    chunk: str
    rtt_ms: float
    level_mbps: float
    seed: int
    step: int
    t_ms: float
    telemetry: StepTelemetry
    target_bps: float
    action: float
    reward: float

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {c: getattr(self, c) for c in CALL_COLUMNS + _STEP_COLUMNS}
        row.update({f"tel_{k}": v for k, v in self.telemetry.to_row().items()})
        return row


def write_log(rows: Sequence[StepRow], path: Path) -> Path:
    """Write rows as one Parquet file (zstd), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = CALL_COLUMNS + _STEP_COLUMNS + _TEL_COLUMNS
    data = {c: [r.to_row()[c] for r in rows] for c in columns}
    types = {"call_id": pa.string(), "chunk": pa.string(), "seed": pa.int64(), "step": pa.int64()}
    table = pa.table({c: pa.array(v, type=types.get(c, pa.float64())) for c, v in data.items()})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def read_log(path: Path) -> list[StepRow]:
    """Read and validate a log: columns present, values finite, time moving forward per call."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise LogFormatError(f"{path}: not a readable Parquet log: {exc}") from None
    columns = CALL_COLUMNS + _STEP_COLUMNS + _TEL_COLUMNS
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise LogFormatError(f"{path}: missing column(s) {missing}")
    data = {c: table.column(c).to_pylist() for c in columns}
    rows: list[StepRow] = []
    last_t: dict[str, float] = {}
    for i in range(table.num_rows):
        for c in columns:
            v = data[c][i]
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise LogFormatError(f"{path}: row {i} column {c!r} is {v!r}, not a finite value")
        call = str(data["call_id"][i])
        t = float(data["t_ms"][i])
        if call in last_t and t <= last_t[call]:
            raise LogFormatError(f"{path}: row {i} column 't_ms' goes backwards ({t} after {last_t[call]})")
        last_t[call] = t
        tel = StepTelemetry(**{c: data[f"tel_{c}"][i] for c in StepTelemetry.columns()})
        rows.append(StepRow(call, str(data["chunk"][i]), float(data["rtt_ms"][i]), float(data["level_mbps"][i]),
                            int(data["seed"][i]), int(data["step"][i]), t, tel, float(data["target_bps"][i]),
                            float(data["action"][i]), float(data["reward"][i])))
    return rows
