"""The tiny model pair ``arith-v1`` (spec §5): train it, save it with a manifest, load it.

A small drafter (d 128, 2 layers, 412,800 params) and a base model (d 192, 6 layers, 2,693,568
params; the spec's d 64 and d 256 did not fit, see docs/systems/specreason.md) are trained with
:mod:`tenfold.llm.tiny_gpt` on arithmetic chains (:mod:`.tasks`) rendered exactly as the
SpecReason loop sends them: :data:`~.prompts.MATH_PROMPT` in a ChatML-like template whose
generation prompt ends in ``<think>``, reasoning steps separated by ``\\n\\n``, the answer in
``\\boxed{}``, then end-of-sequence. The base model also learns the judge turn: the exact
§2.2 judge conversation (:func:`~.loop.judge_messages`) followed by one score digit, ``9``
for a correct draft and U{0..3} for a corrupted one (result off by 1–9, wrong operand or
wrong operator; half the judge examples are corrupted), plus drafts the trained small model
actually wrote, labelled by exact comparison with the reference step. Training runs in
stages (stage 1 from scratch; stage 2 refines the saved files: more base steps, more drafter
steps until its error is in the band, then a judge-heavy base stage whose score digit's loss
is weighted up, then a short judge calibration that weights wrong steps' labels up, then a
judge stage drawn mostly from a large pool of fresh drafts, off by default), each
deterministic given the files before it and the seed.

The trained weights ship as fp16 package data under ``weights/<name>/`` with
``manifest.json`` (configs, seed, sha256 of every file, held-out metrics); :func:`load_pair`
checks every hash and raises :class:`~tenfold.errors.AssetError` naming the file that does
not match. ``tenfold specreason train-pair --seed 0 -o DIR`` reproduces them. Every save
before the last writes ``"complete": false`` into the manifest and the last one ``true``, so
:func:`load_pair` refuses a pair whose training was interrupted (a manifest without the field,
like the shipped one, is complete); :func:`finish_pair` runs stage 2 from such files.
"""

from __future__ import annotations

import json
import math
import os
import random
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from tenfold.core.assets import atomic_path, sha256_file
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import AssetError, ConfigError, UnknownNameError
from tenfold.llm import Message, SamplingParams
from tenfold.llm.tiny_gpt import GPTConfig, TinyGPT, TinyGPTBackend

from .loop import judge_messages, step_messages
from .prompts import JUDGE_INSTRUCTION, JUDGE_PREFIX, MATH_PROMPT, SEP, THINK, math_prompt
from .tasks import ArithProblem, Operation, generate, held_out, text_hash

__all__ = [
    "GENERATION_PROMPT",
    "PAIR_FILES",
    "PAIR_FORMAT",
    "Pair",
    "PairTrainConfig",
    "PhraseTokenizer",
    "calibrate_judge",
    "check_out_dir",
    "corrupt_step",
    "finish_pair",
    "judge_example",
    "load_pair",
    "load_pair_models",
    "measure_pair",
    "pair_dir",
    "pair_manifest",
    "pool_judge",
    "refine_base",
    "refine_judge",
    "refine_small",
    "render_chat",
    "step_accuracy",
    "trace_example",
    "train_pair",
    "verify_manifest",
]

PAIR_FORMAT = "tenfold.specreason.pair/1"
GENERATION_PROMPT = "<|assistant|>\n" + THINK
"""The pair's generation prompt: generation starts inside the thinking (spec §5)."""
_HELD_OUT_SEED = 1_000_003
"""Held-out problems come from this seed, minus any whose text hash is a training problem's."""


# -- tokenizer -----------------------------------------------------------------------------------
_PHRASES = (
    "<|user|>", "<|assistant|>", "<|system|>", THINK, "</think>", SEP,
    MATH_PROMPT.split("{problem}")[0], JUDGE_INSTRUCTION, JUDGE_PREFIX,
    "Start with ", "Add ", "add ", "Subtract ", "subtract ", "Multiply by ", "multiply by ",
    ", then ", ". What is the result?", "The answer is \\boxed{", "}.", ": ", " = ", " + ", " - ", " * ",
)


class PhraseTokenizer:
    """Characters plus whole phrases, matched greedily longest-first from the left.

    Design choice: the spec suggests a 512-entry BPE; this tokenizer gets the property the
    spec wants from it (the fixed prompt and judge strings are one token each, digits are
    single tokens, ``\\n\\n`` is atomic) with no training and an exact round trip. Id 0 is
    ``<eos>``, id 1 ``<unk>``, then the phrases, then the characters. No phrase starts inside
    another phrase's tail across a step boundary, so a prompt's tokens are a prefix of the
    tokens of any longer prompt that extends it (what prefix KV reuse needs).
    """

    EOS, UNK = "<eos>", "<unk>"

    def __init__(self, phrases: Sequence[str], chars: str) -> None:
        self.phrases = list(dict.fromkeys(p for p in phrases if len(p) > 1))
        self.chars = "".join(sorted(set(chars)))
        self.itos: list[str] = [self.EOS, self.UNK, *self.phrases, *self.chars]
        self.stoi = {s: i for i, s in enumerate(self.itos) if i >= 2}
        self.vocab_size = len(self.itos)
        self.eos_id = 0
        self._by_first: dict[str, list[str]] = {}
        for p in sorted(self.phrases, key=len, reverse=True):
            self._by_first.setdefault(p[0], []).append(p)

    @classmethod
    def default(cls) -> PhraseTokenizer:
        """The pair's tokenizer: the fixed phrases and printable ASCII plus every phrase character."""
        chars = set(string.printable) - set("\x0b\x0c\r") | set("".join(_PHRASES))
        return cls(_PHRASES, "".join(chars))

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        i = 0
        while i < len(text):
            for p in self._by_first.get(text[i], ()):
                if text.startswith(p, i):
                    ids.append(self.stoi[p])
                    i += len(p)
                    break
            else:
                ids.append(self.stoi.get(text[i], 1))
                i += 1
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos[i] for i in ids if i >= 2)

    def token_text(self, token_id: int) -> str:
        return self.itos[token_id]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "phrase", "phrases": self.phrases, "chars": self.chars}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PhraseTokenizer:
        if doc.get("kind") != "phrase":
            raise AssetError(f"tokenizer kind {doc.get('kind')!r} is not 'phrase'")
        return cls(list(doc["phrases"]), str(doc["chars"]))


