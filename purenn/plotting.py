"""Every figure: a run's decision regions over its training points (or, for regression,
its fitted curve over the data) beside its training curves (``plot_run``), and a sweep's
accuracy against its swept values (``plot_sweep``).

Needs matplotlib (``pip install 'purenn[plot]'``). Figures are drawn with matplotlib's
object API on the Agg canvas, so nothing here touches pyplot's global state or needs a
display.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from purenn.experiments import mean_std
from purenn.partition import jit_program
from purenn.sweep import Cell, format_value

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
    return jit_program(lambda params, x: model.apply(params, x))


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
    # NumPy points in the dtype JAX would give X: the program converts them, nothing eager
    dtype = jax.dtypes.canonicalize_dtype(X.dtype)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(dtype)
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


def _draw_regions(regions, run, *, binary: bool) -> None:
    """The decision regions of ``run``'s model over its training points."""
    from matplotlib.colors import ListedColormap

    X, y = np.asarray(run.X), np.asarray(run.y).reshape(-1)
    classes = int(y.max()) + 1 if not binary else 2
    colours = [_COLOURS[i % len(_COLOURS)] for i in range(max(classes, 2))]
    cmap = ListedColormap(colours)
    xx, yy, grid = decision_grid(run.model, run.params, X, binary=binary)
    regions.pcolormesh(xx, yy, grid, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
                       alpha=0.3, shading="auto")
    regions.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
                    s=10, edgecolors="black", linewidths=0.3)
    regions.set_xlim(xx.min(), xx.max())
    regions.set_ylim(yy.min(), yy.max())
    regions.set_aspect("equal", adjustable="box")
    regions.set_title(f"decision regions{' (p > 0.5)' if binary else ''}, seed {run.seed}")


def _draw_fit(ax, run) -> None:
    """A regression model of one input: the data, and the model's outputs over the
    data's range (plus a 10% margin) as a curve, one per output."""
    X, y = np.asarray(run.X), np.asarray(run.y)
    if X.shape[1] != 1:
        raise ValueError(f"the fitted curve needs data of one input feature; got "
                         f"{X.shape[1]}")
    low, high = float(X.min()), float(X.max())
    margin = 0.1 * max(high - low, 1e-6)
    xs = np.linspace(low - margin, high + margin, GRID)[:, None]
    xs = xs.astype(jax.dtypes.canonicalize_dtype(X.dtype))
    outputs = np.asarray(_predict(run.model)(run.params, xs))
    targets = y.reshape(len(X), -1)
    for j in range(targets.shape[1]):
        ax.scatter(X[:, 0], targets[:, j], s=6, color=_COLOURS[j % len(_COLOURS)], alpha=0.5,
                   label="data" if targets.shape[1] == 1 else f"data, output {j}")
        ax.plot(xs[:, 0], outputs[:, j], color="black", linewidth=1.5,
                label="model" if targets.shape[1] == 1 else f"model, output {j}")
    ax.set_xlabel("x")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"fitted curve over the data, seed {run.seed}")


