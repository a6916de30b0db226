"""SimLink: mm-link semantics, exact numbers on crafted traces, seeding, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.cli import main
from tenfold.core.sim import Environment
from tenfold.errors import ConfigError
from tenfold.net.link import LinkConfig, Packet, SimLink, cbr_schedule
from tenfold.net.trace import Trace, load_trace, traces_dir

ONE = Trace([1])


def test_constant_trace_delivers_12_mbps() -> None:
    result = SimLink(ONE, LinkConfig(delay_ms=30)).saturate(10.0)
    assert result.throughput_mbps == pytest.approx(12.0, rel=1e-3)
    assert result.drops == 0


def test_empty_queue_delay_equals_configured_delay() -> None:
    sends = [(k / 1000, 1200) for k in range(1, 2000, 37)]
    result = SimLink(ONE, LinkConfig(delay_ms=25.0)).transmit(sends, 3.0)
    delays = [d.delay_ms for d in result.deliveries]
    assert len(delays) == len(sends)
    assert all(d == pytest.approx(25.0, abs=1e-9) for d in delays)


def test_queue_delay_is_queued_bytes_over_rate() -> None:
    # 10 packets at once on a 12 Mbps link: packet i leaves at opportunity i+1 (ms).
    result = SimLink(ONE, LinkConfig(delay_ms=0)).transmit([(0.0005, 1500)] * 10, 1.0)
    assert [round(d.delay_ms or -1, 6) for d in result.deliveries] == [0.5 + i for i in range(10)]


def test_small_packets_share_and_big_packets_span_opportunities() -> None:
    result = SimLink(ONE).transmit([(0.001, 500), (0.001, 500), (0.001, 500), (0.001, 3000)], 1.0)
    assert [d.arrived_s for d in result.deliveries] == [0.001, 0.001, 0.001, 0.003]


def test_unused_opportunities_are_lost() -> None:
    trace = Trace([0, 0, 0, 0, 1000])  # four opportunities at t = 0 of each second
    result = SimLink(trace).transmit([(0.001, 1500), (0.001, 1500)], 2.0)
    assert [d.arrived_s for d in result.deliveries] == [1.0, 1.0]


def test_drop_tail_in_packets_and_bytes() -> None:
    sends = [(0.0, 1500)] * 20
    by_packets = SimLink(ONE, LinkConfig(queue_packets=5)).transmit(sends, 1.0)
    assert by_packets.drops == 15
    assert [d.dropped for d in by_packets.deliveries] == [False] * 5 + [True] * 15
    by_bytes = SimLink(ONE, LinkConfig(queue_packets=None, queue_bytes=4000)).transmit(sends, 1.0)
    assert by_bytes.drops == 18


def test_random_loss_is_seeded() -> None:
    sends = cbr_schedule(1.0, 5.0)
    runs = [SimLink(ONE, LinkConfig(loss=0.2, seed=s)).transmit(sends, 5.0) for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert runs[0].drops == sum(d.dropped for d in runs[0].deliveries)
    assert 0.15 < runs[0].drops / len(sends) < 0.25


def test_online_use_inside_a_callers_simulation() -> None:
    env = Environment()
    seen: list[tuple[int, float]] = []
    link = SimLink(ONE, LinkConfig(delay_ms=10), env=env, on_deliver=lambda p, t: seen.append((p.seq, t)))

    def sender() -> object:
        for seq in range(3):
            yield env.timeout(0.002)
            link.send(Packet(seq, 1500, env.now))

    env.process(sender())  # type: ignore[arg-type]
    env.run(until=1.0)
    assert [seq for seq, _ in seen] == [0, 1, 2]
    assert [t for _, t in seen] == pytest.approx([0.012, 0.014, 0.016])


def test_bad_config_names_field() -> None:
    with pytest.raises(ConfigError, match="config field 'queue_packets' = 0: must be in"):
        LinkConfig(queue_packets=0)
    with pytest.raises(ConfigError, match=r"'delay_ms' = -1\.0"):
        LinkConfig(delay_ms=-1.0)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["net", "link", *argv]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    data = json.loads(out[0])
    assert isinstance(data, dict)
    return data


def test_cli_on_constant_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.mm"
    path.write_text("1\n")
    data = _cli(capsys, "--trace", str(path), "--seconds", "5", "--delay-ms", "20", "--queue-packets", "50")
    assert {"throughput_mbps", "mean_delay_ms", "p95_delay_ms", "drops"} <= set(data)
    assert data["throughput_mbps"] == pytest.approx(12.0, rel=0.01)
    assert data["p95_delay_ms"] == 70.0  # 50 queued packets at 1 ms each, plus 20 ms
    assert data["drops"] == 0


TRACES = sorted(p.name for p in traces_dir().iterdir() if p.suffix in (".up", ".down"))


@pytest.mark.parametrize("name", TRACES)
def test_cli_reports_the_throughput_the_trace_implies(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = traces_dir() / name
    trace = load_trace(path)
    seconds = min(trace.period_ms / 1000.0, 120.0)
    data = _cli(capsys, "--trace", str(path), "--seconds", str(seconds), "--delay-ms", "40")
    implied = trace.count_until(seconds * 1000) * 1500 * 8 / (seconds * 1e6)
    assert data["throughput_mbps"] == pytest.approx(implied, rel=0.02)


def test_cli_default_runs_one_full_period(capsys: pytest.CaptureFixture[str]) -> None:
    path = traces_dir() / "ATT-LTE-driving-2016.up"
    lines = len(path.read_text().split())
    data = _cli(capsys, "--trace", str(path))
    assert data["throughput_mbps"] == pytest.approx(lines * 1500 * 8 / (120.002 * 1e6), rel=0.02)


def test_cli_overload_counts_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.mm"
    path.write_text("1\n")
    data = _cli(capsys, "--trace", str(path), "--seconds", "2", "--offered-mbps", "24", "--queue-packets", "10")
    assert data["throughput_mbps"] == pytest.approx(12.0, rel=0.01)
    assert data["drops"] == pytest.approx(2000, abs=15)


def test_cli_bad_input_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mm"
    bad.write_text("1\nx\n")
    assert main(["net", "link", "--trace", str(bad)]) == 1
    assert f"{bad}:2:" in capsys.readouterr().err
    assert main(["net", "link", "--trace", str(bad), "--loss", "1.5"]) == 2


@settings(max_examples=60, deadline=None)
@given(sends=st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 4000)), max_size=80),
       trace=st.lists(st.integers(0, 50), min_size=1, max_size=20).map(sorted),
       queue=st.one_of(st.none(), st.integers(1, 20)), delay=st.integers(0, 50))
def test_link_invariants(sends: list[tuple[int, int]], trace: list[int], queue: int | None, delay: int) -> None:
    """FIFO, no packet created or lost unaccounted, delay never below the configured one."""
    tr = Trace([*trace[:-1], max(trace[-1], 1)])
    offered = [(ms / 1000, size) for ms, size in sorted(sends)]
    result = SimLink(tr, LinkConfig(delay_ms=delay, queue_packets=queue)).transmit(offered, 2.5)
    assert len(result.deliveries) == len(offered)
    arrived = [d for d in result.deliveries if d.arrived_s is not None]
    assert not any(d.dropped for d in arrived)
    assert [d.arrived_s for d in arrived] == sorted(d.arrived_s for d in arrived)  # type: ignore[type-var]
    assert all((d.delay_ms or 0) >= delay - 1e-6 for d in arrived)
    if queue is not None:
        assert result.drops <= len(offered)


def test_constant_trace_gives_exactly_12_mbps_over_one_second(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # tarzan spec acceptance 5: the trace "1" gives 12.0 Mbps; the opportunity at 1000 ms
    # serves the run's last millisecond (999, 1000], so the run holds 1000 of them.
    for delay in (0.0, 30.0):
        result = SimLink(ONE, LinkConfig(delay_ms=delay)).saturate(1.0)
        assert (len(result.delivered), result.throughput_mbps) == (1000, 12.0)
    path = tmp_path / "one.mm"
    path.write_text("1\n")
    data = _cli(capsys, "--trace", str(path), "--seconds", "1")
    assert (data["throughput_mbps"], data["implied_mbps"], data["delivered"]) == (12.0, 12.0, 1000)


def test_link_config_rejects_negative_seed_and_infinite_delay() -> None:
    with pytest.raises(ConfigError, match=r"config field 'seed' = -1: must be in \[0, inf\]"):
        LinkConfig(seed=-1)
    with pytest.raises(ConfigError, match=r"config field 'delay_ms' = inf: must be a finite number"):
        LinkConfig(delay_ms=float("inf"))
    with pytest.raises(ConfigError, match=r"'rate_mbps' = inf: must be a finite number"):
        cbr_schedule(float("inf"), 1.0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--seed", "-1"], "config field 'seed' = -1: must be in [0, inf]"),
    (["--offered-mbps", "inf"], "config field '--offered-mbps' = inf: must be a finite number > 0"),
    (["--offered-mbps", "nan"], "config field '--offered-mbps' = nan: must be a finite number > 0"),
    (["--seconds", "inf"], "config field '--seconds' = inf: must be a finite number > 0"),
    (["--seconds", "0"], "config field '--seconds' = 0.0: must be a finite number > 0"),
    (["--delay-ms", "inf"], "config field 'delay_ms' = inf: must be a finite number"),
])
def test_cli_non_finite_and_negative_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     argv: list[str], message: str) -> None:
    path = tmp_path / "one.mm"
    path.write_text("1\n")
    assert main(["net", "link", "--trace", str(path), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
