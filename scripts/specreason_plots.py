"""Plots for docs/systems/specreason.md from a ``specreason/speedup`` result JSON.

Usage: .venv/bin/python scripts/specreason_plots.py [results/specreason/speedup.json] [docs/systems/img]
Writes specreason_accuracy_latency.png and specreason_threshold_sweep.png.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(src: Path, out: Path) -> None:
    doc = json.loads(src.read_text())
    arms = doc["arms"]
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if doc.get("quick") else "full"

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, m in arms.items():
        main_arm = not name.startswith("specreason_t")
        ax.errorbar(1e3 * m["latency_p50_s"], 100 * m["accuracy"], yerr=m.get("accuracy_gap_se") or None,
                    fmt="o" if main_arm else "x", ms=7 if main_arm else 5, capsize=3, lw=0.8)
        ax.annotate(name.replace("specreason_", "sr_"), (1e3 * m["latency_p50_s"], 100 * m["accuracy"]),
                    fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("median latency per problem (ms, wall clock, 1 thread)")
    ax.set_ylabel("accuracy (%)")
    ax.axhline(100 * arms["base"]["accuracy"], color="grey", lw=0.8, ls=":")
    ax.set_title(f"specreason/speedup ({tag}): accuracy vs latency on the tiny pair\n"
                 "bars: paired standard error of the gap to base; dotted: base accuracy", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "specreason_accuracy_latency.png", dpi=110)
    plt.close(fig)

    sweep: list[tuple[float, float, float, float]] = []
    for name, m in arms.items():
        hit = re.fullmatch(r"specreason_t([\d.]+)_greedy", name)
        thr = float(hit.group(1)) if hit else (float(doc["config"]["threshold"]) if name == "specreason" else None)
        if thr is not None:
            sweep.append((thr, m["speedup_vs_base"], 100 * m["accuracy"], 100 * (m["acceptance_rate"] or 0.0)))
    sweep.sort()
    fig, ax1 = plt.subplots(figsize=(7, 4.5))
    xs = [s[0] for s in sweep]
    ax1.plot(xs, [s[1] for s in sweep], "o-", label="speedup vs base (median latency)")
    ax1.axhline(1.0, color="grey", lw=0.8)
    ax1.set_xlabel("threshold (greedy score)")
    ax1.set_ylabel("speedup vs base")
    ax2 = ax1.twinx()
    ax2.plot(xs, [s[2] for s in sweep], "s--", color="tab:green", label="accuracy (%)")
    ax2.plot(xs, [s[3] for s in sweep], "^:", color="tab:orange", label="acceptance (%)")
    ax2.axhline(100 * arms["base"]["accuracy"], color="tab:green", lw=0.8, ls=":")
    ax2.set_ylabel("%")
    lines = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax1.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax1.legend(lines, labels, fontsize=8, loc="center left")
    ax1.set_title(f"specreason threshold sweep ({tag}); dotted green: base accuracy")
    fig.tight_layout()
    fig.savefig(out / "specreason_threshold_sweep.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else Path("results/specreason/speedup.json"),
         Path(args[1]) if len(args) > 1 else Path("docs/systems/img"))
