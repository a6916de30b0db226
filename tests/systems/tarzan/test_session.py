"""Emulated calls, collection, evaluation and the CLI, on short calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tenfold.cli import main
from tenfold.net.trace import Trace, synthetic_trace
from tenfold.systems.tarzan.collect import ChunkRef, chunk_refs, collect, load_chunk
from tenfold.systems.tarzan.dataset import build_transitions
from tenfold.systems.tarzan.evaluate import evaluate, summarize
from tenfold.systems.tarzan.session import CallSpec, GccController, ScheduleController, run_call
from tenfold.systems.tarzan.telemetry import read_log

REPO = Path(__file__).resolve().parents[3]
VERIZON = REPO / "data" / "traces" / "mahimahi" / "Verizon-LTE-short.down"


def _const(mbps: float) -> Trace:
    return synthetic_trace("constant", 60, mbps=mbps)


def test_gcc_call_on_a_clean_link_ramps_without_freezes() -> None:
    result = run_call(CallSpec(_const(12.0), "const12", 100.0, 12.0, seed=1, seconds=10.0), GccController())
    assert len(result.rows) == 200
    assert result.qoe.freezes == 0 and result.qoe.fps == pytest.approx(30.0, abs=0.5)
    assert result.targets_bps[-1] > 2 * result.targets_bps[0]  # the ramp of GCC
    tel = result.rows[-1].telemetry
    assert tel.min_rtt_ms == pytest.approx(100.0, abs=1.0)  # RTT with an empty queue
    assert tel.loss == 0.0 and result.link_drops == 0
    assert [r.step for r in result.rows] == list(range(200))


def test_calls_are_deterministic_per_seed() -> None:
    spec = CallSpec(_const(2.0), "const2", 60.0, 2.0, seed=7, seconds=6.0)
    a, b = run_call(spec, GccController()), run_call(spec, GccController())
    assert a.rows == b.rows and a.qoe == b.qoe


def test_overshooting_freezes_the_video() -> None:
    # Sending 5 Mbps into a 1 Mbps link: the queue overflows, frames miss, the video freezes.
    schedule = np.full(400, 5e6)
    result = run_call(CallSpec(_const(1.0), "const1", 100.0, 1.0, seed=0, seconds=10.0), ScheduleController(schedule))
    assert result.link_drops > 0
    assert result.qoe.freezes > 0 and result.qoe.freeze_rate > 0.1
    assert any(r.telemetry.loss > 0 for r in result.rows)


def test_collect_writes_shards_that_train_reads(tmp_path: Path) -> None:
    refs = [ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 5.0), ChunkRef(str(VERIZON), 1, 1.5, 40.0, 0, 5.0)]
    manifest = collect(refs, tmp_path / "logs")
    entries = json.loads(manifest.read_text())["shards"]
    assert [e["steps"] for e in entries] == [100, 100]
    rows = [r for e in entries for r in read_log(tmp_path / "logs" / e["shard"])]
    assert {r.rtt_ms for r in rows} == {100.0, 40.0}
    assert len(build_transitions(rows)) == 2 * 99
    assert load_chunk(refs[0]).mean_mbps == pytest.approx(1.5, rel=0.01)


def test_chunk_refs_cover_every_chunk_and_validate() -> None:
    refs = chunk_refs([VERIZON], levels=(0.75, 1.5), rtts=(40.0,))
    assert len(refs) == 2 * 2  # two 1-minute chunks, two levels
    from tenfold.errors import ConfigError

    with pytest.raises(ConfigError, match="'rtts' = -5"):
        chunk_refs([VERIZON], levels=(1.5,), rtts=(-5.0,))


def test_evaluate_gcc_and_oracle() -> None:
    refs = [ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 8.0)]
    table = summarize(evaluate({"gcc": None, "oracle": None}, refs))
    assert set(table) == {"gcc", "oracle"}
    for arm in table.values():
        assert set(arm) >= {"bitrate_p50_mbps", "freeze_rate_p50", "freeze_rate_p90", "fps_p50", "frame_delay_p95_ms"}
        assert arm["calls"] == 1.0 and arm["bitrate_p50_mbps"] > 0


def test_cli_eval_on_any_trace_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    assert main(["tarzan", "eval", "--traces", str(traces), "--policy", "gcc", "--seconds", "5", "--limit", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calls"] == 1.0
    assert main(["tarzan", "eval", "--traces", str(traces), "--policy", "tarzan", "--limit", "1"]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err


def test_cli_traces_can_name_a_side_of_the_documented_split(tmp_path: Path) -> None:
    import argparse

    from tenfold.errors import ConfigError
    from tenfold.net.trace import SPLIT
    from tenfold.systems.tarzan.cli import _refs

    def refs(traces: str) -> list[ChunkRef]:
        return _refs(argparse.Namespace(traces=traces, levels="1.5", rtts="100", seed=0, seconds=60.0, limit=None))

    assert {Path(r.path).name for r in refs("split:train")} == set(SPLIT["train"])
    assert len(refs("split:train")) == 40 and len(refs("split:test")) == 8
    assert {Path(r.path).name for r in refs("split:test")} == set(SPLIT["test"])
    with pytest.raises(ConfigError, match="must be a directory of Mahimahi traces, split:train or split:test"):
        refs(str(tmp_path / "nowhere"))
