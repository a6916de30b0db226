"""Log adapters: public telemetry formats -> tarzan telemetry rows (spec §3 ``adapters``, §5
"User data", §9 "Logs").

Every adapter turns one user file into the same :class:`~.telemetry.StepRow` rows that the
emulator writes, so ``tenfold tarzan ingest`` shards train exactly like ``collect`` shards.
Adapters are chosen by name from :data:`ADAPTERS` (an unknown name raises
``UnknownNameError`` listing the known ones):

``emulator``
    tarzan's own Parquet logs (:func:`.telemetry.read_log`), unchanged.
``alphartc``
    OpenNetLab/AlphaRTC receiver-side estimator logs: the per-packet dicts that AlphaRTC
    hands to ``BandwidthEstimator.report_states(stats)`` (``send_time_ms``,
    ``arrival_time_ms``, ``payload_type``, ``sequence_number``, ``ssrc``,
    ``padding_length``, ``header_length``, ``payload_size``), one JSON object per line or a
    JSON array, interleaved with the estimator's outputs as
    ``{"time_ms": T, "bandwidth_estimate_bps": B}`` records (what
    ``get_estimated_bandwidth()`` returned at receiver time T; :class:`AlphaRtcEstimator`
    logs exactly these). Packets are aggregated into 50 ms steps by arrival time
    (:class:`ReceiveSideSteps`).
``mmsys24``
    Microsoft RL4BandwidthEstimationChallenge (MMSys'24) call logs: a JSON object with
    ``observations`` (one 150-vector per 60 ms step: 15 features x 10 monitor intervals)
    and the behaviour policy's ``bandwidth_predictions`` (bps). Any capacity field in the
    file (``true_capacity`` ...) is never read.

What each format cannot provide is listed in :data:`MISSING_FEATURES`; such a file is
refused with :class:`MissingFeatureError` unless ``allow_partial=True``, which fills the
missing features with 0 and records their names in the summary. Adapters never see a trace
or its capacity (spec §2.1, §10).

Bad input (spec §9): a missing column, a NaN/inf value or time going backwards raises
:class:`~.telemetry.LogFormatError` naming the file, the row (0-based record index) and the
column. What an adapter skips on purpose (duplicate packets, the trailing partial step,
MMSys'24 rows before the call started) is counted in :class:`AdapterSummary`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tenfold.core.executor import Executor, LocalExecutor
from tenfold.core.registry import Registry
from tenfold.systems.tarzan.features import (
    STEP_MS,
    WINDOW,
    StepTelemetry,
    bps_to_action,
    feature_vector,
    reward,
    window_at,
)
from tenfold.systems.tarzan.gcc import Feedback, Gcc, PacketResult
from tenfold.systems.tarzan.telemetry import (
    MANIFEST_FORMAT,
    LogFormatError,
    StepRow,
    check_rows,
    publish_shards,
    read_log,
    staged_shards,
    write_log,
)

__all__ = [
    "ADAPTERS",
    "ALPHARTC_PACKET_FIELDS",
    "MISSING_FEATURES",
    "MMSYS24_FEATURES",
    "AdaptedLog",
    "AdapterSummary",
    "AlphaRtcEstimator",
    "IngestReport",
    "LogAdapter",
    "MissingFeatureError",
    "ReceiveSideSteps",
    "call_id_of",
    "ingest",
    "load_log",
]

ALPHARTC_PACKET_FIELDS = ("send_time_ms", "arrival_time_ms", "payload_type", "sequence_number", "ssrc",
                          "padding_length", "header_length", "payload_size")
_ESTIMATE_KEY = "bandwidth_estimate_bps"
_UDP_IP_BYTES = 28  # as the emulator counts bytes on the wire (session.py)
_GCC_START_BPS = 300_000.0  # spec §2.3: GCC starts at 300 kbps
# Design choice: GCC, replayed on AlphaRTC packets for feature 12 (and for actions under
# allow_partial), needs an RTT only for its AIMD and loss timers; receiver-side packet
# stats carry none, so a nominal 100 ms (the spec's quick-run RTT) stands in.
_REPLAY_RTT_MS = 100.0

MMSYS24_FEATURES = (
    "receiving_rate_bps", "received_packets", "received_bytes", "queuing_delay_ms", "delay_ms",
    "min_seen_delay_ms", "delay_ratio", "delay_avg_min_diff_ms", "interarrival_ms", "jitter_ms",
    "loss_ratio", "avg_lost_packets", "video_prob", "audio_prob", "probing_prob",
)
_MMSYS24_WINDOWS = 10  # 5 short (60 ms) then 5 long (600 ms) monitor intervals, newest first
_MMSYS24_STEP_MS = 60.0

MISSING_FEATURES: dict[str, tuple[str, ...]] = {
    "emulator": (),
    # Receiver-side packet stats hold no round trip.
    "alphartc": ("rtt", "min_rtt"),
    # The challenge's observation vector is receiver-side and has no GCC state.
    "mmsys24": ("sent_bitrate", "rtt", "min_rtt", "report_interval", "trendline_slope"),
}


class MissingFeatureError(LogFormatError):
    """A log format that lacks some of the 12 features (or the actions) and ``allow_partial`` is off."""


@dataclass(frozen=True)
class AdapterSummary:
    """What one adapter run read, produced and skipped."""

    format: str
    source: str
    records: int
    """Records read: packets + estimates (alphartc), observations (mmsys24), rows (emulator)."""
    steps: int
    skipped: dict[str, int] = field(default_factory=dict)
    """Skipped records by reason; every skip is counted here."""
    missing_features: tuple[str, ...] = ()
    """Features (or ``action``) the format lacks, filled with 0 / replayed under allow_partial."""

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "source": self.source, "records": self.records, "steps": self.steps,
                "skipped": dict(self.skipped), "skipped_total": self.skipped_total,
                "missing_features": list(self.missing_features)}


@dataclass(frozen=True)
class AdaptedLog:
    rows: list[StepRow]
    summary: AdapterSummary


class LogAdapter(Protocol):
    """Turns one file of a public log format into tarzan rows."""

    suffixes: tuple[str, ...]
    """File name endings a directory input is expanded to."""

    def load(self, path: Path, *, allow_partial: bool = False) -> AdaptedLog:
        ...


ADAPTERS: Registry[LogAdapter] = Registry("log format")


def load_log(fmt: str, path: str | Path, *, allow_partial: bool = False) -> AdaptedLog:
    """Load ``path`` with the adapter registered as ``fmt``."""
    return ADAPTERS.get(fmt).load(Path(path), allow_partial=allow_partial)


def _refuse_missing(path: Path, fmt: str, missing: Sequence[str], allow_partial: bool) -> None:
    if missing and not allow_partial:
        raise MissingFeatureError(f"{path}: the {fmt} format lacks feature(s) {list(missing)} of tarzan's 12 "
                                  "(spec §2.1); pass allow_partial=True (--allow-partial) to fill them with 0")


def _finite(path: Path, row: int, column: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LogFormatError(f"{path}: row {row} column {column!r} is {value!r}, not a number")
    v = float(value)
    if not math.isfinite(v):
        raise LogFormatError(f"{path}: row {row} column {column!r} is {v!r}, not a finite value")
    return v


def _non_negative(path: Path, row: int, column: str, value: Any) -> float:
    v = _finite(path, row, column, value)
    if v < 0:
        raise LogFormatError(f"{path}: row {row} column {column!r} is {v!r}, outside the allowed range: must be >= 0")
    return v


# -- emulator --------------------------------------------------------------------------------


class EmulatorAdapter:
    """tarzan's own Parquet logs: read and validated by :func:`.telemetry.read_log`."""

    suffixes: tuple[str, ...] = (".parquet",)

    def load(self, path: Path, *, allow_partial: bool = False) -> AdaptedLog:
        rows = read_log(path)
        return AdaptedLog(rows, AdapterSummary("emulator", str(path), len(rows), len(rows)))


