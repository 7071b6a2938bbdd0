"""Figures of `semiland analyze` (MiniFrance Figs. 4–8, 12, 13): class histograms, the t-SNE plane,
appearance maps, IoU / IoT heatmaps and per-class proportions in the appearance plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semiland.report.figures import _save, plt


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def plot_class_shares(shares: dict[str, np.ndarray], names: list[str], colors: list, title: str, path: Path) -> None:
    """Stacked bars: for each group (region or split), the share of every class among its labeled pixels."""
    groups = list(shares)
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(groups) + 3), 4))
    bottom = np.zeros(len(groups))
    for k, name in enumerate(names):
        vals = np.array([shares[g][k] for g in groups])
        ax.bar(groups, vals, bottom=bottom, color=np.asarray(colors[k]) / 255, label=name, edgecolor="#444", lw=0.3)
        bottom += vals
    ax.set_ylabel("share of labeled pixels")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    _save(fig, path)


def plot_plane(xy: np.ndarray, groups: list[str], maps: dict[str, np.ndarray], extent: list[float], path: Path) -> None:
    """Left: every sub-tile in the t-SNE plane coloured by group. Right: each group's appearance map outline."""
    names = sorted(set(groups))
    colors = _colors(len(names))
    labels = np.asarray(groups)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for name, col in zip(names, colors, strict=True):
        pts = xy[labels == name]
        axes[0].scatter(pts[:, 0], pts[:, 1], s=8, color=col, label=name, alpha=0.8)
        m = maps.get(name)  # images outside every split have points but no map
        if m is not None and m.any():
            axes[1].contourf(
                np.linspace(extent[0], extent[1], m.shape[1]),
                np.linspace(extent[2], extent[3], m.shape[0]),
                m.astype(float), levels=[0.5, 1.5], colors=[col], alpha=0.25,
            )  # fmt: skip
            axes[1].contour(
                np.linspace(extent[0], extent[1], m.shape[1]),
                np.linspace(extent[2], extent[3], m.shape[0]),
                m.astype(float), levels=[0.5], colors=[col],
            )  # fmt: skip
        axes[1].plot([], [], color=col, label=name)
    axes[0].set_title("sub-tiles in the appearance plane (t-SNE)")
    axes[1].set_title("appearance maps (one-class SVM per group)")
    for ax in axes:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    _save(fig, path)


def plot_matrix(
    matrix: np.ndarray, names: list[str], title: str, path: Path, xlabel: str = "", ylabel: str = ""
) -> None:
    fig, ax = plt.subplots(figsize=(0.6 * len(names) + 3, 0.55 * len(names) + 2.5))
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w" if matrix[i, j] < 0.6 else "k",
                    fontsize=8)  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_class_proportions(xy: np.ndarray, proportions: np.ndarray, names: list[str], path: Path) -> None:
    """One panel per class: labeled sub-tiles in the appearance plane coloured by that class's share."""
    n = len(names)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.1 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.axis("off")
            continue
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=proportions[:, k], s=7, cmap="magma_r", vmin=0, vmax=1)
        ax.set_title(names[k], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes.ravel().tolist(), fraction=0.02, label="class share in sub-tile")
    _save(fig, path)
