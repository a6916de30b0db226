"""Mahimahi traces: loader errors with file:line, writer, stats, chunks, rescale, synth, split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.errors import ConfigError, TraceError
from tenfold.net.trace import (
    SPLIT,
    Trace,
    chunk_trace,
    load_cooked,
    load_trace,
    rescale_trace,
    split_paths,
    synthetic_trace,
    to_cooked,
    traces_dir,
    write_trace,
)


def _write(tmp_path: Path, text: str, name: str = "t.mm") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_single_line_one_is_12_mbps(tmp_path: Path) -> None:
    trace = load_trace(_write(tmp_path, "1\n"))
    assert trace.period_ms == 1
    assert trace.mean_mbps == 12.0
    assert trace.count_until(1000.0) == 999  # opportunities at 1..999 ms
    assert list(trace.opportunities(0, 5)) == [1, 2, 3, 4]


def test_repetition_wraps_at_last_timestamp() -> None:
    trace = Trace([0, 0, 5, 10])
    assert list(trace.opportunities(0, 25)) == [0, 0, 5, 10, 10, 10, 15, 20, 20, 20]
    assert trace.count_until(25) == 10
    assert trace.mean_mbps == 4 * 1500 * 8 / 10_000


@pytest.mark.parametrize(("text", "reason"), [
    ("1\n2\n\n3\n", ":3: empty line; expected an integer millisecond timestamp"),
    ("1\n2x\n", ":2: '2x' is not an integer millisecond timestamp"),
    ("1\n-4\n", ":2: timestamp -4 is negative; it must be >= 0"),
    ("5\n7\n6\n", ":3: timestamp 6 is below the previous 7; timestamps must not decrease"),
    ("", ":1: trace is empty; it needs at least one timestamp"),
    ("0\n0\n", ":2: last timestamp is 0; the trace period must be > 0 ms"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, text: str, reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value) == f"{path}{reason}"


def test_write_then_load_is_identity(tmp_path: Path) -> None:
    trace = Trace([0, 3, 3, 9, 12], name="x")
    path = write_trace(trace, tmp_path / "out" / "x.mm")
    assert path.read_text() == "0\n3\n3\n9\n12\n"
    assert load_trace(path) == trace


def test_chunks_are_rebased_and_drop_the_tail() -> None:
    trace = Trace([0, 10, 59_999, 60_000, 60_001, 125_000, 130_000])
    chunks = chunk_trace(trace, 60_000)
    assert [list(c.timestamps_ms) for c in chunks] == [[0, 10, 59_999], [0, 1]]
    assert all(c.period_ms == 60_000 for c in chunks)
    gap = Trace([0, 1, 130_000])  # window 60-120 s is empty and skipped
    assert [c.name for c in chunk_trace(gap, 60_000)] == ["trace#0"]


def test_rescale_keeps_shape_and_hits_target() -> None:
    trace = Trace(np.arange(1, 1001))  # 12 Mbps for 1 s
    half = rescale_trace(trace, 1.5)
    assert len(half) == 125
    assert half.mean_mbps == 1.5
    double = rescale_trace(trace, 24.0)
    assert len(double) == 2000 and list(double.opportunities(0, 3)) == [1, 1, 2, 2]


def test_synthetic_constant_and_seeding() -> None:
    const = synthetic_trace("constant", 2.0, mbps=12.0)
    assert list(const.timestamps_ms) == list(range(1, 2001))
    assert synthetic_trace("constant", 1.0, mbps=6.0).mean_mbps == 6.0
    for kind in ("markov", "gilbert"):
        a = synthetic_trace(kind, 30.0, seed=3)
        b = synthetic_trace(kind, 30.0, seed=3)
        c = synthetic_trace(kind, 30.0, seed=4)
        assert a == b
        assert a != c
    with pytest.raises(ConfigError, match="'kind' = 'pareto'"):
        synthetic_trace("pareto", 1.0)  # type: ignore[arg-type]


def test_gilbert_rates_are_the_two_states() -> None:
    trace = synthetic_trace("gilbert", 20.0, seed=1, good_mbps=6.0, bad_mbps=0.6, step_ms=1000)
    rates = [r for _, r in to_cooked(trace, 1.0)]
    # Opportunity i sits at ms i + 1, so a 1 s bin may gain or lose one 12 kbit packet.
    assert all(min(abs(r - 6.0), abs(r - 0.6)) <= 0.012 + 1e-9 for r in rates)
    assert {round(r) for r in rates} == {1, 6}


def test_cooked_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, "0 12\n1 6\n2 3\n3 0\n")
    trace = load_cooked(path)
    assert trace.period_ms == 3000
    assert to_cooked(trace, 1.0) == [(0.0, 12.0), (1.0, 6.0), (2.0, 3.0)]
    with pytest.raises(TraceError, match=r"t\.mm:2: time 0\.5 must increase"):
        load_cooked(_write(tmp_path, "1 2\n0.5 3\n"))


def test_split_is_disjoint_and_chunk_counts_match_spec() -> None:
    assert set(SPLIT["train"]).isdisjoint(SPLIT["test"])
    assert sorted(SPLIT["train"] + SPLIT["test"]) == sorted(
        p.name for p in traces_dir().iterdir() if p.name != "README" and not p.name.endswith(".md"))
    counts = {p.name: len(chunk_trace(load_trace(p))) for p in split_paths("test")}
    assert counts == {"ATT-LTE-driving-2016.down": 2, "ATT-LTE-driving-2016.up": 2,
                      "TMobile-LTE-short.down": 2, "TMobile-LTE-short.up": 2}
    train = {p.name: len(chunk_trace(load_trace(p))) for p in split_paths("train")}
    assert train == {"ATT-LTE-driving.down": 13, "ATT-LTE-driving.up": 16, "TMobile-LTE-driving.down": 7,
                     "Verizon-LTE-short.down": 2, "Verizon-LTE-short.up": 2}


def test_stats_of_a_real_trace() -> None:
    stats = load_trace(traces_dir() / "Verizon-LTE-short.down").stats()
    assert stats.lines == 58655
    assert stats.duration_s == 140.0
    assert stats.mean_mbps == pytest.approx(58655 * 12000 / 140_000_000, rel=1e-12)
    assert stats.min_mbps <= stats.p5_mbps <= stats.p50_mbps <= stats.p95_mbps <= stats.max_mbps


def test_cooked_missing_file_and_non_finite_values_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cooked"
    with pytest.raises(TraceError, match=r"nope\.cooked: cannot read cooked trace: .*No such file"):
        load_cooked(missing)
    for text, where in (("0 nan\n1 5\n", 1), ("0 5\nnan 5\n2 5\n", 2), ("0 inf\n1 5\n", 1), ("0 5\n-inf 5\n", 2)):
        with pytest.raises(TraceError, match=rf"t\.mm:{where}: '.*' is not two finite numbers"):
            load_cooked(_write(tmp_path, text))


@pytest.mark.parametrize("item", ["1_0", "+5", "\u0661\u0662", "\uff15", "1 2", "0x3"])
def test_trace_lines_must_be_ascii_digits(tmp_path: Path, item: str) -> None:
    path = _write(tmp_path, f"1\n{item}\n3\n")
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value) == f"{path}:2: {item!r} is not an integer millisecond timestamp"
    with pytest.raises(TraceError, match=r"t\.mm:2: timestamp -0 is negative; it must be >= 0"):
        load_trace(_write(tmp_path, "1\n-0\n3\n"))


def test_implied_rate_counts_the_opportunities_of_the_run(tmp_path: Path) -> None:
    # The line at t serves the millisecond (t-1, t]: a run of T ms holds the lines in (0, T].
    one = load_trace(_write(tmp_path, "1\n"))
    assert one.count_within(1000.0) == 1000
    assert one.implied_mbps(1.0) == 12.0
    assert one.implied_mbps(0.001) == 12.0
    # whole periods hold every line once, leading zeros included
    trace = Trace([0, 0, 5, 10])
    assert [trace.count_within(t) for t in (0, 5, 10, 20, 25)] == [0, 1, 4, 8, 9]
    assert trace.implied_mbps(0.02) == trace.mean_mbps
