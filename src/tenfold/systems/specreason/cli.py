"""``tenfold specreason ...``: solve one problem with step marks, or evaluate on arithmetic chains."""

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

_NAMES = ["smollm2", "http://HOST:PORT/v1"]


def _backend(spec: str) -> LLMBackend:
    """``http(s)://...`` -> an OpenAI-compatible server; ``smollm2`` -> in-process SmolLM2."""
    if spec.startswith(("http://", "https://")):
        from tenfold.llm import OpenAIBackend

        return OpenAIBackend(spec)
    if spec == "smollm2":
        from tenfold.llm import TransformersBackend

        return TransformersBackend("smollm2")
    raise UnknownNameError("backend", spec, _NAMES)


def _config(args: argparse.Namespace) -> SpecReasonConfig:
    return SpecReasonConfig(
        threshold=args.threshold, score_method=args.score_method, token_budget=args.token_budget,
        step_max_tokens=args.step_max_tokens, first_n_base=args.first_n_base, temperature=args.temperature,
        seed=args.seed,
    )


def _cmd_solve(args: argparse.Namespace) -> int:
    from tenfold.systems.specreason.loop import SpecReason

    cfg = _config(args)
    result = SpecReason(_backend(args.small), _backend(args.base), cfg).solve(args.problem)
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


def _cmd_eval(args: argparse.Namespace) -> int:
    from tenfold.systems.specreason.grader import grade
    from tenfold.systems.specreason.loop import SpecReason
    from tenfold.systems.specreason.tasks import generate, held_out, text_hash

    cfg = _config(args)
    solver = SpecReason(_backend(args.small), _backend(args.base), cfg)
    train = {text_hash(p.text) for p in generate(args.train_size, seed=0)}
    correct: list[bool] = []
    seconds: list[float] = []
    accepts: list[float] = []
    for p in held_out(args.n, seed=args.seed + 1, exclude=train):
        r = solver.solve(p.text)
        correct.append(grade(r.answer, str(p.answer), "int"))
        seconds.append(r.timings["total_s"])
        accepts.append(r.accept_rate)
        print(json.dumps({"problem": p.text, "answer": r.answer, "gold": p.answer, "correct": correct[-1],
                          "seconds": seconds[-1], "accept_rate": r.accept_rate, "stop": r.stop_reason}),
              file=sys.stderr)
    summary = {
        "dataset": args.dataset, "problems": len(correct),
        "accuracy": sum(correct) / max(len(correct), 1),
        "latency_p50_s": statistics.median(seconds) if seconds else 0.0,
        "acceptance_rate": statistics.fmean(accepts) if accepts else 0.0,
        "config": cfg.to_dict(),
    }
    print(json.dumps(summary, indent=2))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--small", required=True, help="drafter: http://HOST:PORT/v1 or smollm2")
    p.add_argument("--base", required=True, help="judge and fallback: http://HOST:PORT/v1 or smollm2")
    p.add_argument("--threshold", type=float, default=7.0, help="accept drafts scoring >= this (0..10)")
    p.add_argument("--score-method", choices=["greedy", "average"], default="greedy")
    p.add_argument("--token-budget", type=int, default=8192)
    p.add_argument("--step-max-tokens", type=int, default=512)
    p.add_argument("--first-n-base", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    p = sub.add_parser("solve", help="solve one problem, printing each step with its accept/reject mark")
    p.add_argument("problem", help="the problem text")
    _common(p)
    p.set_defaults(func=_cmd_solve)
    p = sub.add_parser("eval", help="accuracy, median latency and acceptance on held-out arithmetic chains")
    p.add_argument("--dataset", choices=["arith"], default="arith")
    p.add_argument("--n", type=int, default=20, help="held-out problems")
    p.add_argument("--train-size", type=int, default=0, help="training problems (seed 0) to exclude by hash")
    _common(p)
    p.set_defaults(func=_cmd_eval)


COMMANDS.add("specreason", CommandGroup("specreason", "speculative reasoning: a small drafter, a base-model judge",
                                        _configure))