ADAPTERS.add("emulator", EmulatorAdapter())


# -- AlphaRTC --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PacketStats:
    """One AlphaRTC ``report_states`` dict, typed; sizes in bytes, times in ms."""

    send_time_ms: float
    arrival_time_ms: float
    payload_type: int
    sequence_number: int
    ssrc: int
    padding_length: int
    header_length: int
    payload_size: int

    @property
    def wire_bytes(self) -> int:
        return self.payload_size + self.header_length + self.padding_length + _UDP_IP_BYTES

    @classmethod
    def parse(cls, record: dict[str, Any], path: Path, row: int) -> PacketStats:
        values: dict[str, float] = {}
        for name in ALPHARTC_PACKET_FIELDS:
            if name not in record:
                raise LogFormatError(f"{path}: row {row} column {name!r} is missing")
            values[name] = _finite(path, row, name, record[name])
        for name in ALPHARTC_PACKET_FIELDS[2:]:
            if values[name] < 0 or values[name] != int(values[name]):
                raise LogFormatError(f"{path}: row {row} column {name!r} is {record[name]!r}, "
                                     "not a non-negative integer")
        return cls(values["send_time_ms"], values["arrival_time_ms"],
                   *(int(values[n]) for n in ALPHARTC_PACKET_FIELDS[2:]))


