"""The ``tenfold`` command.

``tenfold bench`` and ``tenfold report`` are built in; every other verb group
(``tenfold llm ...``, ``tenfold marconi ...``) is registered by its layer or system in
:data:`tenfold.core.registry.COMMANDS` and found here by discovery, so a new system never
edits this module. Exit codes: 0 success, 1 runtime failure, 2 bad usage, bad config or an
unknown name (the message lists the known ones).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from tenfold import __version__
from tenfold.core.bench import BenchContext, run_benchmark, select_benchmarks
from tenfold.core.executor import EXECUTORS, make_executor
from tenfold.core.registry import BENCHMARKS, COMMANDS
from tenfold.core.report import render_report
from tenfold.errors import ConfigError, TenfoldError, UnknownNameError

__all__ = ["build_parser", "discover", "main"]

LAYERS = ("llm", "vision", "net")
DEFAULT_OUT = Path("results")
_discovered = False


def _import_if_present(module: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        importlib.import_module(module)


def discover() -> None:
    """Import every layer's ``cli`` and every system's ``cli`` and ``bench`` module once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for layer in LAYERS:
        _import_if_present(f"tenfold.{layer}.cli")
    import tenfold.systems as systems

    for info in sorted(pkgutil.iter_modules(systems.__path__), key=lambda i: i.name):
        if info.ispkg:
            for part in ("cli", "bench"):
                _import_if_present(f"tenfold.systems.{info.name}.{part}")


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.list:
        for key in BENCHMARKS.names():
            print(key)
        return 0
    chosen = select_benchmarks(args.systems)
    if not chosen:
        print("tenfold: no benchmarks are registered yet; nothing to run.", file=sys.stderr)
        return 0
    executor = make_executor(args.executor)
    out = Path(args.out)
    try:
        bar = tqdm(chosen, desc="benchmarks", unit="bench", file=sys.stderr, disable=len(chosen) < 2)
        for bench in bar:
            bar.set_postfix_str(bench.key)
            print(f"tenfold: running {bench.key}{' (quick)' if args.quick else ''} ...", file=sys.stderr)
            ctx = BenchContext(quick=args.quick, seed=args.seed, executor=executor, out_dir=out)
            path = run_benchmark(bench, ctx)
            print(path)
    finally:
        executor.close()
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    report = render_report(Path(args.out), registered=BENCHMARKS.names())
    if report.results == 0:
        print(f"tenfold: no benchmark results in {args.out}; wrote a report that says so to {report.html}")
    else:
        print(f"tenfold: {report.results} results rendered")
    print(report.markdown)
    print(report.html)
    return 0


def build_parser() -> argparse.ArgumentParser:
    discover()
    parser = argparse.ArgumentParser(
        prog="tenfold",
        description="Ten research systems as usable software: run their verbs, benchmarks and report.",
    )
    parser.add_argument("--version", action="version", version=f"tenfold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    bench = sub.add_parser("bench", help="run registered benchmarks and write result JSON")
    bench.add_argument("systems", nargs="*", metavar="SYSTEM",
                       help="systems (or system/bench keys) to run; all when none is named")
    bench.add_argument("--quick", action="store_true", help="a run that finishes in minutes on 2 cores")
    bench.add_argument("--executor", choices=EXECUTORS.names(), default="local",
                       help="where sweeps run (default: local)")
    bench.add_argument("--out", default=str(DEFAULT_OUT), help="results directory (default: results)")
    bench.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    bench.add_argument("--list", action="store_true", help="print one <system>/<bench> per line and exit")
    bench.set_defaults(func=_cmd_bench)

    report = sub.add_parser("report", help="render results/ into report.md and report.html")
    report.add_argument("--out", default=str(DEFAULT_OUT), help="results directory (default: results)")
    report.set_defaults(func=_cmd_report)

    for name, group in COMMANDS.items():
        p = sub.add_parser(name, help=group.help, description=group.help)
        group.configure(p)
        if p.get_default("func") is None:
            p.set_defaults(func=lambda _a, _p=p: (_p.print_help(), 2)[1])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        if argv and not argv[0].startswith("-"):
            known = ["bench", "report", *COMMANDS.names()]
            if argv[0] not in known:
                raise UnknownNameError("command or system", argv[0], known)
        args = parser.parse_args(argv)
        code = args.func(args)
        return int(code or 0)
    except (ConfigError, UnknownNameError) as exc:
        print(f"tenfold: error: {exc}", file=sys.stderr)
        return 2
    except TenfoldError as exc:
        print(f"tenfold: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tenfold: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
