"""Each package's __all__ names exactly its public names (httpx's exported-members test)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import tenfold
import tenfold.systems

PACKAGES = ["tenfold", "tenfold.errors", "tenfold.core"]
PACKAGES += [f"tenfold.{layer}" for layer in ("llm", "vision", "net")
             if importlib.util.find_spec(f"tenfold.{layer}") is not None]
PACKAGES += [f"tenfold.systems.{m.name}" for m in pkgutil.iter_modules(tenfold.systems.__path__) if m.ispkg]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    module = importlib.import_module(name)
    declared = getattr(module, "__all__", None)
    assert declared is not None, f"{name} has no __all__"
    assert len(declared) == len(set(declared)), f"{name}.__all__ repeats a name"
    # Every declared name resolves (a package may load some lazily through __getattr__).
    for public_name in declared:
        assert hasattr(module, public_name), f"{name}.__all__ names {public_name!r}, which does not resolve"
    # Every public name the package defines is declared. Public: not starting with "_", not a
    # module, and coming from tenfold itself (imports such as typing.Any are not surface).
    defined = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, (types.ModuleType, bool))
        and getattr(v, "__module__", name).startswith("tenfold")
    }
    assert defined - set(declared) == set(), f"{name} defines public names missing from __all__"
