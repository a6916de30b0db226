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


def test_sim_rejects_a_negative_seed_and_a_large_k_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenfold.systems.madeye import SmallDetectorBackend

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained a backend before validating the arguments")

    monkeypatch.setattr(SmallDetectorBackend, "trained", no_training)
    assert main(["madeye", "sim", "--seed", "-1"]) == 2
    assert capsys.readouterr().err == "tenfold: error: config field 'seed' = -1: must be in [0, inf]\n"
    assert main(["madeye", "sim", "--k-explore", "26"]) == 2
    assert "config field 'k_explore' = 26: must be <= the region's 25 pan/tilt cells" in capsys.readouterr().err


class _RunSpy:
    """Stands in for load_backend and run_live: records what `madeye run` reached."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.runs: list[dict[str, Any]] = []

    def load_backend(self, spec: str) -> Any:
        from tenfold.systems.madeye.backends import backend_name

        self.loaded.append(spec)
        return type("Fake", (), {"name": backend_name(spec), "stands_for": None})()

    def run_live(self, source: Any, backends: Any, workload: Any, config: Any, **kw: Any) -> dict[str, Any]:
        self.runs.append({"backends": sorted(backends), "workload": workload, "config": config, **kw})
        return {}


@pytest.fixture
def run_spy(monkeypatch: pytest.MonkeyPatch) -> _RunSpy:
    from tenfold.systems.madeye import backends, live

    spy = _RunSpy()
    monkeypatch.setattr(backends, "load_backend", spy.load_backend)
    monkeypatch.setattr(live, "run_live", spy.run_live)
    return spy


def test_run_validates_every_argument_before_loading_a_backend(
    tmp_path: Path, run_spy: _RunSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    from .conftest import write_pano

    pano = str(write_pano(tmp_path / "pano.mp4", frames=30))
    missing = str(tmp_path / "missing.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    ok = ["madeye", "run", "--source", pano, "--steps", "2", "--bootstrap-steps", "1"]
    cases = [
        (["--steps", "0"], 2, "config field 'steps' = 0: must be in [1, inf]"),
        (["--bootstrap-steps", "0"], 2, "config field 'bootstrap_steps' = 0: must be in [1, inf]"),
        (["--step-frames", "0"], 2, "config field 'step_frames' = 0: must be in [1, inf]"),
        (["--steps", "5"], 2, "config field 'steps' = 5: with bootstrap_steps=1 and step_frames=6 the run needs "
         "frame 30, past the source's 30 frames"),
        (["--half-width", "0"], 2, "config field 'k_explore' = 10: must be <= the region's 5 pan/tilt cells"),
        (["--anchor", "p45t0z1"], 2, "pan=45 not in {0,30"),
        (["--backend", "resnet"], 2, "unknown madeye backend 'resnet'"),
        (["--query", "dog:count"], 2, "config field 'object' = 'dog'"),
        (["--query", "yolo-person:person:count"], 2, "config field 'model' = 'yolo-person': must be one of 'hog'"),
        (["--source", missing], 2, f"config field 'source' = {missing!r}: no such file"),
        (["--source", "onvif://cam:abc"], 2, "config field 'source' = 'onvif://cam:abc': port must be an integer "
         "in 1..65535"),
        (["--source", str(corrupt)], 1, f"{corrupt}: cannot decode as video"),
        (["--source", pano, "--virtual", "--hfov", "90"], 2, "config field 'orientation' = 'p60t-30z1': pan 60 is "
         "outside the video's field of view (hfov=90 spans pan -45..45)"),
    ]
    for extra, code, message in cases:
        assert main(ok + extra) == code, extra
        assert message in capsys.readouterr().err, extra
    assert run_spy.loaded == [] and run_spy.runs == []


def test_run_defaults_to_the_spec_k_and_n_and_takes_the_cli_backend_alias_in_queries(
    tmp_path: Path, run_spy: _RunSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    from .conftest import write_pano

    pano = str(write_pano(tmp_path / "pano.mp4", frames=30))
    argv = ["madeye", "run", "--source", pano, "--steps", "2", "--bootstrap-steps", "1", "--backend", "haar"]
    assert main([*argv, "--query", "haar:person:count", "--query", "car:detect"]) == 0
    (run,) = run_spy.runs
    assert run_spy.loaded == ["haar"] and run["backends"] == ["haar-fullbody"]
    assert [str(q) for q in run["workload"].queries] == ["haar-fullbody:person:count", "haar-fullbody:car:detect"]
    assert (run["config"].k_explore, run["config"].n_send) == (10, 2)
    assert (run["steps"], run["bootstrap_steps"], run["step_frames"], run["half_width"]) == (2, 1, 6, 60)


def test_torchvision_queries_name_the_backend_as_given(
    tmp_path: Path, run_spy: _RunSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    from .conftest import write_pano

    pano = str(write_pano(tmp_path / "pano.mp4", frames=30))
    weights = tmp_path / "frcnn.pt"
    weights.write_bytes(b"")
    argv = ["madeye", "run", "--source", pano, "--steps", "2", "--bootstrap-steps", "1",
            "--backend", f"torchvision:{weights}"]
    assert main([*argv, "--query", f"torchvision:{weights}:car:detect", "--query",
                 "torchvision:frcnn.pt:person:count"]) == 0
    assert [str(q) for q in run_spy.runs[0]["workload"].queries] == [
        "torchvision:frcnn.pt:car:detect",
        "torchvision:frcnn.pt:person:count",
    ]


def test_grid_shows_the_region_run_explores(capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.systems.madeye.live import live_region
    from tenfold.systems.madeye.orientation import Orientation

    assert main(["madeye", "grid", "--half-width", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["half_width"] == 0 and doc["region"] == 15 == len(live_region(Orientation(0, 0, 1), 0))


def test_train_checks_every_name_before_training(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenfold.systems.madeye import SmallDetectorBackend

    trained: list[str] = []
    monkeypatch.setattr(SmallDetectorBackend, "trained", lambda name: trained.append(name))
    assert main(["madeye", "train", "--backends", "small-192,foo"]) == 2
    assert capsys.readouterr().err == (
        "tenfold: error: unknown madeye backend 'foo'; known: small-128, small-192, small-192n, small-96\n"
    )
    assert main(["madeye", "train", "--backends", ""]) == 2
    assert capsys.readouterr().err == (
        "tenfold: error: config field 'backends' = '': must be comma-separated backend names; leave out --backends "
        "to train all\n"
    )
    assert trained == []


@pytest.mark.parametrize(
    ("verb", "shown"),
    [
        ("run", ["(default: 10)", "(default: 2)", "(default: hog)", "(default: 20)", "(default: 60)"]),
        ("sim", ["(default: W1)", "(default: 0)", "(default: 200)", "(default: 2)", "(default: 10)"]),
        ("bench", ["(default: results)", "(default: local)", "(default: 0)"]),
        ("train", ["(default: all of them)"]),
    ],
)
def test_help_shows_the_defaults(verb: str, shown: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["madeye", verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for item in shown:
        assert item in text


def test_bench_seed_offsets_the_world_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenfold.core import executor
    from tenfold.core.results import read_result
    from tenfold.systems.madeye import bench

    _SEEN.clear()
    monkeypatch.setattr(bench, "run_cell", _recording_cell)
    monkeypatch.setattr(bench, "train_backend", str)
    monkeypatch.setattr(executor, "make_executor", lambda name: executor.LocalExecutor(workers=1))
    assert main(["madeye", "bench", "--quick", "--seed", "5", "--out", str(tmp_path)]) == 0
    assert sorted(i["seed"] for i in _SEEN) == [5, 6]
    assert read_result(Path(capsys.readouterr().out.strip()))["config"]["seeds"] == [5, 6]
    conf = tmp_path / "grid.toml"
    conf.write_text("seeds = [0]\n")
    assert main(["madeye", "bench", "--config", str(conf), "--seed", "1"]) == 2
    assert capsys.readouterr().err == (
        "tenfold: error: config field '--seed' = 1: --config names the seeds; leave out --seed\n"
    )


def test_k_sweep_runs_at_every_n() -> None:
    from tenfold.systems.madeye.bench import _arm_runs

    runs = _arm_runs({"seed": 3, "k_explore": 10, "n_values": [1, 2], "k_sweep": [5, 15]})
    sweep = [(arm, nkey, p.config.k_explore, p.config.n_send, p.config.seed) for arm, nkey, p in runs
             if arm.startswith("madeye_k") and arm != "madeye_k1"]
    assert sweep == [
        ("madeye_k5", "n1", 5, 1, 3),
        ("madeye_k5", "n2", 5, 2, 3),
        ("madeye_k15", "n1", 15, 1, 3),
        ("madeye_k15", "n2", 15, 2, 3),
    ]


def _sweep_cell(item: dict[str, Any]) -> dict[str, Any]:
    out = _fake_cell(item)
    for data in out["workloads"].values():
        data["arms"]["madeye_k5"] = {f"n{n}": dict(data["arms"]["madeye"][f"n{n}"]) for n in item["n_values"]}
        for r in data["arms"]["madeye_k5"].values():
            r["accuracy"] -= 0.05
    return out


def test_k_sweep_results_keep_their_names_and_add_n1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenfold.core.bench import BenchContext
    from tenfold.core.executor import LocalExecutor
    from tenfold.systems.madeye import bench
    from tenfold.systems.madeye.config import AccuracyBenchConfig

    monkeypatch.setattr(bench, "run_cell", _sweep_cell)
    monkeypatch.setattr(bench, "train_backend", str)
    ctx = BenchContext(quick=False, seed=0, executor=LocalExecutor(workers=1), out_dir=tmp_path, show_progress=False)
    outcome = bench.run_accuracy(AccuracyBenchConfig(k_sweep=(5,)), ctx)
    row = outcome.arms["madeye_k5"]
    assert row["workload_accuracy"] == pytest.approx(0.805)  # N=2, as before
    assert row["frames_per_step"] == 2.0
    assert row["workload_accuracy_n2"] == pytest.approx(0.805)
    assert row["workload_accuracy_n1"] == pytest.approx(0.705)  # the new N=1 entries
    assert row["W1_s0_n1"] == pytest.approx(0.70) and row["W1_s0_n2"] == pytest.approx(0.80)


class _Bar:
    closed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def update(self) -> None:
        pass

    def close(self) -> None:
        _Bar.closed = True


def test_a_failing_cell_closes_its_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from tenfold.errors import ConfigError
    from tenfold.systems.madeye import bench, sources

    evaluate = importlib.import_module("tenfold.systems.madeye.evaluate")  # the package exports a function too

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ConfigError("k_explore", 30, "must be <= the region's 25 pan/tilt cells")

    monkeypatch.setattr(bench, "tqdm", _Bar)
    monkeypatch.setattr(sources, "SimPanorama", lambda *args, **kwargs: None)
    monkeypatch.setattr(evaluate, "prepare", fail)
    _Bar.closed = False
    with pytest.raises(ConfigError):
        bench.run_cell({"seed": 0, "k_explore": 10, "eval_steps": 5, "workloads": ["W1"], "n_values": [1]})
    assert _Bar.closed
