"""``tenfold specreason ...``: solve one problem with step marks, evaluate on a dataset, train the tiny pair,
serve a model behind an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import UnknownNameError
from tenfold.llm import LLMBackend
from tenfold.systems.specreason.config import SpecReasonConfig

__all__: list[str] = []

_NAMES = ["smollm2", "tiny-small", "tiny-base", "pair:small", "pair:base", "http://HOST:PORT/v1"]
_PAIR_ROLES = {"tiny-small": "small", "pair:small": "small", "tiny-base": "base", "pair:base": "base"}


def _backend(spec: str, pair: str = "arith-v1") -> LLMBackend:
    """``http(s)://...`` -> an OpenAI-compatible server; ``smollm2`` -> in-process SmolLM2;
    ``tiny-small``/``tiny-base`` (or ``pair:small``/``pair:base``) -> the shipped tiny pair."""
    if spec.startswith(("http://", "https://")):
        from tenfold.llm import OpenAIBackend

        return OpenAIBackend(spec)
    if spec == "smollm2":
        from tenfold.llm import TransformersBackend

        return TransformersBackend("smollm2")
    if spec in _PAIR_ROLES:
        import torch

        from tenfold.systems.specreason.pair import load_pair

        torch.set_num_threads(1)
        small, base = load_pair(pair)
        return small if _PAIR_ROLES[spec] == "small" else base
    raise UnknownNameError("backend", spec, _NAMES)


def _config(args: argparse.Namespace) -> SpecReasonConfig:
    return SpecReasonConfig(
        threshold=args.threshold, score_method=args.score_method, token_budget=args.token_budget,
        step_max_tokens=args.step_max_tokens, first_n_base=args.first_n_base, temperature=args.temperature,
        seed=args.seed, artifact_compat=args.artifact_compat,
    )


def _cmd_solve(args: argparse.Namespace) -> int:
    from tenfold.systems.specreason.loop import SpecReason

    cfg = _config(args)
    result = SpecReason(_backend(args.small, args.pair), _backend(args.base, args.pair), cfg).solve(args.problem)
    for i, step in enumerate(result.steps, 1):
        if step.accepted is None:
            mark = "[base]        "
        elif step.accepted:
            mark = f"[+] score {step.score:g} "
        else:
            mark = f"[x] score {step.score:g} "
        print(f"{i:>2} {mark}{step.source:<5} | {step.text}")
        if step.draft is not None:
            print(f"   rejected draft      | {step.draft}")
    print(f"answer: {result.answer}  stop: {result.stop_reason}  accept_rate: {result.accept_rate:.2f}  "
          f"tokens: {result.tokens}  wall: {result.timings['total_s']:.2f}s")
    return 0


def _items(args: argparse.Namespace) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """(problem, gold, grade kind, options) for ``--dataset arith`` or ``--dataset NAME FILE``."""
    from pathlib import Path

    from tenfold.errors import ConfigError
    from tenfold.systems.specreason.datasets import DATASETS, load_dataset
    from tenfold.systems.specreason.tasks import generate, held_out, text_hash

    name, *rest = args.dataset
    if name == "arith":
        if rest:
            raise ConfigError("dataset", args.dataset, "'arith' takes no file")
        train = {text_hash(p.text) for p in generate(args.train_size, seed=0)}
        return [(p.text, str(p.answer), "int", None) for p in held_out(args.n, seed=args.seed + 1, exclude=train)]
    if name not in DATASETS or len(rest) != 1:
        raise ConfigError("dataset", args.dataset, f"must be 'arith' or one of {sorted(DATASETS)} followed by FILE")
    items = load_dataset(name, Path(rest[0]), args.n, seed=args.seed, artifact_compat=args.artifact_compat)
    return [(it.problem, it.gold, it.kind, it.options) for it in items]


def _cmd_eval(args: argparse.Namespace) -> int:
    from tenfold.systems.specreason.grader import grade
    from tenfold.systems.specreason.loop import SpecReason

    cfg = _config(args)
    items = _items(args)
    solver = SpecReason(_backend(args.small, args.pair), _backend(args.base, args.pair), cfg)
    correct: list[bool] = []
    seconds: list[float] = []
    accepts: list[float] = []
    for problem, gold, kind, options in items:
        r = solver.solve(problem, options)
        correct.append(grade(r.answer, gold, kind))  # type: ignore[arg-type]
        seconds.append(r.timings["total_s"])
        accepts.append(r.accept_rate)
        print(json.dumps({"problem": problem, "answer": r.answer, "gold": gold, "correct": correct[-1],
                          "seconds": seconds[-1], "accept_rate": r.accept_rate, "stop": r.stop_reason}),
              file=sys.stderr)
    summary = {
        "dataset": args.dataset[0], "problems": len(correct),
        "accuracy": sum(correct) / max(len(correct), 1),
        "latency_p50_s": statistics.median(seconds) if seconds else 0.0,
        "acceptance_rate": statistics.fmean(accepts) if accepts else 0.0,
        "config": cfg.to_dict(),
    }
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_train_pair(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tenfold.systems.specreason.pair import PairTrainConfig, train_pair

    cfg = PairTrainConfig.load(args.config) if args.config else PairTrainConfig()
    cfg = cfg.replace(seed=args.seed)
    manifest = train_pair(Path(args.out), cfg, name=args.name, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps({"out": str(args.out), "files": manifest["files"], "metrics": manifest["metrics"],
                      "train_seconds": manifest["train_seconds"]}, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tenfold.llm import serve

    if args.model.startswith(("http://", "https://")):
        raise UnknownNameError("model to serve", args.model, [n for n in _NAMES if not n.startswith("http")])
    backend = _backend(args.model, args.pair)
    print(f"serving {backend.name} on http://{args.host}:{args.port}/v1 (Ctrl-C stops)", file=sys.stderr, flush=True)
    serve(backend, host=args.host, port=args.port)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--small", required=True, help="drafter: http://HOST:PORT/v1, smollm2 or tiny-small")
    p.add_argument("--base", required=True, help="judge and fallback: http://HOST:PORT/v1, smollm2 or tiny-base")
    p.add_argument("--pair", default="arith-v1", help="tiny pair for tiny-small/tiny-base: a shipped name or a DIR")
    p.add_argument("--threshold", type=float, default=7.0, help="accept drafts scoring >= this (0..10)")
    p.add_argument("--score-method", choices=["greedy", "average"], default="greedy")
    p.add_argument("--token-budget", type=int, default=8192)
    p.add_argument("--step-max-tokens", type=int, default=512)
    p.add_argument("--first-n-base", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--artifact-compat", action="store_true",
                   help="reproduce the upstream artifact: raw indented prompts, str.isdigit scoring, GPQA unshuffled")


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    p = sub.add_parser("solve", help="solve one problem, printing each step with its accept/reject mark")
    p.add_argument("problem", help="the problem text")
    _common(p)
    p.set_defaults(func=_cmd_solve)
    p = sub.add_parser("eval", help="accuracy, median latency and acceptance on held-out arithmetic chains")
    p.add_argument("--dataset", nargs="+", default=["arith"], metavar="NAME [FILE]",
                   help="arith (held-out chains), or aime|math500|gpqa FILE (local JSONL/parquet, HF columns)")
    p.add_argument("--n", type=int, default=20, help="problems (held-out chains, or the file's first N)")
    p.add_argument("--train-size", type=int, default=0, help="training problems (seed 0) to exclude by hash")
    _common(p)
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("train-pair", help="train the tiny small/base pair (deterministic per seed) into a directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", required=True, help="output directory (weights, tokenizer, manifest.json)")
    p.add_argument("--config", help="PairTrainConfig as TOML/JSON (defaults reproduce arith-v1)")
    p.add_argument("--name", default="arith-v1", help="pair name recorded in the manifest")
    p.set_defaults(func=_cmd_train_pair)
    p = sub.add_parser("serve", help="serve smollm2 or a tiny-pair model over an OpenAI-compatible API")
    p.add_argument("--model", required=True, help="smollm2, tiny-small or tiny-base (pair:small, pair:base)")
    p.add_argument("--pair", default="arith-v1", help="tiny pair for tiny-small/tiny-base: a shipped name or a DIR")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_cmd_serve)


COMMANDS.add("specreason", CommandGroup("specreason", "speculative reasoning: a small drafter, a base-model judge",
                                        _configure))
