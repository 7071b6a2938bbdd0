"""Figures for reports: confusion matrix, per-class IoU, training curves, image / truth / prediction panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from semiland.engine.run_folder import read_log  # noqa: E402
from semiland.io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)


def plot_confusion(metrics: dict[str, Any], path: str | Path) -> None:
    cm = np.asarray(metrics["confusion_matrix"], dtype=float)
    names = metrics["classes"]
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2.5, 1.0 * len(names) + 2))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{rows[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if rows[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row-normalised)")
    ax.set_title(f"confusion matrix — mIoU {100 * (metrics['mIoU'] or 0):.1f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_per_class_iou(results: dict[str, dict[str, Any]], path: str | Path) -> None:
    """Grouped bars: one group per class, one bar per run."""
    labels = list(results)
    names = results[labels[0]]["classes"]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    for i, label in enumerate(labels):
        ious = [100 * (results[label]["per_class"][n]["IoU"] or 0) for n in names]
        ax.bar(np.arange(len(names)) + i * width - 0.4 + width / 2, ious, width, label=label)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("per-class IoU on the test images")
    _save(fig, path)


def plot_sweep(rows: list[dict[str, Any]], methods: list[str], key: str, path: str | Path, title: str) -> None:
    """A sweep at a glance, one column per budget. Top: `key` of every seed (dots) with mean ± std per method,
    supervised's mean dashed and the oracle's dotted. Bottom: each seed's difference to supervised (same seed:
    same initialisation and crops), the mean ± std, zero marked."""
    budgets = list(dict.fromkeys(r["budget"] for r in rows))
    names = [m for m in [*methods, "oracle"] if any(r["method"] == m and r.get(key) is not None for r in rows)]
    fig, axes = plt.subplots(2, len(budgets), figsize=(0.75 * len(names) * len(budgets) + 2.5, 6.4), squeeze=False)
    for col, budget in enumerate(budgets):
        seeds = {m: {r["seed"]: 100 * r[key] for r in rows if r["method"] == m and r["budget"] == budget
                     and r.get(key) is not None} for m in names}  # fmt: skip
        top, bottom = axes[0, col], axes[1, col]
        for i, m in enumerate(names):
            vals = list(seeds[m].values())
            diffs = [v - seeds["supervised"][s] for s, v in seeds[m].items() if s in seeds.get("supervised", {})]
            for ax, ys in ((top, vals), (bottom, diffs if m != "supervised" else [])):
                if ys:
                    ax.scatter([i] * len(ys), ys, s=14, color="0.55", zorder=2)
                    ax.errorbar(i, np.mean(ys), yerr=np.std(ys, ddof=1) if len(ys) > 1 else 0, fmt="o", color="C0",
                                capsize=4, zorder=3)  # fmt: skip
        for m, style in (("supervised", "--"), ("oracle", ":")):
            if seeds.get(m):
                top.axhline(np.mean(list(seeds[m].values())), ls=style, color="0.3", lw=1, label=m)
        bottom.axhline(0, color="0.3", lw=1)
        top.set_title(f"{title} — {budget}", fontsize=10)
        top.set_ylabel("mIoU (%)")
        bottom.set_ylabel("Δ vs supervised (points)")
        if top.get_legend_handles_labels()[0]:
            top.legend(fontsize=7, loc="lower right")
        for ax in (top, bottom):
            ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_sweep_curves(curves: dict[tuple[str, str], list[list[tuple[float, float]]]], path: str | Path) -> None:
    """Validation mIoU against step, one panel per budget, one colour per method, one line per seed."""
    budgets = list(dict.fromkeys(b for b, _ in curves))
    methods = list(dict.fromkeys(m for _, m in curves))
    fig, axes = plt.subplots(1, len(budgets), figsize=(6.5 * len(budgets), 4), squeeze=False)
    for ax, budget in zip(axes[0], budgets):
        for i, method in enumerate(methods):
            for j, curve in enumerate(curves.get((budget, method), [])):
                if curve:
                    steps, values = zip(*curve)
                    ax.plot(steps, [100 * v for v in values], color=f"C{i % 10}", lw=1.2, alpha=0.8,
                            label=method if j == 0 else None)  # fmt: skip
        ax.set_title(f"validation mIoU — {budget}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("mIoU (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def plot_sensitivity(
    points: list[dict[str, Any]],
    xlabel: str,
    path: str | Path,
    log_x: bool = False,
    baselines: dict[str, float] | None = None,
) -> None:
    """A sensitivity curve: mean ± std (error bars) of each line's points against x, one panel per point
    "panel" ("" = one panel), an optional dashed baseline per panel (supervised)."""
    panels = list(dict.fromkeys(p["panel"] for p in points))
    ncol = 1 + len({p["line"] for p in points}) // 16  # legend columns, beside each panel
    fig, axes = plt.subplots(1, len(panels), figsize=((5 + 1.9 * ncol) * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        lines = list(dict.fromkeys(p["line"] for p in points if p["panel"] == panel))
        for i, line in enumerate(lines):
            pts = sorted((p["x"], p["mean"], p["std"]) for p in points if p["panel"] == panel and p["line"] == line)
            xs, means, stds = zip(*pts)
            style = {"color": "black", "ls": "--", "lw": 2} if line == "supervised" else {"color": f"C{i % 10}"}
            ax.errorbar(xs, means, yerr=stds, marker="os^vD"[i // 10 % 5], ms=4, capsize=3, label=line, **style)
        if baselines and panel in baselines:
            ax.axhline(baselines[panel], ls="--", color="0.3", lw=1, label="supervised")
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
        xs_all = sorted({p["x"] for p in points if p["panel"] == panel})
        ax.set_xticks(xs_all, [f"{x:g}" for x in xs_all])
        ax.set_title(panel or "", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test mIoU (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), ncol=ncol)
    fig.tight_layout()
    _save(fig, path)


def _smooth(values: tuple[float, ...], weight: float = 0.8) -> list[float]:
    """Exponential moving average, as TensorBoard smooths noisy per-batch losses."""
    out, avg = [], values[0]
    for v in values:
        avg = weight * avg + (1 - weight) * v
        out.append(avg)
    return out


def _legend(ax) -> None:
    """A legend where the panel has labelled lines (a run shorter than log_every has logged none yet)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_curves(logs: dict[str, str | Path], path: str | Path) -> None:
    """Training loss and validation mIoU against step for every run."""
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.4))
    for label, csv_path in logs.items():
        series = read_log(csv_path)
        if "train/loss" in series:  # the "step" column is the engine's optimisation step (SegTask logs it)
            steps, values = zip(*series["train/loss"])
            (line,) = ax_loss.plot(steps, values, lw=0.8, alpha=0.3)
            ax_loss.plot(steps, _smooth(values), color=line.get_color(), lw=1.6, label=label)
        if "val/mIoU" in series:
            steps, values = zip(*series["val/mIoU"])
            (line,) = ax_val.plot(steps, [100 * v for v in values], marker="o", label=label)
            for key in sorted(k for k in series if k.startswith("val/") and k.endswith("/mIoU") and k != "val/mIoU"):
                steps, values = zip(*series[key])  # a head alone (DLLR's branches), dashed in the run's colour
                head = key.removeprefix("val/").removesuffix("/mIoU")
                ax_val.plot(steps, [100 * v for v in values], ls="--", marker=".", color=line.get_color(),
                            label=f"{label}: {head} alone")  # fmt: skip
    ax_loss.set(xlabel="step", ylabel="training loss", title="training loss")
    ax_loss.set_yscale("log")
    # plain numbers (0.2, 0.5, 1) rather than 10⁰ and 5×10⁻¹; minor ticks labelled at 2, 3 and 5 only
    ax_loss.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else "")
    )
    ax_val.set(xlabel="step", ylabel="mIoU (%)", title="validation mIoU")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        _legend(ax)
    _save(fig, path)


