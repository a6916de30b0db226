"""Arithmetic chains (spec §5): seeded, checkable multi-step problems with one step per operation.

A chain starts at U[2, 99] and applies U{3..6} operations: ``+U[1,99]`` (35%), ``-U[1,99]``
(35%), ``*U[2,9]`` (20%), ``*U[11,29]`` (10%). Values stay in [0, 9999]; an operation that would
leave that range is drawn again. Each operation is one step (``Add 25: 17 + 25 = 42.``), and the
last step is ``The answer is \\boxed{86}.``; steps are joined by a blank line.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from tenfold.core.config import check_range

from .prompts import SEP

__all__ = ["ArithProblem", "Operation", "generate", "held_out", "text_hash"]

_MAX_VALUE = 9999


@dataclass(frozen=True)
class Operation:
    """One operation of a chain: ``op`` is ``+``, ``-`` or ``*``."""

    op: str
    operand: int

    def apply(self, value: int) -> int:
        if self.op == "+":
            return value + self.operand
        if self.op == "-":
            return value - self.operand
        return value * self.operand

    @property
    def verb(self) -> str:
        return {"+": "add", "-": "subtract", "*": "multiply by"}[self.op]


@dataclass(frozen=True)
class ArithProblem:
    """A chain, its problem text, its reference steps and its integer answer."""

    start: int
    ops: tuple[Operation, ...]

    @property
    def values(self) -> list[int]:
        """The running value after the start and after each operation."""
        out = [self.start]
        for op in self.ops:
            out.append(op.apply(out[-1]))
        return out

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def text(self) -> str:
        parts = [f"{op.verb} {op.operand}" for op in self.ops]
        said = ", ".join(parts[:-1]) + ", then " + parts[-1]
        return f"Start with {self.start}. {said[0].upper()}{said[1:]}. What is the result?"

    @property
    def steps(self) -> list[str]:
        vals = self.values
        out = [
            f"{op.verb[0].upper()}{op.verb[1:]} {op.operand}: {vals[i]} {op.op} {op.operand} = {vals[i + 1]}."
            for i, op in enumerate(self.ops)
        ]
        return [*out, f"The answer is \\boxed{{{self.answer}}}."]

    @property
    def solution(self) -> str:
        """The reference reasoning: the steps joined by blank lines."""
        return SEP.join(self.steps)


def _operation(rng: random.Random) -> Operation:
    u = rng.random()
    if u < 0.35:
        return Operation("+", rng.randint(1, 99))
    if u < 0.70:
        return Operation("-", rng.randint(1, 99))
    if u < 0.90:
        return Operation("*", rng.randint(2, 9))
    return Operation("*", rng.randint(11, 29))


def _one(rng: random.Random) -> ArithProblem:
    value = rng.randint(2, 99)
    start = value
    ops: list[Operation] = []
    for _ in range(rng.randint(3, 6)):
        while True:  # resample until the value stays in range (always possible: "+1" or "-1")
            op = _operation(rng)
            nxt = op.apply(value)
            if 0 <= nxt <= _MAX_VALUE:
                break
        ops.append(op)
        value = nxt
    return ArithProblem(start, tuple(ops))


def text_hash(text: str) -> str:
    """The hash that keeps held-out problems disjoint from training ones."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(n: int, seed: int) -> list[ArithProblem]:
    """``n`` chains from ``seed`` (the same seed always gives the same chains)."""
    check_range("n", n, lo=0)
    rng = random.Random(seed)
    return [_one(rng) for _ in range(n)]


def held_out(n: int, seed: int, exclude: set[str]) -> Iterator[ArithProblem]:
    """Up to ``n`` distinct chains from ``seed`` whose text hash is not in ``exclude``."""
    check_range("n", n, lo=0)
    rng = random.Random(seed)
    seen = set(exclude)
    made = 0
    for _ in range(100 * n + 100):
        if made == n:
            return
        p = _one(rng)
        h = text_hash(p.text)
        if h in seen:
            continue
        seen.add(h)
        made += 1
        yield p
