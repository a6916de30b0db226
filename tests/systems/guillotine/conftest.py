"""Builders shared by guillotine's tests: a deployment in a temp state dir with 3 operators."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenfold.systems.guillotine.config import Policy
from tenfold.systems.guillotine.deployment import Deployment, init_deployment
from tenfold.systems.guillotine.keys import SigningKey


class FakeNow:
    """A settable wall clock for expiry tests."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def operators() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(3)]


@pytest.fixture
def clock() -> FakeNow:
    return FakeNow()


@pytest.fixture
def dep(tmp_path: Path, operators: list[SigningKey], clock: FakeNow) -> Deployment:
    policy = Policy(operators=tuple(k.key_id for k in operators), quorum_m=2)
    return init_deployment("t1", policy, state_dir=tmp_path / "state", now=clock)
