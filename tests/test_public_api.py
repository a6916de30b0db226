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
    # Public: names not starting with "_" whose objects come from tenfold itself (names
    # imported from elsewhere, such as typing.Any, are not part of the surface).
    public = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", name).startswith("tenfold")
    }
    assert set(declared) - {"__version__"} == public
