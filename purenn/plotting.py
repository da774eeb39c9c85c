"""The book's figures: decision regions over the training points, and training curves.

Needs matplotlib (``pip install 'purenn[plot]'``). Figures are drawn with matplotlib's
object API on the Agg canvas, so nothing here touches pyplot's global state or needs a
display.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

WIDTH, HEIGHT, DPI = 15.0, 4.5, 100  # inches, inches, dots per inch: a 1500 x 450 PNG
GRID = 300  # grid points per axis for the decision regions
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")

INSTALL_HINT = "--plot needs matplotlib: pip install 'purenn[plot]' (or pip install matplotlib)"


def require_matplotlib() -> None:
    """Raise ImportError with the install command when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None


@functools.lru_cache(maxsize=16)
def _predict(model):
    return jax.jit(lambda params, x: model.apply(params, x))


def decision_grid(model, params, X, *, binary: bool, resolution: int = GRID):
    """The predicted class over a grid covering ``X``'s bounding box (plus a 10% margin).

    Returns ``(xx, yy, classes)``, each ``(resolution, resolution)``: argmax of the outputs,
    or ``p > 0.5`` for a binary model.
    """
    X = np.asarray(X)
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-6)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=jnp.asarray(X).dtype)
    output = np.asarray(_predict(model)(params, points))
    classes = (output[:, 0] > 0.5).astype(int) if binary else output.argmax(axis=1)
    return xx, yy, classes.reshape(xx.shape)


def _curve(ax, epochs, values, label, colour, *, style="-", marker=None):
    values = np.asarray(values, dtype=np.float64)
    epochs = np.asarray(epochs)
    if epochs.ndim > 1:  # stacked over seeds: every seed has the same epochs
        epochs = epochs[0]
    if values.ndim == 1:
        ax.plot(epochs, values, style, label=label, color=colour, linewidth=1.2,
                marker=marker, markersize=3)
        return
    mean, std = values.mean(axis=0), values.std(axis=0)
    ax.plot(epochs, mean, style, label=f"{label} (mean of {values.shape[0]})", color=colour,
            linewidth=1.2, marker=marker, markersize=3)
    ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def loss_limits(curves, *, percentile: float = 99.0) -> tuple[float, bool]:
    """The top of the loss panel, and whether any point lies above it: just above the
    highest of each curve's first value and its ``percentile``-th percentile, so that a
    few short spikes (Adam at a high learning rate) do not squash the rest of the curve
    into the bottom of the panel."""
    ceiling, highest = 0.0, 0.0
    for curve in curves:
        values = np.asarray(curve, dtype=np.float64)
        firsts = np.ravel(values[..., 0]) if values.size else values
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        highest = max(highest, values.max())
        ceiling = max(ceiling, np.percentile(values, percentile),
                      *firsts[np.isfinite(firsts)])
    if ceiling <= 0:
        return 1.0, False
    top = ceiling * 1.1
    return top, bool(highest > top)


def figure_run(run, *, binary: bool, title: str = "", seeds=None):
    """The matplotlib ``Figure`` that ``plot_run`` saves (for a notebook or a test)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    X, y = np.asarray(run.X), np.asarray(run.y).reshape(-1)
    classes = int(y.max()) + 1 if not binary else 2
    colours = [_COLOURS[i % len(_COLOURS)] for i in range(max(classes, 2))]
    cmap = ListedColormap(colours)

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(fig)
    regions, losses, accuracies = fig.subplots(1, 3)

    xx, yy, grid = decision_grid(run.model, run.params, X, binary=binary)
    regions.pcolormesh(xx, yy, grid, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
                       alpha=0.3, shading="auto")
    regions.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
                    s=10, edgecolors="black", linewidths=0.3)
    regions.set_xlim(xx.min(), xx.max())
    regions.set_ylim(yy.min(), yy.max())
    regions.set_aspect("equal", adjustable="box")
    regions.set_title(f"decision regions{' (p > 0.5)' if binary else ''}, seed {run.seed}")

    history = seeds.history if seeds is not None else run.history
    epochs = np.asarray(history["epoch"])
    plotted = []
    for name, colour in (("loss", "black"), ("data_loss", "tab:blue"),
                         ("reg_loss", "tab:orange")):
        if name in history and (name != "reg_loss" or np.any(np.asarray(history[name]))):
            _curve(losses, epochs, history[name], name, colour)
            plotted.append(history[name])
    if "accuracy" in history:
        _curve(accuracies, epochs, history["accuracy"], "training acc", "tab:green")
        accuracies.set_ylim(0, 1.02)
    # Validation: the curves fit drew at its log lines, else the final value as a line.
    curves = "val_epoch" in history and np.size(history["val_epoch"]) > 0
    if curves:
        val_epochs = history["val_epoch"]
        _curve(losses, val_epochs, history["val_loss"], "validation loss", "tab:red",
               style="--", marker="o" if np.shape(val_epochs)[-1] <= 30 else None)
        plotted.append(history["val_loss"])
        if np.size(history.get("val_accuracy", ())):
            _curve(accuracies, val_epochs, history["val_accuracy"], "validation acc",
                   "tab:red", style="--",
                   marker="o" if np.shape(val_epochs)[-1] <= 30 else None)
    validation = seeds.validation if seeds is not None else run.validation
    if validation is not None:
        for name, ax in (("loss", losses), ("accuracy", accuracies)):
            if name in validation:
                value = float(np.mean(validation[name]))
                label = (f"final validation {'acc' if name == 'accuracy' else name}"
                         f"{' (mean)' if seeds is not None else ''}: {value:.3f}")
                if curves:  # the curve is there already: label its end
                    ax.plot([], [], " ", label=label)
                else:
                    ax.axhline(value, color="tab:red", linestyle="--", linewidth=1,
                               label=label)
    title_of_losses = "loss"
    if plotted:
        top, clipped = loss_limits(plotted)
        losses.set_ylim(0, top)
        if clipped:
            title_of_losses += f" (spikes above {top:.2g} cut off)"
    losses.set_title(title_of_losses)
    for ax in (losses, accuracies):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    accuracies.set_title("accuracy")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_run(path: str | os.PathLike, run, *, binary: bool, title: str = "",
             seeds=None) -> None:
    """Write a PNG of ``run`` (an ``experiments.Run``): decision regions over the training
    points, loss curves and accuracy curves, side by side, ``WIDTH x HEIGHT`` inches at
    ``DPI``. With ``seeds`` (an ``experiments.Seeds``), the curves are the mean ± std over
    the seeds and the regions are those of ``run``.

    Validation: when the history holds ``val_epoch``, ``val_loss`` and ``val_accuracy``
    (``pn.fit(..., validation_data=...)``), they are drawn as curves beside the training
    ones; otherwise the final validation result (``run.validation``) is a horizontal
    line. The loss panel's top is cut just above each curve's first value or 99th
    percentile, whichever is higher, so that loss spikes do not flatten the curves.
    """
    fig = figure_run(run, binary=binary, title=title, seeds=seeds)
    fig.savefig(os.fspath(path), format="png", dpi=DPI)
