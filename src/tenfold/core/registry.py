"""Named registries: CLI verbs, benchmarks, backends and policies.

A registry maps names to entries and refuses unknown names with an error that lists the
known ones, so code chooses implementations by name instead of by if/elif chains::

    EVICTION = Registry[type[EvictionPolicy]]("eviction policy")

    @EVICTION.register("lru")
    class LRU(EvictionPolicy): ...

    EVICTION.get("lru")       # -> LRU
    EVICTION.get("lfu")       # UnknownNameError: unknown eviction policy 'lfu'; known: lru

The two registries every system uses live here: :data:`COMMANDS` (``tenfold <name> ...``
verbs) and :data:`BENCHMARKS` (``<system>/<bench>``, see :mod:`tenfold.core.bench`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from tenfold.errors import TenfoldError, UnknownNameError

if TYPE_CHECKING:
    from tenfold.core.bench import Benchmark

__all__ = ["BENCHMARKS", "COMMANDS", "CommandGroup", "Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry table with helpful errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Register ``entry`` under ``name``; a second entry of the same name is an error."""
        if not name or name != name.strip():
            raise TenfoldError(f"{self.kind} name {name!r} must be a non-empty string without outer spaces")
        if name in self._entries and not replace:
            raise TenfoldError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(entry: T) -> T:
            return self.add(name, entry, replace=replace)

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def remove(self, name: str) -> T:
        """Unregister ``name`` (tests use this to clean up)."""
        try:
            return self._entries.pop(name)
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class CommandGroup:
    """A top-level ``tenfold <name>`` verb group, added by a layer or a system.

    ``configure`` receives the group's own parser and adds sub-verbs to it; each sub-verb
    sets ``func`` (``args -> exit code``) with ``parser.set_defaults(func=...)``.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    kind: str = "system"
    """'system' for the ten systems, 'layer' for llm, vision and net."""


COMMANDS: Registry[CommandGroup] = Registry("command")
BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