def plot_health(series: dict[str, dict[str, str | Path]], path: str | Path) -> None:
    """One panel per watched quantity (a generative method's alarm keys, a method's signals): {key: {run label:
    log csv}}."""
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.2), squeeze=False)
    for ax, (key, logs) in zip(axes[0], series.items()):
        for label, csv_path in logs.items():
            points = read_log(csv_path).get(f"train/{key}")
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, lw=0.8, alpha=0.3)
                ax.plot(steps, _smooth(values), color=ax.lines[-1].get_color(), lw=1.6, label=label)
        ax.set(xlabel="step", title=key)
        ax.grid(alpha=0.3)
        _legend(ax)
    _save(fig, path)


def plot_target_shares(logs: dict[str, str | Path], names: list[str], colors: list, path: str | Path) -> bool:
    """One panel per run whose log has `train/target/<class>` (methods with hard pseudo-labels: what share of the
    kept targets each class gets, smoothed): a class sinking to zero is one the run is learning to stop
    predicting. Nothing is drawn, and False returned, where no run logged them."""
    every = {label: read_log(csv_path) for label, csv_path in logs.items()}
    runs = {label: series for label, series in every.items() if any(k.startswith("train/target/") for k in series)}
    if not runs:
        return False
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.2), squeeze=False, sharey=True)
    for ax, (label, series) in zip(axes[0], runs.items()):
        for name, color in zip(names, colors):
            if points := series.get(f"train/target/{name}"):
                steps, values = zip(*points)
                ax.plot(steps, [100 * v for v in _smooth(values)], color=np.asarray(color) / 255, lw=1.6, label=name)
        ax.set(xlabel="step", title=label)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of the kept pseudo-labels (%)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    _save(fig, path)
    return True


