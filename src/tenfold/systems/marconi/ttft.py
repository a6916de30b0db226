"""Time-to-first-token models: prefill time as a function of the tokens left to compute.

Spec §2.6. TTFT = ``ttft(len(input) − reusable_len)``. A model is built from a profile of
(prefill length, milliseconds) pairs: measured on the tiny hybrid on this CPU
(:func:`profile_tiny_hybrid`), read from a CSV, or from a server. There is no default
profile: the paper's Jamba-1.5-Mini numbers are not shipped (non-commercial licence).
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tenfold.errors import ConfigError, TraceError

__all__ = ["LinearTTFT", "StepTTFT", "TTFTModel", "load_profile_csv", "profile_tiny_hybrid"]


class TTFTModel(Protocol):
    def __call__(self, n_tokens: int) -> float: ...


def _check_profile(lengths: Sequence[int], ms: Sequence[float]) -> None:
    if len(lengths) != len(ms) or len(lengths) < 2:
        raise ConfigError("profile", len(lengths), "needs at least 2 (length, ms) pairs of equal count")
    if list(lengths) != sorted(set(lengths)):
        raise ConfigError("profile.lengths", list(lengths), "must be strictly increasing")
    if lengths[0] < 1:
        raise ConfigError("profile.lengths", list(lengths), "must all be >= 1 token")
    if not all(math.isfinite(t) and t >= 0 for t in ms):
        raise ConfigError("profile.ms", list(ms), "must all be finite and >= 0")


@dataclass(frozen=True)
class LinearTTFT:
    """Least-squares line ``a + b·n``, shifted up to ``floor_ms`` where it goes below."""

    intercept_ms: float
    slope_ms: float
    floor_ms: float = 0.0

    @classmethod
    def fit(cls, lengths: Sequence[int], ms: Sequence[float], floor_ms: float | None = None) -> LinearTTFT:
        _check_profile(lengths, ms)
        n = len(lengths)
        mx = sum(lengths) / n
        my = sum(ms) / n
        sxx = sum((x - mx) ** 2 for x in lengths)
        slope = sum((x - mx) * (y - my) for x, y in zip(lengths, ms, strict=True)) / sxx
        return cls(my - slope * mx, slope, min(ms) if floor_ms is None else floor_ms)

    def __call__(self, n_tokens: int) -> float:
        if n_tokens <= 0:
            return 0.0
        return max(self.floor_ms, self.intercept_ms + self.slope_ms * n_tokens)


@dataclass(frozen=True)
class StepTTFT:
    """The time of the next larger profiled length (as the artifact does); beyond the
    last one, linear extrapolation from the last two points."""

    lengths: tuple[int, ...]
    ms: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_profile(self.lengths, self.ms)

    def __call__(self, n_tokens: int) -> float:
        if n_tokens <= 0:
            return 0.0
        i = bisect.bisect_left(self.lengths, n_tokens)
        if i < len(self.lengths):
            return self.ms[i]
        (x0, x1), (y0, y1) = self.lengths[-2:], self.ms[-2:]
        return y1 + (y1 - y0) / (x1 - x0) * (n_tokens - x1)


def load_profile_csv(path: str | Path) -> tuple[list[int], list[float]]:
    """A profile CSV with columns ``tokens,ms``."""
    p = Path(path)
    lengths: list[int] = []
    ms: list[float] = []
    try:
        with p.open(newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), 2):
                try:
                    lengths.append(int(row["tokens"]))
                    ms.append(float(row["ms"]))
                except (KeyError, TypeError, ValueError):
                    raise TraceError(f"{p}:{lineno}: need integer 'tokens' and numeric 'ms', got {row}") from None
    except FileNotFoundError:
        raise TraceError(f"{p}: no such profile file") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: not a readable UTF-8 CSV profile ({type(exc).__name__})") from None
    _check_profile(lengths, ms)
    return lengths, ms


def profile_tiny_hybrid(lengths: Sequence[int] = (64, 128, 256, 512, 1024, 2048), *, repeats: int = 3,
                        seed: int = 0) -> tuple[list[int], list[float]]:
    """Measured CPU prefill milliseconds of :class:`~.tiny_hybrid.TinyHybridLM` (median of
    ``repeats``, one thread)."""
    import time

    import torch

    from tenfold.systems.marconi.tiny_hybrid import TinyHybridLM

    torch.set_num_threads(1)
    model = TinyHybridLM.create(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    out: list[float] = []
    with torch.inference_mode():
        for n in lengths:
            ids = torch.randint(0, model.cfg.vocab, (n,), generator=gen)
            model.prefill(ids[:8], model.empty_state(), all_logits=False)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model.prefill(ids, model.empty_state(), all_logits=False)
                times.append((time.perf_counter() - t0) * 1e3)
            out.append(sorted(times)[len(times) // 2])
    return list(lengths), out
