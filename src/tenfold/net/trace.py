"""Mahimahi packet-delivery traces: load, write, validate, summarise, chunk, rescale,
synthesise and convert.

Format (Winstein, Sivaraman and Balakrishnan, NSDI 2013; Mahimahi's ``mm-link``): each line
is an integer millisecond timestamp and one opportunity to deliver a 1500-byte packet; a
repeated timestamp is several opportunities in that millisecond; the trace repeats with a
period of its last timestamp, so a file holding only ``1`` is a constant 12 Mbps link.
Mean capacity = lines x 1500 x 8 / period.

A malformed, negative or decreasing line raises :class:`~tenfold.errors.TraceError` naming
``file:line``; a bad trace must never turn into a silently different link.

The repository's real traces live in ``data/traces/mahimahi/``; :data:`SPLIT` fixes which
recordings train and which are held out (no recording is in both, every held-out carrier
appears in training; tarzan spec section 5).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tenfold.core.api import api
from tenfold.core.assets import atomic_path
from tenfold.errors import ConfigError, TraceError

__all__ = [
    "MTU_BYTES",
    "SPLIT",
    "Trace",
    "TraceStats",
    "chunk_trace",
    "load_cooked",
    "load_trace",
    "rescale_trace",
    "split_paths",
    "synthetic_trace",
    "to_cooked",
    "traces_dir",
    "write_trace",
]

MTU_BYTES = 1500
"""Bytes per delivery opportunity (Mahimahi's own constant is 1504 with its tunnel header)."""

SPLIT: dict[str, tuple[str, ...]] = {
    "train": ("ATT-LTE-driving.down", "ATT-LTE-driving.up", "TMobile-LTE-driving.down",
              "Verizon-LTE-short.down", "Verizon-LTE-short.up"),
    "test": ("ATT-LTE-driving-2016.down", "ATT-LTE-driving-2016.up", "TMobile-LTE-short.down",
             "TMobile-LTE-short.up"),
}


class Trace:
    """Delivery opportunities (ms, non-decreasing) repeating every ``period_ms``."""

    __slots__ = ("name", "period_ms", "timestamps_ms")

    def __init__(self, timestamps_ms: Sequence[int] | np.ndarray, *, name: str = "trace",
                 period_ms: int | None = None) -> None:
        ts = np.asarray(timestamps_ms, dtype=np.int64)
        if ts.ndim != 1 or ts.size == 0:
            raise TraceError(f"trace {name!r} has no delivery opportunities; it needs at least one line")
        if ts[0] < 0 or np.any(np.diff(ts) < 0):
            raise TraceError(f"trace {name!r} timestamps must be non-negative and non-decreasing")
        period = int(ts[-1]) if period_ms is None else int(period_ms)
        if period <= 0 or period < ts[-1]:
            raise TraceError(
                f"trace {name!r} period {period} ms must be > 0 and >= its last timestamp {int(ts[-1])} ms"
            )
        self.timestamps_ms = ts
        self.name = name
        self.period_ms = period

    def __len__(self) -> int:
        return int(self.timestamps_ms.size)

    def __repr__(self) -> str:
        return f"Trace({self.name!r}, lines={len(self)}, period_ms={self.period_ms})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Trace) and self.period_ms == other.period_ms
                and np.array_equal(self.timestamps_ms, other.timestamps_ms))

    __hash__ = None  # type: ignore[assignment]

    @property
    def mean_mbps(self) -> float:
        """lines x 1500 B x 8 / period."""
        return len(self) * MTU_BYTES * 8 / (self.period_ms * 1000.0)

    def count_until(self, t_ms: float) -> int:
        """Opportunities at times < ``t_ms`` (the trace repeating from time 0)."""
        if t_ms <= 0:
            return 0
        # Cycle c holds the opportunities c * period + ts; a line equal to the period lands
        # on the next cycle's start, so the last full cycle counts only the lines below t.
        period, n = self.period_ms, len(self)
        cycles, rest = divmod(t_ms, period)
        cycles = int(cycles)
        count = int(np.searchsorted(self.timestamps_ms, rest, side="left"))
        if cycles >= 1:
            count += (cycles - 1) * n
            count += n if rest > 0 else int(np.searchsorted(self.timestamps_ms, period, side="left"))
        return count

    def opportunities(self, start_ms: int, end_ms: int) -> np.ndarray:
        """Opportunity times (ms) in ``[start_ms, end_ms)``, repetitions included."""
        out: list[np.ndarray] = []
        first_cycle = max(0, start_ms // self.period_ms - 1)
        cycle = first_cycle
        while cycle * self.period_ms < end_ms:
            times = self.timestamps_ms + cycle * self.period_ms
            out.append(times[(times >= start_ms) & (times < end_ms)])
            cycle += 1
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def count_within(self, t_ms: float) -> int:
        """Opportunities at times in ``(0, t_ms]``: the line at t serves the millisecond
        ``(t - 1, t]``, so a run of ``t_ms`` holds exactly these, and whole periods hold
        ``len(self)`` each (``[0, t_ms)`` would miss the lines equal to the period)."""
        if t_ms <= 0:
            return 0
        through = self.count_until(math.floor(t_ms + _EPS_MS) + 1)  # integer times <= t_ms
        return through - int(np.count_nonzero(self.timestamps_ms == 0))

    def implied_mbps(self, seconds: float) -> float:
        """Capacity the opportunities in ``(0, seconds]`` imply, in Mbps (see :meth:`count_within`)."""
        return self.count_within(seconds * 1000.0) * MTU_BYTES * 8 / (seconds * 1e6)

    def stats(self, bin_ms: int = 1000) -> TraceStats:
        return TraceStats.of(self, bin_ms)


@dataclass(frozen=True)
class TraceStats:
    """Summary of a trace over ``bin_ms`` bins: the rates a rate controller would face."""

    name: str
    lines: int
    duration_s: float
    mean_mbps: float
    std_mbps: float
    min_mbps: float
    p5_mbps: float
    p50_mbps: float
    p95_mbps: float
    max_mbps: float
    zero_bins: int
    """Bins without a single opportunity (outages)."""

    @classmethod
    def of(cls, trace: Trace, bin_ms: int = 1000) -> TraceStats:
        counts = _bin_counts(trace, bin_ms)
        rates = counts * MTU_BYTES * 8 / (bin_ms * 1000.0)
        p5, p50, p95 = np.percentile(rates, [5, 50, 95])
        return cls(trace.name, len(trace), trace.period_ms / 1000.0, trace.mean_mbps, float(rates.std()),
                   float(rates.min()), float(p5), float(p50), float(p95), float(rates.max()),
                   int(np.sum(counts == 0)))


def _bin_counts(trace: Trace, bin_ms: int) -> np.ndarray:
    """Opportunities per bin; the line at t serves the millisecond (t-1, t], so bins are
    (k * bin, (k + 1) * bin] and a constant trace fills every bin equally."""
    bins = max(1, trace.period_ms // bin_ms)
    index = np.clip((trace.timestamps_ms - 1) // bin_ms, 0, bins - 1)
    return np.bincount(index, minlength=bins)[:bins]


_DIGITS = re.compile(r"[0-9]+")
_EPS_MS = 1e-6  # float slack when mapping seconds to trace milliseconds


@api(stability="beta")
def load_trace(path: str | Path) -> Trace:
    """Read a Mahimahi trace; TraceError with ``file:line`` on the first bad line."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read trace: {exc}") from None
    lines = text.splitlines()
    values: list[int] = []
    previous = 0
    for number, line in enumerate(lines, start=1):
        item = line.strip()
        if not item:
            raise TraceError(f"{path}:{number}: empty line; expected an integer millisecond timestamp")
        if not _DIGITS.fullmatch(item):  # int() would also take '1_0', '+5' and non-ASCII digits
            if item[:1] == "-" and _DIGITS.fullmatch(item[1:]):
                raise TraceError(f"{path}:{number}: timestamp {item} is negative; it must be >= 0")
            raise TraceError(f"{path}:{number}: {item[:40]!r} is not an integer millisecond timestamp")
        value = int(item)
        if value < previous:
            raise TraceError(f"{path}:{number}: timestamp {value} is below the previous {previous}; "
                             "timestamps must not decrease")
        values.append(value)
        previous = value
    if not values:
        raise TraceError(f"{path}:1: trace is empty; it needs at least one timestamp")
    if values[-1] == 0:
        raise TraceError(f"{path}:{len(values)}: last timestamp is 0; the trace period must be > 0 ms")
    return Trace(values, name=path.name)


def write_trace(trace: Trace, path: str | Path) -> Path:
    """Write ``trace`` in Mahimahi format, atomically.

    The period is the last timestamp in Mahimahi's format, so a trace whose period is longer
    (a chunk) gains nothing on disk: write only traces whose period is their last line.
    """
    target = Path(path)
    if trace.period_ms != int(trace.timestamps_ms[-1]):
        raise TraceError(f"{target}: trace period {trace.period_ms} ms differs from its last timestamp "
                         f"{int(trace.timestamps_ms[-1])} ms; Mahimahi files cannot express that")
    with atomic_path(target) as tmp:
        tmp.write_text("\n".join(map(str, trace.timestamps_ms.tolist())) + "\n")
    return target


def chunk_trace(trace: Trace, length_ms: int = 60_000) -> list[Trace]:
    """Consecutive ``length_ms`` windows from t = 0, each re-based to 0; the tail is dropped.

    A window without opportunities is skipped (a link that never delivers is no episode);
    ``len(result)`` against ``trace.period_ms // length_ms`` counts the skipped ones.
    """
    if length_ms <= 0:
        raise ConfigError("length_ms", length_ms, "must be > 0")
    chunks = []
    for index in range(trace.period_ms // length_ms):
        start = index * length_ms
        ts = trace.timestamps_ms
        part = ts[(ts >= start) & (ts < start + length_ms)] - start
        if part.size:
            chunks.append(Trace(part, name=f"{trace.name}#{index}", period_ms=length_ms))
    return chunks


def rescale_trace(trace: Trace, mean_mbps: float) -> Trace:
    """Same shape, new mean: with s = target/mean, line i is emitted floor((i+1)s) - floor(is) times."""
    if not mean_mbps > 0:
        raise ConfigError("mean_mbps", mean_mbps, "must be > 0")
    s = mean_mbps / trace.mean_mbps
    idx = np.arange(len(trace) + 1, dtype=np.float64)
    emitted = np.floor(idx * s).astype(np.int64)
    repeats = (emitted[1:] - emitted[:-1]).astype(np.int64)
    out = np.repeat(trace.timestamps_ms, repeats)
    if out.size == 0:
        raise TraceError(f"rescaling {trace.name!r} to {mean_mbps} Mbps leaves no opportunities")
    return Trace(out, name=f"{trace.name}@{mean_mbps:g}Mbps", period_ms=trace.period_ms)


def _emit(rates_mbps: np.ndarray) -> np.ndarray:
    """Per-ms rates -> opportunity timestamps, carrying the fractional credit across ms."""
    per_ms = rates_mbps / (MTU_BYTES * 8 / 1000.0)  # packets per ms
    cumulative = np.floor(np.cumsum(per_ms) + 1e-9).astype(np.int64)
    counts = (cumulative - np.concatenate([[0], cumulative[:-1]])).astype(np.int64)
    return np.repeat(np.arange(1, rates_mbps.size + 1, dtype=np.int64), counts)


@api(stability="beta")
def synthetic_trace(kind: Literal["constant", "markov", "gilbert"], seconds: float, *, seed: int = 0,
                    mbps: float = 12.0, states_mbps: Sequence[float] = (0.5, 2.0, 6.0),
                    mean_dwell_s: float = 2.0, good_mbps: float = 6.0, bad_mbps: float = 0.3,
                    p_good_to_bad: float = 0.05, p_bad_to_good: float = 0.3, step_ms: int = 100) -> Trace:
    """A seeded synthetic trace.

    * ``constant``: ``mbps`` throughout (12 Mbps = one opportunity per ms).
    * ``markov``: rate states ``states_mbps``; every ``step_ms`` the chain leaves its state with
      probability step/mean_dwell, to a uniformly chosen neighbouring state (a birth-death
      chain, so rates change gradually, as cellular capacity does).
    * ``gilbert``: the two-state Gilbert-Elliott channel, good and bad rates, with per-step
      transition probabilities.
    """
    total_ms = round(seconds * 1000)
    if total_ms <= 0:
        raise ConfigError("seconds", seconds, "must be >= 0.001")
    rng = np.random.default_rng(seed)
    steps = -(-total_ms // step_ms)
    if kind == "constant":
        rates = np.full(total_ms, float(mbps))
    elif kind == "markov":
        states = np.asarray(states_mbps, dtype=np.float64)
        leave = min(1.0, step_ms / (mean_dwell_s * 1000.0))
        path = np.empty(steps, dtype=np.int64)
        state = int(rng.integers(states.size))
        for i in range(steps):
            if states.size > 1 and rng.random() < leave:
                state = state + 1 if state == 0 else state - 1 if state == states.size - 1 else (
                    state + (1 if rng.random() < 0.5 else -1))
            path[i] = state
        rates = np.repeat(states[path], step_ms)[:total_ms]
    elif kind == "gilbert":
        good = True
        flags = np.empty(steps, dtype=bool)
        for i in range(steps):
            flags[i] = good
            good = rng.random() >= p_good_to_bad if good else rng.random() < p_bad_to_good
        rates = np.repeat(np.where(flags, good_mbps, bad_mbps), step_ms)[:total_ms]
    else:
        raise ConfigError("kind", kind, "must be one of 'constant', 'markov', 'gilbert'")
    ts = _emit(rates)
    if ts.size == 0:
        raise TraceError(f"synthetic {kind} trace of {seconds} s has no opportunities; raise its rates")
    return Trace(ts, name=f"synthetic-{kind}-seed{seed}", period_ms=total_ms)


def load_cooked(path: str | Path) -> Trace:
    """Convert a Pensieve-style cooked trace (lines ``seconds Mbps``) to opportunities.

    Each rate holds from its time until the next line's time, and the opportunities carry
    fractional credit, so the Mahimahi trace delivers the same bytes the cooked one does.
    """
    path = Path(path)
    times: list[float] = []
    rates: list[float] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read cooked trace: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if len(parts) != 2:
            raise TraceError(f"{path}:{number}: expected 'seconds Mbps', got {line[:40]!r}")
        try:
            t, r = float(parts[0]), float(parts[1])
        except ValueError:
            raise TraceError(f"{path}:{number}: {line[:40]!r} is not two numbers") from None
        if not (math.isfinite(t) and math.isfinite(r)):
            raise TraceError(f"{path}:{number}: {line[:40]!r} is not two finite numbers")
        if r < 0 or (times and t <= times[-1]) or t < 0:
            raise TraceError(f"{path}:{number}: time {t} must increase and rate {r} must be >= 0")
        times.append(t)
        rates.append(r)
    if len(times) < 2:
        raise TraceError(f"{path}:1: a cooked trace needs at least two lines to span time")
    edges = np.round((np.asarray(times) - times[0]) * 1000).astype(np.int64)
    per_ms = np.repeat(np.asarray(rates[:-1]), np.diff(edges).astype(np.int64))
    ts = _emit(per_ms)
    if ts.size == 0:
        raise TraceError(f"{path}: cooked trace has zero capacity throughout")
    return Trace(ts, name=path.name, period_ms=int(edges[-1]))


def to_cooked(trace: Trace, bin_s: float = 1.0) -> list[tuple[float, float]]:
    """(start seconds, Mbps) per bin: the Pensieve cooked view of a Mahimahi trace."""
    bin_ms = round(bin_s * 1000)
    counts = _bin_counts(trace, bin_ms)
    return [(i * bin_s, float(c) * MTU_BYTES * 8 / (bin_ms * 1000.0)) for i, c in enumerate(counts)]


def traces_dir() -> Path:
    """``$TENFOLD_TRACES_DIR`` or the repository's ``data/traces/mahimahi``."""
    env = os.environ.get("TENFOLD_TRACES_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "data" / "traces" / "mahimahi"
    if not path.is_dir():
        raise TraceError(f"{path}: trace directory not found; set TENFOLD_TRACES_DIR to a folder of Mahimahi "
                         "traces (the repository ships them in data/traces/mahimahi)")
    return path


def split_paths(part: Literal["train", "test"]) -> list[Path]:
    """The files of one side of :data:`SPLIT`."""
    if part not in SPLIT:
        raise ConfigError("part", part, "must be one of 'train', 'test'")
    root = traces_dir()
    return [root / name for name in SPLIT[part]]
