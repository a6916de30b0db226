"""Benchmark ``marconi/hit_rate``: Marconi against vLLM+ and SGLang+ (spec §7, issue 6).

Arms ``no_cache``, ``vllm_plus``, ``sglang_plus`` and ``marconi`` each report
``token_hit_rate``, ``flops_saved``, ``ttft_p50_ms`` and ``ttft_p95_ms`` on the synthetic
chat trace at the headline capacity (3 GB of the 7B hybrid), plus the same metrics keyed
``<trace>_<capacity>_<metric>`` for every grid point (chat and ShareGPT at 1/3/5 GB). TTFT
comes from a prefill profile measured on the tiny hybrid on this CPU. The ``engine_*``
arms replay chat sessions live through :class:`~.engine.HybridEngine` on the tiny hybrid
(random-init), with and without the cache, and report measured prefill seconds and the
largest logit difference against a full prefill.

Headline: ``token_hit_rate_ratio_vs_vllm_plus`` = Marconi's token hit rate over vLLM+'s at
chat 3 GB (denominator floored at 0.1%).
"""

from __future__ import annotations

from typing import Any

from tenfold.core.bench import BenchContext, BenchOutcome, Headline, benchmark
from tenfold.systems.marconi.config import HitRateBenchConfig, parse_capacity

__all__ = ["hit_rate", "replay_point"]

ARMS = {"no_cache": None, "vllm_plus": "vllm+", "sglang_plus": "sglang+", "marconi": "marconi"}
METRICS = ("token_hit_rate", "flops_saved", "ttft_p50_ms", "ttft_p95_ms")


def _trace(source: str, sessions: int, sps: float, seed: int) -> Any:
    from tenfold.systems.marconi.traces import GENERATORS

    if source == "sharegpt":
        return GENERATORS.get(source)(sessions, sps=sps)
    return GENERATORS.get(source)(sessions, sps=sps, seed=seed)


def replay_point(item: dict[str, Any]) -> dict[str, float | None]:
    """One grid point (trace × capacity × policy); module level so executors can run it."""
    from tenfold.systems.marconi.cache import make_cache
    from tenfold.systems.marconi.costmodel import PRESETS
    from tenfold.systems.marconi.simulator import replay
    from tenfold.systems.marconi.ttft import LinearTTFT

    trace = _trace(item["source"], item["sessions"], item["sps"], item["seed"])
    spec = PRESETS.get(item["preset"])
    cache = None if item["policy"] is None else make_cache(item["policy"], spec, item["capacity"])
    stats = replay(trace, cache, LinearTTFT(*item["ttft"]))
    out = stats.metrics()
    if cache is None:
        out["flops_saved"] = 0.0
    return out


def _engine_replay(cfg: HitRateBenchConfig, capacity: int) -> dict[str, dict[str, float | None]]:
    import torch

    from tenfold.systems.marconi.engine import HybridEngine
    from tenfold.systems.marconi.tiny_hybrid import TinyHybridLM
    from tenfold.systems.marconi.traces import chat_trace

    torch.set_num_threads(1)
    # NOTE: short sessions (6 turns) keep the live replay to about a minute on 2 cores.
    trace = chat_trace(cfg.engine_sessions, sps=cfg.sps, seed=cfg.seed, turns=(6, 6), name="chat-live")
    model = TinyHybridLM.create(seed=cfg.seed)
    out: dict[str, dict[str, float | None]] = {}
    for arm, policy in (("engine_no_cache", None), ("engine_marconi", "marconi")):
        engine = HybridEngine(model, policy or "marconi", capacity)
        prefill_s = 0.0
        reused = total = 0
        worst = 0.0
        for i, req in enumerate(trace.requests):
            if policy is None:
                engine = HybridEngine(model, "marconi", capacity)  # a fresh, empty cache: no reuse
            res = engine.serve(req.input_tokens, req.output_tokens)
            prefill_s += res.prefill_s
            reused += res.reused
            total += res.input_len
            if policy is not None and i % 5 == 0:  # spot-check exactness against a full prefill
                with torch.inference_mode():
                    full, _ = model.prefill(torch.tensor(req.input_tokens), model.empty_state(), all_logits=False)
                worst = max(worst, float((full[-1] - res.first_logits).abs().max()))
        out[arm] = {"prefill_s": prefill_s, "token_hit_rate": reused / total if total else 0.0,
                    "requests": float(len(trace)), "max_logit_diff": worst if policy else None}
    return out


