"""Plots for the example scripts, written straight to PNG files.

Figures are made with matplotlib's object API and its Agg (file-only) renderer, so nothing here needs a
display or changes pyplot's global backend. Each function takes plain NumPy arrays / lists and a path.
"""
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter


def save(fig, path):
    """Write `fig` as a PNG at `path` (creating its folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# How each split is drawn: training solid with filled circles, validation dashed with open squares, so
# the two stay apart even when there is one epoch (a single point, no line) or no colour.
SPLIT_STYLES = {"train": dict(linestyle="-", marker="o"),
                "val": dict(linestyle="--", marker="s", markerfacecolor="white")}


def plot_curves(histories, path, title=""):
    """Training curves: loss (left) and accuracy (right) per epoch, train and validation (curves_figure)."""
    return save(curves_figure(histories, title), path)


def curves_figure(histories, title=""):
    """The figure of plot_curves. histories: {run label: {'train_loss': [...], 'val_loss': [...],
    'train_acc': [...], 'val_acc': [...]}} (one colour per run; a run's history may lack the accuracy
    entries). The epoch axis has whole-number ticks whatever the number of epochs, one included; the
    loss axis is logarithmic when the losses span more than a factor of 10."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    most_epochs = 1
    for i, (label, history) in enumerate(histories.items()):
        for metric, ax in (("loss", ax_loss), ("acc", ax_acc)):
            for split, style in SPLIT_STYLES.items():
                values = history.get(f"{split}_{metric}")
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    most_epochs = max(most_epochs, len(values))
                    ax.plot(epochs, values, color=f"C{i}", markersize=5, label=f"{label} {split}", **style)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    losses = [value for history in histories.values() for split in SPLIT_STYLES
              for value in history.get(f"{split}_loss") or []]
    if losses and max(losses) > 10 * min(losses) > 0:   # over more than a decade: log scale, ticks at 1, 2, 5 x 10^k
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%g"))   # 0.05, not 5 x 10^-2
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
    for ax in (ax_loss, ax_acc):
        ax.set_xlim(0.5, most_epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if ax.lines:                            # an autoencoder's history has no accuracy
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def plot_decision_boundary(predict, points, labels, path, title=""):
    """Two classes of 2-D points over the model's probability map, with the p = 0.5 line.

    predict: maps a (M, 2) float32 array of positions to (M,) probabilities of class 1."""
    margin = 1.0
    (x0, y0), (x1, y1) = points.min(axis=0) - margin, points.max(axis=0) + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    probability = np.asarray(predict(grid)).reshape(gx.shape)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    filled = ax.contourf(gx, gy, probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(gx, gy, probability, levels=[0.5], colors="k", linewidths=1.5)
    for cls, marker in ((0, "o"), (1, "^")):
        chosen = labels == cls
        ax.scatter(points[chosen, 0], points[chosen, 1], s=12, marker=marker, edgecolors="k",
                   linewidths=0.3, color="C0" if cls == 0 else "C3", label=f"class {cls}")
    fig.colorbar(filled, ax=ax, label="P(class 1)")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_fits(x, target, fits, path, title=""):
    """A 1-D target function and several fitted curves of it. fits: {label: y values at x}."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(x, target, "k", linewidth=3, alpha=0.3, label="target")
    for label, y in fits.items():
        ax.plot(x, y, linewidth=1.2, label=label)
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_image_rows(rows, path, title=""):
    """Rows of grey images, one row per entry of rows = {row label: images (N, H, W)}."""
    n_rows, n_cols = len(rows), max(len(images) for images in rows.values())
    fig = Figure(figsize=(1.1 * n_cols + 1.2, 1.2 * n_rows + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray")
        axes[r, 0].set_ylabel(label)
    fig.suptitle(title)
    return save(fig, path)


def plot_steps(curves, path, title="", ylabel="cross-entropy loss"):
    """Values against training steps, one line per curve: curves = {label: (steps, values)}.
    A curve of a few points (an evaluation every few hundred steps) is drawn with markers."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o" if len(steps) <= 30 else None, markersize=4, label=label)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_panels(panels, path, title=""):
    """Curves side by side, one panel per entry of panels = {panel title: {curve label: (x, y)}};
    a panel title ending in "(log)" gets a log y axis."""
    fig = Figure(figsize=(4.4 * len(panels), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (panel, curves) in zip(axes, panels.items()):
        for label, (x, y) in curves.items():
            ax.plot(x, y, marker="." if len(x) < 40 else None, label=label)
        ax.set(title=panel, yscale="log" if panel.endswith("(log)") else "linear")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save(fig, path)


def plot_attention(weights, key_labels, query_labels, path, title=""):
    """Attention maps in a grid: weights = {row label: (heads, queries, keys) array}, one row of panels
    per entry and one panel per head; keys (e.g. source words) along x, queries (target words) along y."""
    n_rows, n_heads = len(weights), max(len(w) for w in weights.values())
    width = 0.32 * len(key_labels) + 1.2
    fig = Figure(figsize=(width * n_heads + 0.8, (0.3 * len(query_labels) + 1.3) * n_rows), layout="constrained")
    axes = np.asarray(fig.subplots(n_rows, n_heads, squeeze=False))
    for r, (label, heads) in enumerate(weights.items()):
        for h, ax in enumerate(axes[r]):
            image = ax.imshow(heads[h], cmap="viridis", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(key_labels)), key_labels, rotation=90, fontsize=8)
            ax.set_yticks(range(len(query_labels)), query_labels if h == 0 else [], fontsize=8)
            ax.set_title(f"{label}, head {h + 1}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    fig.suptitle(title)
    return save(fig, path)
