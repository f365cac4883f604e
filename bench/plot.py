"""bench/throughput.png: copier throughput against concurrency, this project and the baseline, from results.json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: a file only

import matplotlib.pyplot as plt  # after choosing the backend

# series: colour, marker, line style, where its value labels go (points of offset)
STYLES: dict[str, tuple[str, str, str, tuple[int, int], str]] = {
    "this project, 1 invocation": ("tab:blue", "o", "-", (0, -13), "center"),
    "this project, 2 invocations x 10": ("tab:green", "D", "", (9, 0), "left"),
    "baseline": ("tab:orange", "s", "-", (-9, 4), "right"),
}
Y_TICKS = (1, 2, 5, 10, 20, 50, 100, 200)


def plot_throughput(rows: Sequence[Mapping[str, Any]], copy_delay: float, path: Path, subtitle: str = "") -> None:
    """One line per `series` (x = `x`, the concurrency setting; y = `files_per_second`) and the ideal n / copy time."""
    figure, axes = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    for series, (colour, marker, line, offset, align) in STYLES.items():
        points = sorted((float(row["x"]), float(row["files_per_second"])) for row in rows if row["series"] == series)
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker=marker, color=colour, linestyle=line or "none", label=series)
        for x, y in points:
            axes.annotate(
                f"{y:.1f}", (x, y), textcoords="offset points", xytext=offset, ha=align, va="center", fontsize=8
            )
    every = sorted({float(row["x"]) for row in rows})
    if every:
        ideal = [x / copy_delay for x in every]
        axes.plot(every, ideal, linestyle="--", color="grey", label="ideal: copies in flight / copy time")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(every, [f"{x:g}" for x in every])
        axes.set_xlim(min(every) / 1.25, max(every) * 1.4)
        low, high = min(ideal) / 2, max(ideal) * 1.3
        axes.set_ylim(low, high)
        kept = [y for y in Y_TICKS if low <= y <= high]
        axes.set_yticks(kept, [f"{y:g}" for y in kept])
        axes.minorticks_off()
    axes.set_xlabel("concurrency: COPY_CONCURRENCY per invocation (this project), concurrent requests (baseline)")
    axes.set_ylabel("files per second")
    title = f"Copier throughput, {copy_delay * 1000:.0f} ms per remote copy, batches of 10"
    axes.set_title(f"{title}\n{subtitle}" if subtitle else title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
