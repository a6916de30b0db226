"""Emulated calls, collection, evaluation and the CLI, on short calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tenfold.cli import main
from tenfold.errors import ConfigError
from tenfold.net.trace import Trace, synthetic_trace, write_trace
from tenfold.systems.tarzan.collect import ChunkRef, chunk_refs, collect, load_chunk, plan_chunks, trace_files
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


# -- bad input on the call grid and trace directories (spec §9) -------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"levels": (float("inf"),)}, r"'levels' = inf: must be a finite mean rate in \(0, 100\] Mbps"),
    ({"levels": (1e6,)}, r"'levels' = 1000000\.0: must be a finite mean rate in \(0, 100\] Mbps"),
    ({"levels": (float("nan"),)}, r"'levels' = nan: must be a finite mean rate"),
    ({"levels": (0.0,)}, r"'levels' = 0\.0: must be a finite mean rate"),
    ({"rtts": (float("inf"),)}, r"'rtts' = inf: must be a finite RTT > 0 ms"),
    ({"rtts": (0.0,)}, r"'rtts' = 0\.0: must be a finite RTT > 0 ms"),
    ({"seconds": 0.0}, r"'seconds' = 0\.0: must be in \(0, 60\] s: calls run on 60 s chunks"),
    ({"seconds": 61.0}, r"'seconds' = 61\.0: must be in \(0, 60\] s"),
    ({"seconds": float("inf")}, r"'seconds' = inf: must be in \(0, 60\] s"),
    ({"limit": 0}, r"'limit' = 0: must be >= 1"),
    ({"limit": -1}, r"'limit' = -1: must be >= 1"),
    ({"seeds": (-1,)}, r"'seed' = -1: must be >= 0"),
])
def test_the_call_grid_is_checked_before_any_trace_is_read(tmp_path: Path, kwargs: dict[str, object],
                                                           message: str) -> None:
    args: dict[str, object] = {"levels": (1.5,), "rtts": (100.0,), **kwargs}
    with pytest.raises(ConfigError, match=message):
        chunk_refs([tmp_path / "never-read"], **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("flags", "message"), [
    (["--limit", "-1"], "'limit' = -1: must be >= 1"),
    (["--limit", "0"], "'limit' = 0: must be >= 1"),
    (["--levels", "inf"], "'levels' = inf"),
    (["--levels", "1e6"], "'levels' = 1000000.0"),
    (["--rtts", "inf"], "'rtts' = inf"),
    (["--levels", "1.5,x"], "'levels' = '1.5,x': must be comma-separated numbers"),
    (["--seconds", "90"], "'seconds' = 90.0: must be in (0, 60] s"),
])
def test_cli_refuses_bad_numbers_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                             message: str) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    assert main(["tarzan", "eval", "--traces", str(traces), "--policy", "gcc", *flags]) == 2
    assert message in capsys.readouterr().err


def _two_windows_one_empty(path: Path) -> Path:
    """Deliveries every ms in the first minute, none in the second (the last line sets the period)."""
    return write_trace(Trace([*range(1, 60_000), 120_000]), path)


def test_short_traces_and_empty_chunks_are_named_and_counted(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    write_trace(Trace(list(range(1, 2_001))), traces / "short.down")  # 2 s: no full chunk
    with pytest.raises(ConfigError, match=r"no file holds a full 60 s chunk with deliveries; shorter than one chunk: "
                                          r".*short\.down \(2 s\)"):
        chunk_refs([traces / "short.down"], (1.5,), (100.0,))
    assert main(["tarzan", "eval", "--traces", str(traces), "--policy", "gcc"]) == 2
    assert "short.down (2 s)" in capsys.readouterr().err
    _two_windows_one_empty(traces / "gappy.down")
    plan = plan_chunks(sorted(traces.iterdir()), (1.5,), (100.0,))
    assert (len(plan.refs), plan.empty_chunks) == (1, 1)
    assert plan.short_files == [f"{traces / 'short.down'} (2 s)"]
    assert main(["tarzan", "eval", "--traces", str(traces), "--policy", "gcc", "--seconds", "1"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["calls"], out["empty_chunks_skipped"]) == (1.0, 1)
    assert "tarzan: skipped 1 chunk(s) without deliveries" in captured.err
    assert f"tarzan: no full 60 s chunk (skipped): {traces / 'short.down'} (2 s)" in captured.err


def test_trace_directories_read_every_file_but_documentation(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "traces"
    (d / "sub").mkdir(parents=True)
    for name in ("LICENSE", "README", "README.md", "SPLIT.md", "manifest.json", ".hidden", "COPYING.txt"):
        (d / name).write_text("notes\n")
    for name in ("a.down", "b.log", "trace_1010479_http---edition.cnn.com"):
        shutil.copy(VERIZON, d / name)
    traces, skipped = trace_files(d)
    assert [p.name for p in traces] == ["a.down", "b.log", "trace_1010479_http---edition.cnn.com"]
    assert skipped == [".hidden", "COPYING.txt", "LICENSE", "README", "README.md", "SPLIT.md", "manifest.json",
                       "sub/"]
    assert main(["tarzan", "eval", "--traces", str(d), "--policy", "gcc", "--seconds", "1", "--limit", "1"]) == 0
    assert ("skipped 8 file(s) that are not traces: .hidden, COPYING.txt, LICENSE, README, README.md, SPLIT.md, "
            "manifest.json, sub/") in capsys.readouterr().err
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "LICENSE").write_text("notes\n")
    assert main(["tarzan", "eval", "--traces", str(docs), "--policy", "gcc"]) == 2
    assert "holding Mahimahi trace files; skipped as not traces: ['LICENSE']" in capsys.readouterr().err
    (d / "notes.txt").write_text("not a trace\n")  # any other file is a trace, and a bad one is named
    assert main(["tarzan", "eval", "--traces", str(d), "--policy", "gcc", "--limit", "1"]) == 1
    assert "notes.txt:1: 'not a trace' is not an integer millisecond timestamp" in capsys.readouterr().err


def test_cli_eval_policy_names_any_trained_algorithm_and_must_match_the_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.systems.tarzan.models import GaussianActor
    from tenfold.systems.tarzan.policy import Policy

    ckpt = Policy("no_prev_action", GaussianActor().eval()).save(tmp_path / "npa.pt")
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    base = ["tarzan", "eval", "--traces", str(traces), "--seconds", "1", "--limit", "1"]
    assert main([*base, "--policy", "no_prev_action", "--checkpoint", str(ckpt)]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == 1.0
    assert main([*base, "--policy", "tarzan", "--checkpoint", str(ckpt)]) == 2
    assert (f"config field 'policy' = 'tarzan': the checkpoint {ckpt} holds a 'no_prev_action' policy, not 'tarzan': "
            "pass --policy no_prev_action") in capsys.readouterr().err
    assert main([*base, "--policy", "gcc", "--checkpoint", str(ckpt)]) == 2
    assert "--policy gcc runs without a checkpoint: drop --checkpoint" in capsys.readouterr().err
    for algo in ("no_cql", "no_qr", "no_prev_action", "crr"):
        assert main([*base, "--policy", algo]) == 2
        assert f"--policy {algo} needs --checkpoint FILE" in capsys.readouterr().err


def test_collect_leaves_no_shard_when_a_call_fails(tmp_path: Path) -> None:
    good = ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 1.0)
    bad = ChunkRef(str(VERIZON), 9, 1.5, 100.0, 0, 1.0)  # Verizon-LTE-short.down has 2 chunks
    with pytest.raises(ConfigError, match=r"'index' = 9: must be in \[0, 1\]"):
        collect([good, bad], tmp_path / "new")
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    collect([good], old)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(ConfigError):
        collect([good, bad], old)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before  # the earlier run's shard and manifest


def test_collect_and_ingest_refuse_an_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("keep")
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(VERIZON, traces / VERIZON.name)
    assert main(["tarzan", "collect", "--traces", str(traces), "--seconds", "1", "--limit", "1",
                 "--out", str(target)]) == 2
    message = f"config field 'out' = '{target}': is an existing file; --out names a directory"
    assert message in capsys.readouterr().err
    data = Path(__file__).parent / "data" / "alphartc_small.jsonl"
    assert main(["tarzan", "ingest", "--format", "alphartc", str(data), "--allow-partial", "--out", str(target)]) == 2
    assert message in capsys.readouterr().err
    assert target.read_text() == "keep"


def test_collect_manifest_is_what_training_reads(tmp_path: Path) -> None:
    from tenfold.systems.tarzan.telemetry import read_manifest

    manifest = collect([ChunkRef(str(VERIZON), 0, 1.5, 100.0, 0, 1.0)], tmp_path / "logs")
    blob = json.loads(manifest.read_text())
    assert (blob["format"], blob["controller"], [e["steps"] for e in blob["shards"]]) == ("tarzan.logs/1", "gcc", [20])
    listed = read_manifest(tmp_path / "logs")
    assert [(s.path.name, s.steps) for s in listed.shards] == [(blob["shards"][0]["shard"], 20)]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == sorted([blob["shards"][0]["shard"],
                                                                             "manifest.json"])


def test_help_documents_every_flag_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from tenfold.cli import build_parser

    def subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    verbs = subparsers(subparsers(build_parser())["tarzan"])
    assert sorted(verbs) == ["collect", "eval", "ingest", "realnet", "serve", "train"]
    for verb, p in verbs.items():
        undocumented = [a.dest for a in p._actions if not a.help]
        assert not undocumented, (verb, undocumented)
    with pytest.raises(SystemExit):
        main(["tarzan", "serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: /tmp/tarzan.sock)" in text and "--stdio" in text
    with pytest.raises(SystemExit):
        main(["tarzan", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "gradient steps (the spec: 100,000) (default: 100000)" in text
    assert "(default: 256)" in text and "(default: tarzan)" in text
    with pytest.raises(SystemExit) as usage:  # argparse's own usage error, exit 2
        main(["tarzan", "serve", "--checkpoint", "x.pt", "--stdio", "--socket", "/tmp/s"])
    assert usage.value.code == 2
    assert "argument --socket: not allowed with argument --stdio" in capsys.readouterr().err
