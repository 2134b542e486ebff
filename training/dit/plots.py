"""Loss curves per bucket as a PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_bucket_losses(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    """One line per bucket (step, loss) with a 9-point moving average; writes `path` (PNG) atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for bucket, points in sorted(history.items()):
        if not points:
            continue
        steps = np.array([p[0] for p in points])
        losses = np.array([p[1] for p in points])
        window = min(9, len(losses))
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, label=f"{bucket} (n={len(points)})")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching MSE")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