def render_chat(messages: Sequence[Message], *, add_generation_prompt: bool = True,
                continue_final_message: bool = False) -> str:
    """The pair's chat template, as :class:`~tenfold.llm.TinyGPTBackend` renders it with
    ``generation_prompt=GENERATION_PROMPT`` (a test checks they agree)."""
    turns = list(messages)
    last = len(turns) - 1
    parts = [f"<|{t['role']}|>\n{t['content']}" + ("" if continue_final_message and i == last else "\n")
             for i, t in enumerate(turns)]
    if add_generation_prompt and not continue_final_message:
        parts.append(GENERATION_PROMPT)
    return "".join(parts)


# -- training data -------------------------------------------------------------------------------
Example = tuple[list[int], list[float]]
"""Token ids and a per-token loss weight (the weight of predicting token ``i`` from ``< i``)."""


def trace_example(problem: ArithProblem, tok: PhraseTokenizer) -> Example:
    """The full solution after the step call's first prompt, ended by ``<eos>``; loss on the solution."""
    messages, flags = step_messages(math_prompt(problem.text), [])
    prompt = tok.encode(render_chat(messages, **flags))
    body = [*tok.encode(problem.solution), tok.eos_id]
    return prompt + body, [0.0] * len(prompt) + [1.0] * len(body)


def corrupt_step(problem: ArithProblem, i: int, rng: random.Random) -> str:
    """A wrong version of reference step ``i``: result off by 1–9, wrong operand, or wrong operator."""
    vals = problem.values
    if i == len(problem.ops):  # the answer step: a wrong boxed value
        wrong = vals[-1] + rng.choice([-1, 1]) * rng.randint(1, 9)
        return f"The answer is \\boxed{{{wrong}}}."
    op = problem.ops[i]
    kind = rng.randrange(3)
    if kind == 0:
        wrong_op = op
        result = op.apply(vals[i]) + rng.choice([-1, 1]) * rng.randint(1, 9)
    elif kind == 1:
        operand = op.operand + rng.choice([-1, 1]) * rng.randint(1, 9)
        operand = operand if operand >= 1 and operand != op.operand else op.operand + rng.randint(1, 9)
        wrong_op = Operation(op.op, operand)
        result = wrong_op.apply(vals[i])
    else:
        wrong_op = Operation(rng.choice([o for o in "+-*" if o != op.op]), op.operand)
        result = wrong_op.apply(vals[i])
    verb = wrong_op.verb
    return f"{verb[0].upper()}{verb[1:]} {wrong_op.operand}: {vals[i]} {wrong_op.op} {wrong_op.operand} = {result}."


def judge_example(problem: ArithProblem, i: int, draft: str, digit: int, tok: PhraseTokenizer,
                  digit_weight: float = 1.0) -> Example:
    """The §2.2 judge conversation for ``draft`` at step ``i``, then ``digit``.

    Loss on the score digit (weight ``digit_weight``), and on the reference steps before the
    draft (they are correct reasoning, so the conversation also trains step writing); never on
    the draft itself.
    """
    steps = problem.steps[:i]
    prompt = math_prompt(problem.text)
    head = render_chat([{"role": "user", "content": prompt}], add_generation_prompt=True)
    head_ids = tok.encode(head)
    steps_ids = tok.encode("".join(s + SEP for s in steps))
    text = render_chat(judge_messages(prompt, steps, draft), add_generation_prompt=False,
                       continue_final_message=True)
    ids = tok.encode(text)
    if ids[: len(head_ids) + len(steps_ids)] != head_ids + steps_ids:  # prefix-stable by construction
        raise AssertionError("judge example tokens do not extend the step prompt's tokens")
    weights = [0.0] * len(head_ids) + [1.0] * len(steps_ids) + [0.0] * (len(ids) - len(head_ids) - len(steps_ids))
    return ids + tok.encode(str(digit)), [*weights, digit_weight]


def _judge_sampler(train: Sequence[ArithProblem], onpolicy: Sequence[tuple[ArithProblem, int, str]], share: float,
                   rng: random.Random, tok: PhraseTokenizer, digit_weight: float = 1.0,
                   reject_weight: float = 1.0) -> Callable[[], Example]:
    """Judge conversations: with probability ``share`` a drafter's own step (label 9 if it is
    right, else U{0..3}); otherwise a reference step, correct or corrupted 50/50. The digit's
    loss weight is ``digit_weight``, times ``reject_weight`` for a wrong step's label."""

    def item() -> Example:
        if onpolicy and rng.random() < share:
            p, i, draft = onpolicy[rng.randrange(len(onpolicy))]
        else:
            p = train[rng.randrange(len(train))]
            i = rng.randrange(len(p.steps))
            draft = p.steps[i] if rng.random() < 0.5 else corrupt_step(p, i, rng)
        if draft == p.steps[i]:
            return judge_example(p, i, draft, 9, tok, digit_weight)
        return judge_example(p, i, draft, rng.randint(0, 3), tok, digit_weight * reject_weight)

    return item


def _base_batches(train: Sequence[ArithProblem], tok: PhraseTokenizer, rng: random.Random,
                  judge_item: Callable[[], Example], n_traces: int, n_judge: int) -> Callable[[int], list[Example]]:
    """The base model's batches: ``n_traces`` solution traces, then ``n_judge`` judge conversations."""

    def batch(_step: int) -> list[Example]:
        traces = [trace_example(train[rng.randrange(len(train))], tok) for _ in range(n_traces)]
        return traces + [judge_item() for _ in range(n_judge)]

    return batch


# Stages 1, 2b, 2c and 2d each draw on-policy drafts from their own slice of ``onpolicy_problems``
# training problems, in that order; stage 2e's pools come after these slices.
_ONPOLICY_SLICES = 4


