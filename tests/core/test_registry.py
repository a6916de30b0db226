from __future__ import annotations

import pytest

from tenfold.core.registry import Registry
from tenfold.errors import TenfoldError, UnknownNameError


class Policy:
    def victim(self, ages: list[int]) -> int:
        raise TypeError("abstract")


def test_register_get_and_list() -> None:
    reg: Registry[type[Policy]] = Registry("eviction policy")

    @reg.register("oldest")
    class Oldest(Policy):
        def victim(self, ages: list[int]) -> int:
            return max(range(len(ages)), key=ages.__getitem__)

    @reg.register("newest")
    class Newest(Policy):
        def victim(self, ages: list[int]) -> int:
            return min(range(len(ages)), key=ages.__getitem__)

    assert reg.names() == ["newest", "oldest"]
    assert reg.get("oldest")().victim([3, 9, 1]) == 1
    assert "newest" in reg and len(reg) == 2
    with pytest.raises(UnknownNameError) as info:
        reg.get("lfu")
    assert str(info.value) == "unknown eviction policy 'lfu'; known: newest, oldest"
    assert info.value.known == ["newest", "oldest"]


def test_duplicates_and_bad_names_are_refused() -> None:
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(TenfoldError, match="thing 'a' is already registered"):
        reg.add("a", 2)
    assert reg.add("a", 3, replace=True) == 3
    with pytest.raises(TenfoldError, match="must be a non-empty string"):
        reg.add(" b", 1)
    assert reg.remove("a") == 3
    with pytest.raises(UnknownNameError, match=r"known: \(none registered\)"):
        reg.get("a")
