"""The tenfold exception tree.

Every error the project raises on purpose derives from :class:`TenfoldError`, so a caller
can catch the whole family at once, and every message names the bad value and what is
allowed instead::

    TenfoldError
    ├── ConfigError(TenfoldError, ValueError)      a config field holds a bad value
    ├── UnknownNameError(TenfoldError, KeyError)   a registry has no entry of that name
    ├── AssetError(TenfoldError, FileNotFoundError) a packaged model or data file is missing
    ├── BackendError(TenfoldError, RuntimeError)   an LLM or model backend failed
    │   └── BackendCapabilityError                 a server lacks a request field the call needs
    ├── DecodeError(TenfoldError, ValueError)      malformed bytes on the wire
    ├── TraceError(TenfoldError, ValueError)       a malformed network or request trace
    ├── VideoError(TenfoldError, ValueError)       an unreadable video or frame
    ├── ResultError(TenfoldError, ValueError)      a result JSON that breaks its schema
    └── BenchmarkError(TenfoldError, RuntimeError) a benchmark that could not run

The second base keeps the errors usable by code that only knows the standard library
(``except ValueError`` still catches a bad config).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AssetError",
    "BackendCapabilityError",
    "BackendError",
    "BenchmarkError",
    "ConfigError",
    "DecodeError",
    "ResultError",
    "TenfoldError",
    "TraceError",
    "UnknownNameError",
    "VideoError",
]


class TenfoldError(Exception):
    """Base of every error tenfold raises on purpose.

    Errors pickle by their message and attributes, not by re-calling ``__init__``, so one
    raised in a process-pool worker reaches the caller intact whatever its constructor takes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type[TenfoldError], args: tuple[Any, ...], state: dict[str, Any]) -> TenfoldError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ConfigError(TenfoldError, ValueError):
    """A configuration field holds a value outside what it allows.

    ``ConfigError("alpha", -1.0, "must be >= 0")`` reads
    ``config field 'alpha' = -1.0: must be >= 0``.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"config field {field!r} = {value!r}: {allowed}")


class UnknownNameError(TenfoldError, KeyError):
    """A name that no registry entry carries; the message lists the known names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; known: {listing}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class AssetError(TenfoldError, FileNotFoundError):
    """A packaged model or data file is missing; the message gives the install command."""


class BackendError(TenfoldError, RuntimeError):
    """A model backend (in-process or remote) failed to answer."""


class BackendCapabilityError(BackendError):
    """A server that rejects or ignores a request field the call depends on.

    ``BackendCapabilityError("http://h:8000/v1", "top_logprobs", "returned none")`` reads
    ``server http://h:8000/v1 does not support 'top_logprobs': returned none``.
    """

    def __init__(self, server: str, field: str, detail: str) -> None:
        self.server = server
        self.field = field
        self.detail = detail
        super().__init__(f"server {server} does not support {field!r}: {detail}")


class DecodeError(TenfoldError, ValueError):
    """Malformed bytes; the message gives the exact reason."""


class TraceError(TenfoldError, ValueError):
    """A malformed trace; the message gives ``file:line`` where known."""


class VideoError(TenfoldError, ValueError):
    """A video or frame that cannot be read; the message names the file and frame."""


class ResultError(TenfoldError, ValueError):
    """A result document that does not follow the ``tenfold.result/1`` schema."""


class BenchmarkError(TenfoldError, RuntimeError):
    """A benchmark that could not run to the end."""
