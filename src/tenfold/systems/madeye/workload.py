"""Workloads: lists of queries ``Query(model, task, object)`` (spec §2, §5).

Tasks are ``binary`` (is there one?), ``count`` (how many?), ``detect`` (where?) and
``agg_count`` (how many distinct ones over the stream, by tracker IDs); objects are
``person`` and ``car``; ``model`` names the backend that answers. A workload holds 1 to 19
queries (the spec's workloads hold 3 to 19; a single query is allowed for experiments).

The named workloads (:data:`WORKLOADS`):

- ``W1``: 3 queries on one backend: count people, detect cars, binary people.
- ``W2``: 8 queries mixing the four non-aggregate tasks over 2 backends.
- ``W3``: 19 queries over 4 backends, 3 of them agg_count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tenfold.core.config import Config, check_choice
from tenfold.core.registry import Registry
from tenfold.errors import ConfigError

__all__ = ["OBJECTS", "TASKS", "WORKLOADS", "Query", "Workload", "parse_query"]

TASKS = ("binary", "count", "detect", "agg_count")
OBJECTS = ("person", "car")
MAX_QUERIES = 19


@dataclass(frozen=True)
class Query(Config):
    """One query: ``task`` on ``object`` answered by backend ``model``."""

    model: str = "small-192"
    """The backend that answers (a project backend name or a user backend)."""
    task: str = "count"
    """binary, count, detect or agg_count."""
    object: str = "person"
    """person or car."""

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_choice("object", self.object, OBJECTS)
        if not self.model:
            raise ConfigError("model", self.model, "must name a backend")

    @property
    def pair(self) -> tuple[str, str]:
        """(model, object): the detections this query reads."""
        return self.model, self.object

    def __str__(self) -> str:
        return f"{self.model}:{self.object}:{self.task}"


def parse_query(text: str, default_model: str = "small-192") -> Query:
    """``"person:count"`` or ``"small-128:car:detect"`` -> :class:`Query`.

    The model is everything before the last two fields, so a backend whose name holds ':'
    works too: ``"torchvision:frcnn.pt:car:detect"``.
    """
    parts = text.strip().rsplit(":", 2)
    if len(parts) == 2:
        return Query(default_model, parts[1], parts[0])
    if len(parts) == 3:
        return Query(parts[0], parts[2], parts[1])
    raise ConfigError("query", text, "must be OBJECT:TASK or MODEL:OBJECT:TASK, e.g. person:count")


@dataclass(frozen=True)
class Workload:
    """A named list of queries."""

    name: str
    queries: tuple[Query, ...]

    def __post_init__(self) -> None:
        if not self.queries:
            raise ConfigError("queries", [], "an empty workload; give at least one query")
        if len(self.queries) > MAX_QUERIES:
            raise ConfigError("queries", len(self.queries), f"must be at most {MAX_QUERIES} queries")

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def models(self) -> tuple[str, ...]:
        """Backends the workload uses, in first-use order."""
        return tuple(dict.fromkeys(q.model for q in self.queries))

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Distinct (model, object) pairs, in first-use order."""
        return tuple(dict.fromkeys(q.pair for q in self.queries))

    @property
    def aggregate(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.task == "agg_count")

    @property
    def non_aggregate(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.task != "agg_count")

    @property
    def agg_share(self) -> float:
        """n_agg / n: the weight of the aggregate part of the workload accuracy."""
        return len(self.aggregate) / len(self.queries)

    def check_models(self, known: Iterable[str]) -> None:
        """Raise ConfigError naming the first query model not in ``known`` (listing them)."""
        names = sorted(set(known))
        for q in self.queries:
            if q.model not in names:
                raise ConfigError("model", q.model, "must be one of " + ", ".join(map(repr, names)))

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "queries": [str(q) for q in self.queries]}


def _w(name: str, *specs: str) -> Workload:
    return Workload(name, tuple(parse_query(s) for s in specs))


WORKLOADS: Registry[Workload] = Registry("workload")
WORKLOADS.add("W1", _w("W1", "small-192:person:count", "small-192:car:detect", "small-192:person:binary"))
WORKLOADS.add(
    "W2",
    _w(
        "W2",
        "small-192:person:count",
        "small-192:car:detect",
        "small-192:car:binary",
        "small-192:person:detect",
        "small-128:car:count",
        "small-128:person:binary",
        "small-128:person:count",
        "small-128:car:detect",
    ),
)
WORKLOADS.add(
    "W3",
    _w(
        "W3",
        "small-192:person:count",
        "small-192:car:detect",
        "small-192:person:binary",
        "small-192:car:count",
        "small-192:person:agg_count",
        "small-128:person:count",
        "small-128:car:binary",
        "small-128:person:detect",
        "small-128:car:agg_count",
        "small-96:person:count",
        "small-96:car:count",
        "small-96:person:binary",
        "small-96:car:detect",
        "small-96:person:agg_count",
        "small-192n:person:count",
        "small-192n:car:count",
        "small-192n:person:detect",
        "small-192n:car:binary",
        "small-192n:person:binary",
    ),
)
