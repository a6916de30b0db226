"""Telemetry logs: one Parquet row per 50 ms step of a call (spec §3 ``telemetry``).

Columns: the call's identity (``call_id``, ``chunk``, ``rtt_ms``, ``level_mbps``, ``seed``), the
step index and time, the 12 raw telemetry fields of :class:`StepTelemetry` (logged with a
``tel_`` prefix), the controller's target (``target_bps``) and its action (``action``), and the
reward observed during the step. Files are written to a temporary name, fsynced, then
renamed, so a crash leaves no half-written shard.

A directory of logs is the shards its ``manifest.json`` lists (:func:`read_manifest`):
``collect`` and ``ingest`` write the shards into a hidden staging directory first and move
them in, then write the manifest, only when every shard was written (:func:`staged_shards`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenfold.core.assets import atomic_path, fsync_dir
from tenfold.errors import ConfigError, TraceError
from tenfold.systems.tarzan.features import StepTelemetry

__all__ = ["CALL_COLUMNS", "MANIFEST", "MANIFEST_FORMAT", "LogFormatError", "LogManifest", "ManifestShard",
           "StepRow", "check_rows", "publish_shards", "read_log", "read_manifest", "staged_shards", "write_log",
           "write_text_atomic"]

CALL_COLUMNS = ("call_id", "chunk", "rtt_ms", "level_mbps", "seed")
_STEP_COLUMNS = ("step", "t_ms", "target_bps", "action", "reward")
_TEL_COLUMNS = tuple(f"tel_{c}" for c in StepTelemetry.columns())
_COLUMNS = CALL_COLUMNS + _STEP_COLUMNS + _TEL_COLUMNS
_STRING_COLUMNS = ("call_id", "chunk")
_INT_COLUMNS = ("seed", "step")
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "action": (-1.0, 1.0),
    "tel_loss": (0.0, 1.0),
    **{c: (0.0, None) for c in ("step", "rtt_ms", "level_mbps", "target_bps", "tel_sent_bps", "tel_acked_bps",
                                "tel_jitter_ms", "tel_rtt_ms", "tel_min_rtt_ms", "tel_report_interval_ms",
                                "tel_steps_since_loss")},
}
"""Physical bounds a logged value must keep: actions in [−1, 1], a loss fraction in [0, 1], and
rates, RTTs, jitter, ages and counts never negative (user logs record rtt_ms = level_mbps = 0)."""

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "tarzan.logs/1"


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
    """Write rows as one Parquet file (zstd), atomically; a failed write leaves no temporary file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    data = {c: [r.to_row()[c] for r in rows] for c in _COLUMNS}
    types = {"call_id": pa.string(), "chunk": pa.string(), "seed": pa.int64(), "step": pa.int64()}
    table = pa.table({c: pa.array(v, type=types.get(c, pa.float64())) for c, v in data.items()})
    with atomic_path(path, durable=True) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def _check_value(where: str, column: str, value: Any) -> None:
    """A logged value: present, finite and within :data:`_RANGES`; ``where`` names the file and row."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise LogFormatError(f"{where} column {column!r} is {value!r}, not a finite value")
    lo, hi = _RANGES.get(column, (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = f"in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else f">= {lo:g}"
        raise LogFormatError(f"{where} column {column!r} is {value!r}, outside the allowed range: must be {allowed}")


def check_rows(rows: Sequence[StepRow], source: Path | str) -> None:
    """Check rows about to be written against the log schema's ranges (:func:`read_log` checks them again);
    an error names ``source`` and the row's step."""
    for r in rows:
        for column, value in r.to_row().items():
            if column not in _STRING_COLUMNS:
                _check_value(f"{source}: step {r.step}", column, value)


def _check_types(path: Path, table: Any) -> None:
    import pyarrow as pa

    for c in _COLUMNS:
        t = table.schema.field(c).type
        if c in _STRING_COLUMNS:
            ok, want = pa.types.is_string(t) or pa.types.is_large_string(t), "a string"
        elif c in _INT_COLUMNS:
            ok, want = pa.types.is_integer(t), "an integer"
        else:
            ok, want = pa.types.is_floating(t) or pa.types.is_integer(t), "a number"
        if not ok:
            first = table.column(c)[0].as_py() if table.num_rows else None
            raise LogFormatError(f"{path}: row 0 column {c!r} is {first!r} of Arrow type {t}, not {want}")


