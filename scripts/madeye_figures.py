"""Figures for docs/systems/madeye.md: accuracy per arm (from a result JSON) and example views.

    .venv/bin/python scripts/madeye_figures.py results/madeye/accuracy.json docs/systems/img [NAME.png]

Writes ``madeye_accuracy.png`` (workload accuracy per arm at N=1 and N=2, median over
seed x workload) and ``madeye_shape_views.png`` (the views of MadEye's initial shape and
a later one, seed 0, workload W1, rendered by the vision layer with the small-192
backend's detections). Given NAME, it writes only the accuracy plot, as NAME.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def accuracy_plot(result: Path, out: Path, name: str = "madeye_accuracy.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = json.loads(result.read_text())
    arms = doc["arms"]
    order = ["best_fixed", "panoptes", "tracking", "mab", "madeye", "madeye_oracle_rank", "best_dynamic",
             "madeye_k1", "madeye_random_neighbours", "madeye_no_distill", "madeye_no_zoom"]
    names = [a for a in order if a in arms]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.38
    for k, n in enumerate((1, 2)):
        ys = [arms[a].get(f"workload_accuracy_n{n}") for a in names]
        xs = [i + (k - 0.5) * width for i in range(len(names))]
        ax.bar([x for x, y in zip(xs, ys, strict=True) if y is not None], [y for y in ys if y is not None],
               width, label=f"N={n}")
    ax.set_xticks(range(len(names)), [a + (" (hindsight)" if a in ("best_fixed", "best_dynamic") else "")
                                      for a in names], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("workload accuracy (median)")
    lo = min(v for a in names for n in (1, 2) if (v := arms[a].get(f"workload_accuracy_n{n}")) is not None)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.legend()
    cfg = doc["config"]
    seeds = cfg["seeds"]
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    seed_text = f"{seeds[0]}-{seeds[-1]}" if contiguous else ",".join(map(str, seeds))
    ax.set_title(f"madeye/accuracy{' --quick' if doc.get('quick') else ''}: seeds {seed_text}, "
                 f"{'+'.join(cfg['workloads'])}, {cfg['eval_steps']} steps, K={cfg['k_explore']}")
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)


def shape_views(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from tenfold.systems.madeye import WORKLOADS, MadEyeCamera, SimConfig, SimPanorama, prepare

    torch.set_num_threads(1)
    src = SimPanorama(0)
    sc = prepare(src, WORKLOADS.get("W1"), sim=SimConfig(eval_steps=200))
    ep = sc.episode
    cam = MadEyeCamera(ep.approx, ep.region, ep.workload, config=ep.config, weights=ep.weights)
    snapshots = []
    for t in ep.steps[:40]:
        shape = cam.shape
        views = {o: ep.view(o, t) for o in shape}
        sent = cam.step(views, t)
        if t in (ep.steps[0], ep.steps[39]):
            snapshots.append((t, shape, views, sent, cam.last_outputs))
    cols = max(len(s[1]) for s in snapshots)
    fig, axes = plt.subplots(len(snapshots), cols, figsize=(2.2 * cols, 1.6 * len(snapshots)), squeeze=False)
    for row, (t, shape, views, sent, outputs) in enumerate(snapshots):
        for col in range(cols):
            ax = axes[row][col]
            ax.axis("off")
            if col >= len(shape):
                continue
            o = shape[col]
            ax.imshow(views[o])
            for boxes in outputs[o].values():
                for b in boxes:
                    color = "red" if b.label == "person" else "lime"
                    ax.add_patch(plt.Rectangle((b.x1, b.y1), b.width, b.height, fill=False, color=color, lw=0.8))
            ax.set_title(f"{o}{' SENT' if o in sent else ''}", fontsize=7, color="blue" if o in sent else "black")
        axes[row][0].text(-20, 54, f"step {t}", rotation=90, va="center", fontsize=8)
    fig.suptitle("MadEye's shape, seed 0, W1 (approximation boxes: people red, cars green)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "madeye_shape_views.png", dpi=110)


if __name__ == "__main__":
    target = Path(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) > 3:
        accuracy_plot(Path(sys.argv[1]), target, sys.argv[3])
    else:
        accuracy_plot(Path(sys.argv[1]), target)
        shape_views(target)
