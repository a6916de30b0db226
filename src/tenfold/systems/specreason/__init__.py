"""SpecReason (arXiv:2504.07891): a small model drafts each reasoning step, the base model
judges it with one 0–9 token and rewrites only the steps that score low.

:mod:`.loop` holds the draft, judge and accept loop over any :class:`~tenfold.llm.LLMBackend`
pair; :mod:`.prompts` the fixed strings; :mod:`.config` its parameters; :mod:`.grader` the
answer grader; :mod:`.tasks` arithmetic chains; :mod:`.speculative` speculative decoding;
:mod:`.pair` the trained tiny model pair (loaded lazily: it imports torch); :mod:`.datasets`
local AIME / MATH-500 / GPQA files; :mod:`.bench` the ``specreason/speedup`` benchmark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tenfold.systems.specreason.config import SpecReasonConfig
from tenfold.systems.specreason.datasets import DatasetItem, load_dataset
from tenfold.systems.specreason.errors import DatasetError, TokenizerMismatchError
from tenfold.systems.specreason.grader import grade, normalize_answer, shuffle_options
from tenfold.systems.specreason.loop import Result, SpecReason, Step, extract_boxed, vanilla
from tenfold.systems.specreason.speculative import SpeculativeBackend

if TYPE_CHECKING:
    from tenfold.systems.specreason.pair import PairTrainConfig, load_pair, train_pair

__all__ = [
    "DatasetError",
    "DatasetItem",
    "PairTrainConfig",
    "Result",
    "SpecReason",
    "SpecReasonConfig",
    "SpeculativeBackend",
    "Step",
    "TokenizerMismatchError",
    "extract_boxed",
    "grade",
    "load_dataset",
    "load_pair",
    "normalize_answer",
    "shuffle_options",
    "train_pair",
    "vanilla",
]

_LAZY = {"PairTrainConfig", "load_pair", "train_pair"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(".pair", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