class ReceiveSideSteps:
    """Per-packet receive stats -> one :class:`StepTelemetry` per 50 ms of arrival time.

    Used by the ``alphartc`` adapter and, online, by :class:`AlphaRtcEstimator`, so offline
    features and served features are computed by the same code. Step k covers arrivals in
    ``[origin + 50k, origin + 50(k+1))`` where ``origin`` is the first arrival. Per step:

    1. sent bitrate: (received bytes + lost packets x the step's mean packet size) / 50 ms.
       Design choice: a receiver sees no send log; this equals the sending rate while the
       queue is steady and lags it while a queue builds or drains.
    2. acknowledged bitrate: received bytes / 50 ms (payload + header + padding + 28 B UDP/IP).
    3. OWD: mean of arrival - send over the step's packets; the last value when none arrived.
       It assumes sender and receiver clocks share an origin (true in AlphaRTC's gym); the
       queuing delay (11) and jitter (4) are offset-free anyway.
    4. RFC 3550 jitter: J += (|D| - J)/16 over consecutive transit times, in arrival order.
    5, 8. RTT, min RTT: not in receive stats; 0 (listed in :data:`MISSING_FEATURES`).
    6. loss: per SSRC, sequence numbers (16-bit, unwrapped) newly covered by the highest seen
       minus new packets received, over that span; late (reordered) packets count for
       neither.
    7. previous action: supplied by the caller.
    9. report interval: step end - newest arrival (at the receiver, every packet is feedback).
    10. steps since the last step with loss (the step index before any loss, as the emulator).
    11. queuing delay: OWD - min OWD so far.
    12. GCC trendline slope: our GCC fed each step's packets as one feedback report.
    """

    def __init__(self, step_ms: float = STEP_MS) -> None:
        self.step_ms = step_ms
        self.gcc = Gcc()
        self.origin_ms: float | None = None
        self.step = 0
        self._packets: list[PacketStats] = []
        self._highest: dict[int, int] = {}
        self._seen: set[tuple[int, int]] = set()
        self._seq = 0
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._owd = 0.0
        self._min_owd: float | None = None
        self._newest_arrival: float | None = None
        self._last_loss_step: int | None = None
        self._lost = 0
        self._expected = 0
        self.duplicates = 0

    def step_end_ms(self) -> float:
        assert self.origin_ms is not None
        return self.origin_ms + (self.step + 1) * self.step_ms

    def due(self, arrival_ms: float) -> bool:
        """Whether the current step ends before ``arrival_ms`` and must be closed first."""
        return self.origin_ms is not None and arrival_ms >= self.step_end_ms()

    def add(self, pkt: PacketStats) -> bool:
        """Account one packet to the current step; False (and counted) for a duplicate."""
        if self.origin_ms is None:
            self.origin_ms = pkt.arrival_time_ms
        prev = self._highest.get(pkt.ssrc)
        if prev is None:
            seq = pkt.sequence_number
            self._highest[pkt.ssrc] = seq - 1
            prev = seq - 1
        else:
            seq = prev + ((pkt.sequence_number - (prev & 0xFFFF) + 0x8000) % 0x10000) - 0x8000
        if (pkt.ssrc, seq) in self._seen:
            self.duplicates += 1
            return False
        self._seen.add((pkt.ssrc, seq))
        if seq > prev:
            self._expected += seq - prev
            self._lost += seq - prev - 1
            self._highest[pkt.ssrc] = seq
        transit = pkt.arrival_time_ms - pkt.send_time_ms
        if self._last_transit is not None:  # RFC 3550 A.8
            self._jitter += (abs(transit - self._last_transit) - self._jitter) / 16.0
        self._last_transit = transit
        self._newest_arrival = pkt.arrival_time_ms
        self._packets.append(pkt)
        return True

    def close_step(self, prev_action: float) -> StepTelemetry:
        """Close the current step and return its telemetry; the next step begins."""
        assert self.origin_ms is not None, "close_step before any packet"
        end = self.step_end_ms()
        pkts = self._packets
        received = sum(p.wire_bytes for p in pkts)
        if pkts:
            self._owd = float(np.mean([p.arrival_time_ms - p.send_time_ms for p in pkts]))
            step_min = min(p.arrival_time_ms - p.send_time_ms for p in pkts)
            self._min_owd = step_min if self._min_owd is None else min(self._min_owd, step_min)
        lost = max(0, self._lost)
        loss = lost / self._expected if self._expected else 0.0
        mean_size = received / len(pkts) if pkts else 0.0
        if lost:
            self._last_loss_step = self.step
        seconds = self.step_ms / 1000.0
        results = [PacketResult(self._seq + i, p.send_time_ms, p.wire_bytes, p.arrival_time_ms)
                   for i, p in enumerate(pkts)]
        self._seq += len(results)
        if results:
            self.gcc.on_feedback(Feedback(end, tuple(results), _REPLAY_RTT_MS))
        tel = StepTelemetry(
            sent_bps=(received + lost * mean_size) * 8 / seconds,
            acked_bps=received * 8 / seconds,
            owd_ms=self._owd,
            jitter_ms=self._jitter,
            rtt_ms=0.0,
            loss=loss,
            prev_action=prev_action,
            min_rtt_ms=0.0,
            report_interval_ms=end - self._newest_arrival if self._newest_arrival is not None else 0.0,
            steps_since_loss=(self.step - self._last_loss_step) if self._last_loss_step is not None else self.step,
            queuing_delay_ms=self._owd - (self._min_owd if self._min_owd is not None else self._owd),
            trendline_slope=self.gcc.trendline.slope,
        )
        self._packets = []
        self._lost = self._expected = 0
        self.step += 1
        return tel


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(row, record) of a JSON array file or a JSON-lines file; blank lines are not rows."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LogFormatError(f"{path}: unreadable: {exc}") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LogFormatError(f"{path}: not valid JSON: {exc}") from None
        yield from enumerate(records)
        return
    row = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield row, json.loads(line)
        except json.JSONDecodeError as exc:
            raise LogFormatError(f"{path}: row {row} is not valid JSON: {exc}") from None
        row += 1


