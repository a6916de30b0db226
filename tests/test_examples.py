"""Every example with a golden ``.out`` file runs and prints exactly that (SimPy's docs check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOLDEN = sorted(EXAMPLES.glob("*.out"))


def test_examples_have_golden_output() -> None:
    assert [p.name for p in GOLDEN if p.stem == "mm1_queue"] == ["mm1_queue.out"]


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.stem)
def test_example_matches_golden(golden: Path) -> None:
    script = golden.with_suffix(".py")
    assert script.is_file(), f"{golden.name} has no script {script.name}"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout == golden.read_text()
