"""Run a sweep of configs locally (process pool) or on a local Ray cluster.

An :class:`Executor` maps a pure, module-level function over items, each item usually a
``(config, seed)`` pair, and returns the results in input order. Because the function is
pure and seeded by its item, :class:`LocalExecutor` and :class:`RayExecutor` give
identical results for the same sweep; only where the work runs differs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

from tenfold.core.registry import Registry
from tenfold.errors import BenchmarkError, ConfigError

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "make_executor"]

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class Executor(Protocol):
    """Maps a module-level function over items and returns results in input order."""

    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        ...

    def close(self) -> None:
        ...


def _check_fn(fn: Callable[..., Any]) -> None:
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ConfigError("fn", qualname, "must be a module-level function so that workers can import it")


class LocalExecutor:
    """A process pool on this machine; ``workers=1`` runs in-process, in order."""

    name = "local"

    def __init__(self, workers: int | None = None, start_method: str = "spawn") -> None:
        if workers is not None and workers < 1:
            raise ConfigError("workers", workers, "must be >= 1")
        if start_method not in multiprocessing.get_all_start_methods():
            raise ConfigError("start_method", start_method,
                              "must be one of " + ", ".join(multiprocessing.get_all_start_methods()))
        self.workers = workers or max(1, os.cpu_count() or 1)
        # NOTE: 'spawn' costs an interpreter start per worker but is safe with torch and
        # other threaded libraries, which 'fork' is not.
        self.start_method = start_method

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        _check_fn(fn)
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        ctx = multiprocessing.get_context(self.start_method)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(items)), mp_context=ctx) as pool:
            return list(pool.map(fn, items))

    def close(self) -> None:
        return None


class RayExecutor:
    """Tasks on a Ray cluster: attaches to ``address`` (or ``$RAY_ADDRESS``) if given,
    else starts a local one that lives until :meth:`close`."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise BenchmarkError("the ray executor needs Ray: pip install 'tenfold[ray]'") from None
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            # Workers import the sweep function by module name, so they need our sys.path.
            runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
            if address:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    runtime_env=runtime_env,
                    log_to_driver=False,
                    configure_logging=False,
                )
                self._started_here = True

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        _check_fn(fn)
        remote = self._ray.remote(fn)
        refs = [remote.remote(item) for item in items]
        return list(self._ray.get(refs))

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_here = False


EXECUTORS: Registry[Callable[[], Executor]] = Registry("executor")
EXECUTORS.add("local", LocalExecutor)
EXECUTORS.add("ray", RayExecutor)


def make_executor(name: str) -> Executor:
    """An executor by registered name ('local' or 'ray')."""
    return EXECUTORS.get(name)()
