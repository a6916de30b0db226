"""The benchmark's grid points: Marconi vs the baselines on the quick chat trace."""

from __future__ import annotations

from tenfold.core.registry import BENCHMARKS
from tenfold.systems.marconi.bench import replay_point
from tenfold.systems.marconi.cache import make_cache
from tenfold.systems.marconi.costmodel import PRESETS
from tenfold.systems.marconi.simulator import replay
from tenfold.systems.marconi.traces import chat_trace


def _point(policy: str | None) -> dict[str, float | None]:
    return replay_point({"source": "chat", "sessions": 100, "sps": 1.0, "seed": 0, "policy": policy,
                         "capacity": 3 * 10**9, "preset": "nvidia-hybrid-7b", "ttft": (10.0, 0.5, 10.0)})


def test_benchmark_is_registered() -> None:
    assert "marconi/hit_rate" in BENCHMARKS


def test_quick_chat_at_3gb_marconi_beats_both_baselines() -> None:
    vllm, sglang, marconi, none = _point("vllm+"), _point("sglang+"), _point("marconi"), _point(None)
    assert (none["token_hit_rate"], none["flops_saved"]) == (0.0, 0.0)
    m, v, s = marconi["token_hit_rate"], vllm["token_hit_rate"], sglang["token_hit_rate"]
    assert m is not None and v is not None and s is not None
    assert m >= 5 * max(v, 0.001) and m >= s
    assert marconi["ttft_p95_ms"] is not None and none["ttft_p95_ms"] is not None
    assert marconi["ttft_p95_ms"] <= none["ttft_p95_ms"]


def test_artifact_compat_runs_and_keeps_capacity() -> None:
    spec = PRESETS.get("nvidia-hybrid-7b")
    trace = chat_trace(20, seed=1)
    for policy in ("marconi", "sglang+", "vllm+"):
        cache = make_cache(policy, spec, 10**9, artifact_compat=True)
        stats = replay(trace, cache)
        assert cache.used_bytes <= cache.capacity_bytes
        assert all(n.lock_ref == 0 for n in cache.tree.preorder())
        assert 0.0 <= stats.token_hit_rate <= 1.0


def _fake_point(item: dict[str, object]) -> dict[str, float | None]:
    policy = item["policy"]
    rate = {None: 0.0, "vllm+": 0.01, "sglang+": 0.02, "marconi": 0.05}[policy]  # type: ignore[index]
    return {"token_hit_rate": rate, "request_hit_rate": rate, "flops_saved": rate * 1e12, "ttft_p50_ms": 1.0,
            "ttft_p95_ms": 2.0, "alpha": 0.5 if policy == "marconi" else None}


def test_benchmark_aggregation_quick_and_full(tmp_path: object, monkeypatch: object) -> None:
    """The benchmark's bookkeeping (arms, keys, headline, series, result schema) with the
    replays, the profile, the tokenizer and the live engine replaced by fakes."""
    from pathlib import Path

    import pytest

    from tenfold.core.bench import BenchContext, run_benchmark
    from tenfold.core.executor import LocalExecutor
    from tenfold.core.results import read_result
    from tenfold.systems.marconi import bench, traces, ttft

    assert isinstance(monkeypatch, pytest.MonkeyPatch) and isinstance(tmp_path, Path)
    monkeypatch.setattr(bench, "replay_point", _fake_point)
    monkeypatch.setattr(ttft, "profile_tiny_hybrid", lambda *a, **k: ([32, 64], [1.0, 2.0]))
    monkeypatch.setattr(traces, "sharegpt_trace", lambda *a, **k: None)
    monkeypatch.setattr(bench, "_engine_replay", lambda cfg, cap: {"engine_marconi": {"prefill_s": 1.0}})
    for quick in (True, False):
        ctx = BenchContext(quick=quick, seed=0, executor=LocalExecutor(workers=1), out_dir=tmp_path / str(quick),
                           show_progress=False)
        doc = read_result(run_benchmark(BENCHMARKS.get("marconi/hit_rate"), ctx))
        arms = doc["arms"]
        assert set(arms) == {"no_cache", "vllm_plus", "sglang_plus", "marconi", "engine_marconi"}
        for arm in ("vllm_plus", "sglang_plus", "marconi"):
            assert {"token_hit_rate", "flops_saved", "ttft_p50_ms", "ttft_p95_ms"} <= set(arms[arm])
        assert arms["no_cache"]["chat_3GB_token_hit_rate"] == 0.0
        assert doc["headline"] == {"metric": "token_hit_rate_ratio_vs_vllm_plus", "ours": "marconi",
                                   "baseline": "vllm_plus", "value": 5.0, "higher_is_better": True}
        assert "chat: token hit rate vs capacity (GB)" in doc["series"]
    assert "sharegpt_sps0.25_10GB_token_hit_rate" in arms["marconi"] and "agent_40GB_alpha" in arms["marconi"]
