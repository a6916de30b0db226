from __future__ import annotations

import pytest

from tenfold import errors
from tenfold.errors import (
    AssetError,
    BackendError,
    BenchmarkError,
    ConfigError,
    DecodeError,
    ResultError,
    TenfoldError,
    TraceError,
    UnknownNameError,
    VideoError,
)


@pytest.mark.parametrize(
    ("cls", "std"),
    [(ConfigError, ValueError), (UnknownNameError, KeyError), (AssetError, FileNotFoundError),
     (BackendError, RuntimeError), (DecodeError, ValueError), (TraceError, ValueError),
     (VideoError, ValueError), (ResultError, ValueError), (BenchmarkError, RuntimeError)],
)
def test_tree(cls: type[Exception], std: type[Exception]) -> None:
    assert issubclass(cls, TenfoldError) and issubclass(cls, std)
    assert cls.__name__ in (errors.__doc__ or "")


def test_messages_name_value_and_allowed() -> None:
    exc = ConfigError("alpha", -1.0, "must be >= 0")
    assert str(exc) == "config field 'alpha' = -1.0: must be >= 0"
    unknown = UnknownNameError("system", "foo", ["marconi", "tarzan"])
    assert str(unknown) == "unknown system 'foo'; known: marconi, tarzan"
