"""Frozen-dataclass configurations that load from and dump to JSON and TOML.

A system's config is a frozen dataclass deriving from :class:`Config`. Each field has a
type, a default and a docstring (an attribute docstring under the field), and
``__post_init__`` validates values, raising :class:`~tenfold.errors.ConfigError` that
names the field, the bad value and what is allowed::

    @dataclass(frozen=True)
    class MarconiConfig(Config):
        alpha: float = 1.0
        \"\"\"Weight of FLOP efficiency against recency in eviction; >= 0.\"\"\"

        def __post_init__(self) -> None:
            check_range("alpha", self.alpha, lo=0.0)

Loading checks the types of every field before the dataclass sees them, so a string where
an int belongs is a ``ConfigError`` naming that field, not a ``TypeError`` later on.
Nested configs, tuples, lists, dicts, ``Literal`` choices and ``X | None`` are supported.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import math
import textwrap
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import tomli_w

from tenfold.errors import ConfigError

__all__ = [
    "Config",
    "check_choice",
    "check_positive",
    "check_range",
    "load_config",
]

C = TypeVar("C", bound="Config")


def check_range(
    field: str,
    value: float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ConfigError unless ``lo <= value <= hi`` (or strict where ``*_open``)."""
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError(field, value, "must be a number, not NaN")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ConfigError(field, value, f"must be in {left}{lo_s}, {hi_s}{right}")


def check_positive(field: str, value: float) -> None:
    """Raise ConfigError unless ``value > 0``."""
    check_range(field, value, lo=0, lo_open=True)


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    options = list(allowed)
    if value not in options:
        raise ConfigError(field, value, "must be one of " + ", ".join(map(repr, options)))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(field: str, tp: Any, value: Any) -> Any:
    """Convert a JSON/TOML value to the annotated type, or raise ConfigError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        members = get_args(tp)
        if value is None and type(None) in members:
            return None
        errors: list[str] = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _coerce(field, member, value)
            except ConfigError as exc:
                errors.append(exc.allowed)
        nullable = type(None) in members
        if len(errors) == 1:
            raise ConfigError(field, value, errors[0] + (" (or null)" if nullable else ""))
        names = [_type_name(m) for m in members if m is not type(None)] + (["null"] if nullable else [])
        raise ConfigError(field, value, "must be " + " or ".join(names))
    if origin is Literal:
        check_choice(field, value, get_args(tp))
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(field, value, f"must be a list ({_type_name(tp)})")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(field, value, f"must have exactly {len(args)} items")
            items = [_coerce(f"{field}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value, strict=True))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(f"{field}[{i}]", item_tp, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, "must be a table / object")
        key_tp, val_tp = get_args(tp) or (str, Any)
        return {_coerce(f"{field}.key", key_tp, k): _coerce(f"{field}.{k}", val_tp, v) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, f"must be a table of {tp.__name__} fields")
        return tp.from_dict(value, prefix=f"{field}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(field, value, "must be true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(field, value, "must be an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(field, value, "must be a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(field, value, "must be a string")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(field, value, "must be a path string")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(field, value, f"must be {_type_name(tp)}")


def _plain(value: Any) -> Any:
    """Turn a config value into JSON/TOML-ready data."""
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _drop_none(value: Any) -> Any:
    """TOML has no null: leave None-valued keys out (they load back as their default)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every tenfold config: frozen, typed, validated, serialisable."""

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], *, prefix: str = "") -> C:
        """Build from plain data, checking names and types field by field."""
        if not isinstance(data, Mapping):
            raise ConfigError(prefix.rstrip(".") or cls.__name__, data, "must be a table / object")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(
                    prefix + str(key), value, f"unknown field of {cls.__name__}; known: {', '.join(known)}"
                )
            kwargs[key] = _coerce(prefix + key, hints[key], value)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if prefix and not exc.field.startswith(prefix):
                raise ConfigError(prefix + exc.field, exc.value, exc.allowed) from None
            raise

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON types) of every field, nested configs included."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        """Load a ``.json`` or ``.toml`` file."""
        return cls.from_dict(_read_file(Path(path)))

    def dump(self, path: str | Path) -> Path:
        """Write the config as JSON or TOML, chosen by the file suffix."""
        target = Path(path)
        data = self.to_dict()
        if target.suffix == ".toml":
            text = tomli_w.dumps(_drop_none(data))
        elif target.suffix == ".json":
            text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        else:
            raise ConfigError("(file)", str(target), "suffix must be .json or .toml")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
        return target

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """The attribute docstring under each field, for ``--help`` texts and docs."""
        docs: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if not (dataclasses.is_dataclass(klass) and issubclass(klass, Config)):
                continue
            try:
                source = textwrap.dedent(inspect.getsource(klass))
            except (OSError, TypeError):
                continue
            body = ast.parse(source).body[0]
            assert isinstance(body, ast.ClassDef)
            stmts = body.body
            for node, nxt in itertools.pairwise(stmts):
                if (
                    isinstance(node, ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)
                ):
                    docs[node.target.id] = inspect.cleandoc(nxt.value.value)
        return docs


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("(file)", str(path), "must be an existing .json or .toml file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ConfigError("(file)", str(path), "must hold a JSON object at top level")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("(file)", str(path), f"is not valid {path.suffix[1:].upper()}: {exc}") from None
    raise ConfigError("(file)", str(path), "suffix must be .json or .toml")


def load_config(cls: type[C], path: str | Path | None, **overrides: Any) -> C:
    """Load ``cls`` from ``path`` (or its defaults), then apply non-None ``overrides``."""
    data: dict[str, Any] = _read_file(Path(path)) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return cls.from_dict(data)
