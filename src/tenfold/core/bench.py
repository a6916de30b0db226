"""Benchmarks: registered functions that return arms and a headline; the runner writes JSON.

A system registers each benchmark in its ``bench.py``::

    @benchmark("marconi", "hit_rate", "Token hit rate of Marconi against vLLM+ and SGLang+")
    def hit_rate(ctx: BenchContext) -> BenchOutcome:
        ...
        return BenchOutcome(config=cfg.to_dict(), arms={...},
                            headline=Headline("token_hit_rate_ratio_vs_vllm_plus", "marconi",
                                              "vllm_plus", 3.45, higher_is_better=True))

:func:`run_benchmark` times the function, adds the ``env`` block and writes
``<out>/<system>/<bench>.json`` through :mod:`tenfold.core.results`; nothing is a bare
print. ``ctx.quick`` asks for a run that finishes in minutes on 2 CPU cores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from tenfold.core.clock import Clock, WallClock
from tenfold.core.executor import Executor
from tenfold.core.registry import BENCHMARKS
from tenfold.core.results import build_result, write_result
from tenfold.errors import BenchmarkError, TenfoldError

__all__ = [
    "BenchContext",
    "BenchOutcome",
    "Benchmark",
    "Headline",
    "benchmark",
    "run_benchmark",
    "select_benchmarks",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Headline:
    """The one number a reader looks at first."""

    metric: str
    ours: str
    baseline: str
    value: float
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "ours": self.ours, "baseline": self.baseline,
                "value": float(self.value), "higher_is_better": self.higher_is_better}


@dataclass(frozen=True)
class BenchOutcome:
    """What a benchmark function returns."""

    config: Mapping[str, Any]
    arms: Mapping[str, Mapping[str, float | None]]
    headline: Headline
    series: Mapping[str, Mapping[str, Mapping[str, list[float]]]] | None = None
    notes: str | None = None


@dataclass
class BenchContext:
    """What the runner hands a benchmark."""

    quick: bool
    seed: int
    executor: Executor
    out_dir: Path
    clock: Clock = field(default_factory=WallClock)
    show_progress: bool = True

    def progress(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        """A progress bar on stderr over ``items``."""
        yield from tqdm(items, desc=desc, total=total, file=sys.stderr, disable=not self.show_progress,
                        leave=False, dynamic_ncols=True)


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark ``<system>/<name>``."""

    system: str
    name: str
    description: str
    fn: Callable[[BenchContext], BenchOutcome]

    @property
    def key(self) -> str:
        return f"{self.system}/{self.name}"


def benchmark(system: str, name: str, description: str) -> Callable[
    [Callable[[BenchContext], BenchOutcome]], Callable[[BenchContext], BenchOutcome]
]:
    """Register the decorated function as benchmark ``<system>/<name>``."""

    def deco(fn: Callable[[BenchContext], BenchOutcome]) -> Callable[[BenchContext], BenchOutcome]:
        entry = Benchmark(system, name, description, fn)
        BENCHMARKS.add(entry.key, entry)
        return fn

    return deco


def select_benchmarks(systems: Iterable[str]) -> list[Benchmark]:
    """Benchmarks of the named systems (all if none named); unknown names raise with the list."""
    from tenfold.errors import UnknownNameError

    entries = [b for _, b in BENCHMARKS.items()]
    known_systems = sorted({b.system for b in entries})
    wanted = list(systems)
    chosen: list[Benchmark] = []
    for name in wanted:
        if "/" in name:
            chosen.append(BENCHMARKS.get(name))
        elif name in known_systems:
            chosen.extend(b for b in entries if b.system == name)
        else:
            raise UnknownNameError("system", name, known_systems)
    return chosen if wanted else entries


def run_benchmark(bench: Benchmark, ctx: BenchContext) -> Path:
    """Run one benchmark and write its result JSON; returns the file's path."""
    start = time.perf_counter()
    try:
        outcome = bench.fn(ctx)
    except TenfoldError:
        raise
    except Exception as exc:  # a benchmark's own bug: name it, keep the cause
        raise BenchmarkError(f"benchmark {bench.key} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(outcome, BenchOutcome):
        raise BenchmarkError(f"benchmark {bench.key} returned {type(outcome).__name__}, not BenchOutcome")
    doc = build_result(
        system=bench.system,
        bench=bench.name,
        quick=ctx.quick,
        config=outcome.config,
        arms=outcome.arms,
        headline=outcome.headline.to_dict(),
        duration_s=time.perf_counter() - start,
        series=outcome.series,
        notes=outcome.notes,
    )
    return write_result(doc, ctx.out_dir)
