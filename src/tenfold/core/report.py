"""Render every ``results/<system>/<bench>.json`` into ``report.md`` and ``report.html``.

The report opens with a table of headlines, then gives each benchmark its config, the
environment it ran on, the arms table and one PNG plot (matplotlib, Agg backend): one bar
panel per metric, plus one line panel per ``series`` entry (CDFs, sweeps). With no results
it says so plainly, still writes both files, and the CLI exits 0.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenfold.core.results import read_result

__all__ = ["Report", "collect_results", "plot_result", "render_report"]

_MAX_BAR_PANELS = 6


@dataclass(frozen=True)
class Report:
    """What :func:`render_report` wrote."""

    markdown: Path
    html: Path
    plots: tuple[Path, ...]
    results: int


def collect_results(out_dir: Path) -> list[dict[str, Any]]:
    """Every valid result under ``out_dir/<system>/<bench>.json``, sorted by key."""
    docs: list[dict[str, Any]] = []
    for path in sorted(Path(out_dir).glob("*/*.json")):
        if path.parent.name == "plots":
            continue
        docs.append(read_result(path))
    return sorted(docs, key=lambda d: (d["system"], d["bench"]))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000 or abs(value) < 0.001:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def _metrics(arms: Mapping[str, Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for metrics in arms.values():
        for name in metrics:
            if name not in seen:
                seen.append(name)
    return seen


def plot_result(doc: Mapping[str, Any], path: Path) -> Path:
    """One PNG for one result: a bar panel per metric (first six), a line panel per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms: Mapping[str, Mapping[str, Any]] = doc["arms"]
    metrics = _metrics(arms)[:_MAX_BAR_PANELS]
    series: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]] = doc.get("series", {})
    panels = len(metrics) + len(series)
    cols = min(3, panels)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    head = doc["headline"]
    names = list(arms)
    for ax, metric in zip(flat, metrics, strict=False):
        values = [arms[a].get(metric) for a in names]
        shown = [(a, v) for a, v in zip(names, values, strict=True) if v is not None]
        colors = ["tab:red" if a == head["ours"] else "tab:gray" if a == head["baseline"] else "tab:blue"
                  for a, _ in shown]
        ax.bar([a for a, _ in shown], [float(v) for _, v in shown], color=colors)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax, (panel, lines) in zip(flat[len(metrics):], series.items(), strict=False):
        for arm, xy in lines.items():
            ax.plot(xy["x"], xy["y"], label=arm, linewidth=2 if arm == head["ours"] else 1)
        ax.set_title(panel, fontsize=9)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    for ax in flat[panels:]:
        ax.axis("off")
    fig.suptitle(f"{doc['system']}/{doc['bench']}: {head['metric']} = {_fmt(head['value'])}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_WIDE = 8


def _arms_table(arms: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Arms as rows; with more than eight metrics, metrics as rows so the table stays readable."""
    metrics = _metrics(arms)
    if len(metrics) > _WIDE:
        return ["metric", *arms], [[k, *[_fmt(m.get(k)) for m in arms.values()]] for k in metrics]
    header = ["arm", *metrics]
    rows = [[arm, *[_fmt(m.get(k)) for k in metrics]] for arm, m in arms.items()]
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline_rows(docs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for d in docs:
        h = d["headline"]
        rows.append([f"{d['system']}/{d['bench']}", h["metric"], _fmt(h["value"]), h["ours"], h["baseline"],
                     "higher" if h["higher_is_better"] else "lower", "quick" if d["quick"] else "full"])
    return rows


_HEAD_COLS = ["benchmark", "headline metric", "value", "ours", "baseline", "better", "run"]
_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
        "pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}img{max-width:100%}")


def render_report(out_dir: Path, registered: Sequence[str] | None = None) -> Report:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` under ``out_dir``.

    ``registered`` lists the benchmark keys known to the caller; when there are no results
    it lets the report tell "no system is registered yet" from "nothing has run yet".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = collect_results(out_dir)
    md: list[str] = ["# tenfold benchmark report", ""]
    body: list[str] = ["<h1>tenfold benchmark report</h1>"]
    plots: list[Path] = []
    if not docs:
        if registered is not None and not registered:
            msg = (f"No benchmark results in {out_dir}: no system is registered yet, "
                   "so there is no benchmark to run.")
        else:
            msg = (f"No benchmark results in {out_dir}: no benchmark has run yet "
                   "(`tenfold bench --list` shows what is registered; `tenfold bench --quick` runs it).")
        md.append(msg)
        body.append(f"<p>{html.escape(msg)}</p>")
    else:
        md += ["## Headlines", "", _md_table(_HEAD_COLS, _headline_rows(docs)), ""]
        body += ["<h2>Headlines</h2>", _html_table(_HEAD_COLS, _headline_rows(docs))]
        for d in docs:
            key = f"{d['system']}/{d['bench']}"
            plot = plot_result(d, out_dir / "plots" / f"{d['system']}__{d['bench']}.png")
            plots.append(plot)
            rel = plot.relative_to(out_dir).as_posix()
            header, rows = _arms_table(d["arms"])
            h = d["headline"]
            env = ", ".join(f"{k} {v}" for k, v in d["env"].items())
            config = json.dumps(d["config"], indent=2, sort_keys=True)
            headline = (f"{h['metric']} = {_fmt(h['value'])} ({h['ours']} vs {h['baseline']}, "
                        f"{'higher' if h['higher_is_better'] else 'lower'} is better)")
            md += [f"## {key}", "", f"**Headline:** {headline}", "",
                   f"Ran {'quick' if d['quick'] else 'full'} in {d['duration_s']:.1f} s on: {env}", ""]
            if d.get("notes"):
                md += [d["notes"], ""]
            md += [_md_table(header, rows), "", f"![{key}]({rel})", "",
                   "<details><summary>config</summary>", "", "```json", config, "```", "", "</details>", ""]
            body += [f"<h2>{html.escape(key)}</h2>", f"<p><b>Headline:</b> {html.escape(headline)}</p>",
                     f"<p>Ran {'quick' if d['quick'] else 'full'} in {d['duration_s']:.1f} s on: "
                     f"{html.escape(env)}</p>"]
            if d.get("notes"):
                body.append(f"<p>{html.escape(d['notes'])}</p>")
            body += [_html_table(header, rows), f'<img src="{html.escape(rel)}" alt="{html.escape(key)}">',
                     f"<details><summary>config</summary><pre>{html.escape(config)}</pre></details>"]
    md_path = out_dir / "report.md"
    html_path = out_dir / "report.html"
    md_path.write_text("\n".join(md) + "\n")
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>tenfold report</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
    return Report(md_path, html_path, tuple(plots), len(docs))
