"""The report: both plots from two results, headline table, and the empty case."""

from __future__ import annotations

from pathlib import Path

from tenfold.core.report import render_report
from tenfold.core.results import write_result
from tests.core.builders import result_doc


def test_two_results_give_two_plots_in_md_and_html(tmp_path: Path) -> None:
    write_result(result_doc("alpha", "hit_rate"), tmp_path)
    write_result(
        result_doc("beta", "latency", series={"latency CDF": {"ours": {"x": [0.1, 0.2], "y": [0.5, 1.0]},
                                                               "baseline": {"x": [0.2, 0.4], "y": [0.5, 1.0]}}}),
        tmp_path,
    )
    report = render_report(tmp_path)
    assert report.results == 2
    assert [p.name for p in report.plots] == ["alpha__hit_rate.png", "beta__latency.png"]
    for plot in report.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plot.stat().st_size > 5000
    md = report.markdown.read_text()
    page = report.html.read_text()
    for key in ("alpha/hit_rate", "beta/latency"):
        assert f"## {key}" in md
        assert f"<h2>{key}</h2>" in page
    assert "![alpha/hit_rate](plots/alpha__hit_rate.png)" in md
    assert '<img src="plots/beta__latency.png"' in page
    # The headline table comes first and carries each value.
    assert md.index("## Headlines") < md.index("## alpha/hit_rate")
    assert "| alpha/hit_rate | hit_rate_ratio | 4 | ours | baseline | higher | quick |" in md


def test_no_results_says_so(tmp_path: Path) -> None:
    report = render_report(tmp_path / "results", registered=[])
    assert report.results == 0
    assert report.plots == ()
    text = report.markdown.read_text()
    assert "no system is registered yet" in text
    assert "no system is registered yet" in report.html.read_text()
    report = render_report(tmp_path / "results", registered=["demo/x"])
    assert "no benchmark has run yet" in report.markdown.read_text()


def test_wide_arm_tables_are_transposed(tmp_path: Path) -> None:
    metrics = {f"m{i}": float(i) for i in range(10)}
    write_result(result_doc("wide", "many", arms={"baseline": metrics, "ours": metrics},
                            headline={"metric": "m1", "ours": "ours", "baseline": "baseline", "value": 1.0,
                                      "higher_is_better": True}), tmp_path)
    md = render_report(tmp_path).markdown.read_text()
    assert "| metric | baseline | ours |" in md
    assert "| m9 | 9 | 9 |" in md