def _onpolicy_slice(cfg: PairTrainConfig, k: int) -> slice:
    """Training problems ``[k * n, (k + 1) * n)`` with ``n = onpolicy_problems``: stage ``k``'s drafts."""
    return slice(k * cfg.onpolicy_problems, (k + 1) * cfg.onpolicy_problems)


def _drafts(small: TinyGPT, tok: PhraseTokenizer, problems: Sequence[ArithProblem],
            seed: int) -> list[tuple[ArithProblem, int, str]]:
    """The drafter's own sampled steps (temperature 0.6) on ``problems``, for the judge data."""
    drafter = TinyGPTBackend(small, tok, generation_prompt=GENERATION_PROMPT)
    return step_accuracy(drafter, problems, temperature=0.6, seed=seed)[1]


# -- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairTrainConfig(Config):
    """How ``train_pair`` builds the pair. Defaults produce the shipped ``arith-v1``."""

    seed: int = 0
    """Seeds problems, corruptions, initialisation and batches."""
    small: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=1, block_size=256, n_layer=2,
                                                               n_head=4, n_embd=128))
    """The drafter's shape (``vocab_size`` is set from the tokenizer)."""
    base: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=1, block_size=256, n_layer=6,
                                                              n_head=6, n_embd=192))
    """The base model's shape (``vocab_size`` is set from the tokenizer)."""
    train_problems: int = 60_000
    """Training problems (seeded); held-out problems exclude them by text hash."""
    small_max_steps: int = 2500
    """Most optimizer steps of the drafter."""
    small_eval_every: int = 100
    """Evaluate the drafter's held-out step error this often (steps)..."""
    small_first_eval: int = 500
    """...from this step on (before it, every step is still wrong)."""
    small_error_band: tuple[float, float] = (0.10, 0.30)
    """Stop the drafter at the first evaluation whose held-out step error is in this band."""
    small_batch: int = 32
    small_lr: float = 3e-3
    small_refine_steps: int = 2000
    """Most extra drafter steps after the base is trained (stage 2), until its error is in the band."""
    small_refine_lr: float = 1e-3
    base_refine_steps: int = 5000
    """Extra base steps in stage 2 (fresh optimizer, same data mix)."""
    base_refine_lr: float = 1.5e-3
    base_steps: int = 1000
    """Optimizer steps of the base model."""
    base_batch_traces: int = 12
    """Solution traces per base batch."""
    base_batch_judge: int = 12
    """Judge conversations per base batch."""
    base_lr: float = 2e-3
    judge_refine_steps: int = 4000
    """Stage 2c: base steps on a judge-heavy mix after both refinements (fresh optimizer)."""
    judge_refine_lr: float = 1e-3
    judge_batch_traces: int = 8
    """Solution traces per stage-2c batch (they keep the step writing from drifting)."""
    judge_batch_judge: int = 16
    """Judge conversations per stage-2c batch."""
    judge_digit_weight: float = 40.0
    """Loss weight of the score digit in stage 2c (1 elsewhere). Design choice: with weight 1 the
    one digit per conversation is about 1% of a batch's loss, and after stage 2b the judge still
    emitted ``9`` for every draft (synthetic AUROC 0.54)."""
    judge_onpolicy_share: float = 0.5
    """Share of stage-2c (and 2d) judge examples that use the refined drafter's own drafts."""
    calib_steps: int = 1000
    """Stage 2d: base steps on the stage-2c mix whose wrong-step labels weigh ``calib_reject_weight``
    times more (fresh optimizer, fresh on-policy drafts)."""
    calib_lr: float = 5e-4
    calib_reject_weight: float = 4.0
    """Design choice (stage 2d): a wrong step's label is one of four digits (U{0..3}, spec §5) and
    a right step's is ``9``, so a judge unsure of a step puts at most a quarter of its doubt on
    any one low digit, and greedy scoring (the argmax token) rejects only when it thinks a wrong
    step four times likelier than a right one: after stage 2c it accepted 82% of the drafter's
    wrong steps. Weighting each low label 4x makes the argmax compare the whole P(wrong) with
    P(right); the labels themselves stay the spec's."""
    pool_rounds: int = 0
    """Stage 2e: rounds of base steps on a judge mix drawn mostly from a large pool of fresh
    drafts, wrong steps' labels weighted ``calib_reject_weight``; each round has its own pool,
    a fresh optimizer, and starts from the fp16 files of the round before. Off by default, so
    the defaults are the shipped pair's: three rounds from the shipped files (measured in
    docs/systems/specreason.md) made both models better (base problem accuracy 30% -> 43%,
    judge AUROC on drafts 0.85 -> 0.91) but widened specreason@7's accuracy gap to the base
    (-6.2 -> -10.1 points over 800 runs) and lost SpecReason+SD's lead over SD."""
    pool_steps: int = 3000
    """Base steps per stage-2e round."""
    pool_problems: int = 3000
    """Training problems per round (from 1,600 on, after the four 400-problem slices of the
    earlier stages) whose steps the refined drafter writes for that round's pool (about 16,000
    drafts)."""
    pool_lr: float = 5e-4
    pool_onpolicy_share: float = 0.75
    """Share of stage-2e judge examples drawn from the pool. Design choice: stages 2c and 2d drew
    half their judge examples from 400 problems' drafts (about 2,000, seen ~16 times each), and
    the judge learned to reject most of the drafter's wrong multiplications but still accepted
    82% of its wrong additions and 65% of its wrong subtractions, whose errors sit in the middle
    digits, unlike the spec's synthetic corruptions (off by 1-9 in the result, or a wrong
    operand or operator). The base's own likelihood of those drafts separates them well (AUROC
    0.97 for +, 0.94 for -), so the knowledge is in the model; the pool is what the judge lacked."""
    onpolicy_problems: int = 400
    """Training problems whose steps the trained drafter writes (sampled) to add to the judge data."""
    onpolicy_share: float = 0.35
    """Share of judge examples that use the drafter's own drafts."""
    eval_problems: int = 100
    """Held-out problems for the manifest's metrics."""
    threads: int = 1
    """torch threads while training (stage 1)."""
    refine_threads: int = 2
    """torch threads in stage 2 (refinement and measurement); 0 means ``threads``. CPU matmuls
    may round differently with another thread count, so bit-exact weights need the same values."""

    def __post_init__(self) -> None:
        for name in ("train_problems", "small_max_steps", "small_eval_every", "small_first_eval", "small_batch",
                     "small_refine_lr", "small_lr", "base_lr", "base_steps", "eval_problems", "threads",
                     "judge_refine_lr", "judge_digit_weight", "calib_lr", "calib_reject_weight", "pool_lr"):
            check_positive(name, getattr(self, name))
        for name in ("base_batch_traces", "base_batch_judge", "onpolicy_problems", "refine_threads",
                     "small_refine_steps", "base_refine_steps", "judge_refine_steps", "judge_batch_traces",
                     "calib_steps", "pool_rounds", "pool_steps", "pool_problems"):
            check_range(name, getattr(self, name), lo=0)
        for name in ("onpolicy_share", "judge_onpolicy_share", "pool_onpolicy_share"):
            check_range(name, getattr(self, name), lo=0.0, hi=1.0)
        check_range("judge_batch_judge", self.judge_batch_judge, lo=1)
        lo, hi = self.small_error_band
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError("small_error_band", self.small_error_band, "must be (lo, hi) with 0 <= lo <= hi <= 1")