def display_rgb(
    image: np.ndarray, valid: np.ndarray | None = None, rgb: tuple[int, int, int] | None = None
) -> np.ndarray:
    """(C, H, W) raw values → (H, W, 3) uint8, 2–98 % stretch per band: bands `rgb` (0-based; the natural
    colour bands, `data.raster.natural_colour`), else the first three (or band 1 as grey)."""
    if rgb is not None:
        bands = image[list(rgb)]
    else:
        bands = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, 0)
    out = np.zeros((*bands.shape[1:], 3), dtype=np.uint8)
    sel = valid if valid is not None and valid.any() else np.ones(bands.shape[1:], bool)
    for c in range(3):
        lo, hi = np.percentile(bands[c][sel], [2, 98])
        out[..., c] = (np.clip((bands[c] - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    return out


def plot_panels(
    rows: list[dict[str, Any]], class_names: list[str], colors: list[tuple[int, int, int]], path: str | Path
) -> None:
    """rows: [{"title", "image" (H, W, 3), "truth" (H, W, 3), "preds": {label: (H, W, 3)}}] → one figure."""
    n_cols = 2 + len(rows[0]["preds"])
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(3.2 * n_cols, 3.2 * len(rows) + 0.6), squeeze=False)
    for r, row in enumerate(rows):
        panels = [
            (row.get("image_title", "image"), row["image"]),
            ("ground truth", row["truth"]),
            *row["preds"].items(),
        ]
        for c, (title, img) in enumerate(panels):
            axes[r, c].imshow(img, interpolation="nearest")
            axes[r, c].set_title(title if r == 0 else "", fontsize=9)
            axes[r, c].axis("off")
        axes[r, 0].text(
            -0.05, 0.5, row["title"], transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=8
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=np.array(c) / 255) for c in [*colors, (0, 0, 0)]]
    labels = [*class_names, "ignored / nodata"]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.08)
    _save(fig, path)
