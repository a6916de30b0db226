"""``tenfold marconi ...``: gen-trace, replay, sweep, check-exact, profile-ttft."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tenfold.core.registry import COMMANDS, CommandGroup

__all__ = ["sweep_point"]


def _print(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _cmd_gen_trace(args: argparse.Namespace) -> int:
    from tenfold.core.config import check_range
    from tenfold.systems.marconi.traces import GENERATORS, save_trace

    gen = GENERATORS.get(args.source)
    kwargs: dict[str, Any] = {}
    if args.sps is not None:  # otherwise each generator's own default (agent sessions: 0.05/s)
        kwargs["sps"] = args.sps
    if args.sessions is not None:
        check_range("sessions", args.sessions, lo=1)
        kwargs["n_sessions"] = args.sessions
    check_range("seed", args.seed, lo=0)
    if args.source != "sharegpt":
        kwargs["seed"] = args.seed
    if Path(args.out).is_dir():
        from tenfold.errors import ConfigError

        raise ConfigError("out", args.out, "is a directory; give a .jsonl file path")
    trace = gen(**kwargs)
    path = save_trace(trace, args.out)
    _print({"trace": str(path), "source": args.source, "requests": len(trace), "sessions": trace.n_sessions,
            "input_tokens": trace.input_tokens})
    return 0


def _make(args: argparse.Namespace, policy: str, capacity: str) -> Any:
    from tenfold.systems.marconi.cache import make_cache
    from tenfold.systems.marconi.config import MarconiConfig
    from tenfold.systems.marconi.costmodel import PRESETS

    cfg = MarconiConfig(policy=policy, capacity=capacity, preset=args.preset, alpha=args.alpha,
                        block_size=args.block_size, artifact_compat=args.artifact_compat)
    spec = PRESETS.get(cfg.preset)
    return cfg, make_cache(cfg.policy, spec, cfg.capacity_bytes, alpha=cfg.alpha, block_size=cfg.block_size,
                           bootstrap_multiplier=cfg.bootstrap_multiplier, artifact_compat=cfg.artifact_compat)


def _ttft(args: argparse.Namespace) -> Any:
    if not args.ttft_profile:
        return None
    from tenfold.systems.marconi.ttft import LinearTTFT, load_profile_csv

    return LinearTTFT.fit(*load_profile_csv(args.ttft_profile))


def _cmd_replay(args: argparse.Namespace) -> int:
    from tenfold.systems.marconi.cache import POLICIES
    from tenfold.systems.marconi.simulator import replay
    from tenfold.systems.marconi.traces import load_trace

    POLICIES.get(args.policy)  # unknown policy: UnknownNameError listing the known ones
    cfg, cache = _make(args, args.policy, args.capacity)
    trace = load_trace(args.trace)
    stats = replay(trace, cache, _ttft(args))
    _print({"trace": str(args.trace), "config": cfg.to_dict(), "requests": stats.requests,
            "input_tokens": stats.input_tokens, "reused_tokens": stats.reused_tokens, **stats.metrics()})
    return 0


def sweep_point(item: tuple[str, str, str, float | None, bool, str, int]) -> dict[str, Any]:
    """One sweep point (trace file × policy × capacity); module level for executors."""
    from tenfold.systems.marconi.cache import make_cache
    from tenfold.systems.marconi.config import parse_capacity
    from tenfold.systems.marconi.costmodel import PRESETS
    from tenfold.systems.marconi.simulator import replay
    from tenfold.systems.marconi.traces import load_trace

    trace_path, policy, capacity, alpha, compat, preset, block_size = item
    cache = make_cache(policy, PRESETS.get(preset), parse_capacity(capacity), alpha=alpha, artifact_compat=compat,
                       block_size=block_size)
    stats = replay(load_trace(trace_path), cache)
    return {"trace": trace_path, "policy": policy, "capacity": capacity, **stats.metrics()}


def _cmd_sweep(args: argparse.Namespace) -> int:
    from tenfold.core.executor import make_executor
    from tenfold.systems.marconi.cache import POLICIES
    from tenfold.systems.marconi.config import MarconiConfig, parse_capacity

    policies = args.policies.split(",")
    capacities = args.capacities.split(",")
    for p in policies:
        POLICIES.get(p)
    for c in capacities:
        parse_capacity(c)
    # The shared options are checked once, as replay checks them (alpha, block size, preset).
    MarconiConfig(preset=args.preset, alpha=args.alpha, block_size=args.block_size)
    items = [(str(t), p, c, args.alpha, args.artifact_compat, args.preset, args.block_size)
             for t in args.trace for c in capacities for p in policies]
    executor = make_executor(args.executor)
    try:
        rows = executor.map(sweep_point, items)
    finally:
        executor.close()
    _print(rows)
    return 0


def _cmd_check_exact(args: argparse.Namespace) -> int:
    import torch

    from tenfold.core.config import check_range
    from tenfold.systems.marconi.tiny_hybrid import TinyHybridLM

    check_range("length", args.length, lo=3)  # resume points 0 < random < length - 1 need 3 tokens
    check_range("seed", args.seed, lo=0)
    torch.set_num_threads(1)
    model = TinyHybridLM.create(seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, model.cfg.vocab, (args.length,), generator=gen)
    rows = []
    with torch.inference_mode():
        full, _ = model.prefill(ids, model.empty_state())
        points = {0, int(torch.randint(1, args.length - 1, (1,), generator=gen)), 64, args.length - 1}
        for p in sorted(q for q in points if q < args.length):
            _, st = model.prefill(ids[:p], model.empty_state())
            resumed = st.checkpoint()
            resumed.kv = st.kv
            tail, _ = model.prefill(ids[p:], resumed)
            rows.append({"resume_at": p, "max_abs_diff": float((tail - full[p:]).abs().max())})
    ok = all(r["max_abs_diff"] <= 1e-5 for r in rows)
    _print({"model": model.label, "length": args.length, "checks": rows, "exact_within_1e-5": ok})
    return 0 if ok else 1


def _cmd_profile(args: argparse.Namespace) -> int:
    from tenfold.core.assets import atomic_path
    from tenfold.core.config import check_range
    from tenfold.errors import ConfigError
    from tenfold.systems.marconi.ttft import profile_tiny_hybrid

    # Everything is checked before the measurement, which takes a while.
    try:
        wanted = tuple(int(x) for x in args.lengths.split(","))
    except ValueError:
        raise ConfigError("lengths", args.lengths, "must be comma-separated integers") from None
    if len(wanted) < 2 or list(wanted) != sorted(set(wanted)) or wanted[0] < 1:
        raise ConfigError("lengths", args.lengths, "must be at least 2 strictly increasing lengths >= 1")
    check_range("repeats", args.repeats, lo=1)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError("out", args.out, "is a directory; give a .csv file path")
    lengths, ms = profile_tiny_hybrid(wanted, repeats=args.repeats)
    with atomic_path(out) as tmp:
        tmp.write_text("tokens,ms\n" + "".join(f"{n},{t:.3f}\n" for n, t in zip(lengths, ms, strict=True)))
    _print({"profile": str(out), "tokens": lengths, "ms": ms})
    return 0


def _cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="nvidia-hybrid-7b", help="model preset (default: nvidia-hybrid-7b)")
    p.add_argument("--alpha", type=float, default=None,
                   help="fixed α for marconi (default: tuned online) and static (default: 1); "
                        "sglang+ and vllm+ ignore it")
    p.add_argument("--block-size", type=int, default=32, help="vLLM+ block size (default: 32)")
    p.add_argument("--artifact-compat", action="store_true", help="reproduce the reference artifact's quirks")


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    g = sub.add_parser("gen-trace", help="write a JSONL request trace")
    g.add_argument("--source", required=True, choices=["sharegpt", "chat", "sysprompt", "agent"])
    g.add_argument("--out", required=True, help="output .jsonl file")
    g.add_argument("--sessions", type=int, default=None, help="sessions, >= 1 (default: the generator's)")
    g.add_argument("--sps", type=float, default=None,
                   help="sessions per second (default: the generator's: 1, agent 0.05)")
    g.add_argument("--seed", type=int, default=0, help="generator seed, >= 0 (default: 0)")
    g.set_defaults(func=_cmd_gen_trace)

    r = sub.add_parser("replay", help="replay a JSONL trace through one cache policy")
    r.add_argument("--trace", required=True)
    r.add_argument("--policy", required=True, help="marconi, sglang+, vllm+ or static")
    r.add_argument("--capacity", required=True, help="cache size, e.g. 3GB")
    r.add_argument("--ttft-profile", default=None, help="CSV tokens,ms for TTFT percentiles")
    _cache_options(r)
    r.set_defaults(func=_cmd_replay)

    s = sub.add_parser("sweep", help="replay traces × policies × capacities through an executor")
    s.add_argument("--trace", required=True, nargs="+")
    s.add_argument("--policies", default="vllm+,sglang+,marconi")
    s.add_argument("--capacities", default="1GB,3GB,5GB")
    s.add_argument("--executor", default="local", choices=["local", "ray"])
    _cache_options(s)
    s.set_defaults(func=_cmd_sweep)

    c = sub.add_parser("check-exact", help="tiny hybrid: resumed logits equal full-prefill logits")
    c.add_argument("--length", type=int, default=300)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=_cmd_check_exact)

    p = sub.add_parser("profile-ttft", help="measure the tiny hybrid's CPU prefill time into a CSV")
    p.add_argument("--out", required=True)
    p.add_argument("--lengths", default="32,64,128,256,512,1024,2048")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=_cmd_profile)


COMMANDS.add("marconi", CommandGroup("marconi", "Marconi: prefix caching for hybrid attention+SSM LLMs", _configure))