def call_id_of(fmt: str, path: Path) -> str:
    """``<format>:<resolved path>``: two files of the same name in different directories are two calls."""
    return f"{fmt}:{Path(path).resolve()}"


def _step_row(fmt: str, path: Path, step: int, t_ms: float, tel: StepTelemetry, target_bps: float) -> StepRow:
    return StepRow(call_id_of(fmt, path), path.name, 0.0, 0.0, 0, step, t_ms, tel, target_bps,
                   bps_to_action(target_bps), reward(tel.acked_bps, tel.owd_ms, tel.loss))


class AlphaRtcAdapter:
    """AlphaRTC ``report_states`` packet logs with the estimator's outputs (module docstring).

    The action of step k is the estimate in force at the step's end (the newest estimate
    record with ``time_ms`` <= step end; GCC's 300 kbps start before the first). A file
    without estimate records has no actions: it is refused unless ``allow_partial``, where
    the actions are GCC's targets replayed on the same packets (listed as ``action`` in the
    summary's missing features). Rows of the call: ``call_id`` = ``alphartc:<resolved path>``,
    ``chunk`` = the file name, ``rtt_ms`` = ``level_mbps`` = 0 (not known for user logs).
    """

    suffixes: tuple[str, ...] = (".json", ".jsonl")

    def load(self, path: Path, *, allow_partial: bool = False) -> AdaptedLog:
        packets: list[tuple[int, PacketStats]] = []
        estimates: list[tuple[float, float]] = []
        records = 0
        last_arrival: float | None = None
        for row, rec in _json_records(path):
            records += 1
            if not isinstance(rec, dict):
                raise LogFormatError(f"{path}: row {row} is {type(rec).__name__}, not a JSON object")
            if _ESTIMATE_KEY in rec:
                if "time_ms" not in rec:
                    raise LogFormatError(f"{path}: row {row} column 'time_ms' is missing")
                t = _finite(path, row, "time_ms", rec["time_ms"])
                b = _non_negative(path, row, _ESTIMATE_KEY, rec[_ESTIMATE_KEY])
                if estimates and t < estimates[-1][0]:
                    raise LogFormatError(f"{path}: row {row} column 'time_ms' goes backwards "
                                         f"({t} after {estimates[-1][0]})")
                estimates.append((t, b))
                continue
            pkt = PacketStats.parse(rec, path, row)
            if last_arrival is not None and pkt.arrival_time_ms < last_arrival:
                raise LogFormatError(f"{path}: row {row} column 'arrival_time_ms' goes backwards "
                                     f"({pkt.arrival_time_ms} after {last_arrival})")
            last_arrival = pkt.arrival_time_ms
            packets.append((row, pkt))
        missing = list(MISSING_FEATURES["alphartc"]) + ([] if estimates else ["action"])
        _refuse_missing(path, "alphartc", missing, allow_partial)
        if not packets:
            raise LogFormatError(f"{path}: no packet records (rows with {list(ALPHARTC_PACKET_FIELDS)})")

        agg = ReceiveSideSteps()
        rows: list[StepRow] = []
        est_i = 0
        in_force = _GCC_START_BPS

        def target_at(t_ms: float) -> float:
            nonlocal est_i, in_force
            if not estimates:
                return float(agg.gcc.target_bps(t_ms))
            while est_i < len(estimates) and estimates[est_i][0] <= t_ms:
                in_force = estimates[est_i][1]
                est_i += 1
            return in_force

        prev_action = bps_to_action(target_at(packets[0][1].arrival_time_ms))
        pending = 0
        for _row, pkt in packets:
            while agg.due(pkt.arrival_time_ms):
                t_ms = agg.step_end_ms()
                tel = agg.close_step(prev_action)
                target = target_at(t_ms)
                assert agg.origin_ms is not None
                rows.append(_step_row("alphartc", path, agg.step - 1, t_ms - agg.origin_ms, tel, target))
                prev_action = bps_to_action(target)
                pending = 0
            if agg.add(pkt):
                pending += 1
        skipped = {"duplicate_packets": agg.duplicates, "trailing_partial_step_packets": pending}
        return AdaptedLog(rows, AdapterSummary("alphartc", str(path), records, len(rows), skipped,
                                               tuple(missing) if allow_partial else ()))


