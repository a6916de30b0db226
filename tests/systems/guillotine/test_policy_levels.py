"""Policy validation, one-way escalation (with a property test), the level file and the tombstone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.errors import ConfigError
from tenfold.systems.guillotine.audit import verify_audit
from tenfold.systems.guillotine.config import DEFAULT_TRIGGERS, TRIGGERS, Policy, load_policy
from tenfold.systems.guillotine.deployment import Deployment, init_deployment
from tenfold.systems.guillotine.errors import Tombstoned
from tenfold.systems.guillotine.levels import raise_level


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


def test_load_policy_yaml(tmp_path: Path) -> None:
    pol = load_policy(_yaml(tmp_path, "deployment: d1\ntriggers: {canary: 3}\nquorum_m: 1\n"))
    assert pol.deployment == "d1" and pol.min_level("canary") == 3 and pol.min_level("oom") == 3


@pytest.mark.parametrize(("text", "field", "allowed"), [
    ("level_names: [a, a, b, c, d, e]\n", "level_names", "names must be distinct"),
    ("triggers: {telepathy: 1}\n", "triggers.telepathy", "unknown trigger; known: " + ", ".join(TRIGGERS)),
    ("operators: ['" + "a" * 64 + "']\nquorum_m: 2\n", "quorum_m", "must be <= N = 1 operators"),
    ("rate_per_s: 0\n", "rate_per_s", "must be in (0, inf]"),
    ("triggers: {canary: 4}\n", "triggers.canary", "must be in [0, 3]"),
])
def test_invalid_policy_names_field(tmp_path: Path, text: str, field: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(_yaml(tmp_path, text))
    assert info.value.field == field and info.value.allowed == allowed


def test_escalation_is_one_way(dep: Deployment) -> None:
    assert dep.escalate(2, "canary") == 2
    assert dep.escalate(1, "socket") == 2
    assert dep.level().level == 2 and dep.level().reason == "canary"
    rep = verify_audit(dep.audit_path, dep.trusted_keys())
    assert rep.ok, rep.errors


def test_unsigned_or_missing_level_file_reads_l3(dep: Deployment) -> None:
    dep.level_path.write_text(dep.level_path.read_text().replace('"level":0', '"level":1'))
    rec = dep.level()
    assert (rec.level, rec.valid) == (3, False)
    dep.level_path.unlink()
    assert dep.level().level == 3


def test_last_level_tombstones(dep: Deployment, tmp_path: Path) -> None:
    assert dep.escalate(5, "operator") == 5
    with pytest.raises(Tombstoned):
        dep.check_runnable()
    with pytest.raises(Tombstoned):
        init_deployment("t1", dep.policy, state_dir=tmp_path / "state")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(DEFAULT_TRIGGERS)), max_size=30))
def test_random_trigger_sequences_never_lower(seq: list[str]) -> None:
    pol = Policy()
    level = 0
    for trig in seq:
        new = raise_level(level, pol.min_level(trig))
        assert new >= level
        level = new
    assert level == max([0] + [pol.min_level(t) for t in seq])
