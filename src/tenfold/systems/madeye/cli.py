"""``tenfold madeye ...``: sim, bench, run, train, grid (spec §3).

- ``sim --workload W1 --seed 0 [--steps 200] [--n-send 2] [--k-explore 10] [--policy P ...]``:
  one simulated stream, every named policy, accuracies as JSON.
- ``bench [--quick] [--out DIR] [--seed S | --config FILE]``: the ``madeye/accuracy``
  benchmark through the core runner (the same as ``tenfold bench madeye``); ``--seed``
  offsets the grid's world seeds, ``--config`` runs another :class:`AccuracyBenchConfig`
  (seeds, workloads, stream length, N and K values).
- ``run --source FILE|onvif://user:pass@host --backend yolo-person|hog|haar|torchvision:PATH
  --query person:count [--k-explore 10] [--n-send 2]``: MadEye on a real 360-degree video
  (2:1), any wide video (``--virtual``) or an ONVIF camera: bootstrap, distil, then steer.
- ``train [--backends a,b]``: train (or load) the project backends.
- ``grid [--anchor p0t0z1] [--half-width 60]``: the grid and the region ``run`` explores.

Every verb checks all of its arguments before any expensive work (training or loading a
backend, the bootstrap); a bad one exits 2 naming it.
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

    from tenfold.systems.madeye.config import MadEyeConfig, SimConfig, check_k_fits
    from tenfold.systems.madeye.evaluate import prepare
    from tenfold.systems.madeye.sources import SimPanorama
    from tenfold.systems.madeye.workload import WORKLOADS

    # Validate every argument before any work (rendering the world, training backends).
    config = MadEyeConfig(k_explore=args.k_explore, n_send=args.n_send, seed=args.seed)
    policies = [_policy(p, args.n_send, args.k_explore, args.seed) for p in args.policy.split(",")]
    sim = SimConfig(eval_steps=args.steps)
    check_k_fits(config.k_explore, sim.region_cells)
    workload = WORKLOADS.get(args.workload)
    torch.set_num_threads(1)
    scenario = prepare(
        SimPanorama(args.seed),
        workload,
        sim=sim,
        config=config,
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
        if args.seed is not None:
            raise ConfigError("--seed", args.seed, "--config names the seeds; leave out --seed")
        cfg = load_config(AccuracyBenchConfig, args.config)
        bench = replace(bench, fn=lambda ctx: run_accuracy(cfg, ctx))
    executor = make_executor(args.executor)
    try:
        ctx = BenchContext(quick=args.quick, seed=args.seed or 0, executor=executor, out_dir=Path(args.out))
        print(run_benchmark(bench, ctx))
    finally:
        executor.close()
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import time

    from tenfold.systems.madeye.backends import PROJECT_BACKENDS, SmallDetectorBackend

    if args.backends is None:
        names = list(PROJECT_BACKENDS.names())
    else:
        names = [n.strip() for n in args.backends.split(",")]
        if not all(names):
            raise ConfigError("backends", args.backends, "must be comma-separated backend names; leave out "
                              "--backends to train all")
        for name in names:  # every name is checked before anything trains
            PROJECT_BACKENDS.get(name)
    rows = []
    for name in names:
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
    from tenfold.systems.madeye.live import live_region
    from tenfold.systems.madeye.orientation import OrientationGrid

    grid = OrientationGrid.default()
    anchor = parse_orientation(args.anchor)
    region = live_region(anchor, args.half_width)  # the region `run` explores
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

    from tenfold.systems.madeye.backends import backend_name, load_backend
    from tenfold.systems.madeye.config import MadEyeConfig, check_k_fits
    from tenfold.systems.madeye.live import check_schedule, live_region, run_live
    from tenfold.systems.madeye.sources import Equirect360Video, OnvifPTZ, VirtualPTZ
    from tenfold.systems.madeye.workload import Workload, parse_query

    # Every cheap check comes first: loading a backend and the bootstrap take minutes.
    cfg = MadEyeConfig(k_explore=args.k_explore, n_send=args.n_send)
    region = live_region(parse_orientation(args.anchor), args.half_width)
    check_k_fits(cfg.k_explore, len(region.cells))
    name = backend_name(args.backend)
    queries = []
    for text in args.query or ["person:count"]:
        q = parse_query(text, default_model=name)
        # The --backend spelling names the backend in a query too (haar -> haar-fullbody).
        queries.append(q.replace(model=name) if q.model == args.backend else q)
    workload = Workload("cli", tuple(queries))
    workload.check_models([name])
    source: Any
    if args.source.startswith("onvif://"):
        source = OnvifPTZ(args.source)
    elif not Path(args.source).is_file():
        raise ConfigError("source", args.source, "no such file")
    elif args.virtual:
        source = VirtualPTZ(args.source, hfov=args.hfov)
        source.check_region(region)
    else:
        source = Equirect360Video(args.source)
    check_schedule(source.n_frames, steps=args.steps, bootstrap_steps=args.bootstrap_steps,
                   step_frames=args.step_frames)
    torch.set_num_threads(1)
    backend = load_backend(args.backend)
    report = run_live(
        source,
        {backend.name: backend},
        workload,
        cfg,
        steps=args.steps,
        bootstrap_steps=args.bootstrap_steps,
        anchor=region.anchor,
        half_width=args.half_width,
        step_frames=args.step_frames,
    )
    _print(report)
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser("sim", help="simulate one stream and workload; print each policy's accuracy")
    s.add_argument("--workload", default="W1", help="W1, W2 or W3 (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="world and policy seed, >= 0 (default: %(default)s)")
    s.add_argument("--steps", type=int, default=200, help="evaluated steps (default: %(default)s)")
    s.add_argument("--n-send", type=int, default=2, help="N: frames sent per step (default: %(default)s)")
    s.add_argument("--k-explore", type=int, default=10, help="K: most orientations visited per step, at most "
                   "the region's 25 pan/tilt cells (default: %(default)s)")
    s.add_argument(
        "--policy", default="madeye,best_fixed,best_dynamic",
        help="comma-separated: " + ", ".join(POLICY_NAMES) + " (default: %(default)s)",
    )
    s.set_defaults(func=_cmd_sim)

    b = sub.add_parser("bench", help="run the madeye/accuracy benchmark (as `tenfold bench madeye`)")
    b.add_argument("--quick", action="store_true", help="the quick grid instead of the full one (default: full)")
    b.add_argument("--out", default="results", help="results directory (default: %(default)s)")
    b.add_argument("--seed", type=int, default=None, help="added to the grid's world seeds, e.g. 5 runs the quick "
                   "grid on seeds 5 and 6; not with --config, whose seeds are final (default: 0)")
    b.add_argument("--executor", default="local", choices=["local", "ray"], help="(default: %(default)s)")
    b.add_argument("--config", help="AccuracyBenchConfig as TOML/JSON (seeds, workloads, eval_steps, n_values, "
                   "k_explore, k_sweep, headline_n); without it the quick or the full grid")
    b.set_defaults(func=_cmd_bench)

    r = sub.add_parser("run", help="MadEye on a 360-degree video, a wide video (--virtual) or an ONVIF camera")
    r.add_argument("--source", required=True, help="FILE (2:1 equirectangular) or onvif://user:pass@host[:port]")
    r.add_argument("--virtual", action="store_true", help="digital PTZ crops of an ordinary wide video")
    r.add_argument("--hfov", type=float, default=180.0,
                   help="--virtual: degrees of pan the frame spans (default: %(default)s)")
    r.add_argument("--backend", default="hog", help="yolo-person, hog, haar, torchvision:PATH or a project "
                   "backend such as small-192 (default: %(default)s)")
    r.add_argument("--query", action="append", default=None,
                   help="OBJECT:TASK on --backend, or MODEL:OBJECT:TASK with MODEL as given to --backend, e.g. "
                   "person:count or torchvision:frcnn.pt:car:detect (repeatable; default: person:count)")
    r.add_argument("--steps", type=int, default=20, help="steered steps (default: %(default)s)")
    r.add_argument("--bootstrap-steps", type=int, default=2,
                   help="steps of every backend on every region view, to distil from (default: %(default)s)")
    r.add_argument("--step-frames", type=int, default=6, help="frames per step (default: %(default)s)")
    r.add_argument("--anchor", default="p0t0z1", help="the region's centre (default: %(default)s)")
    r.add_argument("--half-width", type=int, default=60,
                   help="region: degrees of pan either side of the anchor, exactly (default: %(default)s)")
    r.add_argument("--n-send", type=int, default=2, help="N: frames sent per step (default: %(default)s)")
    r.add_argument("--k-explore", type=int, default=10, help="K: most orientations visited per step, at most "
                   "the region's pan/tilt cells (default: %(default)s)")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train (or load) the project backends")
    t.add_argument("--backends", default=None,
                   help="comma-separated project backends, e.g. small-192,small-128 (default: all of them)")
    t.set_defaults(func=_cmd_train)

    g = sub.add_parser("grid", help="print the grid size and the region around an anchor (as `run` explores it)")
    g.add_argument("--anchor", default="p0t0z1", help="the region's centre (default: %(default)s)")
    g.add_argument("--half-width", type=int, default=60,
                   help="degrees of pan either side of the anchor, exactly as `run` uses them; the simulation "
                   "widens a region of fewer than 60 orientations to +-90, then +-120 (default: %(default)s)")
    g.set_defaults(func=_cmd_grid)


COMMANDS.add("madeye", CommandGroup("madeye", "MadEye: adaptive PTZ orientation for live video analytics", _configure))
