"""SpecReason's own error: a user-supplied dataset file without the columns it needs.

::

    TenfoldError
    └── DatasetError(TenfoldError, ValueError)   a dataset file lacks a column or is unreadable
"""

from __future__ import annotations

from tenfold.errors import TenfoldError

__all__ = ["DatasetError"]


class DatasetError(TenfoldError, ValueError):
    """A dataset file is missing, unreadable, or lacks a column; the message names file and column."""
