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
from tenfold.systems.tarzan.config import ALGOS

if TYPE_CHECKING:
    from tenfold.systems.tarzan.collect import ChunkPlan, ChunkRef
    from tenfold.systems.tarzan.config import TrainConfig
    from tenfold.systems.tarzan.train import Progress

__all__: list[str] = []

TRAINED = ALGOS
"""Algorithms ``train --algo`` trains, whose checkpoints ``eval --policy`` can name."""
BUILT_IN = ("gcc", "oracle")
"""Policies ``eval`` runs without a checkpoint."""
_TRACE_RULE = ("every regular file in DIR is read as a Mahimahi trace, whatever its suffix, except hidden files, "
               "*.md, README*, LICENSE*, LICENCE*, COPYING*, NOTICE* and manifest.json (skipped files are listed "
               "on stderr)")


def _note(text: str) -> None:
    print(f"tarzan: {text}", file=sys.stderr)


def _floats(text: str, field: str = "list") -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(field, text, "must be comma-separated numbers, e.g. 40,100,160") from None
    if not values:
        raise ConfigError(field, text, "must name at least one number")
    return values


def _plan(args: argparse.Namespace) -> ChunkPlan:
    from tenfold.net.trace import split_paths
    from tenfold.systems.tarzan.collect import check_call_grid, plan_chunks, trace_files

    levels, rtts = _floats(args.levels, "levels"), _floats(args.rtts, "rtts")
    check_call_grid(levels, rtts, (args.seed,), args.seconds, args.limit)  # before any trace is read
    if args.traces in ("split:train", "split:test"):  # the packaged traces' documented split (net.trace.SPLIT)
        paths = split_paths("train" if args.traces == "split:train" else "test")
    else:
        traces = Path(args.traces)
        if not traces.is_dir():
            raise ConfigError("traces", str(traces),
                              "must be a directory of Mahimahi traces, split:train or split:test")
        paths, skipped = trace_files(traces)
        if not paths:
            raise ConfigError("traces", str(traces), "must be a directory holding Mahimahi trace files; "
                                                     f"skipped as not traces: {skipped or 'nothing (it is empty)'}")
        if skipped:
            _note(f"{traces}: skipped {len(skipped)} file(s) that are not traces: {', '.join(skipped)}")
    plan = plan_chunks(paths, levels, rtts, (args.seed,), args.seconds, args.limit)
    if plan.short_files:
        _note(f"no full 60 s chunk (skipped): {', '.join(plan.short_files)}")
    if plan.empty_chunks:
        _note(f"skipped {plan.empty_chunks} chunk(s) without deliveries")
    return plan


