"""``specreason/speedup`` on a two-problem config of the shipped pair writes a valid tenfold.result/1."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tenfold.core.results import build_result, read_result, write_result
from tenfold.errors import ConfigError
from tenfold.systems.specreason.bench import SpeedupBenchConfig, _paired_gap, run_speedup

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
    assert out.arms["base"]["accuracy_gap_vs_base"] == 0.0 and out.arms["base"]["accuracy_gap_se"] == 0.0
    gap = 100.0 * (out.arms["small"]["accuracy"] - out.arms["base"]["accuracy"])
    assert out.arms["small"]["accuracy_gap_vs_base"] == pytest.approx(gap)
    doc = build_result(system="specreason", bench="speedup", quick=True, config=out.config, arms=out.arms,
                       headline=out.headline.to_dict(), duration_s=1.0, series=out.series, notes=out.notes)
    path = write_result(doc, tmp_path)
    assert read_result(path)["schema"] == "tenfold.result/1"


def test_paired_gap_is_the_mean_difference_with_its_paired_standard_error() -> None:
    # Differences in points: +100, 0, 0, -100 -> mean 0, sample stdev 81.65, SE 40.82.
    out = _paired_gap([1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0])
    assert out["accuracy_gap_vs_base"] == 0.0
    assert out["accuracy_gap_se"] == pytest.approx(81.649658 / 2, rel=1e-6)
    # Same outcomes on every run: no difference and no spread.
    assert _paired_gap([1.0, 0.0], [1.0, 0.0]) == {"accuracy_gap_vs_base": 0.0, "accuracy_gap_se": 0.0}
    assert _paired_gap([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])["accuracy_gap_vs_base"] == 100.0


def test_quick_config_uses_the_full_runs_problems_once() -> None:
    quick = SpeedupBenchConfig.quick_config()
    assert (quick.problems, quick.samples) == (SpeedupBenchConfig().problems, 1)


def test_bad_sweep_entries_are_refused() -> None:
    with pytest.raises(ConfigError, match="sweep"):
        SpeedupBenchConfig(sweep=("11:greedy",))
    with pytest.raises(ConfigError, match="sweep"):
        SpeedupBenchConfig(sweep=("7:median",))
