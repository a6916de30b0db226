"""Stability markers for public entry points (after Ray's ``ray.util.annotations``).

``@api(stability="beta")`` records how far a caller may rely on a function or class; the
marker is kept on the object as ``__tenfold_stability__`` and shown in its docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

from tenfold.errors import ConfigError

__all__ = ["Stability", "api", "stability_of"]

Stability = Literal["alpha", "beta", "stable"]
F = TypeVar("F", bound=Callable[..., object])
_LEVELS = ("alpha", "beta", "stable")


def api(stability: Stability) -> Callable[[F], F]:
    """Mark a public function or class with its stability level."""
    if stability not in _LEVELS:
        raise ConfigError("stability", stability, "must be one of 'alpha', 'beta', 'stable'")

    def deco(obj: F) -> F:
        obj.__tenfold_stability__ = stability  # type: ignore[attr-defined]
        note = f"\n\n(API stability: {stability}.)"
        obj.__doc__ = (obj.__doc__ or "").rstrip() + note
        return obj

    return deco


def stability_of(obj: object) -> str | None:
    """The marker set by :func:`api`, or None."""
    value = getattr(obj, "__tenfold_stability__", None)
    return value if isinstance(value, str) else None
