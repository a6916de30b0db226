"""``specreason/speedup`` on a two-problem config of the shipped pair writes a valid tenfold.result/1."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tenfold.core.results import build_result, read_result, write_result
from tenfold.errors import ConfigError
from tenfold.systems.specreason.bench import SpeedupBenchConfig, run_speedup

ARMS = {"base", "small", "specreason", "specdecode", "specreason_specdecode", "specreason_t0_greedy"}
METRICS = {"accuracy", "latency_p50_s", "acceptance_rate", "base_decode_tokens"}


def test_tiny_run_writes_a_valid_result(tmp_path: Path) -> None:
    cfg = SpeedupBenchConfig(problems=2, samples=1, sweep=("0:greedy",))
    out = run_speedup(cfg)
    assert set(out.arms) == ARMS
    for name, metrics in out.arms.items():
        assert set(metrics) >= METRICS, name
        assert metrics["latency_p50_s"] is not None and metrics["latency_p50_s"] > 0
    assert out.arms["base"]["acceptance_rate"] is None
    assert out.arms["specreason_t0_greedy"]["acceptance_rate"] == 1.0  # every draft scores >= 0
    assert out.arms["specreason"]["judge_calls"] > 0 and out.arms["base"]["judge_calls"] == 0
    assert out.headline.metric == "speedup_vs_base" and out.headline.value > 0
    assert 0 < out.config["cost_model"]["c_s_over_c_b"] < 1
    doc = build_result(system="specreason", bench="speedup", quick=True, config=out.config, arms=out.arms,
                       headline=out.headline.to_dict(), duration_s=1.0, series=out.series, notes=out.notes)
    path = write_result(doc, tmp_path)
    assert read_result(path)["schema"] == "tenfold.result/1"


def test_bad_sweep_entries_are_refused() -> None:
    with pytest.raises(ConfigError, match="sweep"):
        SpeedupBenchConfig(sweep=("11:greedy",))
    with pytest.raises(ConfigError, match="sweep"):
        SpeedupBenchConfig(sweep=("7:median",))
