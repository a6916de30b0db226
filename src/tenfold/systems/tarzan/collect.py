"""Collecting GCC telemetry logs on the training chunks (spec §5, §11).

A call is named by a picklable :class:`ChunkRef` (trace file, chunk index, level, RTT, seed),
so collection fans out over ``core.executor`` (process pool or Ray): each task loads its
chunk, rescales it to the level, runs one GCC call and writes one Parquet shard; the
manifest lists the shards. Levels rescale a chunk's mean keeping its shape (spec §5).

The grid is checked before any call runs (:func:`check_call_grid`): levels finite in
(0, 100] Mbps (targets top out at 6 Mbps, and a rescaled chunk holds one line per delivered
packet, so a 1e6 Mbps level would need tens of GiB), RTTs finite and > 0 ms, seeds >= 0,
call lengths in (0, 60] s (a chunk is 60 s) and a ``limit`` of at least one call. Chunks
without deliveries are skipped and counted (spec §9), and files shorter than one chunk are
named (:class:`ChunkPlan`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tenfold.core.executor import Executor, LocalExecutor
from tenfold.errors import ConfigError
from tenfold.net.trace import Trace, chunk_trace, load_trace, rescale_trace, split_paths
from tenfold.systems.tarzan.session import CallSpec, GccController, run_call
from tenfold.systems.tarzan.telemetry import MANIFEST_FORMAT, publish_shards, staged_shards, write_log

__all__ = ["CHUNK_SECONDS", "MAX_LEVEL_MBPS", "ChunkPlan", "ChunkRef", "call_spec", "check_call_grid", "chunk_refs",
           "collect", "load_chunk", "plan_chunks", "trace_files"]

CHUNK_SECONDS = 60.0
"""Length of a chunk, and so the longest call."""
MAX_LEVEL_MBPS = 100.0
"""Highest mean a chunk may be rescaled to (targets top out at 6 Mbps; see the module docstring)."""
NOT_TRACES = re.compile(r"^(readme|licen[cs]e|copying|notice)([._-].*)?$|\.md$|^manifest\.json$", re.IGNORECASE)
"""Names in a ``--traces`` directory that are documentation, never traces."""


@dataclass(frozen=True)
class ChunkRef:
    """One call to run: the ``index``-th 1-minute chunk of ``path`` at a level, RTT and seed."""

    path: str
    index: int
    level_mbps: float
    rtt_ms: float
    seed: int = 0
    seconds: float = 60.0

    @property
    def chunk_id(self) -> str:
        return f"{Path(self.path).name}#{self.index}"

    @property
    def call_id(self) -> str:
        return f"{self.chunk_id}|rtt{self.rtt_ms:g}|L{self.level_mbps:g}|s{self.seed}"


def load_chunk(ref: ChunkRef) -> Trace:
    """The chunk, rescaled to the ref's level."""
    chunks = chunk_trace(load_trace(ref.path))
    if not 0 <= ref.index < len(chunks):
        raise ConfigError("index", ref.index, f"must be in [0, {len(chunks) - 1}] for {ref.path}")
    return rescale_trace(chunks[ref.index], ref.level_mbps)


def call_spec(ref: ChunkRef) -> CallSpec:
    """The call a ref names: its rescaled chunk, RTT, level, seed and length."""
    return CallSpec(load_chunk(ref), ref.chunk_id, ref.rtt_ms, ref.level_mbps, ref.seed, ref.seconds)


def check_call_grid(levels: Sequence[float], rtts: Sequence[float], seeds: Sequence[int] = (0,),
                    seconds: float = CHUNK_SECONDS, limit: int | None = None) -> None:
    """Refuse a call grid with a value no call can run with (module docstring), before any trace is read."""
    if not levels or not rtts or not seeds:
        raise ConfigError("levels/rtts/seeds", (list(levels), list(rtts), list(seeds)), "must all be non-empty")
    for level in levels:
        if not (math.isfinite(level) and 0 < level <= MAX_LEVEL_MBPS):
            raise ConfigError("levels", level, f"must be a finite mean rate in (0, {MAX_LEVEL_MBPS:g}] Mbps")
    for rtt in rtts:
        if not (math.isfinite(rtt) and rtt > 0):
            raise ConfigError("rtts", rtt, "must be a finite RTT > 0 ms")
    for seed in seeds:
        if seed < 0:
            raise ConfigError("seed", seed, "must be >= 0")
    if not (math.isfinite(seconds) and 0 < seconds <= CHUNK_SECONDS):
        raise ConfigError("seconds", seconds, f"must be in (0, {CHUNK_SECONDS:g}] s: calls run on {CHUNK_SECONDS:g} s "
                                              "chunks")
    if limit is not None and limit < 1:
        raise ConfigError("limit", limit, "must be >= 1 (the number of calls to keep)")


