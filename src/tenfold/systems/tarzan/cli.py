"""``tenfold tarzan ...``: collect GCC logs, ingest user logs, train offline (or the online-RL baseline),
evaluate, serve, realnet."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tenfold.core.executor import Executor, make_executor
from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import ConfigError

if TYPE_CHECKING:
    from tenfold.systems.tarzan.collect import ChunkRef
    from tenfold.systems.tarzan.config import TrainConfig
    from tenfold.systems.tarzan.train import Progress

__all__: list[str] = []


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError("list", text, "must be comma-separated numbers, e.g. 40,100,160") from None
    if not values:
        raise ConfigError("list", text, "must name at least one number")
    return values


def _refs(args: argparse.Namespace) -> list[ChunkRef]:
    from tenfold.net.trace import split_paths
    from tenfold.systems.tarzan.collect import chunk_refs

    if args.traces in ("split:train", "split:test"):  # the packaged traces' documented split (net.trace.SPLIT)
        paths = split_paths("train" if args.traces == "split:train" else "test")
    else:
        traces = Path(args.traces)
        if not traces.is_dir():
            raise ConfigError("traces", str(traces),
                              "must be a directory of Mahimahi traces, split:train or split:test")
        paths = sorted(p for p in traces.iterdir() if p.is_file() and p.suffix in (".up", ".down", ".trace", ""))
        paths = [p for p in paths if p.name not in ("README",) and not p.name.endswith(".md")]
        if not paths:
            raise ConfigError("traces", str(traces), "must be a directory holding Mahimahi trace files")
    return chunk_refs(paths, _floats(args.levels), _floats(args.rtts), (args.seed,), args.seconds, args.limit)


def _executor(name: str) -> Executor:
    return make_executor(name)


def _cmd_collect(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.collect import collect

    manifest = collect(_refs(args), Path(args.out), _executor(args.executor))
    print(manifest)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tenfold.systems.tarzan.config import TrainConfig
    from tenfold.systems.tarzan.train import train_from_logs
    from tenfold.systems.tarzan.trainstate import StateFile

    cfg = TrainConfig(algo=args.algo, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                      bc_warmup_steps=args.bc_warmup_steps, threads=args.threads, engine=args.engine,
                      cql_alpha=args.cql_alpha)

    def bar(steps: Iterable[int]) -> Iterator[int]:
        # A resumed run starts part-way: the bar counts from the steps already done.
        start = steps.start if isinstance(steps, range) else 0
        return iter(tqdm(steps, total=cfg.steps, initial=start, desc=f"train {cfg.algo}", file=sys.stderr))

    if cfg.algo == "online":
        return _train_online(args, cfg, bar)
    if args.logs is None:
        raise ConfigError("logs", None, f"--algo {cfg.algo} learns from logs: pass --logs DIR (from `collect`)")
    if args.traces is not None:
        raise ConfigError("traces", args.traces, f"--algo {cfg.algo} never calls over traces; only --algo online does")
    state = StateFile(Path(args.state), args.state_every) if args.state else None
    out = train_from_logs(Path(args.logs), cfg, Path(args.out), progress=bar, state=state)
    print(out)
    return 0


def _train_online(args: argparse.Namespace, cfg: TrainConfig, bar: Progress) -> int:
    """``train --algo online``: the checkpoint, plus ``<out>.calls.json`` with every training call beside GCC's."""
    from tenfold.systems.tarzan.online import train_online

    if args.traces is None:
        raise ConfigError("traces", None, "--algo online learns by calling over trace chunks: pass --traces DIR")
    if args.logs is not None:
        raise ConfigError("logs", args.logs, "--algo online learns from its own calls, not from logs")
    if args.state is not None:
        raise ConfigError("state", args.state, "--algo online is not resumable (its replay buffer is not saved)")
    result = train_online(_refs(args), cfg, progress=bar)
    out, report = result.save(Path(args.out))
    print(json.dumps({"checkpoint": str(out), "training_calls": len(result.calls),
                      "share_worse_bitrate": result.share_worse_bitrate,
                      "share_worse_freezes": result.share_worse_freezes, "calls_report": str(report)}, indent=1))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.evaluate import evaluate, summarize

    if args.policy not in ("gcc", "oracle") and not args.checkpoint:
        raise ConfigError("checkpoint", None, f"--policy {args.policy} needs --checkpoint FILE")
    calls = evaluate({args.policy: args.checkpoint}, _refs(args), _executor(args.executor))
    print(json.dumps(summarize(calls)[args.policy], indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.policy import Policy, PolicyServer, serve_stdio

    policy = Policy.load(args.checkpoint)
    if args.stdio:
        serve_stdio(policy, sys.stdin, sys.stdout)
        return 0
    server = PolicyServer(policy, Path(args.socket))
    print(f"tarzan: serving {args.checkpoint} on {args.socket}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.adapters import ingest

    report = ingest(args.format, [Path(p) for p in args.inputs], Path(args.out), allow_partial=args.allow_partial,
                    executor=_executor(args.executor))
    print(json.dumps({"manifest": str(report.manifest), **report.totals(),
                      "files_detail": [s.to_dict() for s in report.summaries]}, indent=1))
    return 0


def _cmd_realnet(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.collect import ChunkRef, load_chunk
    from tenfold.systems.tarzan.realnet import RealnetConfig, run_realnet
    from tenfold.systems.tarzan.session import GccController, RateController

    controller: RateController = GccController()
    if args.checkpoint:
        import torch

        from tenfold.systems.tarzan.evaluate import PolicyController
        from tenfold.systems.tarzan.policy import Policy

        torch.set_num_threads(1)
        controller = PolicyController(Policy.load(args.checkpoint), "tarzan")
    cfg = RealnetConfig(seconds=args.seconds, rtt_ms=args.rtt, seed=args.seed)
    trace = load_chunk(ChunkRef(str(args.trace), args.chunk, args.level, args.rtt, args.seed, args.seconds))
    result = run_realnet(trace, controller, cfg)
    summary = {"trace": str(args.trace), "chunk": args.chunk, "level_mbps": args.level, **result.summary()}
    text = json.dumps(summary, indent=1)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
    print(text)
    return 0


def _trace_args(p: argparse.ArgumentParser, required: bool = True, what: str = "directory of Mahimahi traces") -> None:
    p.add_argument("--traces", required=required,
                   help=what + ", or split:train / split:test: the packaged traces' documented train/held-out split")
    p.add_argument("--levels", default="1.5", help="comma-separated mean rates in Mbps (default 1.5)")
    p.add_argument("--rtts", default="100", help="comma-separated RTTs in ms (default 100)")
    p.add_argument("--seconds", type=float, default=60.0, help="call length (default 60)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N calls")


def _common(p: argparse.ArgumentParser, traces: bool = True) -> None:
    if traces:
        _trace_args(p)
        p.add_argument("--executor", choices=["local", "ray"], default="local")
    p.add_argument("--seed", type=int, default=0)


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    p = sub.add_parser("collect", help="run GCC calls on trace chunks and write Parquet telemetry logs")
    _common(p)
    p.add_argument("--out", required=True, help="output directory for shards and manifest.json")
    p.set_defaults(func=_cmd_collect)
    p = sub.add_parser("train", help="train a controller offline from collected logs")
    _common(p, traces=False)
    p.add_argument("--logs", default=None, help="directory of shards from `collect` (every offline algorithm)")
    p.add_argument("--algo", default="tarzan",
                   choices=["tarzan", "no_cql", "no_qr", "no_prev_action", "bc", "crr", "online"],
                   help="online: the online-RL baseline, which learns by calling over the emulator on --traces")
    _trace_args(p, required=False, what="online only: directory of Mahimahi traces to call over (training chunks)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--bc-warmup-steps", type=int, default=0, metavar="N",
                   help="SAC arms: first steps in which the actor imitates the logged actions "
                        "(the benchmark uses 1,000 quick, 10,000 full)")
    p.add_argument("--cql-alpha", type=float, default=0.01, metavar="A",
                   help="weight of the conservative (CQL) term of tarzan and its ablations (spec: 0.01)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--engine", choices=["torch", "d3rlpy"], default="torch",
                   help="d3rlpy: SAC arms through d3rlpy 2.8.1's CQL (pip install 'tenfold[tarzan-d3rlpy]'; "
                        "no BC warm-up, no --state)")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="resumable training state: written every --state-every steps, resumed from when it exists "
                        "(a larger --steps extends a finished run)")
    p.add_argument("--state-every", type=int, default=1000, metavar="N", help="steps between state writes")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("eval", help="evaluate a controller closed loop on any directory of Mahimahi traces")
    _common(p)
    p.add_argument("--policy", required=True, choices=["gcc", "tarzan", "bc", "crr", "online", "oracle"])
    p.add_argument("--checkpoint", default=None, help="checkpoint of a trained policy")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("serve", help="serve a trained policy over a Unix socket (or --stdio JSON lines)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--socket", default="/tmp/tarzan.sock")
    p.add_argument("--stdio", action="store_true")
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser("ingest", help="convert user telemetry logs (AlphaRTC, MMSys'24, emulator) to Parquet shards")
    p.add_argument("--format", required=True, help="log format: alphartc, mmsys24 or emulator")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="log files, or directories of them")
    p.add_argument("--out", required=True, help="output directory for shards and manifest.json")
    p.add_argument("--allow-partial", action="store_true",
                   help="fill features the format lacks with 0 (recorded in the manifest) instead of refusing")
    p.add_argument("--executor", choices=["local", "ray"], default="local")
    p.set_defaults(func=_cmd_ingest)
    p = sub.add_parser("realnet", help="(root) a VP8 call through the trace relay between network namespaces")
    p.add_argument("--trace", required=True, help="Mahimahi trace file (use a held-out one)")
    p.add_argument("--chunk", type=int, default=0, help="1-minute chunk index (default 0)")
    p.add_argument("--level", type=float, default=1.5, help="rescale the chunk to this mean in Mbps (default 1.5)")
    p.add_argument("--rtt", type=float, default=100.0, help="path RTT in ms (default 100)")
    p.add_argument("--seconds", type=float, default=60.0, help="call length (default 60)")
    p.add_argument("--checkpoint", default=None, help="trained policy; GCC when absent")
    p.add_argument("--out", default=None, help="also write the JSON summary here")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_realnet)


COMMANDS.add("tarzan", CommandGroup("tarzan", "video rate control learned offline from GCC telemetry logs",
                                    _configure))