# -- training loop -------------------------------------------------------------------------------
def _batch(examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = max(len(ids) for ids, _ in examples)
    x = torch.zeros(len(examples), n, dtype=torch.long)  # (B, T), padded with <eos> = 0
    w = torch.zeros(len(examples), n)  # (B, T)
    for r, (ids, wt) in enumerate(examples):
        x[r, : len(ids)] = torch.tensor(ids)
        w[r, : len(wt)] = torch.tensor(wt)
    return x[:, :-1], x[:, 1:], w[:, 1:]  # inputs, targets, target weights: (B, T-1) each


def _lr(step: int, total: int, peak: float) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))


def train_steps(model: TinyGPT, make_batch: Callable[[int], Sequence[Example]], steps: int, lr: float,
                *, total: int | None = None, start: int = 0,
                opt: torch.optim.Optimizer | None = None) -> tuple[list[float], torch.optim.Optimizer]:
    """``steps`` AdamW steps on ``make_batch(step)``; weighted next-token loss. Returns losses, optimizer."""
    opt = opt or torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    total = total or steps
    model.train()
    losses: list[float] = []
    for step in range(start, start + steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, total, lr)
        x, y, w = _batch(make_batch(step))
        logits, _ = model(x)  # (B, T, V)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")  # (B*T,)
        loss = (ce * w.reshape(-1)).sum() / w.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses, opt


# -- evaluation ----------------------------------------------------------------------------------
def step_accuracy(backend: TinyGPTBackend, problems: Sequence[ArithProblem], *, max_tokens: int = 48,
                  temperature: float = 0.0, seed: int = 0) -> tuple[float, list[tuple[ArithProblem, int, str]]]:
    """Share of reference steps the model writes exactly, given the reference steps before them.

    Returns the accuracy and every ``(problem, step index, written text)``.
    """
    written: list[tuple[ArithProblem, int, str]] = []
    ok = 0
    for n, p in enumerate(problems):
        prompt = math_prompt(p.text)
        ref = p.steps
        for i in range(len(ref)):
            messages, flags = step_messages(prompt, ref[:i])
            params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=0.95,
                                    seed=seed * 1_000_003 + 64 * n + i, stop=(SEP,))
            text = backend.chat(messages, params, **flags).text
            written.append((p, i, text))
            ok += text == ref[i]
    return ok / max(1, len(written)), written


def _auroc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(score of a correct draft > score of a wrong one), ties counting one half; None if a side is empty."""
    if not pos or not neg:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def judge_scores(base: TinyGPTBackend, items: Sequence[tuple[ArithProblem, int, str]]) -> list[tuple[float, float]]:
    """(greedy, average) judge scores of each ``(problem, step index, draft)`` (spec §2.2)."""
    from .loop import score_tokens

    out: list[tuple[float, float]] = []
    for p, i, draft in items:
        top = base.next_token(judge_messages(math_prompt(p.text), p.steps[:i], draft), k=10,
                              add_generation_prompt=False, continue_final_message=True).top
        out.append((score_tokens(top, "greedy"), score_tokens(top, "average")))
    return out


def _problem_accuracy(backend: TinyGPTBackend, problems: Sequence[ArithProblem]) -> float:
    from .config import SpecReasonConfig
    from .grader import grade
    from .loop import vanilla

    cfg = SpecReasonConfig(temperature=0.0, token_budget=256, step_max_tokens=48)
    return sum(grade(vanilla(backend, p.text, config=cfg).answer, str(p.answer), "int")
               for p in problems) / max(1, len(problems))


# -- the pair ------------------------------------------------------------------------------------
@dataclass
class Pair:
    """The loaded pair: both models, their shared tokenizer and the manifest."""

    small: TinyGPT
    base: TinyGPT
    tokenizer: PhraseTokenizer
    manifest: dict[str, Any]

    def backends(self, *, prefix_cache_entries: int = 8) -> tuple[TinyGPTBackend, TinyGPTBackend]:
        """(small, base) as LLM backends with the pair's template and prefix KV reuse."""
        name = self.manifest.get("name", "pair")
        return (
            TinyGPTBackend(self.small, self.tokenizer, name=f"{name}:small", prefix_cache_entries=prefix_cache_entries,
                           generation_prompt=GENERATION_PROMPT),
            TinyGPTBackend(self.base, self.tokenizer, name=f"{name}:base", prefix_cache_entries=prefix_cache_entries,
                           generation_prompt=GENERATION_PROMPT),
        )


