"""Log adapters, ``tenfold tarzan ingest`` and AlphaRtcEstimator (spec §3 adapters, §4 serving,
§5 user data, §9 bad input).

Expected values on the hand-written fixtures in ``data/`` are worked out in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tenfold.cli import main
from tenfold.errors import UnknownNameError
from tenfold.systems.tarzan.adapters import (
    ADAPTERS,
    MMSYS24_FEATURES,
    AlphaRtcEstimator,
    MissingFeatureError,
    ingest,
    load_log,
)
from tenfold.systems.tarzan.dataset import build_transitions
from tenfold.systems.tarzan.features import bps_to_action, feature_matrix, reward, window_at
from tenfold.systems.tarzan.gcc import Feedback, Gcc, PacketResult
from tenfold.systems.tarzan.models import GaussianActor
from tenfold.systems.tarzan.policy import Policy
from tenfold.systems.tarzan.telemetry import LogFormatError, read_log

DATA = Path(__file__).parent / "data"
ALPHA = DATA / "alphartc_small.jsonl"
MMSYS = DATA / "mmsys24_small.json"


def _packet(seq: int, send: float, arrival: float, **over: Any) -> dict[str, Any]:
    pkt: dict[str, Any] = {"send_time_ms": send, "arrival_time_ms": arrival, "payload_type": 96,
                           "sequence_number": seq, "ssrc": 1, "padding_length": 0, "header_length": 12,
                           "payload_size": 1000}
    pkt.update(over)
    return pkt


def _write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


# -- AlphaRTC ----------------------------------------------------------------------------------


def test_alphartc_steps_match_hand_computed_features() -> None:
    log = load_log("alphartc", ALPHA, allow_partial=True)
    s = log.summary
    assert (s.records, s.steps) == (8, 3)
    assert s.skipped == {"duplicate_packets": 1, "trailing_partial_step_packets": 1}
    assert s.missing_features == ("rtt", "min_rtt")
    rows = log.rows
    assert [r.step for r in rows] == [0, 1, 2]
    assert [r.t_ms for r in rows] == [50.0, 100.0, 150.0]  # step ends after the first arrival (40 ms)
    assert {r.call_id for r in rows} == {f"alphartc:{ALPHA.resolve()}"}  # the resolved path: unique per file
    t0, t1, t2 = (r.telemetry for r in rows)
    # Step 0, arrivals in [40, 90): seq 10 and 11, 1040 B each on the wire (1000 + 12 + 28).
    assert t0.acked_bps == pytest.approx(2 * 1040 * 8 / 0.05)  # 332,800
    assert t0.sent_bps == pytest.approx(332_800.0)
    assert t0.owd_ms == pytest.approx(45.0)  # transits 40 and 50
    assert t0.queuing_delay_ms == pytest.approx(5.0)  # min OWD 40
    assert t0.jitter_ms == pytest.approx(10 / 16)
    assert t0.loss == 0.0
    assert t0.report_interval_ms == pytest.approx(30.0)  # 90 - 60
    assert t0.steps_since_loss == 0
    assert t0.prev_action == pytest.approx(bps_to_action(500_000))
    assert (t0.rtt_ms, t0.min_rtt_ms, t0.trendline_slope) == (0.0, 0.0, 0.0)
    # Step 1, [90, 140): seq 13 (12 lost), a duplicate 13 (skipped), seq 14 -> 1 lost of 3.
    assert t1.acked_bps == pytest.approx(332_800.0)
    assert t1.sent_bps == pytest.approx(3 * 1040 * 8 / 0.05)  # 499,200: the lost one at the mean size
    assert t1.loss == pytest.approx(1 / 3)
    assert t1.owd_ms == pytest.approx(70.0)
    assert t1.queuing_delay_ms == pytest.approx(30.0)
    assert t1.jitter_ms == pytest.approx((10 / 16 + (20 - 10 / 16) / 16) * 15 / 16)
    assert t1.report_interval_ms == pytest.approx(10.0)
    assert t1.steps_since_loss == 0
    assert t1.prev_action == pytest.approx(bps_to_action(500_000))
    # Step 2, [140, 190): nothing arrives; OWD and jitter carry over.
    assert (t2.acked_bps, t2.sent_bps, t2.loss) == (0.0, 0.0, 0.0)
    assert t2.owd_ms == pytest.approx(70.0)
    assert t2.report_interval_ms == pytest.approx(60.0)
    assert t2.steps_since_loss == 1
    assert t2.prev_action == pytest.approx(bps_to_action(800_000))
    # Actions: the estimate in force at each step's end (the 800 kbps record is at 120 ms).
    assert [r.target_bps for r in rows] == [500_000.0, 800_000.0, 800_000.0]
    assert rows[1].action == pytest.approx(bps_to_action(800_000))
    assert rows[1].reward == pytest.approx(reward(332_800.0, 70.0, 1 / 3))
    # Feature 12 is GCC's trendline fed each step's packets as one report.
    gcc = Gcc()
    gcc.on_feedback(Feedback(90.0, (PacketResult(0, 0, 1040, 40), PacketResult(1, 10, 1040, 60)), 100.0))
    gcc.on_feedback(Feedback(140.0, (PacketResult(2, 30, 1040, 100), PacketResult(3, 60, 1040, 130)), 100.0))
    assert t1.trendline_slope == gcc.trendline.slope


def test_alphartc_refuses_missing_features_unless_partial() -> None:
    with pytest.raises(MissingFeatureError, match=r"alphartc_small.jsonl: the alphartc format lacks feature\(s\) "
                       r"\['rtt', 'min_rtt'\].*allow_partial=True"):
        load_log("alphartc", ALPHA)


def test_alphartc_without_estimates_replays_gcc_only_when_partial(tmp_path: Path) -> None:
    records = [_packet(i, 20.0 * i, 20.0 * i + 30) for i in range(30)]
    path = _write_lines(tmp_path / "noest.jsonl", records)
    with pytest.raises(MissingFeatureError, match=r"\['rtt', 'min_rtt', 'action'\]"):
        load_log("alphartc", path)
    log = load_log("alphartc", path, allow_partial=True)
    assert log.summary.missing_features == ("rtt", "min_rtt", "action")
    # 30 packets over 600 ms -> 11 full steps; the 12th (arrivals 580, 610) is partial.
    assert log.summary.steps == 11
    assert log.summary.skipped == {"duplicate_packets": 0, "trailing_partial_step_packets": 2}
    assert log.rows[0].telemetry.prev_action == pytest.approx(bps_to_action(300_000))
    assert all(50_000 <= r.target_bps <= 6_000_000 for r in log.rows)


def test_alphartc_sequence_wrap_is_not_loss(tmp_path: Path) -> None:
    records = [{"time_ms": 0, "bandwidth_estimate_bps": 1e6}]
    records += [_packet((65530 + i) % 65536, 10.0 * i, 10.0 * i + 5) for i in range(12)]
    log = load_log("alphartc", _write_lines(tmp_path / "wrap.jsonl", records), allow_partial=True)
    assert [r.telemetry.loss for r in log.rows] == [0.0, 0.0]


@pytest.mark.parametrize(("records", "message"), [
    ([_packet(1, 0, 5), {k: v for k, v in _packet(2, 1, 6).items() if k != "ssrc"}],
     r"bad.jsonl: row 1 column 'ssrc' is missing"),
    ([_packet(1, 0, 5), _packet(2, float("nan"), 6)],
     r"bad.jsonl: row 1 column 'send_time_ms' is nan, not a finite value"),
    ([_packet(1, 0, 5), _packet(2, 1, float("inf"))],
     r"bad.jsonl: row 1 column 'arrival_time_ms' is inf, not a finite value"),
    ([_packet(1, 0, 5), _packet(2, 1, 9), _packet(3, 2, 8)],
     r"bad.jsonl: row 2 column 'arrival_time_ms' goes backwards \(8.0 after 9.0\)"),
    ([{"time_ms": 5, "bandwidth_estimate_bps": 1e6}, {"time_ms": 4, "bandwidth_estimate_bps": 1e6}],
     r"bad.jsonl: row 1 column 'time_ms' goes backwards \(4.0 after 5.0\)"),
    ([{"bandwidth_estimate_bps": 1e6}], r"bad.jsonl: row 0 column 'time_ms' is missing"),
    ([_packet(1, 0, 5, sequence_number=1.5)],
     r"bad.jsonl: row 0 column 'sequence_number' is 1.5, not a non-negative integer"),
    ([_packet(1, 0, 5, payload_size="big")], r"bad.jsonl: row 0 column 'payload_size' is 'big', not a number"),
    ([_packet(1, 0, 5), [1, 2]], r"bad.jsonl: row 1 is list, not a JSON object"),
])
def test_alphartc_log_format_errors_name_file_row_column(tmp_path: Path, records: list[Any], message: str) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", records)
    with pytest.raises(LogFormatError, match=message):
        load_log("alphartc", path, allow_partial=True)


def test_alphartc_json_array_form_reads_the_same(tmp_path: Path) -> None:
    records = [json.loads(line) for line in ALPHA.read_text().splitlines()]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(records))
    a = load_log("alphartc", ALPHA, allow_partial=True).rows
    b = load_log("alphartc", path, allow_partial=True).rows
    assert [r.telemetry for r in a] == [r.telemetry for r in b]


# -- MMSys'24 ----------------------------------------------------------------------------------


def test_mmsys24_maps_window_zero_and_never_reads_capacity(tmp_path: Path) -> None:
    blob = json.loads(MMSYS.read_text())
    blob["true_capacity"] = [float("nan")] * 4  # never read
    path = tmp_path / "call.json"
    path.write_text(json.dumps(blob))
    log = load_log("mmsys24", path, allow_partial=True)
    s = log.summary
    assert (s.records, s.steps) == (4, 3)
    assert s.skipped == {"leading_empty_observations": 1}
    assert s.missing_features == ("sent_bitrate", "rtt", "min_rtt", "report_interval", "trendline_slope")
    t = [r.telemetry for r in log.rows]
    assert [x.acked_bps for x in t] == [1.2e6, 9e5, 1.5e6]
    assert [x.owd_ms for x in t] == [80.0, 120.0, 70.0]
    assert [x.jitter_ms for x in t] == [3.0, 5.0, 2.0]
    assert [x.loss for x in t] == [0.0, 0.1, 0.0]
    assert [x.queuing_delay_ms for x in t] == [20.0, 60.0, 10.0]
    assert [x.steps_since_loss for x in t] == [0, 0, 1]  # the step index before any loss, as the emulator
    assert [x.prev_action for x in t] == pytest.approx([bps_to_action(v) for v in (3e5, 4e5, 5e5)])
    assert {(x.sent_bps, x.rtt_ms, x.min_rtt_ms, x.report_interval_ms, x.trendline_slope) for x in t} == {
        (0.0, 0.0, 0.0, 0.0, 0.0)}
    assert [r.target_bps for r in log.rows] == [4e5, 5e5, 6e5]
    assert [r.t_ms for r in log.rows] == [0.0, 60.0, 120.0]
    assert log.rows[1].reward == pytest.approx(reward(9e5, 120.0, 0.1))


def test_mmsys24_refused_without_allow_partial() -> None:
    with pytest.raises(MissingFeatureError, match=r"mmsys24_small.json: the mmsys24 format lacks feature\(s\) "
                       r"\['sent_bitrate', 'rtt', 'min_rtt', 'report_interval', 'trendline_slope'\]"):
        load_log("mmsys24", MMSYS)


def _mmsys_bad(tmp_path: Path, mutate: Any) -> Path:
    blob = json.loads(MMSYS.read_text())
    mutate(blob)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(blob))
    return path


def _set_obs(row: int, index: int, value: float) -> Any:
    def mutate(blob: dict[str, Any]) -> None:
        blob["observations"][row][index] = value
    return mutate


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b.pop("bandwidth_predictions"), r"bad.json: row 0 column 'bandwidth_predictions' is missing"),
    (lambda b: b.pop("observations"), r"bad.json: row 0 column 'observations' is missing"),
    (_set_obs(2, 40, float("nan")),
     r"bad.json: row 2 column 'observations\[40\] \(delay_ms, window 0\)' is nan, not a finite value"),
    (_set_obs(1, 31, float("inf")),
     r"bad.json: row 1 column 'observations\[31\] \(queuing_delay_ms, window 1\)' is inf"),
    (lambda b: b["bandwidth_predictions"].__setitem__(3, float("-inf")),
     r"bad.json: row 3 column 'bandwidth_predictions' is -inf, not a finite value"),
    (lambda b: b["bandwidth_predictions"].__setitem__(2, -5.0),
     r"bad.json: row 2 column 'bandwidth_predictions' is -5\.0, outside the allowed range: must be >= 0"),
    (_set_obs(1, 0, -1e6),  # observation 0 is all zeros, skipped: observation 1 is step 0
     r"bad.json: step 0 column 'tel_acked_bps' is -1000000\.0, outside the allowed range: must be >= 0"),
    (lambda b: b["observations"][1].pop(), r"bad.json: row 1 column 'observations' has 149 values, not 150"),
    (lambda b: b["bandwidth_predictions"].pop(),
     r"bad.json: row 3 column 'bandwidth_predictions' is missing \(4 observations, 3 predictions\)"),
])
def test_mmsys24_log_format_errors_name_file_row_column(tmp_path: Path, mutate: Any, message: str) -> None:
    with pytest.raises(LogFormatError, match=message):
        # ingest checks the adapted rows against the log schema's ranges before writing a shard
        ingest("mmsys24", [_mmsys_bad(tmp_path, mutate)], tmp_path / "out", allow_partial=True)
    assert not (tmp_path / "out").exists()


def test_mmsys24_feature_layout_is_feature_major() -> None:
    assert len(MMSYS24_FEATURES) == 15
    assert MMSYS24_FEATURES.index("delay_ms") * 10 == 40


# -- registry, emulator identity, ingest CLI --------------------------------------------------


def test_unknown_format_lists_the_known_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert ADAPTERS.names() == ["alphartc", "emulator", "mmsys24"]
    with pytest.raises(UnknownNameError, match=r"unknown log format 'pcap'; known: alphartc, emulator, mmsys24"):
        load_log("pcap", ALPHA)
    assert main(["tarzan", "ingest", "--format", "pcap", str(ALPHA), "--out", str(tmp_path)]) == 2
    assert "known: alphartc, emulator, mmsys24" in capsys.readouterr().err


def test_ingest_cli_round_trip_to_trainable_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "logs"
    assert main(["tarzan", "ingest", "--format", "alphartc", str(ALPHA), "--out", str(out), "--allow-partial"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["files"], printed["steps"], printed["records"], printed["skipped"]) == (1, 3, 8, 2)
    assert printed["files_detail"][0]["missing_features"] == ["rtt", "min_rtt"]
    shard = out / "alphartc-alphartc_small.parquet"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_format"] == "alphartc" and manifest["shards"][0]["shard"] == shard.name
    assert not list(out.glob("*.tmp"))
    rows = read_log(shard)
    assert [r.telemetry for r in rows] == [r.telemetry for r in load_log("alphartc", ALPHA, allow_partial=True).rows]
    # Emulator identity through the same registry: the shard reads back unchanged.
    again = load_log("emulator", shard)
    assert again.rows == rows and again.summary.skipped == {} and again.summary.steps == 3
    trans = build_transitions(rows)
    assert len(trans) == 2
    assert trans.actions[:, 0].tolist() == pytest.approx([bps_to_action(5e5), bps_to_action(8e5)])
    assert trans.rewards.tolist() == pytest.approx([rows[1].reward, rows[2].reward])
    assert tuple(trans.to_torch().states.shape) == (2, 20, 12)


def test_ingest_refuses_without_partial_and_expands_directories(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tarzan", "ingest", "--format", "mmsys24", str(DATA), "--out", str(tmp_path / "a")]) == 1
    assert "--allow-partial" in capsys.readouterr().err
    report = ingest("mmsys24", [DATA], tmp_path / "b", allow_partial=True)
    assert report.totals() == {"files": 1, "steps": 3, "records": 4, "skipped": 1}
    assert [p.name for p in sorted((tmp_path / "b").iterdir())] == ["manifest.json", "mmsys24-mmsys24_small.parquet"]


def test_ingest_names_a_missing_input(tmp_path: Path) -> None:
    with pytest.raises(LogFormatError, match=r"nope.json: no such file or directory"):
        ingest("alphartc", [tmp_path / "nope.json"], tmp_path / "out")


# -- AlphaRtcEstimator -------------------------------------------------------------------------


def _policy() -> Policy:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return Policy("tarzan", GaussianActor().eval())


def _stream(n: int) -> list[dict[str, Any]]:
    """A 1.2 Mbps-ish stream with a queue building, then a loss every 37th packet."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        if i % 37 == 36:
            continue
        send = 7.0 * i
        out.append(_packet(i, send, send + 40 + 0.05 * i + float(rng.uniform(0, 3)) + (i // 50)))
    out.sort(key=lambda p: p["arrival_time_ms"])
    return out


def test_alphartc_estimator_serves_policy_targets_over_the_adapter_window(tmp_path: Path) -> None:
    policy = _policy()
    est = AlphaRtcEstimator(policy, log_records=True)
    seen: list[int] = []
    for stats in _stream(400):
        est.report_states(stats)
        seen.append(est.get_estimated_bandwidth())
    assert est.records is not None
    steps = len(est.targets)
    assert steps >= 50
    # GCC's 300 kbps start until a full 20-step window exists, the policy after.
    assert est.targets[:19] == [300_000] * 19
    assert seen[0] == 300_000
    # The estimator's log ingests back to the same features; its targets are the policy's acts.
    rows = load_log("alphartc", _write_lines(tmp_path / "served.jsonl", est.records), allow_partial=True).rows
    assert len(rows) == steps
    feats = feature_matrix([r.telemetry for r in rows])
    expected = [policy.act(window_at(feats, t)) for t in range(19, steps)]
    assert est.targets[19:] == expected
    assert [int(r.target_bps) for r in rows] == est.targets
    assert len(set(expected)) > 1


def test_alphartc_estimator_rejects_bad_stats() -> None:
    est = AlphaRtcEstimator(_policy())
    est.report_states(_packet(1, 0, 10))
    with pytest.raises(LogFormatError, match=r"<report_states>: row 1 column 'ssrc' is missing"):
        est.report_states({k: v for k, v in _packet(2, 1, 11).items() if k != "ssrc"})
    with pytest.raises(LogFormatError, match=r"row 2 column 'arrival_time_ms' goes backwards"):
        est.report_states(_packet(3, 2, 5))


def _alpha_records() -> list[Any]:
    return [json.loads(x) for x in ALPHA.read_text().splitlines() if x.strip()]


def test_ingest_leaves_no_shard_when_a_file_fails(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    _write_lines(inputs / "a_good.jsonl", _alpha_records())
    bad = _alpha_records()
    next(r for r in bad if "arrival_time_ms" in r)["arrival_time_ms"] = "oops"
    _write_lines(inputs / "b_bad.jsonl", bad)
    with pytest.raises(LogFormatError, match=r"b_bad\.jsonl: row \d+ column 'arrival_time_ms' is 'oops', not a number"):
        ingest("alphartc", [inputs], tmp_path / "new", allow_partial=True)
    assert not (tmp_path / "new").exists()  # made by the failed run, and removed with its shards
    out = tmp_path / "old"
    ingest("alphartc", [inputs / "a_good.jsonl"], out, allow_partial=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(LogFormatError):
        ingest("alphartc", [inputs], out, allow_partial=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no new shard, no hidden staging left


def test_user_logs_of_the_same_name_are_separate_calls(tmp_path: Path) -> None:
    from tenfold.systems.tarzan.config import TrainConfig
    from tenfold.systems.tarzan.telemetry import read_manifest
    from tenfold.systems.tarzan.train import train_from_logs

    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    first = _write_lines(tmp_path / "d1" / "call.jsonl", _alpha_records())
    second = _write_lines(tmp_path / "d2" / "call.jsonl", _alpha_records())
    ingest("alphartc", [first, second], tmp_path / "logs", allow_partial=True)
    shards = read_manifest(tmp_path / "logs").shards
    assert [s.path.name for s in shards] == ["alphartc-call.parquet", "alphartc-call-2.parquet"]
    ids = [{r.call_id for r in read_log(s.path)} for s in shards]
    assert ids == [{f"alphartc:{first.resolve()}"}, {f"alphartc:{second.resolve()}"}]
    rows = [r for s in shards for r in read_log(s.path)]
    assert len(build_transitions(rows)) == 2 + 2  # two calls of 3 steps, not one interleaved call
    train_from_logs(tmp_path / "logs", TrainConfig(algo="bc", steps=2, batch_size=2), tmp_path / "bc.pt")