@benchmark("marconi", "hit_rate", "Token hit rate, FLOPs saved and TTFT of Marconi vs vLLM+ and SGLang+")
def hit_rate(ctx: BenchContext) -> BenchOutcome:
    from tenfold.systems.marconi.costmodel import PRESETS
    from tenfold.systems.marconi.traces import sharegpt_trace
    from tenfold.systems.marconi.ttft import LinearTTFT, profile_tiny_hybrid

    cfg = HitRateBenchConfig(seed=ctx.seed)
    # (source, sessions, sps, capacities): the quick grid, or the spec's full grid.
    grid: list[tuple[str, int, float, tuple[str, ...]]] = [("chat", cfg.chat_sessions, cfg.sps, cfg.capacities)]
    if cfg.sharegpt_sessions:
        grid.append(("sharegpt", cfg.sharegpt_sessions, cfg.sps, cfg.capacities))
    if not ctx.quick:
        cfg = cfg.replace(capacities=("1GB", "2GB", "3GB", "4GB", "5GB"))
        grid = [("chat", cfg.chat_sessions, cfg.sps, cfg.capacities),
                ("sysprompt", cfg.chat_sessions, cfg.sps, cfg.capacities),
                ("agent", 20, 0.05, ("40GB", "60GB", "80GB", "100GB"))]
        if cfg.sharegpt_sessions:
            grid += [("sharegpt", cfg.sharegpt_sessions, sps, ("1GB", "2GB", "3GB", "4GB", "5GB", "10GB"))
                     for sps in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)]
    lengths, ms = profile_tiny_hybrid(cfg.profile_lengths, repeats=3, seed=cfg.seed)
    ttft = LinearTTFT.fit(lengths, ms)
    if cfg.sharegpt_sessions:
        sharegpt_trace(cfg.sharegpt_sessions, sps=cfg.sps)  # tokenize once; workers read the cache
    items: list[dict[str, Any]] = []
    keys: list[tuple[str, str, str]] = []
    caps_of: dict[str, tuple[str, ...]] = {}
    several = {src for src in (g[0] for g in grid) if sum(g[0] == src for g in grid) > 1}
    for source, sessions, sps, capacities in grid:
        # A source swept over several arrival rates is keyed by rate, except at the default.
        name = f"{source}_sps{sps:g}" if source in several and sps != cfg.sps else source
        caps_of[name] = capacities
        for cap in capacities:
            for arm, policy in ARMS.items():
                if policy is None and cap != capacities[0]:
                    continue  # no-cache does not depend on the capacity
                items.append({"source": source, "sessions": sessions, "sps": sps, "seed": cfg.seed,
                              "policy": policy, "capacity": parse_capacity(cap), "preset": cfg.preset,
                              "ttft": (ttft.intercept_ms, ttft.slope_ms, ttft.floor_ms)})
                keys.append((name, cap, arm))
    results = ctx.executor.map(replay_point, items)
    by_key = dict(zip(keys, results, strict=True))
    arms: dict[str, dict[str, float | None]] = {arm: {} for arm in ARMS}
    for (source, cap, arm), res in by_key.items():
        for c in caps_of[source] if arm == "no_cache" else (cap,):
            for metric in (*METRICS, "request_hit_rate", "alpha"):
                if metric == "alpha" and arm != "marconi":
                    continue
                arms[arm][f"{source}_{c}_{metric}"] = res[metric]
                if source == "chat" and c == cfg.headline_capacity:
                    arms[arm][metric] = res[metric]
    if cfg.engine_sessions:
        arms.update(_engine_replay(cfg, parse_capacity(cfg.engine_capacity)))
    ours = arms["marconi"]["token_hit_rate"] or 0.0
    base = max(arms["vllm_plus"]["token_hit_rate"] or 0.0, 0.001)
    for name in caps_of:
        key = f"{name}_{cfg.headline_capacity}_token_hit_rate"
        if key in arms["marconi"]:
            arms["marconi"][f"{name}_{cfg.headline_capacity}_ratio_vs_vllm_plus"] = (
                (arms["marconi"][key] or 0.0) / max(arms["vllm_plus"][key] or 0.0, 0.001))
    series: dict[str, dict[str, dict[str, list[float]]]] = {}
    for source, _, sps, capacities in grid:
        if source in several and sps != cfg.sps:
            continue
        panel = f"{source}: token hit rate vs capacity (GB)"
        series[panel] = {
            arm: {"x": [parse_capacity(c) / 1e9 for c in capacities],
                  "y": [float(arms[arm][f"{source}_{c}_token_hit_rate"] or 0.0) for c in capacities]}
            for arm in ("vllm_plus", "sglang_plus", "marconi")}
    config = {**cfg.to_dict(), "spec": PRESETS.get(cfg.preset).to_dict(),
              "ttft_profile": {"model": "tiny hybrid, random-init (CPU, 1 thread)", "tokens": lengths, "ms": ms,
                               "fit": "LinearTTFT", "intercept_ms": ttft.intercept_ms, "slope_ms": ttft.slope_ms},
              "sharegpt_tokenizer": "SmolLM2-135M-Instruct (GGUF), message text without chat template"}
    return BenchOutcome(config=config, arms=arms,
                        headline=Headline("token_hit_rate_ratio_vs_vllm_plus", "marconi", "vllm_plus",
                                          ours / base, higher_is_better=True),
                        series=series,
                        notes="Hit rates are simulated with the nvidia-hybrid-7b cost model; TTFT uses the tiny "
                              "hybrid's measured CPU prefill profile; engine_* arms run the tiny hybrid "
                              "(random-init) live on CPU.")