ADAPTERS.add("alphartc", AlphaRtcAdapter())


# -- MMSys'24 --------------------------------------------------------------------------------


def _mmsys_index(feature: str, window: int = 0) -> int:
    """Index into the 150-vector: feature-major, 10 monitor intervals each, newest short first."""
    return MMSYS24_FEATURES.index(feature) * _MMSYS24_WINDOWS + window


class Mmsys24Adapter:
    """RL4BandwidthEstimationChallenge logs: ``observations`` + ``bandwidth_predictions``.

    Mapping (the newest short monitor interval, window 0, of each challenge feature):
    acknowledged bitrate <- receiving rate (bps); OWD <- delay (ms); jitter <- jitter (ms);
    loss <- loss ratio; queuing delay <- queuing delay (ms); steps since loss <- counted from
    the loss ratios; previous action <- the previous prediction. Sent bitrate, RTT, min RTT,
    report interval and trendline slope have no counterpart (:data:`MISSING_FEATURES`).

    Design choice: one observation is one tarzan step although the challenge's step is
    60 ms (``t_ms`` advances by 60); rates and delays are per-interval quantities, so no
    resampling is done. The action of step t is ``bandwidth_predictions[t]``, the behaviour
    policy's answer to observation t; the first kept step's previous action is the prediction
    before it (GCC's 300 kbps start when there is none). Leading all-zero observations (the
    call has not started) are skipped and counted. The format has no timestamps, so time
    cannot go backwards; ``t_ms`` is 60 ms x the kept step.
    """

    suffixes: tuple[str, ...] = (".json",)

    def load(self, path: Path, *, allow_partial: bool = False) -> AdaptedLog:
        try:
            blob = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LogFormatError(f"{path}: not a readable JSON file: {exc}") from None
        if not isinstance(blob, dict):
            raise LogFormatError(f"{path}: the top level is {type(blob).__name__}, not a JSON object")
        for key in ("observations", "bandwidth_predictions"):
            if key not in blob:
                raise LogFormatError(f"{path}: row 0 column {key!r} is missing")
            if not isinstance(blob[key], list):
                raise LogFormatError(f"{path}: column {key!r} is {type(blob[key]).__name__}, not a list")
        obs, preds = blob["observations"], blob["bandwidth_predictions"]
        if len(obs) != len(preds):
            raise LogFormatError(f"{path}: row {min(len(obs), len(preds))} column "
                                 f"{'observations' if len(obs) < len(preds) else 'bandwidth_predictions'!r} "
                                 f"is missing ({len(obs)} observations, {len(preds)} predictions)")
        missing = MISSING_FEATURES["mmsys24"]
        _refuse_missing(path, "mmsys24", missing, allow_partial)
        width = len(MMSYS24_FEATURES) * _MMSYS24_WINDOWS
        vectors: list[np.ndarray] = []
        targets: list[float] = []
        for row, (vec, pred) in enumerate(zip(obs, preds, strict=True)):
            if not isinstance(vec, list) or len(vec) != width:
                size = len(vec) if isinstance(vec, list) else type(vec).__name__
                raise LogFormatError(f"{path}: row {row} column 'observations' has {size} values, not {width}")
            for i, v in enumerate(vec):
                name = MMSYS24_FEATURES[i // _MMSYS24_WINDOWS]
                _finite(path, row, f"observations[{i}] ({name}, window {i % _MMSYS24_WINDOWS})", v)
            vectors.append(np.asarray(vec, dtype=np.float64))
            targets.append(_non_negative(path, row, "bandwidth_predictions", pred))
        start = 0
        while start < len(vectors) and not vectors[start].any():
            start += 1
        rows: list[StepRow] = []
        prev_action = bps_to_action(targets[start - 1] if start > 0 else _GCC_START_BPS)
        last_loss: int | None = None
        for step, t in enumerate(range(start, len(vectors))):
            v = vectors[t]
            loss = float(v[_mmsys_index("loss_ratio")])
            if loss > 0:
                last_loss = step
            tel = StepTelemetry(
                sent_bps=0.0,
                acked_bps=float(v[_mmsys_index("receiving_rate_bps")]),
                owd_ms=float(v[_mmsys_index("delay_ms")]),
                jitter_ms=float(v[_mmsys_index("jitter_ms")]),
                rtt_ms=0.0,
                loss=loss,
                prev_action=prev_action,
                min_rtt_ms=0.0,
                report_interval_ms=0.0,
                steps_since_loss=(step - last_loss) if last_loss is not None else step,
                queuing_delay_ms=float(v[_mmsys_index("queuing_delay_ms")]),
                trendline_slope=0.0,
            )
            rows.append(_step_row("mmsys24", path, step, step * _MMSYS24_STEP_MS, tel, targets[t]))
            prev_action = bps_to_action(targets[t])
        return AdaptedLog(rows, AdapterSummary("mmsys24", str(path), len(vectors), len(rows),
                                               {"leading_empty_observations": start},
                                               tuple(missing) if allow_partial else ()))


ADAPTERS.add("mmsys24", Mmsys24Adapter())


# -- ingestion -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestReport:
    """The manifest written by :func:`ingest` and the per-file summaries."""

    manifest: Path
    summaries: tuple[AdapterSummary, ...]

    def totals(self) -> dict[str, int]:
        return {"files": len(self.summaries), "steps": sum(s.steps for s in self.summaries),
                "records": sum(s.records for s in self.summaries),
                "skipped": sum(s.skipped_total for s in self.summaries)}


def _expand(fmt: str, inputs: Sequence[Path]) -> list[Path]:
    suffixes = ADAPTERS.get(fmt).suffixes
    files: list[Path] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(suffixes)))
        elif p.is_file():
            files.append(p)
        else:
            raise LogFormatError(f"{p}: no such file or directory")
    if not files:
        raise LogFormatError(f"no {fmt} log files ({', '.join(suffixes)}) among {[str(p) for p in inputs]}")
    return files


