"""Shared helpers of the root-marked sandbox tests: one probe set and MiniLM weights per session."""

from __future__ import annotations

from pathlib import Path

from tenfold.core.assets import asset_path
from tenfold.systems.guillotine.redteam import Attack, AttackResult, Probes, load_catalogue, run_attack

WEIGHTS = Path(asset_path("minilm-l6-v2")) / "model.safetensors"
CATALOGUE = {a.id: a for a in load_catalogue()}


def attack(attack_id: str, probes: Probes, state: Path, arm: str = "guillotine",
           backend: str = "bwrap") -> AttackResult:
    a: Attack = CATALOGUE[attack_id]
    return run_attack(a, arm, probes, state, WEIGHTS, backend=backend)