def train_pair(out_dir: Path, config: PairTrainConfig | None = None, *, name: str = "arith-v1",
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the pair (deterministic per ``config.seed``), write it to ``out_dir``; return the manifest.

    ``out_dir`` must be new, empty, or hold a pair from an earlier run (nothing else): it is
    checked before the first training step (ConfigError otherwise), since saving replaces it.
    """
    out_dir = check_out_dir(out_dir)
    cfg = config or PairTrainConfig()
    say = log or (lambda _msg: None)
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    tok = PhraseTokenizer.default()
    small_cfg = replace(cfg.small, vocab_size=tok.vocab_size)
    base_cfg = replace(cfg.base, vocab_size=tok.vocab_size)
    train = generate(cfg.train_problems, seed=cfg.seed)
    hashes = {text_hash(p.text) for p in train}
    evals = list(held_out(cfg.eval_problems, seed=_HELD_OUT_SEED + cfg.seed, exclude=hashes))
    stop_probe = evals[: max(20, cfg.eval_problems // 2)]

    # 1. The drafter: traces only; stop once its held-out step error is inside the band.
    small = TinyGPT(small_cfg, seed=cfg.seed)
    rng_s = random.Random(cfg.seed * 7 + 1)

    def small_batch(_step: int) -> list[Example]:
        return [trace_example(train[rng_s.randrange(len(train))], tok) for _ in range(cfg.small_batch)]

    opt: torch.optim.Optimizer | None = None
    small_err, small_steps = 1.0, 0
    lo, hi = cfg.small_error_band
    while small_steps < cfg.small_max_steps:
        losses, opt = train_steps(small, small_batch, cfg.small_eval_every, cfg.small_lr,
                                  total=cfg.small_max_steps, start=small_steps, opt=opt)
        small_steps += cfg.small_eval_every
        if small_steps < cfg.small_first_eval:
            say(f"small step {small_steps} loss {losses[-1]:.3f}")
            continue
        probe = TinyGPTBackend(small, tok, generation_prompt=GENERATION_PROMPT)
        small_err = 1.0 - step_accuracy(probe, stop_probe)[0]
        say(f"small step {small_steps} loss {losses[-1]:.3f} held-out step error {small_err:.3f}")
        if lo <= small_err <= hi:
            break
    t_small = time.perf_counter() - t0

    # 2. The drafter's own sampled drafts on training problems, for the judge data.
    onpolicy = _drafts(small, tok, train[_onpolicy_slice(cfg, 0)], cfg.seed)
    say(f"on-policy drafts: {len(onpolicy)}, wrong {sum(t != p.steps[i] for p, i, t in onpolicy)}")

    # 3. The base model: traces and judge conversations.
    base = TinyGPT(base_cfg, seed=cfg.seed + 1)
    rng_b = random.Random(cfg.seed * 7 + 2)

    judge_item = _judge_sampler(train, onpolicy, cfg.onpolicy_share, rng_b, tok)
    base_batch = _base_batches(train, tok, rng_b, judge_item, cfg.base_batch_traces, cfg.base_batch_judge)

    chunk = max(1, cfg.base_steps // 20)
    opt = None
    done = 0
    while done < cfg.base_steps:
        n = min(chunk, cfg.base_steps - done)
        losses, opt = train_steps(base, base_batch, n, cfg.base_lr, total=cfg.base_steps, start=done, opt=opt)
        done += n
        say(f"base step {done}/{cfg.base_steps} loss {sum(losses) / len(losses):.4f} "
            f"({time.perf_counter() - t0:.0f}s)")
    t_train = time.perf_counter() - t0

    interim: dict[str, Any] = {
        "format": PAIR_FORMAT,
        "name": name,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "models": {"small": small_cfg.to_dict(), "base": base_cfg.to_dict()},
        "params": {"small": small.num_params(), "base": base.num_params()},
        "generation_prompt": GENERATION_PROMPT,
        "train_seconds": {"small": round(t_small, 1), "stage1_total": round(t_train, 1)},
        "small_stage1": {"steps": small_steps, "held_out_step_error": small_err},
        "torch": torch.__version__,
        "threads": cfg.threads,
    }
    save_pair(out_dir, small, base, tok, interim, complete=False)
    return finish_pair(out_dir, cfg, log=log)


def _problems(cfg: PairTrainConfig) -> tuple[list[ArithProblem], list[ArithProblem]]:
    train = generate(cfg.train_problems, seed=cfg.seed)
    hashes = {text_hash(p.text) for p in train}
    return train, list(held_out(cfg.eval_problems, seed=_HELD_OUT_SEED + cfg.seed, exclude=hashes))


def _train_logged(model: TinyGPT, make_batch: Callable[[int], Sequence[Example]], steps: int, lr: float,
                  label: str, say: Callable[[str], None]) -> int:
    """``steps`` steps of one cosine schedule (fresh optimizer), reporting the mean loss ten times."""
    chunk = max(1, steps // 10)
    done = 0
    opt: torch.optim.Optimizer | None = None
    while done < steps:
        n = min(chunk, steps - done)
        losses, opt = train_steps(model, make_batch, n, lr, total=steps, start=done, opt=opt)
        done += n
        say(f"{label} step {done}/{steps} loss {sum(losses) / len(losses):.4f}")
    return done


def refine_small(pair: Pair, cfg: PairTrainConfig, say: Callable[[str], None]) -> tuple[int, float]:
    """Stage 2a: more drafter steps (fresh optimizer) until its held-out step error is in the band.

    Depends only on the stage-1 files and the seed. Returns (steps taken, last probe error).
    """
    train, evals = _problems(cfg)
    stop_probe = evals[: max(20, cfg.eval_problems // 2)]
    lo, hi = cfg.small_error_band
    err = float(pair.manifest.get("small_stage1", {}).get("held_out_step_error", 1.0))
    rng = random.Random(cfg.seed * 7 + 4)

    def batch(_step: int) -> list[Example]:
        return [trace_example(train[rng.randrange(len(train))], pair.tokenizer) for _ in range(cfg.small_batch)]

    steps = 0
    opt: torch.optim.Optimizer | None = None
    while not lo <= err <= hi and steps < cfg.small_refine_steps:
        losses, opt = train_steps(pair.small, batch, cfg.small_eval_every, cfg.small_refine_lr,
                                  total=cfg.small_refine_steps, start=steps, opt=opt)
        steps += cfg.small_eval_every
        probe = TinyGPTBackend(pair.small, pair.tokenizer, generation_prompt=GENERATION_PROMPT)
        err = 1.0 - step_accuracy(probe, stop_probe)[0]
        say(f"small refine step {steps} loss {losses[-1]:.3f} held-out step error {err:.3f}")
    return steps, err


def refine_base(pair: Pair, cfg: PairTrainConfig, say: Callable[[str], None]) -> int:
    """Stage 2b: ``base_refine_steps`` more base steps (fresh optimizer, same data mix; the
    on-policy drafts come from the stage-1 drafter as loaded). Depends only on the stage-1 files."""
    if cfg.base_refine_steps == 0:
        return 0
    train, _ = _problems(cfg)
    tok = pair.tokenizer
    onpolicy = _drafts(pair.small, tok, train[_onpolicy_slice(cfg, 1)], cfg.seed + 1)
    rng = random.Random(cfg.seed * 7 + 5)
    judge_item = _judge_sampler(train, onpolicy, cfg.onpolicy_share, rng, tok)
    batch = _base_batches(train, tok, rng, judge_item, cfg.base_batch_traces, cfg.base_batch_judge)
    return _train_logged(pair.base, batch, cfg.base_refine_steps, cfg.base_refine_lr, "base refine", say)


def refine_judge(pair: Pair, cfg: PairTrainConfig, say: Callable[[str], None]) -> int:
    """Stage 2c: ``judge_refine_steps`` base steps on a judge-heavy mix, the score digit weighted
    ``judge_digit_weight``; the on-policy drafts come from the (refined) drafter as loaded.
    Depends only on the files saved after stages 2a-2b and the seed."""
    return _judge_stage(pair, cfg, steps=cfg.judge_refine_steps, lr=cfg.judge_refine_lr, reject_weight=1.0,
                        problems=_onpolicy_slice(cfg, 2), draft_seed=cfg.seed + 2,
                        share=cfg.judge_onpolicy_share, seed=cfg.seed * 7 + 6, label="judge refine", say=say)


def calibrate_judge(pair: Pair, cfg: PairTrainConfig, say: Callable[[str], None]) -> int:
    """Stage 2d: ``calib_steps`` base steps on the stage-2c mix with every wrong step's label
    weighted ``calib_reject_weight`` more (see that field), on fresh on-policy drafts.
    Depends only on the files saved after stage 2c and the seed."""
    return _judge_stage(pair, cfg, steps=cfg.calib_steps, lr=cfg.calib_lr, reject_weight=cfg.calib_reject_weight,
                        problems=_onpolicy_slice(cfg, 3), draft_seed=cfg.seed + 3,
                        share=cfg.judge_onpolicy_share, seed=cfg.seed * 7 + 8, label="judge calibrate", say=say)


def pool_judge(pair: Pair, cfg: PairTrainConfig, say: Callable[[str], None], round_: int = 0) -> int:
    """Stage 2e, round ``round_``: ``pool_steps`` base steps on the 2d mix (wrong labels weighted
    ``calib_reject_weight``) whose judge examples come ``pool_onpolicy_share`` of the time from
    the drafter's drafts on that round's ``pool_problems`` fresh training problems (see
    ``pool_onpolicy_share``). Depends only on the files saved before the round and the seed."""
    lo = _ONPOLICY_SLICES * cfg.onpolicy_problems + round_ * cfg.pool_problems
    return _judge_stage(pair, cfg, steps=cfg.pool_steps, lr=cfg.pool_lr, reject_weight=cfg.calib_reject_weight,
                        problems=slice(lo, lo + cfg.pool_problems), draft_seed=cfg.seed + _ONPOLICY_SLICES + round_,
                        share=cfg.pool_onpolicy_share, seed=cfg.seed * 7 + 4242 + round_,
                        label=f"judge pool {round_}", say=say)


def _judge_stage(pair: Pair, cfg: PairTrainConfig, *, steps: int, lr: float, reject_weight: float,
                 problems: slice, draft_seed: int, share: float, seed: int, label: str,
                 say: Callable[[str], None]) -> int:
    """Base steps on ``judge_batch_traces`` traces + ``judge_batch_judge`` judge conversations, a
    ``share`` of the latter on drafts the drafter wrote (sampling seed ``draft_seed``) on the
    training ``problems``."""
    if steps == 0:
        return 0
    train, _ = _problems(cfg)
    tok = pair.tokenizer
    onpolicy = _drafts(pair.small, tok, train[problems], draft_seed)
    say(f"{label}: on-policy drafts {len(onpolicy)}, wrong {sum(t != p.steps[i] for p, i, t in onpolicy)}")
    rng = random.Random(seed)
    judge_item = _judge_sampler(train, onpolicy, share, rng, tok, cfg.judge_digit_weight, reject_weight)
    batch = _base_batches(train, tok, rng, judge_item, cfg.judge_batch_traces, cfg.judge_batch_judge)
    return _train_logged(pair.base, batch, steps, lr, label, say)


def finish_pair(out_dir: Path, config: PairTrainConfig | None = None, *,
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Stage 2 of :func:`train_pair`, from the saved fp16 weights: refine the base model
    (:func:`refine_base`) and the drafter (:func:`refine_small`), train the judge
    (:func:`refine_judge`), calibrate it (:func:`calibrate_judge`) and train it on a large pool
    of drafts (:func:`pool_judge`), then measure everything on held-out problems and write the
    final manifest. ``config`` defaults to the one recorded in the saved manifest (the config
    stage 1 ran with), so ``finish_pair(DIR)`` completes an interrupted ``train-pair -o DIR``.

    Design choice: stage 1 is capped so that each model gets a share of a fixed CPU budget;
    stage 2 starts from the saved fp16 files with fresh optimizers, so each refinement depends
    only on those files and the seed (the two are independent and may run in parallel).
    """
    out_dir = Path(out_dir).resolve()
    pair = load_pair_models(out_dir, allow_unfinished=True)
    cfg = config or (PairTrainConfig.from_dict(pair.manifest["config"]) if "config" in pair.manifest
                     else PairTrainConfig())
    say = log or (lambda _msg: None)
    torch.set_num_threads(cfg.refine_threads or cfg.threads)
    t0 = time.perf_counter()
    stage1 = load_pair_models(out_dir, allow_unfinished=True)  # the base's on-policy drafts: the stage-1 drafter's
    base_steps = refine_base(Pair(stage1.small, pair.base, pair.tokenizer, pair.manifest), cfg, say)
    small_steps, small_err = refine_small(pair, cfg, say)
    extra = {"small_refine_steps": small_steps, "base_refine_steps": base_steps,
             "small_final_probe_step_error": small_err}
    # Stages 2c, 2d and 2e each start from the fp16 files of the stage before, as a resumed run would.
    if cfg.judge_refine_steps:
        pair = _resave(out_dir, pair, "stage2ab", extra)
    extra["judge_refine_steps"] = refine_judge(pair, cfg, say)
    if cfg.calib_steps:
        pair = _resave(out_dir, pair, "stage2c", extra)
    extra["calib_steps"] = calibrate_judge(pair, cfg, say)
    extra["pool_steps"] = 0
    for r in range(cfg.pool_rounds if cfg.pool_steps else 0):
        pair = _resave(out_dir, pair, f"stage2e_round{r - 1}" if r else "stage2d", extra)
        extra["pool_steps"] += pool_judge(pair, cfg, say, r)
    return measure_pair(out_dir, pair, cfg, extra, time.perf_counter() - t0, say)


def _resave(out_dir: Path, pair: Pair, stage: str, extra: Mapping[str, Any]) -> Pair:
    """Save ``pair`` in fp16 with ``extra`` recorded under ``stage`` in its manifest; reload it."""
    save_pair(out_dir, pair.small, pair.base, pair.tokenizer, {**pair.manifest, stage: dict(extra)}, complete=False)
    return load_pair_models(out_dir, allow_unfinished=True)


def measure_pair(out_dir: Path, pair: Pair, cfg: PairTrainConfig, extra: dict[str, Any], refine_s: float,
                 say: Callable[[str], None]) -> dict[str, Any]:
    """Save ``pair`` as fp16, reload it, measure it on held-out problems, write the final manifest."""
    save_pair(out_dir, pair.small, pair.base, pair.tokenizer, pair.manifest, complete=False)
    t0 = time.perf_counter()
    pair = load_pair_models(out_dir, allow_unfinished=True)  # measure exactly what ships (fp16-rounded)
    small, base, tok = pair.small, pair.base, pair.tokenizer
    _, evals = _problems(cfg)
    small_b = TinyGPTBackend(small, tok, generation_prompt=GENERATION_PROMPT)
    base_b = TinyGPTBackend(base, tok, generation_prompt=GENERATION_PROMPT)
    small_acc, small_written = step_accuracy(small_b, evals)
    base_acc, _ = step_accuracy(base_b, evals)
    jrng = random.Random(cfg.seed * 7 + 3)
    synth = [(p, i, p.steps[i]) for p in evals for i in range(len(p.steps))]
    synth += [(p, i, corrupt_step(p, i, jrng)) for p in evals for i in range(len(p.steps))]
    s_scores = judge_scores(base_b, synth)
    s_pos = [s[1] for (p, i, d), s in zip(synth, s_scores, strict=True) if d == p.steps[i]]
    s_neg = [s[1] for (p, i, d), s in zip(synth, s_scores, strict=True) if d != p.steps[i]]
    o_scores = judge_scores(base_b, small_written)
    o_pos = [s for (p, i, d), s in zip(small_written, o_scores, strict=True) if d == p.steps[i]]
    o_neg = [s for (p, i, d), s in zip(small_written, o_scores, strict=True) if d != p.steps[i]]
    accept7 = [s[0] >= 7 for s in o_scores]
    metrics = {
        "held_out_problems": len(evals),
        "small_step_accuracy": small_acc,
        "base_step_accuracy": base_acc,
        "small_problem_accuracy": _problem_accuracy(small_b, evals),
        "base_problem_accuracy": _problem_accuracy(base_b, evals),
        "judge_auroc_synthetic": _auroc(s_pos, s_neg),
        "judge_auroc_small_drafts": _auroc([s[1] for s in o_pos], [s[1] for s in o_neg]),
        "judge_accept_rate_at_7_small_drafts": sum(accept7) / max(1, len(accept7)),
        "judge_false_accept_rate_at_7": sum(s[0] >= 7 for s in o_neg) / max(1, len(o_neg)),
        "judge_false_reject_rate_at_7": sum(s[0] < 7 for s in o_pos) / max(1, len(o_pos)),
        **extra,
    }
    say("metrics " + json.dumps(metrics))
    manifest = {k: v for k, v in pair.manifest.items() if k != "files"}
    manifest["config"] = cfg.to_dict()
    manifest["metrics"] = metrics
    manifest["train_seconds"] = {**manifest.get("train_seconds", {}), "stage2_refine": round(refine_s, 1)}
    manifest["eval_seconds"] = round(time.perf_counter() - t0, 1)
    save_pair(out_dir, small, base, tok, manifest, complete=True)
    return json.loads((Path(out_dir) / "manifest.json").read_text())  # type: ignore[no-any-return]


PAIR_FILES = ("small.pt", "base.pt", "tokenizer.json", "manifest.json")
"""What a pair directory holds, and all it may hold before ``train-pair`` replaces it."""


def _holds_pair(path: Path) -> bool:
    """True when ``path/manifest.json`` is a manifest of :data:`PAIR_FORMAT`."""
    try:
        doc = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == PAIR_FORMAT


def check_out_dir(out_dir: Path) -> Path:
    """``out_dir`` made absolute, after checking that a pair may be written there.

    Saving a pair replaces the whole directory, so it must not exist, be empty, or hold an
    earlier pair and nothing else; ConfigError naming it otherwise. ``.`` names the working
    directory, exactly as its absolute path does.
    """
    out = Path(out_dir).resolve()
    if not out.exists():
        return out
    entries = sorted(os.listdir(out)) if out.is_dir() else None
    if entries is None or (entries and not _holds_pair(out)):
        raise ConfigError("out", str(out), "exists and is not a specreason pair directory; "
                                           "choose an empty or new directory")
    foreign = [e for e in entries if e not in PAIR_FILES]
    if foreign:
        raise ConfigError("out", str(out), f"holds a specreason pair but also {', '.join(foreign)}, which saving "
                                           "the pair would delete; choose an empty or new directory")
    return out


def save_pair(out_dir: Path, small: TinyGPT, base: TinyGPT, tok: PhraseTokenizer, manifest: dict[str, Any], *,
              complete: bool = False) -> Path:
    """Write fp16 weights, the tokenizer and ``manifest.json`` (with every file's sha256) atomically.

    ``complete`` is recorded in the manifest: False for a stage's interim files, which
    :func:`load_pair` refuses; True for the finished pair. ``out_dir`` is checked by
    :func:`check_out_dir` first (the save replaces the whole directory).
    """
    out = check_out_dir(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for role, model in (("small", small), ("base", base)):
            state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
            torch.save(state, tmp / f"{role}.pt")
        (tmp / "tokenizer.json").write_text(json.dumps(tok.to_dict(), indent=1) + "\n")
        files = {f: sha256_file(tmp / f) for f in ("small.pt", "base.pt", "tokenizer.json")}
        doc = {**manifest, "files": files, "complete": complete}
        (tmp / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out


# -- loading -------------------------------------------------------------------------------------
def pair_dir(name: str = "arith-v1") -> Path:
    """Directory of a shipped pair (package data under ``tenfold/systems/specreason/weights``)."""
    from importlib.resources import files

    root = Path(str(files("tenfold.systems.specreason"))) / "weights"
    known = sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []
    if name not in known:
        raise UnknownNameError("specreason pair", name, known)
    return root / name


def _pair_path(name_or_path: str | Path) -> Path:
    """The directory of a pair given as a directory (one holding ``manifest.json``) or a shipped name.

    A directory without ``manifest.json`` raises AssetError saying so; a bare name that is
    not shipped raises UnknownNameError listing the shipped ones.
    """
    path = Path(name_or_path)
    if (path / "manifest.json").is_file():
        return path
    text = str(name_or_path)
    looks_like_dir = os.sep in text or "/" in text or path.exists()
    if not looks_like_dir:
        return pair_dir(text)
    if not path.exists():
        raise AssetError(f"specreason pair directory {path} does not exist; "
                         "train a pair into it with: tenfold specreason train-pair -o DIR")
    if not path.is_dir():
        raise AssetError(f"{path} is not a directory: a specreason pair is a directory holding manifest.json")
    raise AssetError(f"{path} lacks manifest.json, so it is not a specreason pair directory; "
                     "train a pair into it with: tenfold specreason train-pair -o DIR")


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise AssetError(f"{path / 'manifest.json'} is missing or unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != PAIR_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise AssetError(f"{path / 'manifest.json'} has format {found!r}, not {PAIR_FORMAT!r}")
    return manifest


def pair_manifest(name_or_path: str | Path = "arith-v1") -> dict[str, Any]:
    """The manifest of a shipped pair or a pair directory, read without hashing or loading the weights."""
    return _read_manifest(_pair_path(name_or_path))


def verify_manifest(path: Path) -> dict[str, Any]:
    """Read ``manifest.json`` in ``path`` and check every listed file's sha256; AssetError names a mismatch."""
    path = Path(path)
    manifest = _read_manifest(path)
    for fname, want in manifest.get("files", {}).items():
        f = path / fname
        if not f.is_file():
            raise AssetError(f"{f} is listed in the manifest but missing")
        got = sha256_file(f)
        if got != want:
            raise AssetError(f"{f} has sha256 {got}, but the manifest expects {want}; "
                             "the weights are corrupt or were replaced")
    return manifest


def load_pair_models(name_or_path: str | Path = "arith-v1", *, allow_unfinished: bool = False) -> Pair:
    """Load a shipped pair by name, or a directory written by :func:`train_pair`, after checking hashes.

    A pair whose manifest says ``"complete": false`` (training was interrupted) raises
    AssetError naming the directory, unless ``allow_unfinished`` (stage 2 loads the files
    an earlier stage saved).
    """
    path = _pair_path(name_or_path)
    manifest = verify_manifest(path)
    if manifest.get("complete", True) is not True and not allow_unfinished:
        raise AssetError(
            f"{path} holds an unfinished specreason pair (manifest.json says \"complete\": false: train-pair "
            f"stopped before its final save); finish it with finish_pair(Path({str(path)!r})) from "
            "tenfold.systems.specreason.pair (stage 2 from the saved files, with the config in the manifest), "
            f"or train it again with: tenfold specreason train-pair -o {path}")
    tok = PhraseTokenizer.from_dict(json.loads((path / "tokenizer.json").read_text()))
    models: dict[str, TinyGPT] = {}
    for role in ("small", "base"):
        model = TinyGPT(GPTConfig.from_dict(manifest["models"][role]))
        state = torch.load(path / f"{role}.pt", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.eval()
        models[role] = model
    return Pair(models["small"], models["base"], tok, manifest)


def load_pair(name: str | Path = "arith-v1") -> tuple[TinyGPTBackend, TinyGPTBackend]:
    """(small, base) backends of a shipped pair or a pair directory (spec §3 ``load_pair``).

    An unknown name raises UnknownNameError listing the shipped pairs; a directory without
    ``manifest.json``, a hash mismatch or an unfinished pair raises AssetError.
    """
    return load_pair_models(name).backends()
