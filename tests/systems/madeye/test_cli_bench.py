"""`tenfold madeye ...` verbs, exit codes, and the benchmark's bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenfold.cli import main
from tenfold.core.registry import BENCHMARKS, COMMANDS


def test_verbs_and_benchmark_are_registered() -> None:
    main(["bench", "--list"])
    assert "madeye" in COMMANDS
    assert "madeye/accuracy" in BENCHMARKS


def test_grid_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["madeye", "grid", "--anchor", "p330t-15z2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grid"] == 180 and doc["region"] == 75 and "p270t-30z1" in doc["orientations"]


def test_bad_input_exits_2_naming_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["madeye", "grid", "--anchor", "p45t0z1"]) == 2
    assert "pan=45 not in {0,30" in capsys.readouterr().err
    assert main(["madeye", "sim", "--n-send", "3", "--k-explore", "2"]) == 2
    assert "n_send=3 exceeds k_explore=2" in capsys.readouterr().err
    assert main(["madeye", "sim", "--workload", "W9"]) == 2
    assert "unknown workload 'W9'; known: W1, W2, W3" in capsys.readouterr().err
    assert main(["madeye", "sim", "--policy", "greedy"]) == 2
    assert "unknown madeye policy 'greedy'" in capsys.readouterr().err


def _fake_cell(item: dict[str, Any]) -> dict[str, Any]:
    seed = item["seed"]

    def r(acc: float, n: int, **metrics: float) -> dict[str, Any]:
        return {
            "policy": "x",
            "accuracy": acc,
            "non_aggregate": acc,
            "aggregate": None,
            "frames_sent": 10 * n,
            "views_explored": 50,
            "steps": 10,
            "hindsight": False,
            "metrics": metrics,
        }

    out = {}
    for wl in item["workloads"]:
        arms: dict[str, dict[str, Any]] = {}
        for arm, base in (
            ("best_fixed", 0.80),
            ("mab", 0.5),
            ("madeye_oracle_rank", 0.9),
            ("madeye", 0.85),
            ("best_dynamic", 0.95),
        ):
            arms[arm] = {f"n{n}": r(base - 0.1 * (2 - n) + 0.01 * seed, n, spearman=0.5) for n in item["n_values"]}
        arms["panoptes"] = {"n1": r(0.6, 1)}
        arms["tracking"] = {"n1": r(0.55, 1)}
        out[wl] = {"arms": arms, "anchor": "p0t0z1", "best_per_backend": {"a": "p0t0z1", "b": "p30t0z1"}}
    return {"seed": seed, "workloads": out}


def test_benchmark_aggregation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenfold.core.bench import BenchContext, run_benchmark
    from tenfold.core.executor import LocalExecutor
    from tenfold.core.results import read_result
    from tenfold.systems.madeye import bench

    monkeypatch.setattr(bench, "run_cell", _fake_cell)
    monkeypatch.setattr(bench, "train_backend", str)
    ctx = BenchContext(quick=True, seed=0, executor=LocalExecutor(workers=1), out_dir=tmp_path, show_progress=False)
    doc = read_result(run_benchmark(BENCHMARKS.get("madeye/accuracy"), ctx))
    arms = doc["arms"]
    assert set(arms) == {"best_fixed", "mab", "madeye_oracle_rank", "madeye", "best_dynamic", "panoptes", "tracking"}
    assert arms["madeye"]["workload_accuracy"] == pytest.approx(0.855)  # median over 2 seeds x 2 workloads
    assert arms["madeye"]["workload_accuracy_n1"] == pytest.approx(0.755)
    assert arms["panoptes"]["workload_accuracy"] == pytest.approx(0.6) and arms["panoptes"]["frames_per_step"] == 1
    assert arms["best_fixed"]["hindsight"] == 1.0
    assert arms["madeye"]["n1_ge_best_fixed_n2_share"] == 0.0
    assert arms["madeye"]["frames_ratio"] == 1.0
    assert arms["madeye"]["backends_best_orientation_differ_share"] == 1.0
    assert doc["headline"]["metric"] == "accuracy_gain_vs_best_fixed"
    assert doc["headline"]["value"] == pytest.approx(5.0)


_SEEN: list[dict[str, Any]] = []


def _recording_cell(item: dict[str, Any]) -> dict[str, Any]:
    _SEEN.append(item)
    return _fake_cell(item)


def test_bench_config_file_runs_that_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.core import executor
    from tenfold.core.results import read_result
    from tenfold.systems.madeye import bench

    _SEEN.clear()
    monkeypatch.setattr(bench, "run_cell", _recording_cell)
    monkeypatch.setattr(bench, "train_backend", str)
    monkeypatch.setattr(executor, "make_executor", lambda name: executor.LocalExecutor(workers=1))
    conf = tmp_path / "grid.toml"
    conf.write_text('seeds = [3, 4, 5]\nworkloads = ["W1"]\neval_steps = 600\nn_values = [1, 2]\n')
    out = tmp_path / "results"
    assert main(["madeye", "bench", "--config", str(conf), "--out", str(out)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert sorted(i["seed"] for i in _SEEN) == [3, 4, 5]
    assert {i["eval_steps"] for i in _SEEN} == {600} and all(i["workloads"] == ["W1"] for i in _SEEN)
    doc = read_result(path)
    assert doc["quick"] is False and doc["config"]["seeds"] == [3, 4, 5] and doc["config"]["eval_steps"] == 600
    # median over seeds 3, 4, 5 of 0.85 + 0.01 * seed
    assert doc["arms"]["madeye"]["workload_accuracy"] == pytest.approx(0.89)


def test_bench_config_file_errors_name_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "grid.toml"
    conf.write_text("eval_steps = 0\n")
    assert main(["madeye", "bench", "--config", str(conf)]) == 2
    assert "eval_steps" in capsys.readouterr().err
    conf.write_text("seeds = [0]\n")
    assert main(["madeye", "bench", "--config", str(conf), "--quick"]) == 2
    assert "--quick" in capsys.readouterr().err
    conf.write_text("n_values = [1, 11]\n")
    assert main(["madeye", "bench", "--config", str(conf)]) == 2
    assert "n_values" in capsys.readouterr().err