def _ingest_one(item: tuple[str, str, str, bool]) -> dict[str, Any]:
    fmt, src, out, allow_partial = item
    log = load_log(fmt, src, allow_partial=allow_partial)
    check_rows(log.rows, src)
    write_log(log.rows, Path(out))
    return {"shard": Path(out).name, **log.summary.to_dict()}


def ingest(fmt: str, inputs: Sequence[Path], out_dir: Path, *, allow_partial: bool = False,
           executor: Executor | None = None) -> IngestReport:
    """Convert every input file (directories expand to the format's files) into one Parquet
    shard each (written atomically by :func:`.telemetry.write_log`) plus ``manifest.json``.

    Files fan out over ``executor`` (spec §11). Shards are written into a staging directory
    and moved into ``out_dir`` only when every file converted; then the manifest is written
    (fsynced, renamed). A file that fails leaves no shard behind, and ``out_dir`` as it was.
    """
    files = _expand(fmt, inputs)
    out_dir = Path(out_dir)
    names: set[str] = set()
    planned: list[tuple[str, str]] = []
    for f in files:
        base = f"{fmt}-{f.name.split('.')[0]}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.add(name)
        planned.append((str(f), f"{name}.parquet"))
    with staged_shards(out_dir) as stage:
        items = [(fmt, src, str(stage / shard), allow_partial) for src, shard in planned]
        entries = (executor or LocalExecutor(workers=1)).map(_ingest_one, items)
        manifest = publish_shards(stage, out_dir, {"format": MANIFEST_FORMAT, "source_format": fmt,
                                                   "shards": entries})
    summaries = tuple(AdapterSummary(e["format"], e["source"], e["records"], e["steps"], dict(e["skipped"]),
                                     tuple(e["missing_features"])) for e in entries)
    return IngestReport(manifest, summaries)


