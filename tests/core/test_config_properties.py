"""Property: any valid config survives a JSON and a TOML round trip unchanged."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.test_config import LinkSpec, SweepSpec

_names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
                 max_size=12)
_links = st.builds(LinkSpec, delay_ms=st.floats(0, 1e6, allow_nan=False),
                   queue=st.none() | st.integers(1, 10**9))
_sweeps = st.builds(
    SweepSpec,
    name=_names,
    alpha=st.floats(0, 1e9, allow_nan=False),
    seeds=st.lists(st.integers(-(2**62), 2**62), max_size=5).map(tuple),
    policy=st.sampled_from(["lru", "marconi"]),
    link=_links,
    tags=st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=5), _names, max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(cfg=_sweeps)
def test_round_trip(cfg: SweepSpec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".json", ".toml"):
            path = cfg.dump(Path(tmp) / f"c{suffix}")
            assert SweepSpec.load(path) == cfg
