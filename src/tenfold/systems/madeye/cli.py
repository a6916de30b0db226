"""``tenfold madeye ...``: sim, bench, run, train, grid (spec §3).

- ``sim --workload W1 --seed 0 [--steps 200] [--n-send 2] [--k-explore 10] [--policy P ...]``:
  one simulated stream, every named policy, accuracies as JSON.
- ``bench [--quick] [--out DIR] [--config FILE]``: the ``madeye/accuracy`` benchmark through
  the core runner (the same as ``tenfold bench madeye``); ``--config`` runs another
  :class:`AccuracyBenchConfig` (seeds, workloads, stream length, N and K values).
- ``run --source FILE|onvif://user:pass@host --backend yolo-person|hog|haar|torchvision:PATH
  --query person:count``: MadEye on a real 360-degree video (2:1), any wide video
  (``--virtual``) or an ONVIF camera: bootstrap, distil, then steer.
- ``train``: train (or load) the project backends.
- ``grid [--anchor p0t0z1]``: the grid and the region around an anchor.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import ConfigError

__all__ = ["POLICY_NAMES", "parse_orientation"]

POLICY_NAMES = ("madeye", "madeye_oracle_rank", "best_fixed", "best_dynamic", "panoptes", "tracking", "mab")


def _print(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def parse_orientation(text: str) -> Any:
    """``p30t-15z2`` -> Orientation(30, -15, 2) (OrientationError if off the grid)."""
    from tenfold.systems.madeye.orientation import Orientation

    m = re.fullmatch(r"p(-?\d+)t(-?\d+)z(\d+)", text.strip())
    if m is None:
        raise ConfigError("orientation", text, "must look like p30t-15z2")
    return Orientation(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _policy(name: str, n: int, k: int, seed: int) -> Any:
    from tenfold.systems.madeye.baselines import (
        BestDynamic,
        BestFixed,
        EpsilonGreedyMAB,
        MadEyePolicy,
        Panoptes,
        PTZTracking,
    )
    from tenfold.systems.madeye.config import MadEyeConfig

    cfg = MadEyeConfig(k_explore=k, n_send=n, seed=seed)
    table: dict[str, Any] = {
        "madeye": lambda: MadEyePolicy(cfg),
        "madeye_oracle_rank": lambda: MadEyePolicy(cfg, oracle_rank=True, name="madeye_oracle_rank"),
        "best_fixed": lambda: BestFixed(n),
        "best_dynamic": lambda: BestDynamic(n),
        "panoptes": Panoptes,
        "tracking": PTZTracking,
        "mab": lambda: EpsilonGreedyMAB(n, seed=seed),
    }
    if name not in table:
        from tenfold.errors import UnknownNameError

        raise UnknownNameError("madeye policy", name, sorted(table))
    return table[name]()


def _cmd_sim(args: argparse.Namespace) -> int:
    import torch

    from tenfold.systems.madeye.config import MadEyeConfig, SimConfig
    from tenfold.systems.madeye.evaluate import prepare
    from tenfold.systems.madeye.sources import SimPanorama
    from tenfold.systems.madeye.workload import WORKLOADS

    torch.set_num_threads(1)
    MadEyeConfig(k_explore=args.k_explore, n_send=args.n_send)  # validate before any work
    policies = [_policy(p, args.n_send, args.k_explore, args.seed) for p in args.policy.split(",")]
    sim = SimConfig(eval_steps=args.steps)
    workload = WORKLOADS.get(args.workload)
    scenario = prepare(
        SimPanorama(args.seed),
        workload,
        sim=sim,
        config=MadEyeConfig(k_explore=args.k_explore, n_send=args.n_send, seed=args.seed),
        progress=lambda msg: print(f"madeye: {msg}", file=sys.stderr),
    )
    rows = [scenario.run(p).to_dict() for p in policies]
    _print(
        {
            "workload": workload.to_dict(),
            "seed": args.seed,
            "steps": args.steps,
            "anchor": str(scenario.episode.anchor),
            "region_size": len(scenario.episode.region),
            "results": rows,
        }
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import tenfold.systems.madeye.bench  # noqa: F401 - registers madeye/accuracy
    from tenfold.core.bench import BenchContext, run_benchmark
    from tenfold.core.executor import make_executor
    from tenfold.core.registry import BENCHMARKS

    bench = BENCHMARKS.get("madeye/accuracy")
    if args.config is not None:
        from dataclasses import replace

        from tenfold.core.config import load_config

        from .bench import run_accuracy
        from .config import AccuracyBenchConfig

        if args.quick:
            raise ConfigError("--quick", True, "--config names the whole run; leave out --quick")
        cfg = load_config(AccuracyBenchConfig, args.config)
        bench = replace(bench, fn=lambda ctx: run_accuracy(cfg, ctx))
    executor = make_executor(args.executor)
    try:
        ctx = BenchContext(quick=args.quick, seed=args.seed, executor=executor, out_dir=Path(args.out))
        print(run_benchmark(bench, ctx))
    finally:
        executor.close()
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import time

    from tenfold.systems.madeye.backends import PROJECT_BACKENDS, SmallDetectorBackend

    rows = []
    for name in args.backends.split(",") if args.backends else PROJECT_BACKENDS.names():
        start = time.perf_counter()
        backend = SmallDetectorBackend.trained(name)
        rows.append(
            {
                "backend": name,
                "stands_for": backend.stands_for,
                "key": backend.key,
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
    _print(rows)
    return 0


def _cmd_grid(args: argparse.Namespace) -> int:
    from tenfold.systems.madeye.orientation import OrientationGrid

    grid = OrientationGrid.default()
    anchor = parse_orientation(args.anchor)
    region = grid.region(anchor, args.half_width)
    _print(
        {
            "grid": len(grid),
            "anchor": str(anchor),
            "half_width": region.half_width,
            "region": len(region),
            "orientations": [str(o) for o in region],
        }
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import torch

    from tenfold.systems.madeye.backends import load_backend
    from tenfold.systems.madeye.config import MadEyeConfig
    from tenfold.systems.madeye.live import run_live
    from tenfold.systems.madeye.sources import Equirect360Video, OnvifPTZ, VirtualPTZ
    from tenfold.systems.madeye.workload import Workload, parse_query

    torch.set_num_threads(1)
    backend = load_backend(args.backend)
    queries = tuple(parse_query(q, default_model=backend.name) for q in args.query or ["person:count"])
    workload = Workload("cli", queries)
    workload.check_models([backend.name])
    source: Any
    if args.source.startswith("onvif://"):
        source = OnvifPTZ(args.source)
    elif args.virtual:
        source = VirtualPTZ(args.source, hfov=args.hfov)
    else:
        source = Equirect360Video(args.source)
    cfg = MadEyeConfig(k_explore=args.k_explore, n_send=args.n_send)
    report = run_live(
        source,
        {backend.name: backend},
        workload,
        cfg,
        steps=args.steps,
        bootstrap_steps=args.bootstrap_steps,
        anchor=parse_orientation(args.anchor),
        half_width=args.half_width,
        step_frames=args.step_frames,
    )
    _print(report)
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser("sim", help="simulate one stream and workload; print each policy's accuracy")
    s.add_argument("--workload", default="W1", help="W1, W2 or W3 (default: W1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--steps", type=int, default=200, help="evaluated steps (default: 200)")
    s.add_argument("--n-send", type=int, default=2)
    s.add_argument("--k-explore", type=int, default=10)
    s.add_argument(
        "--policy", default="madeye,best_fixed,best_dynamic", help="comma-separated: " + ", ".join(POLICY_NAMES)
    )
    s.set_defaults(func=_cmd_sim)

    b = sub.add_parser("bench", help="run the madeye/accuracy benchmark (as `tenfold bench madeye`)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--out", default="results")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--executor", default="local", choices=["local", "ray"])
    b.add_argument("--config", help="AccuracyBenchConfig as TOML/JSON (seeds, workloads, eval_steps, n_values, "
                   "k_explore, k_sweep, headline_n); without it the quick or the full grid")
    b.set_defaults(func=_cmd_bench)

    r = sub.add_parser("run", help="MadEye on a 360-degree video, a wide video (--virtual) or an ONVIF camera")
    r.add_argument("--source", required=True, help="FILE (2:1 equirectangular) or onvif://user:pass@host")
    r.add_argument("--virtual", action="store_true", help="digital PTZ crops of an ordinary wide video")
    r.add_argument("--hfov", type=float, default=180.0, help="--virtual: degrees the frame spans (default 180)")
    r.add_argument("--backend", default="hog", help="yolo-person, hog, haar, torchvision:PATH or small-192")
    r.add_argument("--query", action="append", default=None, help="OBJECT:TASK, e.g. person:count (repeatable)")
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--bootstrap-steps", type=int, default=2)
    r.add_argument("--step-frames", type=int, default=6)
    r.add_argument("--anchor", default="p0t0z1")
    r.add_argument("--half-width", type=int, default=60)
    r.add_argument("--n-send", type=int, default=1)
    r.add_argument("--k-explore", type=int, default=5)
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train (or load) the project backends")
    t.add_argument("--backends", default=None, help="comma-separated (default: all)")
    t.set_defaults(func=_cmd_train)

    g = sub.add_parser("grid", help="print the grid size and the region around an anchor")
    g.add_argument("--anchor", default="p0t0z1")
    g.add_argument("--half-width", type=int, default=60)
    g.set_defaults(func=_cmd_grid)


COMMANDS.add("madeye", CommandGroup("madeye", "MadEye: adaptive PTZ orientation for live video analytics", _configure))
