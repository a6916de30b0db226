"""Trace replay through a prefix cache: hit rates, FLOPs saved, TTFT (spec §2.6).

Requests run one at a time in timestamp order: lookup the input, (the engine would
prefill and decode here), commit input+output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenfold.core.api import api
from tenfold.systems.marconi.cache import PrefixCache
from tenfold.systems.marconi.traces import Trace
from tenfold.systems.marconi.ttft import TTFTModel

__all__ = ["ReplayStats", "percentile", "replay"]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), 0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class ReplayStats:
    policy: str
    requests: int = 0
    input_tokens: int = 0
    reused_tokens: int = 0
    hit_requests: int = 0
    flops_saved: float = 0.0
    flops_total: float = 0.0
    rejected: int = 0
    evictions: int = 0
    alpha: float | None = None
    ttft_ms: list[float] = field(default_factory=list, repr=False)
    reuse: list[int] = field(default_factory=list, repr=False)

    @property
    def token_hit_rate(self) -> float:
        return self.reused_tokens / self.input_tokens if self.input_tokens else 0.0

    @property
    def request_hit_rate(self) -> float:
        return self.hit_requests / self.requests if self.requests else 0.0

    def metrics(self) -> dict[str, float | None]:
        return {
            "token_hit_rate": self.token_hit_rate,
            "request_hit_rate": self.request_hit_rate,
            "flops_saved": self.flops_saved,
            "flops_saved_fraction": self.flops_saved / self.flops_total if self.flops_total else 0.0,
            "ttft_p50_ms": percentile(self.ttft_ms, 50) if self.ttft_ms else None,
            "ttft_p95_ms": percentile(self.ttft_ms, 95) if self.ttft_ms else None,
            "alpha": self.alpha,
            "requests": float(self.requests),
            "rejected": float(self.rejected),
            "evictions": float(self.evictions),
        }


@api(stability="beta")
def replay(trace: Trace, cache: PrefixCache | None, ttft: TTFTModel | None = None) -> ReplayStats:
    """Replay ``trace``; ``cache=None`` is the no-cache arm."""
    spec = cache.spec if cache is not None else None
    stats = ReplayStats(cache.name if cache is not None else "no-cache")
    for req in trace.requests:
        n_in = len(req.input_tokens)
        reused = 0
        if cache is not None:
            lk = cache.lookup(req.input_tokens)
            reused = lk.reusable_len
            res = cache.commit(lk, req.tokens)
            stats.rejected += not res.admitted
        stats.requests += 1
        stats.input_tokens += n_in
        stats.reused_tokens += reused
        stats.hit_requests += reused > 0
        stats.reuse.append(reused)
        if spec is not None:
            stats.flops_saved += spec.prefill_flops(reused)
            stats.flops_total += spec.prefill_flops(n_in)
        if ttft is not None:
            stats.ttft_ms.append(ttft(n_in - reused))
    if cache is not None:
        stats.evictions = cache.evictions
        stats.alpha = cache.alpha
    return stats
