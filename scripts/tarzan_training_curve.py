"""The learning curve of one long tarzan run, for docs/systems/tarzan.md ("Longer training").

Input: a JSON object ``{"gcc": ROW, "runs": {LABEL: {STEPS: ROW, ...}, ...}}``, where each ROW is
the metric row :func:`tenfold.systems.tarzan.evaluate.summarize` gives on the held-out calls
(``bitrate_p50_mbps``, ``freeze_rate_p50``, ``freeze_rate_p90``, ...) for GCC or for one run's
actor snapshot after STEPS gradient steps.

Usage: .venv/bin/python scripts/tarzan_training_curve.py [docs/systems/data/tarzan_alpha001_curve.json] [docs/systems/img]
Writes tarzan_alpha001_curve.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter


def main(src: Path, out: Path) -> None:
    doc = json.loads(src.read_text())
    gcc = doc["gcc"]
    out.mkdir(parents=True, exist_ok=True)

    fig, (ax_rate, ax_freeze) = plt.subplots(1, 2, figsize=(10, 4))
    for (label, run), marker in zip(doc["runs"].items(), "os^v", strict=False):
        steps = sorted(int(k) for k in run)
        rows = [run[str(s)] for s in steps]
        kilo = [s / 1000 for s in steps]
        ax_rate.plot(kilo, [r["bitrate_p50_mbps"] for r in rows], marker + "-", label=label)
        ax_freeze.plot(kilo, [r["freeze_rate_p90"] for r in rows], marker + "-", label=f"{label}: P90")
    ax_rate.axhline(gcc["bitrate_p50_mbps"], color="k", ls="--", label="GCC")
    ax_rate.axhline(1.1 * gcc["bitrate_p50_mbps"], color="g", ls=":", label="bar: at least 1.1 × GCC")
    ax_rate.set_yscale("log")
    ax_rate.yaxis.set_major_locator(FixedLocator([0.125, 0.25, 0.5, 1, 2, 4, 8]))
    ax_rate.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax_rate.yaxis.set_minor_formatter(NullFormatter())
    ax_rate.set_ylabel("P50 bitrate over held-out calls (Mbps)")
    ax_freeze.axhline(gcc["freeze_rate_p90"], color="k", ls="--", label="GCC: P90 (the bar)")
    ax_freeze.set_ylabel("P90 freeze rate over held-out calls")
    for ax in (ax_rate, ax_freeze):
        ax.set_xlabel("gradient steps (thousands)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("tarzan at the specified conservative weight α = 0.01: actor snapshots on the 8 held-out calls")
    fig.tight_layout()
    fig.savefig(out / "tarzan_alpha001_curve.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0] if args else "docs/systems/data/tarzan_alpha001_curve.json"),
         Path(args[1] if len(args) > 1 else "docs/systems/img"))
