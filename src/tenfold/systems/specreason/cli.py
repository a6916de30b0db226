"""``tenfold specreason ...``: solve one problem with step marks, evaluate on a dataset, train the tiny pair,
serve a model behind an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from typing import TYPE_CHECKING

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import ConfigError, UnknownNameError
from tenfold.llm import LLMBackend
from tenfold.systems.specreason.config import SpecReasonConfig

if TYPE_CHECKING:
    from tenfold.systems.specreason.tasks import ArithProblem

__all__: list[str] = []

_NAMES = ["smollm2", "tiny-small", "tiny-base", "pair:small", "pair:base", "http://HOST:PORT/v1"]
_SERVE_NAMES = [n for n in _NAMES if not n.startswith("http")]
"""What ``serve`` accepts: a model it runs in-process (it never proxies a URL)."""
_PAIR_ROLES = {"tiny-small": "small", "pair:small": "small", "tiny-base": "base", "pair:base": "base"}
_ARITH_N = 20
"""Held-out chains ``eval --dataset arith`` runs when ``--n`` is not given."""

Pairs = dict[str, tuple[LLMBackend, LLMBackend]]
"""Loaded tiny pairs by ``--pair`` value, (small, base)."""


def _backend(spec: str, pair: str = "arith-v1", pairs: Pairs | None = None) -> LLMBackend:
    """``http(s)://...`` -> an OpenAI-compatible server; ``smollm2`` -> in-process SmolLM2;
    ``tiny-small``/``tiny-base`` (or ``pair:small``/``pair:base``) -> the tiny pair ``pair`` (a
    shipped name or a directory), loaded once into ``pairs`` when that cache is given."""
    if spec.startswith(("http://", "https://")):
        from tenfold.llm import OpenAIBackend

        return OpenAIBackend(spec)
    if spec == "smollm2":
        from tenfold.llm import TransformersBackend

        return TransformersBackend("smollm2")
    if spec in _PAIR_ROLES:
        pairs = {} if pairs is None else pairs
        if pair not in pairs:
            import torch

            from tenfold.systems.specreason.pair import load_pair

            torch.set_num_threads(1)
            pairs[pair] = load_pair(pair)
        small, base = pairs[pair]
        return small if _PAIR_ROLES[spec] == "small" else base
    raise UnknownNameError("backend", spec, _NAMES)


def _roles(args: argparse.Namespace) -> tuple[LLMBackend, LLMBackend]:
    """(small, base) for ``--small``/``--base``. Each model is loaded (and hash-checked) once per
    command: both roles naming one spec share its backend, and both tiny roles share one pair load."""
    made: dict[str, LLMBackend] = {}
    pairs: Pairs = {}

    def get(spec: str) -> LLMBackend:
        key = f"pair:{_PAIR_ROLES[spec]}" if spec in _PAIR_ROLES else spec  # aliases share a backend
        if key not in made:
            made[key] = _backend(spec, args.pair, pairs)
        return made[key]

    return get(args.small), get(args.base)


def _config(args: argparse.Namespace) -> SpecReasonConfig:
    return SpecReasonConfig(
        threshold=args.threshold, score_method=args.score_method, token_budget=args.token_budget,
        step_max_tokens=args.step_max_tokens, first_n_base=args.first_n_base, temperature=args.temperature,
        seed=args.seed, artifact_compat=args.artifact_compat,
    )


def _problem(args: argparse.Namespace) -> str:
    """The problem, given exactly once: as the positional PROBLEM or as ``--problem TEXT``."""
    given: list[str] = [p for p in (args.problem, args.problem_text) if p is not None]
    if len(given) != 1:
        raise ConfigError("problem", given or None, "give the problem exactly once: as PROBLEM or as --problem TEXT")
    return given[0]


def _cmd_solve(args: argparse.Namespace) -> int:
    from tenfold.systems.specreason.loop import SpecReason

    problem = _problem(args)
    cfg = _config(args)
    result = SpecReason(*_roles(args), cfg).solve(problem)
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


def _held_out_seed(train_seed: int, seed: int) -> int:
    """The stream ``eval --dataset arith`` draws from: a hash of both seeds. Training streams use the
    small seed itself, so no ``--seed`` (a negative one included) lands on one."""
    digest = hashlib.sha256(f"specreason eval held-out {train_seed} {seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _arith_problems(pair: str, n: int, seed: int, train_size: int | None = None) -> list[ArithProblem]:
    """``n`` held-out chains, disjoint by text hash from the training problems of ``pair`` (the
    first ``train_size`` of them; default all: the count and seed its manifest records)."""
    from tenfold.systems.specreason.pair import pair_manifest
    from tenfold.systems.specreason.tasks import generate, held_out, text_hash

    manifest = pair_manifest(pair)
    recorded = manifest.get("config", {})
    train_seed = int(recorded.get("seed", manifest.get("seed", 0)))
    count = int(recorded.get("train_problems", 0)) if train_size is None else train_size
    train = {text_hash(p.text) for p in generate(count, seed=train_seed)}
    return list(held_out(n, seed=_held_out_seed(train_seed, seed), exclude=train))


def _items(args: argparse.Namespace) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """(problem, gold, grade kind, options) for ``--dataset arith`` or ``--dataset NAME FILE``."""
    from pathlib import Path

    from tenfold.systems.specreason.datasets import DATASETS, load_dataset

    name, *rest = args.dataset
    if name == "arith":
        if rest:
            raise ConfigError("dataset", args.dataset, "'arith' takes no file")
        problems = _arith_problems(args.pair, _ARITH_N if args.n is None else args.n, args.seed, args.train_size)
        return [(p.text, str(p.answer), "int", None) for p in problems]
    if name not in DATASETS or len(rest) != 1:
        raise ConfigError("dataset", args.dataset, f"must be 'arith' or one of {sorted(DATASETS)} followed by FILE")
    items = load_dataset(name, Path(rest[0]), args.n, seed=args.seed, artifact_compat=args.artifact_compat)
    return [(it.problem, it.gold, it.kind, it.options) for it in items]


def _cmd_eval(args: argparse.Namespace) -> int:
    from tenfold.core.config import check_range
    from tenfold.systems.specreason.grader import grade
    from tenfold.systems.specreason.loop import SpecReason

    if args.n is not None:
        check_range("n", args.n, lo=1)
    cfg = _config(args)
    items = _items(args)
    solver = SpecReason(*_roles(args), cfg)
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

    from tenfold.systems.specreason.pair import PairTrainConfig, check_out_dir, train_pair

    out = check_out_dir(Path(args.out))  # before any training; absolute, so "-o ." is "-o $PWD"
    cfg = PairTrainConfig.load(args.config) if args.config else PairTrainConfig()
    if args.seed is not None:  # --seed overrides the config file's seed only when given
        cfg = cfg.replace(seed=args.seed)
    manifest = train_pair(out, cfg, name=args.name, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps({"out": str(out), "files": manifest["files"], "metrics": manifest["metrics"],
                      "train_seconds": manifest["train_seconds"]}, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tenfold.llm import serve

    if args.model not in _SERVE_NAMES:  # serve runs a model in-process; it never proxies a URL
        raise UnknownNameError("model to serve", args.model, _SERVE_NAMES)
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


class _EvalHelp(argparse.HelpFormatter):
    """Shows ``--dataset NAME [FILE]``, one dataset (argparse would show ``NAME [FILE] [NAME [FILE] ...]``)."""

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if action.dest == "dataset":
            return "NAME [FILE]"
        return super()._format_args(action, default_metavar)


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    p = sub.add_parser("solve", help="solve one problem, printing each step with its accept/reject mark")
    p.add_argument("problem", nargs="?", help="the problem text (or give it with --problem)")
    p.add_argument("--problem", dest="problem_text", metavar="TEXT", help="the problem text, instead of PROBLEM")
    _common(p)
    p.set_defaults(func=_cmd_solve)
    p = sub.add_parser("eval", formatter_class=_EvalHelp,
                       help="accuracy, median latency and acceptance on one dataset (held-out arithmetic chains "
                            "by default)")
    p.add_argument("--dataset", nargs="+", default=["arith"],
                   help="one dataset: arith (held-out chains, the default), or one of aime, math500, gpqa "
                        "followed by its FILE (local JSONL/parquet, HF columns)")
    p.add_argument("--n", type=int, default=None,
                   help=f"problems, >= 1: held-out chains (default {_ARITH_N}), or the file's first N (default: "
                        "the loader's: every AIME row, the first 100 of MATH-500 or GPQA)")
    p.add_argument("--train-size", type=int, default=None,
                   help="arith: how many of the --pair's training problems (drawn with its manifest's seed) to "
                        "exclude by text hash (default: all, its manifest's train_problems); the held-out chains "
                        "come from a stream of their own for each --seed")
    _common(p)
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("train-pair", help="train the tiny small/base pair (deterministic per seed) into a directory")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the --config file's, else 0)")
    p.add_argument("-o", "--out", required=True,
                   help="output directory (weights, tokenizer, manifest.json), replaced by the new pair: it must be "
                        "new, empty, or hold an earlier pair and nothing else")
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
