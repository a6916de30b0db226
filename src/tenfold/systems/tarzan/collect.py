"""Collecting GCC telemetry logs on the training chunks (spec §5, §11).

A call is named by a picklable :class:`ChunkRef` (trace file, chunk index, level, RTT, seed),
so collection fans out over ``core.executor`` (process pool or Ray): each task loads its
chunk, rescales it to the level, runs one GCC call and writes one Parquet shard; the
manifest lists the shards. Levels rescale a chunk's mean keeping its shape (spec §5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tenfold.core.executor import Executor, LocalExecutor
from tenfold.errors import ConfigError
from tenfold.net.trace import Trace, chunk_trace, load_trace, rescale_trace, split_paths
from tenfold.systems.tarzan.session import CallSpec, GccController, run_call
from tenfold.systems.tarzan.telemetry import write_log

__all__ = ["ChunkRef", "call_spec", "chunk_refs", "collect", "load_chunk"]


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


def chunk_refs(paths: Iterable[Path], levels: Sequence[float], rtts: Sequence[float],
               seeds: Sequence[int] = (0,), seconds: float = 60.0, limit: int | None = None) -> list[ChunkRef]:
    """Every (chunk, level, RTT, seed) of the given trace files; ``limit`` keeps the first chunks."""
    if not levels or not rtts or not seeds:
        raise ConfigError("levels/rtts/seeds", (list(levels), list(rtts), list(seeds)), "must all be non-empty")
    for rtt in rtts:
        if rtt <= 0:
            raise ConfigError("rtts", rtt, "must be > 0 ms")
    refs: list[ChunkRef] = []
    for path in paths:
        count = len(chunk_trace(load_trace(path)))
        for index in range(count):
            for level in levels:
                for rtt in rtts:
                    refs.extend(ChunkRef(str(path), index, level, rtt, s, seconds) for s in seeds)
    return refs[:limit] if limit is not None else refs


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
    """Run GCC on every ref, write one shard each and a ``manifest.json``; returns the manifest."""
    if not refs:
        raise ConfigError("refs", [], "must name at least one chunk")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor(workers=1)
    entries = executor.map(_collect_one, [(r, str(out_dir)) for r in refs])
    manifest = out_dir / "manifest.json"
    tmp = manifest.with_name("manifest.json.tmp")
    tmp.write_text(json.dumps({"format": "tarzan.logs/1", "controller": "gcc", "shards": entries}, indent=1))
    tmp.replace(manifest)
    return manifest
