"""The same sweep gives the same results in-process, on a process pool and on Ray."""

from __future__ import annotations

import pytest

from tenfold.core.executor import EXECUTORS, LocalExecutor, RayExecutor, make_executor
from tenfold.errors import ConfigError, UnknownNameError
from tests.core.sweep_fns import noisy_sum

SWEEP = [({"scale": 1.0, "offset": 0.0}, 1), ({"scale": 2.0, "offset": 1.0}, 2),
         ({"scale": 0.5, "offset": -3.0}, 3), ({"scale": 3.0, "offset": 7.0}, 4)]


def test_local_pool_matches_inline() -> None:
    inline = LocalExecutor(workers=1).map(noisy_sum, SWEEP)
    pooled = LocalExecutor(workers=2).map(noisy_sum, SWEEP)
    assert pooled == inline
    assert len(set(inline)) == 4


@pytest.mark.slow
def test_ray_matches_local() -> None:
    local = LocalExecutor(workers=2).map(noisy_sum, SWEEP)
    ray_exec = RayExecutor(num_cpus=2)
    try:
        on_ray = ray_exec.map(noisy_sum, SWEEP)
    finally:
        ray_exec.close()
    assert on_ray == local


def test_lambdas_are_refused() -> None:
    with pytest.raises(ConfigError, match="must be a module-level function"):
        LocalExecutor(workers=2).map(lambda x: x, [1, 2])


def test_registry_names() -> None:
    assert EXECUTORS.names() == ["local", "ray"]
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UnknownNameError, match="unknown executor 'dask'; known: local, ray"):
        make_executor("dask")


def test_bad_worker_count() -> None:
    with pytest.raises(ConfigError, match="'workers' = 0"):
        LocalExecutor(workers=0)
