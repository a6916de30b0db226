"""Config: typed loading, validation naming the field, JSON/TOML round trips."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tenfold.core.config import Config, check_choice, check_positive, check_range, load_config
from tenfold.errors import ConfigError


@dataclass(frozen=True)
class LinkSpec(Config):
    delay_ms: float = 20.0
    """One-way delay in milliseconds; >= 0."""
    queue: int | None = None
    """Queue bound in packets; None means unbounded."""

    def __post_init__(self) -> None:
        check_range("delay_ms", self.delay_ms, lo=0.0)
        if self.queue is not None:
            check_positive("queue", self.queue)


@dataclass(frozen=True)
class SweepSpec(Config):
    name: str = "sweep"
    """Name of the sweep."""
    alpha: float = 1.0
    """Weight; >= 0."""
    seeds: tuple[int, ...] = (0, 1)
    """Seeds to run."""
    policy: Literal["lru", "marconi"] = "marconi"
    """Eviction policy."""
    link: LinkSpec = field(default_factory=LinkSpec)
    """Nested link config."""
    tags: dict[str, str] = field(default_factory=dict)
    """Free-form labels."""
    out: Path = Path("results")
    """Where to write."""

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, lo=0.0)
        check_choice("policy", self.policy, ("lru", "marconi"))


def test_defaults_round_trip_json_and_toml(tmp_path: Path) -> None:
    cfg = SweepSpec(alpha=0.5, seeds=(3, 4, 5), link=LinkSpec(delay_ms=5.0, queue=10), tags={"a": "b"})
    for suffix in (".json", ".toml"):
        path = cfg.dump(tmp_path / f"cfg{suffix}")
        assert SweepSpec.load(path) == cfg


def test_toml_omits_none_and_loads_it_back_as_default(tmp_path: Path) -> None:
    cfg = SweepSpec()
    path = cfg.dump(tmp_path / "cfg.toml")
    assert "queue" not in path.read_text()
    assert SweepSpec.load(path).link.queue is None


def test_to_dict_is_plain_json() -> None:
    data = SweepSpec().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["link"] == {"delay_ms": 20.0, "queue": None}
    assert data["seeds"] == [0, 1]
    assert data["out"] == "results"


def test_post_init_error_names_field_value_and_range() -> None:
    with pytest.raises(ConfigError) as info:
        SweepSpec(alpha=-1.0)
    assert str(info.value) == "config field 'alpha' = -1.0: must be in [0.0, inf]"
    assert (info.value.field, info.value.value) == ("alpha", -1.0)


def test_wrong_type_in_file_names_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('alpha = "high"\n')
    with pytest.raises(ConfigError) as info:
        SweepSpec.load(path)
    assert str(info.value) == "config field 'alpha' = 'high': must be a number"


def test_nested_error_carries_the_dotted_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"link": {"delay_ms": -3}}))
    with pytest.raises(ConfigError) as info:
        SweepSpec.load(path)
    assert info.value.field == "link.delay_ms"
    assert info.value.value == -3


def test_unknown_field_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        SweepSpec.from_dict({"alpah": 1.0})
    assert info.value.field == "alpah"
    assert "known: name, alpha, seeds, policy, link, tags, out" in str(info.value)


def test_literal_and_tuple_items_are_checked() -> None:
    with pytest.raises(ConfigError, match="'policy' = 'lfu': must be one of 'lru', 'marconi'"):
        SweepSpec.from_dict({"policy": "lfu"})
    with pytest.raises(ConfigError) as info:
        SweepSpec.from_dict({"seeds": [1, "two"]})
    assert info.value.field == "seeds[1]"


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ConfigError, match=r"^config field 'queue' = True: must be an integer \(or null\)$"):
        LinkSpec.from_dict({"queue": True})


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("alpha = = 1\n")
    with pytest.raises(ConfigError) as info:
        SweepSpec.load(path)
    assert info.value.field == "(file)"
    assert "is not valid TOML" in str(info.value)


def test_missing_file_and_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must be an existing \.json or \.toml file"):
        SweepSpec.load(tmp_path / "nope.toml")
    (tmp_path / "cfg.yaml").write_text("alpha: 1\n")
    with pytest.raises(ConfigError, match=r"suffix must be \.json or \.toml"):
        SweepSpec.load(tmp_path / "cfg.yaml")


def test_load_config_applies_overrides(tmp_path: Path) -> None:
    path = SweepSpec(alpha=2.0).dump(tmp_path / "c.json")
    cfg = load_config(SweepSpec, path, alpha=3.0, name=None)
    assert (cfg.alpha, cfg.name) == (3.0, "sweep")
    assert load_config(SweepSpec, None).alpha == 1.0


def test_replace_validates_again() -> None:
    with pytest.raises(ConfigError):
        SweepSpec().replace(alpha=-0.1)


def test_field_docs_read_attribute_docstrings() -> None:
    docs = SweepSpec.field_docs()
    assert docs["alpha"] == "Weight; >= 0."
    assert LinkSpec.field_docs()["queue"] == "Queue bound in packets; None means unbounded."


def test_nan_is_refused() -> None:
    with pytest.raises(ConfigError, match="NaN"):
        SweepSpec(alpha=float("nan"))