def _refs(args: argparse.Namespace) -> list[ChunkRef]:
    return _plan(args).refs


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
    from tenfold.systems.tarzan.telemetry import read_manifest

    manifest = read_manifest(Path(args.logs))
    if manifest.unlisted:
        _note(f"{args.logs}: ignoring {len(manifest.unlisted)} .parquet file(s) that {manifest.path.name} does not "
              f"list: {', '.join(manifest.unlisted)}")
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
    # The keys of <out>.calls.json (OnlineResult.summary), so the two never disagree.
    print(json.dumps({"checkpoint": str(out), **result.summary(), "calls_report": str(report)}, indent=1))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.evaluate import evaluate, summarize

    if args.policy in BUILT_IN:
        if args.checkpoint:
            raise ConfigError("checkpoint", args.checkpoint,
                              f"--policy {args.policy} runs without a checkpoint: drop --checkpoint")
    else:
        if not args.checkpoint:
            raise ConfigError("checkpoint", None, f"--policy {args.policy} needs --checkpoint FILE")
        from tenfold.systems.tarzan.policy import Policy

        algo = Policy.load(args.checkpoint).algo
        if algo != args.policy:
            raise ConfigError("policy", args.policy, f"the checkpoint {args.checkpoint} holds a {algo!r} policy, "
                                                     f"not {args.policy!r}: pass --policy {algo}")
    plan = _plan(args)
    calls = evaluate({args.policy: args.checkpoint}, plan.refs, _executor(args.executor))
    print(json.dumps({**summarize(calls)[args.policy], "empty_chunks_skipped": plan.empty_chunks}, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.policy import Policy, PolicyServer, serve_stdio

    policy = Policy.load(args.checkpoint)
    if args.stdio:
        errors = serve_stdio(policy, sys.stdin, sys.stdout)
        if errors:
            _note(f"answered {errors} malformed line(s) with an error")
        return 0
    server = PolicyServer(policy, Path(args.socket))
    _note(f"serving {args.checkpoint} on {args.socket}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        _note(f"served {server.served} window(s), refused {server.malformed} malformed frame(s)")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.adapters import ingest

    report = ingest(args.format, [Path(p) for p in args.inputs], Path(args.out), allow_partial=args.allow_partial,
                    executor=_executor(args.executor))
    print(json.dumps({"manifest": str(report.manifest), **report.totals(),
                      "files_detail": [s.to_dict() for s in report.summaries]}, indent=1))
    return 0


def _cmd_realnet(args: argparse.Namespace) -> int:
    from tenfold.systems.tarzan.collect import ChunkRef, check_call_grid, load_chunk
    from tenfold.systems.tarzan.realnet import RealnetConfig, run_realnet
    from tenfold.systems.tarzan.session import GccController, RateController
    from tenfold.systems.tarzan.telemetry import write_text_atomic

    check_call_grid((args.level,), (args.rtt,), (args.seed,), args.seconds)  # the same bounds as collect and eval
    if args.chunk < 0:
        raise ConfigError("chunk", args.chunk, "must be >= 0")
    controller: RateController = GccController()
    if args.checkpoint:
        import torch

        from tenfold.systems.tarzan.evaluate import PolicyController
        from tenfold.systems.tarzan.policy import Policy

        torch.set_num_threads(1)
        policy = Policy.load(args.checkpoint)
        controller = PolicyController(policy, policy.algo)
    cfg = RealnetConfig(seconds=args.seconds, rtt_ms=args.rtt, seed=args.seed)
    trace = load_chunk(ChunkRef(str(args.trace), args.chunk, args.level, args.rtt, args.seed, args.seconds))
    result = run_realnet(trace, controller, cfg)
    summary = {"trace": str(args.trace), "chunk": args.chunk, "level_mbps": args.level, **result.summary()}
    text = json.dumps(summary, indent=1)
    if args.out:
        write_text_atomic(Path(args.out), text)
    print(text)
    return 0


def _trace_args(p: argparse.ArgumentParser, required: bool = True, what: str = "directory of Mahimahi traces") -> None:
    p.add_argument("--traces", required=required, metavar="DIR",
                   help=f"{what} ({_TRACE_RULE}), or split:train / split:test: the packaged traces' documented "
                        "train/held-out split")
    p.add_argument("--levels", default="1.5", metavar="MBPS,...",
                   help="comma-separated mean rates each chunk is rescaled to, in Mbps; each in (0, 100]")
    p.add_argument("--rtts", default="100", metavar="MS,...", help="comma-separated path RTTs in ms; each > 0")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="call length in s, in (0, 60] (a chunk is 60 s; --algo online needs >= 0.1)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="run only the first N calls (N >= 1); all when absent")


def _common(p: argparse.ArgumentParser, traces: bool = True) -> None:
    if traces:
        _trace_args(p)
        p.add_argument("--executor", choices=["local", "ray"], default="local",
                       help="where the calls run: a local process pool, or Ray")
    p.add_argument("--seed", type=int, default=0, help="seed of the calls (and of training); >= 0")


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("collect", help="run GCC calls on trace chunks and write Parquet telemetry logs",
                       formatter_class=fmt)
    _common(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory for the shards and manifest.json (not an existing file)")
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("train", help="train a controller offline from collected logs", formatter_class=fmt)
    _common(p, traces=False)
    p.add_argument("--logs", default=None, metavar="DIR",
                   help="directory from `collect` or `ingest`: the shards its manifest.json lists (every offline "
                        "algorithm)")
    p.add_argument("--algo", default="tarzan", choices=list(TRAINED),
                   help="the learner; online: the online-RL baseline, which learns by calling over the emulator on "
                        "--traces")
    _trace_args(p, required=False, what="online only: directory of Mahimahi traces to call over (training chunks)")
    p.add_argument("--steps", type=int, default=100_000, metavar="N", help="gradient steps (the spec: 100,000)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="transitions per gradient step")
    p.add_argument("--bc-warmup-steps", type=int, default=0, metavar="N",
                   help="SAC arms: first steps in which the actor imitates the logged actions "
                        "(the benchmark uses 1,000 quick, 10,000 full)")
    p.add_argument("--cql-alpha", type=float, default=0.01, metavar="A",
                   help="weight of the conservative (CQL) term of tarzan and its ablations (spec: 0.01)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads")
    p.add_argument("--engine", choices=["torch", "d3rlpy"], default="torch",
                   help="d3rlpy: SAC arms through d3rlpy 2.8.1's CQL (pip install 'tenfold[tarzan-d3rlpy]'; "
                        "no BC warm-up, no --state)")
    p.add_argument("--out", required=True, metavar="FILE", help="checkpoint file to write")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="resumable training state: written every --state-every steps, resumed from when it exists "
                        "(a larger --steps extends a finished run)")
    p.add_argument("--state-every", type=int, default=1000, metavar="N", help="steps between state writes")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="evaluate a controller closed loop on any directory of Mahimahi traces",
                       formatter_class=fmt)
    _common(p)
    p.add_argument("--policy", required=True, choices=[*BUILT_IN, *TRAINED],
                   help="gcc and oracle run built in; any other names the algorithm of --checkpoint")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="checkpoint of a trained policy (required for trained policies, refused for gcc/oracle); "
                        "its algorithm must be --policy")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("serve", help="serve a trained policy over a Unix socket (or --stdio JSON lines)",
                       formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint of a trained policy")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--socket", default="/tmp/tarzan.sock", metavar="PATH",
                      help="Unix socket to listen on (TZ1 frames; at most 107 bytes, in an existing directory); "
                           "only a stale socket there is replaced, never a file or a live server's socket")
    mode.add_argument("--stdio", action="store_true",
                      help='serve JSON lines on stdin/stdout instead: {"window": [[12 numbers] x 20]} -> '
                           '{"bps": N}, or {"error": ...} for a malformed line')
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("ingest", help="convert user telemetry logs (AlphaRTC, MMSys'24, emulator) to Parquet shards",
                       formatter_class=fmt)
    p.add_argument("--format", required=True, help="log format: alphartc, mmsys24 or emulator")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="log files, or directories of them")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory for the shards and manifest.json (not an existing file)")
    p.add_argument("--allow-partial", action="store_true",
                   help="fill features the format lacks with 0 (recorded in the manifest) instead of refusing")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where the files convert: a local process pool, or Ray")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("realnet", help="(root) a VP8 call through the trace relay between network namespaces",
                       formatter_class=fmt)
    p.add_argument("--trace", required=True, metavar="FILE", help="Mahimahi trace file (use a held-out one)")
    p.add_argument("--chunk", type=int, default=0, metavar="K", help="1-minute chunk index, >= 0")
    p.add_argument("--level", type=float, default=1.5, metavar="MBPS",
                   help="rescale the chunk to this mean in Mbps, in (0, 100]")
    p.add_argument("--rtt", type=float, default=100.0, metavar="MS", help="path RTT in ms, > 0")
    p.add_argument("--seconds", type=float, default=60.0, help="call length in s, in (0, 60] (a chunk is 60 s)")
    p.add_argument("--checkpoint", default=None, metavar="FILE", help="trained policy; GCC when absent")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the JSON summary here (fsynced, renamed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic frames and the link; >= 0")
    p.set_defaults(func=_cmd_realnet)


COMMANDS.add("tarzan", CommandGroup("tarzan", "video rate control learned offline from GCC telemetry logs",
                                    _configure))
