"""The CLI: help, version, bench through a test-only benchmark, report, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenfold import __version__
from tenfold.cli import main
from tenfold.core.bench import BenchContext, BenchOutcome, Headline, benchmark
from tenfold.core.registry import BENCHMARKS

TEST_SYSTEM = "testsys"


def _echo(ctx: BenchContext) -> BenchOutcome:
    """A benchmark defined only in the tests: it sweeps seeds through the executor."""
    from tests.core.sweep_fns import noisy_sum

    values = ctx.executor.map(noisy_sum, [({"scale": 1.0, "offset": 10.0}, s) for s in (ctx.seed, ctx.seed + 1)])
    return BenchOutcome(
        config={"seeds": [ctx.seed, ctx.seed + 1], "quick": ctx.quick},
        arms={"baseline": {"value": 10.0}, "ours": {"value": values[0], "other": values[1]}},
        headline=Headline("value_minus_baseline", "ours", "baseline", values[0] - 10.0, higher_is_better=True),
    )


@pytest.fixture
def test_benchmark() -> Iterator[str]:
    benchmark(TEST_SYSTEM, "echo", "test-only benchmark")(_echo)
    yield f"{TEST_SYSTEM}/echo"
    BENCHMARKS.remove(f"{TEST_SYSTEM}/echo")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "bench" in out and "report" in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"tenfold {__version__}"


def test_bench_list_shows_registered(test_benchmark: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list"]) == 0
    assert test_benchmark in capsys.readouterr().out.splitlines()


def test_bench_runs_and_writes_result(test_benchmark: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", TEST_SYSTEM, "--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    path = tmp_path / TEST_SYSTEM / "echo.json"
    assert capsys.readouterr().out.strip() == str(path)
    doc = json.loads(path.read_text())
    assert doc["system"] == TEST_SYSTEM and doc["bench"] == "echo" and doc["quick"] is True
    assert doc["config"] == {"seeds": [3, 4], "quick": True}
    assert doc["headline"]["value"] == doc["arms"]["ours"]["value"] - 10.0
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "plots" / "testsys__echo.png").is_file()
    assert "testsys/echo" in (tmp_path / "report.html").read_text()


def test_unknown_system_exits_2_and_lists_known(test_benchmark: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nosuchsystem"]) == 2
    err = capsys.readouterr().err
    assert "unknown system 'nosuchsystem'; known:" in err
    assert TEST_SYSTEM in err
    assert main(["nosuchsystem", "run"]) == 2
    assert "unknown command or system 'nosuchsystem'; known: bench, report" in capsys.readouterr().err


def test_report_with_no_results_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path / "empty")]) == 0
    assert "no benchmark results in" in capsys.readouterr().out
    assert (tmp_path / "empty" / "report.html").is_file()


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "tenfold"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"tenfold {__version__}"