# -- serving inside AlphaRTC -----------------------------------------------------------------


class _Actor(Protocol):
    def act(self, window: np.ndarray) -> int:
        ...


class AlphaRtcEstimator:
    """AlphaRTC's bandwidth-estimator hook driven by a trained policy (spec §4 "Serving").

    AlphaRTC calls ``report_states(stats)`` once per received packet and
    ``get_estimated_bandwidth()`` whenever it needs a target (bps). Packets are aggregated
    by :class:`ReceiveSideSteps` (the same code as the ``alphartc`` adapter); every closed
    50 ms step extends the feature matrix and, once ``min_steps`` steps exist, the policy
    acts on the 20 x 12 window. Before that the estimate is GCC's 300 kbps start.

    Design choice: steps close when a packet arrives past the step's end (AlphaRTC gives the
    estimator no timer), so a silent link keeps the last estimate until traffic returns.
    ``records`` holds the estimate log in the ``alphartc`` adapter's format, so a call served
    this way can be ingested again.
    """

    def __init__(self, policy: _Actor, *, min_steps: int = WINDOW, log_records: bool = False) -> None:
        if min_steps < 1:
            raise ValueError(f"min_steps must be >= 1, got {min_steps}")
        self.policy = policy
        self.min_steps = min_steps
        self.steps = ReceiveSideSteps()
        self.estimate_bps = int(_GCC_START_BPS)
        self.targets: list[int] = []
        self.records: list[dict[str, Any]] | None = [] if log_records else None
        self._features: list[np.ndarray] = []
        self._prev_action = bps_to_action(_GCC_START_BPS)
        self._last_arrival: float | None = None
        self._reports = 0

    def report_states(self, stats: dict[str, Any]) -> None:
        row = self._reports
        self._reports += 1
        pkt = PacketStats.parse(stats, Path("<report_states>"), row)
        if self._last_arrival is not None and pkt.arrival_time_ms < self._last_arrival:
            raise LogFormatError(f"<report_states>: row {row} column 'arrival_time_ms' goes backwards "
                                 f"({pkt.arrival_time_ms} after {self._last_arrival})")
        self._last_arrival = pkt.arrival_time_ms
        if self.records is not None:
            self.records.append({k: stats[k] for k in ALPHARTC_PACKET_FIELDS})
        while self.steps.due(pkt.arrival_time_ms):
            end = self.steps.step_end_ms()
            tel = self.steps.close_step(self._prev_action)
            self._features.append(feature_vector(tel))
            if len(self._features) >= self.min_steps:
                window = window_at(np.stack(self._features[-WINDOW:]), min(len(self._features), WINDOW) - 1)
                self.estimate_bps = int(self.policy.act(window))
            self.targets.append(self.estimate_bps)
            self._prev_action = bps_to_action(self.estimate_bps)
            if self.records is not None:
                self.records.append({"time_ms": end, _ESTIMATE_KEY: self.estimate_bps})
        self.steps.add(pkt)

    def get_estimated_bandwidth(self) -> int:
        return self.estimate_bps

