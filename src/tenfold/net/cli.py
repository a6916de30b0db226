"""``tenfold net ...`` verbs: drive the link emulator and inspect traces from the shell.

``tenfold net link --trace FILE`` saturates an emulated Mahimahi link and prints one JSON
line (throughput, mean and p95 one-way delay, drops), the quickest check that a trace and a
queue setting give the capacity and delay one expects. ``tenfold net traces`` prints the
statistics and train/test side of each repository trace. Imports of numpy and the emulator
stay inside the verbs, so ``tenfold --help`` does not pay for them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from tenfold.core.registry import COMMANDS, CommandGroup

__all__: list[str] = []


def _cmd_link(args: argparse.Namespace) -> int:
    from tenfold.errors import ConfigError
    from tenfold.net.link import LinkConfig, SimLink, cbr_schedule
    from tenfold.net.trace import load_trace

    config = LinkConfig(delay_ms=args.delay_ms, queue_packets=args.queue_packets, queue_bytes=args.queue_bytes,
                        loss=args.loss, seed=args.seed)  # bad usage (exit 2) before a bad file (exit 1)
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise ConfigError("--seconds", args.seconds, "must be a finite number > 0")
    if args.offered_mbps is not None and not (math.isfinite(args.offered_mbps) and args.offered_mbps > 0):
        raise ConfigError("--offered-mbps", args.offered_mbps, "must be a finite number > 0")
    trace = load_trace(args.trace)
    seconds = args.seconds if args.seconds is not None else trace.period_ms / 1000.0
    link = SimLink(trace, config)
    if args.offered_mbps is None:
        result = link.saturate(seconds)
    else:
        result = link.transmit(cbr_schedule(args.offered_mbps, seconds), seconds)
    line = {"trace": trace.name, **result.summary(), "implied_mbps": round(trace.implied_mbps(seconds), 6),
            "config": config.to_dict(), "sender": "backlogged" if args.offered_mbps is None else "cbr"}
    print(json.dumps(line, sort_keys=True))
    return 0


def _cmd_traces(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tenfold.net.trace import SPLIT, chunk_trace, load_trace, traces_dir

    root = traces_dir()
    for part, names in SPLIT.items():
        for name in names:
            trace = load_trace(root / name)
            row = {"split": part, **asdict(trace.stats()), "chunks_1min": len(chunk_trace(trace))}
            print(json.dumps(row, sort_keys=True))
    sys.stdout.flush()
    return 0


def _queue(value: str) -> int | None:
    return None if value.lower() in ("none", "inf", "unbounded") else int(value)


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="net_command", metavar="VERB")
    link = sub.add_parser("link", help="saturate an emulated Mahimahi link and print one JSON line",
                          description="Saturate a trace-driven link (mm-link semantics) and print throughput_mbps, "
                                      "mean_delay_ms, p95_delay_ms and drops as one JSON line.")
    link.add_argument("--trace", required=True, help="Mahimahi trace file (one ms timestamp per line)")
    link.add_argument("--seconds", type=float, default=None, help="run length (default: one trace period)")
    link.add_argument("--delay-ms", type=float, default=0.0, help="fixed one-way delay (default 0)")
    link.add_argument("--queue-packets", type=_queue, default=100, help="drop-tail limit in packets, or none "
                      "(default 100)")
    link.add_argument("--queue-bytes", type=_queue, default=None, help="drop-tail limit in bytes (default none)")
    link.add_argument("--loss", type=float, default=0.0, help="random loss probability before the queue")
    link.add_argument("--seed", type=int, default=0, help="seed of the loss process (default 0)")
    link.add_argument("--offered-mbps", type=float, default=None,
                      help="offer a constant bit rate instead of a backlogged sender (then drops show overload)")
    link.set_defaults(func=_cmd_link)
    traces = sub.add_parser("traces", help="statistics and split of the repository's Mahimahi traces")
    traces.set_defaults(func=_cmd_traces)


COMMANDS.add("net", CommandGroup(name="net", help="RTP/RTCP/STUN codecs, Mahimahi traces, link emulation",
                                 configure=_configure, kind="layer"))