def trace_files(directory: Path) -> tuple[list[Path], list[str]]:
    """The traces of a ``--traces`` directory and the names skipped.

    Rule: every regular file directly in ``directory`` is a Mahimahi trace, whatever its
    suffix, except hidden files (``.*``) and documentation: ``README*``, ``LICENSE*``,
    ``LICENCE*``, ``COPYING*``, ``NOTICE*``, ``*.md`` and ``manifest.json``. Sub-directories
    are skipped too. Whatever is left must parse as a trace, or ``TraceError`` names it.
    """
    traces: list[Path] = []
    skipped: list[str] = []
    for p in sorted(Path(directory).iterdir()):
        if p.name.startswith(".") or NOT_TRACES.search(p.name):
            skipped.append(p.name)
        elif not p.is_file():
            skipped.append(p.name + ("/" if p.is_dir() else ""))
        else:
            traces.append(p)
    return traces, skipped


@dataclass(frozen=True)
class ChunkPlan:
    """The calls to run, and what the trace files could not give (spec §9)."""

    refs: list[ChunkRef]
    empty_chunks: int = 0
    """60 s windows without a single delivery, skipped (``net.trace.chunk_trace``)."""
    short_files: list[str] = field(default_factory=list)
    """Files shorter than one chunk, which give no call."""


def plan_chunks(paths: Iterable[Path], levels: Sequence[float], rtts: Sequence[float], seeds: Sequence[int] = (0,),
                seconds: float = CHUNK_SECONDS, limit: int | None = None) -> ChunkPlan:
    """Every (chunk, level, RTT, seed) of the given trace files, the first ``limit`` of them when given."""
    check_call_grid(levels, rtts, seeds, seconds, limit)
    refs: list[ChunkRef] = []
    empty = 0
    short: list[str] = []
    files: list[str] = []
    for path in paths:
        trace = load_trace(path)
        files.append(str(path))
        windows = trace.period_ms // round(CHUNK_SECONDS * 1000)
        count = len(chunk_trace(trace))
        empty += windows - count
        if windows == 0:
            short.append(f"{path} ({trace.period_ms / 1000:g} s)")
        for index in range(count):
            for level in levels:
                for rtt in rtts:
                    refs.extend(ChunkRef(str(path), index, level, rtt, s, seconds) for s in seeds)
    if not refs:
        detail = (f"; shorter than one chunk: {', '.join(short)}" if short else "") + (
            f"; {empty} chunk(s) without deliveries skipped" if empty else "")
        raise ConfigError("traces", files, f"no file holds a full {CHUNK_SECONDS:g} s chunk with deliveries{detail}")
    return ChunkPlan(refs[:limit] if limit is not None else refs, empty, short)


def chunk_refs(paths: Iterable[Path], levels: Sequence[float], rtts: Sequence[float],
               seeds: Sequence[int] = (0,), seconds: float = CHUNK_SECONDS, limit: int | None = None) -> list[ChunkRef]:
    """Every (chunk, level, RTT, seed) of the given trace files; ``limit`` keeps the first calls."""
    return plan_chunks(paths, levels, rtts, seeds, seconds, limit).refs


def split_refs(part: str, levels: Sequence[float], rtts: Sequence[float], seeds: Sequence[int] = (0,),
               seconds: float = 60.0) -> list[ChunkRef]:
    """Refs of the documented train or test split."""
    if part not in ("train", "test"):
        raise ConfigError("part", part, "must be 'train' or 'test'")
    return chunk_refs(split_paths("train" if part == "train" else "test"), levels, rtts, seeds, seconds)


def _collect_one(item: tuple[ChunkRef, str]) -> dict[str, object]:
    ref, out_dir = item
    result = run_call(call_spec(ref), GccController())
    name = ref.call_id.replace("|", "_").replace("#", "-") + ".parquet"
    path = write_log(result.rows, Path(out_dir) / name)
    return {"shard": path.name, "ref": asdict(ref), "steps": len(result.rows),
            "bitrate_bps": result.bitrate_bps, "freeze_rate": result.qoe.freeze_rate}


def collect(refs: Sequence[ChunkRef], out_dir: Path, executor: Executor | None = None) -> Path:
    """Run GCC on every ref, write one shard each and a ``manifest.json``; returns the manifest.

    Shards are written into a staging directory and moved into ``out_dir`` only when every call
    succeeded; then the manifest is written (fsynced, renamed). A failed run leaves no shard.
    """
    if not refs:
        raise ConfigError("refs", [], "must name at least one chunk")
    executor = executor or LocalExecutor(workers=1)
    with staged_shards(Path(out_dir)) as stage:
        entries = executor.map(_collect_one, [(r, str(stage)) for r in refs])
        return publish_shards(stage, Path(out_dir), {"format": MANIFEST_FORMAT, "controller": "gcc",
                                                     "shards": entries})