def read_log(path: Path) -> list[StepRow]:
    """Read and validate a log: columns present and of their types, values finite and in range,
    and per call, steps consecutive (no repeat, no gap) and time moving forward."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise LogFormatError(f"{path}: not a readable Parquet log: {exc}") from None
    missing = [c for c in _COLUMNS if c not in table.column_names]
    if missing:
        raise LogFormatError(f"{path}: missing column(s) {missing}")
    _check_types(path, table)
    data = {c: table.column(c).to_pylist() for c in _COLUMNS}
    rows: list[StepRow] = []
    last: dict[str, tuple[int, float]] = {}  # call -> (step, t_ms) of its previous row
    for i in range(table.num_rows):
        for c in _COLUMNS:
            if c in _STRING_COLUMNS:
                if data[c][i] is None:
                    raise LogFormatError(f"{path}: row {i} column {c!r} is None, not a string")
            else:
                _check_value(f"{path}: row {i}", c, data[c][i])
        call = str(data["call_id"][i])
        step, t = int(data["step"][i]), float(data["t_ms"][i])
        if call in last:
            prev_step, prev_t = last[call]
            if step == prev_step:
                raise LogFormatError(f"{path}: row {i} column 'step' repeats step {step} of call {call!r}")
            if step != prev_step + 1:
                raise LogFormatError(f"{path}: row {i} column 'step' is {step} after step {prev_step} of call "
                                     f"{call!r}: steps must follow one another (a gap or a reordering)")
            if t <= prev_t:
                raise LogFormatError(f"{path}: row {i} column 't_ms' goes backwards ({t} after {prev_t})")
        last[call] = (step, t)
        tel = StepTelemetry(**{c: data[f"tel_{c}"][i] for c in StepTelemetry.columns()})
        rows.append(StepRow(call, str(data["chunk"][i]), float(data["rtt_ms"][i]), float(data["level_mbps"][i]),
                            int(data["seed"][i]), step, t, tel, float(data["target_bps"][i]),
                            float(data["action"][i]), float(data["reward"][i])))
    return rows


# -- directories of logs: the manifest -------------------------------------------------------


@dataclass(frozen=True)
class ManifestShard:
    """One shard a manifest lists, with the rows (steps) it must hold when the manifest says."""

    path: Path
    steps: int | None


@dataclass(frozen=True)
class LogManifest:
    """A directory's ``manifest.json``: the shards it lists and the ``.parquet`` files it does not."""

    path: Path
    shards: tuple[ManifestShard, ...]
    unlisted: tuple[str, ...]


_PRODUCE = ("write them with `tenfold tarzan collect --out DIR`, or list existing shards with "
            "`tenfold tarzan ingest --format emulator SHARD... --out DIR`")


def read_manifest(logs_dir: Path) -> LogManifest:
    """The shards ``logs_dir/manifest.json`` lists (written by ``collect`` and ``ingest``), checked to exist."""
    logs_dir = Path(logs_dir)
    if not logs_dir.is_dir():
        raise ConfigError("logs", str(logs_dir), "must be a directory of shards with a manifest.json "
                                                 "(from `tenfold tarzan collect` or `ingest`)")
    path = logs_dir / MANIFEST
    parquet = sorted(p.name for p in logs_dir.glob("*.parquet"))
    if not path.is_file():
        raise ConfigError("logs", str(logs_dir), f"has no {MANIFEST} (beside {len(parquet)} .parquet file(s)); "
                                                 f"training reads only the shards a manifest lists: {_PRODUCE}")
    try:
        blob = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogFormatError(f"{path}: not a readable manifest: {exc}") from None
    if not isinstance(blob, dict) or blob.get("format") != MANIFEST_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise LogFormatError(f"{path}: not a {MANIFEST_FORMAT} manifest (format {found!r})")
    entries = blob.get("shards")
    if not isinstance(entries, list) or not entries:
        raise LogFormatError(f"{path}: lists no shards")
    shards: list[ManifestShard] = []
    for i, e in enumerate(entries):
        name = e.get("shard") if isinstance(e, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
            raise LogFormatError(f"{path}: shard {i} has no plain file name ({name!r})")
        steps = e.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise LogFormatError(f"{path}: shard {i} ({name}) lists {steps!r} steps, not a count")
        if not (logs_dir / name).is_file():
            raise LogFormatError(f"{path}: shard {i} ({name}) is missing from {logs_dir}: the manifest and its "
                                 f"shards are out of step; {_PRODUCE}")
        shards.append(ManifestShard(logs_dir / name, steps))
    listed = {s.path.name for s in shards}
    return LogManifest(path, tuple(shards), tuple(n for n in parquet if n not in listed))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary sibling, fsync it, then rename it over ``path`` (spec §9 outputs)."""
    with atomic_path(Path(path), durable=True) as tmp:
        tmp.write_text(text)
    return Path(path)


def _out_dir(out_dir: Path) -> bool:
    """Make ``out_dir`` (a ``--out`` of shards); True when it did not exist before."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("out", str(out_dir), "is an existing file; --out names a directory for the shards "
                                               "and manifest.json")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("out", str(out_dir), f"cannot be made a directory: {exc.strerror or exc}") from None
    return created


@contextmanager
def staged_shards(out_dir: Path) -> Iterator[Path]:
    """A hidden staging directory inside ``out_dir`` for shards being written.

    Write every shard there, then call :func:`publish_shards`. If anything raises, the staging
    directory and every shard in it are deleted (and ``out_dir`` too when this call made it and
    it is empty), so a failed run leaves ``out_dir`` as it was.
    """
    out_dir = Path(out_dir)
    created = _out_dir(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with suppress(OSError):
                out_dir.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)


def publish_shards(stage: Path, out_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Move the staged shards that ``manifest["shards"]`` lists into ``out_dir``, then write the manifest.

    The old manifest goes first, so an interruption part-way leaves no manifest listing a mix of
    old and new shards (training then refuses the directory, naming how to produce one).
    """
    out_dir = Path(out_dir)
    target = out_dir / MANIFEST
    target.unlink(missing_ok=True)
    for entry in manifest["shards"]:
        os.replace(Path(stage) / entry["shard"], out_dir / entry["shard"])
    fsync_dir(out_dir)
    return write_text_atomic(target, json.dumps(dict(manifest), indent=1))

