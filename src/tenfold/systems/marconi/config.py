"""Marconi's configuration: cache policy, capacity, α, and the benchmark grid."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tenfold.core.config import Config, check_choice, check_range
from tenfold.errors import ConfigError

__all__ = ["HitRateBenchConfig", "MarconiConfig", "format_capacity", "parse_capacity"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_capacity(text: str | int, field: str = "capacity") -> int:
    """Bytes from ``"3GB"``, ``"512MiB"``, ``"1.5GB"`` or a plain integer.

    NOTE: KB/MB/GB/TB are decimal (10^9 bytes per GB), KiB/MiB/GiB binary; the paper's
    "GB" capacities are read as decimal (design choice).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if m is None or m.group(2).upper() not in _UNITS:
            raise ConfigError(field, text, "must be a size such as 3GB, 512MB, 2GiB or a byte count")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise ConfigError(field, text, "must be > 0 bytes")
    return value


def format_capacity(nbytes: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if nbytes >= size and nbytes % (size // 100) == 0:
            return f"{nbytes / size:g}{unit}"
    return f"{nbytes}B"


POLICY_NAMES = ("marconi", "static", "sglang+", "vllm+")


@dataclass(frozen=True)
class MarconiConfig(Config):
    policy: str = "marconi"
    """Cache policy: marconi, static (fixed α), sglang+ or vllm+."""
    capacity: str = "3GB"
    """Cache capacity in bytes, as a size string (3GB, 512MiB)."""
    preset: str = "nvidia-hybrid-7b"
    """Model preset whose checkpoint and KV sizes price the entries."""
    alpha: float | None = None
    """Fixed α (no tuning) when set; >= 0. Marconi tunes α online when None."""
    block_size: int = 32
    """vLLM+ block size in tokens; >= 1."""
    bootstrap_multiplier: int = 5
    """Tuning window W = m·N0 requests (15 for LMSys); >= 1."""
    retune_every: int | None = None
    """Re-tune every this many requests after the first tuning (None: tune once)."""
    artifact_compat: bool = False
    """Reproduce the reference artifact's quirks (spec §2.7)."""

    def __post_init__(self) -> None:
        check_choice("policy", self.policy, POLICY_NAMES)
        if self.alpha is not None:
            check_range("alpha", self.alpha, lo=0.0)
            if math.isinf(self.alpha):  # 0·inf = NaN eviction scores
                raise ConfigError("alpha", self.alpha, "must be finite")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int):
            raise ConfigError("block_size", self.block_size, "must be an integer")
        check_range("block_size", self.block_size, lo=1)
        check_range("bootstrap_multiplier", self.bootstrap_multiplier, lo=1)
        if self.retune_every is not None:
            check_range("retune_every", self.retune_every, lo=1)
        parse_capacity(self.capacity)

    @property
    def capacity_bytes(self) -> int:
        return parse_capacity(self.capacity)


@dataclass(frozen=True)
class HitRateBenchConfig(Config):
    """The ``marconi/hit_rate`` benchmark."""

    preset: str = "nvidia-hybrid-7b"
    chat_sessions: int = 100
    """Synthetic chat sessions (U[10,20] turns, ~80-token inputs, ~250-token outputs)."""
    sps: float = 1.0
    """Sessions per second."""
    capacities: tuple[str, ...] = ("1GB", "3GB", "5GB")
    headline_capacity: str = "3GB"
    sharegpt_sessions: int = 100
    """ShareGPT sessions (0 to skip the ShareGPT trace)."""
    engine_sessions: int = 10
    """Sessions replayed live through the tiny hybrid engine (0 to skip)."""
    engine_capacity: str = "64MB"
    profile_lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("sps", self.sps, lo=0.0, lo_open=True)
        check_range("seed", self.seed, lo=0)
        for c in (*self.capacities, self.headline_capacity, self.engine_capacity):
            parse_capacity(c)
        if self.headline_capacity not in self.capacities:
            raise ConfigError("headline_capacity", self.headline_capacity, "must be one of the capacities")