def figure_run(run, *, binary: bool = False, regression: bool = False, title: str = "",
               seeds=None):
    """The matplotlib ``Figure`` that ``plot_run`` saves (for a notebook or a test)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(fig)
    data, losses, accuracies = fig.subplots(1, 3)
    if regression:
        _draw_fit(data, run)
    else:
        _draw_regions(data, run, binary=binary)

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
    if regression:  # a squared error falls by orders of magnitude
        losses.set_yscale("log")
        title_of_losses += " (log scale)"
    elif plotted:
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


def plot_run(path: str | os.PathLike, run, *, binary: bool = False,
             regression: bool = False, title: str = "", seeds=None) -> None:
    """Write a PNG of ``run`` (an ``experiments.Run``): decision regions over the training
    points (``regression``: the model's curve over the data, for one input feature), loss
    curves and accuracy curves, side by side, ``WIDTH x HEIGHT`` inches at ``DPI``. With
    ``seeds`` (an ``experiments.Seeds``), the curves are the mean ± std over the seeds
    and the regions (or the curve) are those of ``run``.

    Validation: when the history holds ``val_epoch``, ``val_loss`` and ``val_accuracy``
    (``pn.fit(..., validation_data=...)``), they are drawn as curves beside the training
    ones; otherwise the final validation result (``run.validation``) is a horizontal
    line. The loss panel's top is cut just above each curve's first value or 99th
    percentile, whichever is higher, so that loss spikes do not flatten the curves.
    """
    fig = figure_run(run, binary=binary, regression=regression, title=title, seeds=seeds)
    fig.savefig(os.fspath(path), format="png", dpi=DPI)


# --- sweeps ----------------------------------------------------------------------------

_FEW = 3  # two options, one with at most this many values: lines, not heat maps
_LABELS = {"train_accuracy": "training acc", "val_accuracy": "validation acc",
           "gap": "gap (training - validation acc)"}


def figure_sweep(summary: Sequence[Cell], grid: Mapping[str, Sequence]):
    """The matplotlib ``Figure`` that ``plot_sweep`` saves (for a notebook or a test)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(grid)
    if not names:
        raise ValueError("nothing to plot: the grid varies no hyperparameter")
    seeds = sorted({len(cell.seeds) for cell in summary})
    over = f"mean ± std over {seeds[0] if len(seeds) == 1 else 'the'} seeds"
    few = [name for name in names if len(grid[name]) <= _FEW]
    if len(names) == 1:
        fig = _lines(Figure, summary, grid, names[0], None, over)
    elif len(names) == 2 and few:  # lines for the option with fewer values
        line_name = min(reversed(few), key=lambda name: len(grid[name]))  # ties: the 2nd
        x_name = next(name for name in names if name != line_name)
        fig = _lines(Figure, summary, grid, x_name, line_name, over)
    elif len(names) == 2:
        fig = _heat_maps(Figure, summary, grid, names, over)
    else:
        fig = _panels(Figure, summary, grid, names)
    FigureCanvasAgg(fig)
    return fig


def plot_sweep(path: str | os.PathLike, summary: Sequence[Cell],
               grid: Mapping[str, Sequence]) -> None:
    """Write a PNG of a sweep's ``summary`` (from ``sweep.summarize``) over ``grid``: the
    training and validation accuracy and their gap against the swept values, mean ± std
    over seeds. One swept option: accuracy and gap against its values. Two, one of them
    with at most 3 values: the same, one line per value of that one. Two with more
    values: heat maps of the validation accuracy, the training accuracy and the gap, each
    cell annotated with its mean ± std. More: one column per option, each value's mean ±
    std over every run that has it."""
    figure_sweep(summary, grid).savefig(os.fspath(path), format="png", dpi=DPI)


def _value_key(value):
    return float(value)


def _lookup(summary):
    return {tuple(_value_key(v) for v in cell.values.values()): cell for cell in summary}


def _panels(Figure, summary, grid, names):
    """Three or more options: one column per option, accuracy above, gap below."""
    fig = Figure(figsize=(4.6 * len(names) + 0.4, 6.4), dpi=DPI)
    axes = fig.subplots(2, len(names), squeeze=False, sharey="row")
    colours = {"train_accuracy": "tab:blue", "val_accuracy": "tab:red", "gap": "black"}
    for column, name in enumerate(names):
        values = list(grid[name])
        positions = np.arange(len(values))
        for row, metrics in enumerate((("train_accuracy", "val_accuracy"), ("gap",))):
            ax = axes[row][column]
            for offset, metric in zip((-0.04, 0.04) if len(metrics) == 2 else (0.0,),
                                      metrics):
                means, stds = [], []
                for value in values:  # every run with this value: other options, seeds
                    runs = [m for cell in summary
                            if _value_key(cell.values[name]) == _value_key(value)
                            for m in cell.per_seed[metric]]
                    mean, std = mean_std(runs) if runs else (math.nan,) * 2
                    means.append(mean)
                    stds.append(std)
                if all(math.isnan(m) for m in means):
                    continue
                ax.errorbar(positions + offset, means, yerr=stds, marker="o", capsize=4,
                            color=colours[metric], label=_LABELS[metric], linewidth=1.4)
            ax.set_xticks(positions, [format_value(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel(name)
                ax.axhline(0, color="grey", linewidth=0.8)
            if column == 0:
                ax.set_ylabel("accuracy" if row == 0 else "training - validation acc")
                ax.legend(loc="best", fontsize="small")
    fig.suptitle("final accuracy against each option (mean ± std over the seeds and the "
                 "other options' values)")
    fig.tight_layout()
    return fig


def _lines(Figure, summary, grid, x_name, line_name, over):
    """Accuracy and gap against ``x_name``: one option (``line_name`` None), or two, one
    colour per value of ``line_name``."""
    xs = list(grid[x_name])
    lines = [None] if line_name is None else list(grid[line_name])
    positions = np.arange(len(xs))

    def key(cell):
        return tuple(_value_key(cell.values[name]) for name in (x_name, line_name)
                     if name is not None)

    cells_by_values = {key(c): c for c in summary}
    fig = Figure(figsize=(13.0, 4.8), dpi=DPI)
    accuracy, gap = fig.subplots(1, 2)
    spread = 0.06 * (np.arange(len(lines)) - (len(lines) - 1) / 2)
    for k, (line, offset) in enumerate(zip(lines, spread)):
        for ax, metric, style in ((accuracy, "train_accuracy", "--"),
                                  (accuracy, "val_accuracy", "-"), (gap, "gap", "-")):
            cells = [cells_by_values.get((_value_key(x),) if line is None
                                         else (_value_key(x), _value_key(line)))
                     for x in xs]
            means = [c.mean[metric] if c else math.nan for c in cells]
            stds = [c.std[metric] if c else math.nan for c in cells]
            if all(math.isnan(m) for m in means):
                continue
            if line is None:
                colour = {"train_accuracy": "tab:blue", "val_accuracy": "tab:red",
                          "gap": "black"}[metric]
                label = {"train_accuracy": "training", "val_accuracy": "validation",
                         "gap": "training - validation"}[metric]
            else:
                colour = _COLOURS[k % len(_COLOURS)]
                label = f"{line_name} {format_value(line)}" + {
                    "train_accuracy": ", training", "val_accuracy": ", validation",
                    "gap": ""}[metric]
            ax.errorbar(positions + offset, means, yerr=stds, marker="o", capsize=4,
                        color=colour, linestyle=style, linewidth=1.4, label=label)
    for ax, title in ((accuracy, "training (dashed) and validation (solid) accuracy"),
                      (gap, _LABELS["gap"])):
        ax.set_xticks(positions, [format_value(x) for x in xs])
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_xlabel(x_name)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    gap.axhline(0, color="grey", linewidth=0.8)
    against = x_name if line_name is None else f"{x_name} and {line_name}"
    fig.suptitle(f"final accuracy against {against} ({over})")
    fig.tight_layout()
    return fig


def _heat_maps(Figure, summary, grid, names, over):
    rows, columns = (list(grid[name]) for name in names)
    cells_by_key = _lookup(summary)
    metrics = ("val_accuracy", "train_accuracy", "gap")
    width = max(4.2, 0.95 * len(columns) + 1.6)
    height = max(3.6, 0.6 * len(rows) + 1.8)
    fig = Figure(figsize=(width * 3, height), dpi=DPI)
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes, metrics):
        mean = np.full((len(rows), len(columns)), np.nan)
        std = np.full_like(mean, np.nan)
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                cell = cells_by_key.get((_value_key(r), _value_key(c)))
                if cell is not None:
                    mean[i, j], std[i, j] = cell.mean[metric], cell.std[metric]
        cmap = "magma" if metric == "gap" else "viridis"
        image = ax.imshow(mean, cmap=cmap, aspect="auto", origin="lower")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        finite = mean[np.isfinite(mean)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isfinite(mean[i, j]):
                    dark = mean[i, j] < middle
                    ax.text(j, i, f"{mean[i, j]:.3f}\n± {std[i, j]:.3f}", ha="center",
                            va="center", fontsize="small",
                            color="white" if dark else "black")
        ax.set_xticks(np.arange(len(columns)), [format_value(v) for v in columns])
        ax.set_yticks(np.arange(len(rows)), [format_value(v) for v in rows])
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
        ax.set_title(_LABELS[metric])
    fig.suptitle(f"final accuracy against {names[0]} and {names[1]} ({over})")
    fig.tight_layout()
    return fig
