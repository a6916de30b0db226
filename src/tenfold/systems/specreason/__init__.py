"""SpecReason (arXiv:2504.07891): a small model drafts each reasoning step, the base model
judges it with one 0–9 token and rewrites only the steps that score low.

:mod:`.loop` holds the draft, judge and accept loop over any :class:`~tenfold.llm.LLMBackend`
pair; :mod:`.prompts` the fixed strings; :mod:`.config` its parameters; :mod:`.grader` the
answer grader; :mod:`.tasks` arithmetic chains; :mod:`.speculative` speculative decoding.
"""

from tenfold.systems.specreason.config import SpecReasonConfig
from tenfold.systems.specreason.grader import grade, normalize_answer, shuffle_options
from tenfold.systems.specreason.loop import Result, SpecReason, Step, extract_boxed, vanilla
from tenfold.systems.specreason.speculative import SpeculativeBackend

__all__ = [
    "Result",
    "SpecReason",
    "SpecReasonConfig",
    "SpeculativeBackend",
    "Step",
    "extract_boxed",
    "grade",
    "normalize_answer",
    "shuffle_options",
    "vanilla",
]
