"""SpecReason's own errors.

::

    TenfoldError
    ├── DatasetError(TenfoldError, ValueError)   a dataset file lacks a column or is unreadable
    └── ConfigError
        └── TokenizerMismatchError               speculative decoding across different tokenizers

A server that omits logprobs or rejects ``continue_final_message`` raises the llm layer's
:class:`tenfold.errors.BackendCapabilityError` (a ``BackendError``), naming the server and the field.
"""

from __future__ import annotations

from tenfold.errors import ConfigError, TenfoldError

__all__ = ["DatasetError", "TokenizerMismatchError"]


class DatasetError(TenfoldError, ValueError):
    """A dataset file is missing, unreadable, or lacks a column; the message names file and column."""


class TokenizerMismatchError(ConfigError):
    """Draft and target do not share a tokenizer; the message names the first differing token."""
