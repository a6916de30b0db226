"""``SpecReasonConfig``: every parameter of the SpecReason loop (spec §2.2–§2.3), validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold.core.config import Config, check_choice, check_range

__all__ = ["ScoreMethod", "SpecReasonConfig"]

ScoreMethod = Literal["greedy", "average"]
"""``greedy``: the judge's top token as a digit; ``average``: the digit-renormalised mean score."""


@dataclass(frozen=True)
class SpecReasonConfig(Config):
    """How one SpecReason solve runs. Defaults are the spec's (the paper's AIME runs used 9)."""

    threshold: float = 7.0
    """A draft step is accepted when its judge score is >= this; in [0, 10]."""
    score_method: ScoreMethod = "greedy"
    """How the judge's single token becomes a score: ``greedy`` or ``average``."""
    token_budget: int = 8192
    """Most decode tokens over the final (kept) steps; rejected drafts and judge calls don't count; >= 1."""
    step_max_tokens: int = 512
    """Most tokens one step call may decode; >= 1."""
    first_n_base: int = 0
    """The first this-many steps come from the base model, unjudged; >= 0."""
    temperature: float = 0.6
    """Sampling temperature of every step call (small and base); 0 is greedy."""
    top_p: float = 0.95
    """Nucleus mass of every step call; in (0, 1]."""
    seed: int = 0
    """Seed of the step samplers; call ``i`` of a solve uses ``seed * 1_000_003 + i``."""
    top_logprobs: int = 10
    """Candidates the judge call asks for; the spec fixes 10; in [1, 20]."""
    artifact_compat: bool = False
    """Reproduce the upstream artifact (spec §2.6): its raw prompt strings (``MATH_PROMPT_ARTIFACT``,
    ``GPQA_PROMPT_ARTIFACT``) and its ``str.isdigit`` scoring (so ``"10"`` scores 10). GPQA options
    stay unshuffled through ``load_gpqa(..., artifact_compat=True)``."""

    def __post_init__(self) -> None:
        check_range("threshold", self.threshold, lo=0.0, hi=10.0)
        check_choice("score_method", self.score_method, ("greedy", "average"))
        check_range("token_budget", self.token_budget, lo=1)
        check_range("step_max_tokens", self.step_max_tokens, lo=1)
        check_range("first_n_base", self.first_n_base, lo=0)
        check_range("temperature", self.temperature, lo=0.0)
        check_range("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        check_range("top_logprobs", self.top_logprobs, lo=1, hi=20)
