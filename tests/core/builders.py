"""Builders shared by the core tests."""

from __future__ import annotations

from typing import Any

from tenfold.core.results import build_result

ENV = {"python": "3.11.7", "torch": "2.13.0+cpu", "cpu": "Test CPU, 2 cores", "git_sha": "abc1234"}


def result_doc(system: str = "demo", bench: str = "hit_rate", **overrides: Any) -> dict[str, Any]:
    """A valid result document with fixed numbers."""
    fields: dict[str, Any] = {
        "system": system,
        "bench": bench,
        "quick": True,
        "config": {"capacity_gb": 3, "seed": 0},
        "arms": {"baseline": {"hit_rate": 0.1, "ttft_s": 1.5}, "ours": {"hit_rate": 0.4, "ttft_s": 0.9}},
        "headline": {"metric": "hit_rate_ratio", "ours": "ours", "baseline": "baseline",
                     "value": 4.0, "higher_is_better": True},
        "duration_s": 1.25,
        "env": ENV,
    }
    fields.update(overrides)
    return build_result(**fields)
