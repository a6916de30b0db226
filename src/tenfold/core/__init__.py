"""tenfold.core: the domain-free foundation every layer and system stands on.

Config, clocks, the discrete-event loop, executors, result documents, the report,
registries and packaged-asset lookup. Nothing here imports another tenfold layer.
"""

from tenfold.core.api import api, stability_of
from tenfold.core.bench import BenchContext, Benchmark, BenchOutcome, Headline, benchmark, run_benchmark
from tenfold.core.clock import Clock, SimClock, WallClock
from tenfold.core.config import Config, check_choice, check_positive, check_range, load_config
from tenfold.core.executor import Executor, LocalExecutor, RayExecutor, make_executor
from tenfold.core.registry import BENCHMARKS, COMMANDS, CommandGroup, Registry
from tenfold.core.results import SCHEMA, build_result, read_result, validate, write_result

__all__ = [
    "BENCHMARKS",
    "COMMANDS",
    "SCHEMA",
    "BenchContext",
    "BenchOutcome",
    "Benchmark",
    "Clock",
    "CommandGroup",
    "Config",
    "Executor",
    "Headline",
    "LocalExecutor",
    "RayExecutor",
    "Registry",
    "SimClock",
    "WallClock",
    "api",
    "benchmark",
    "build_result",
    "check_choice",
    "check_positive",
    "check_range",
    "load_config",
    "make_executor",
    "read_result",
    "run_benchmark",
    "stability_of",
    "validate",
    "write_result",
]
