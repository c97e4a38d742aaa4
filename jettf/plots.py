"""Matplotlib figures for run reports: ROC, rejection, confusion matrix, training curves, jet images.

Every function draws on its own ``Figure`` with the Agg canvas (no pyplot, no global backend
switch, safe in threads and on machines without a display), writes one PNG of exactly
``figsize * dpi`` pixels through :func:`jettf.utils.atomic_path`, and returns its path.

Conventions follow :mod:`jettf.metrics`: ``y_true`` integer labels ``[N]``, ``probs`` softmax
outputs ``[N, C]``; binary tasks draw the signal class (default ``class_names[1]``), multiclass
tasks draw every class one-vs-rest with score ``probs[:, c]``. Images are ``[N, H, W]`` or
``[N, H, W, C]`` with image axis 1 = eta and axis 2 = phi; they are drawn with eta along x and
phi along y.
ROC and rejection plots leave out a class that has no jets (or only jets) in the test set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
from matplotlib import colormaps, colors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jettf import metrics
from jettf.utils import atomic_path

__all__ = [
    "new_figure",
    "save_figure",
    "image_extent",
    "plot_roc",
    "plot_rejection",
    "plot_confusion_matrix",
    "plot_training_curves",
    "plot_average_images",
    "plot_difference_image",
    "plot_mass_sculpting",
]

PathLike = Union[str, os.PathLike]
#: Log colour scales of average images span at most this ratio below their maximum.
IMAGE_DYNAMIC_RANGE = 1e6
# Curves of several models on one plot: colour follows the class, line style the model.
_LINESTYLES = ("-", "--", "-.", ":")


def new_figure(figsize, dpi) -> Figure:
    """A matplotlib figure on the Agg canvas (no pyplot, no global backend change)."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    return Path(path)


def _models(probs) -> dict:
    """``{label: probs}``; a bare array is one unlabelled model."""
    return dict(probs) if isinstance(probs, Mapping) else {"": probs}


def _curves(y_true, probs, class_names, signal_class):
    """Yield (legend label, line style, is_signal, score) per model and drawn class."""
    names = [str(c) for c in class_names]
    for m, (model, p) in enumerate(_models(probs).items()):
        y, p = metrics._labels_probs(y_true, p)
        if len(names) != p.shape[1]:
            raise ValueError(f"class_names: expected {p.shape[1]} names (one per column of probs), got {len(names)}")
        if len(names) == 2:
            classes = [1 if signal_class is None else metrics._class_index(signal_class, names)]
        else:
            classes = range(len(names))
        for c in classes:
            if (y == c).all() or not (y == c).any():
                continue  # no ROC without both signal and background
            label = f"{model}: {names[c]}" if model else names[c]
            style = {"color": f"C{c % 10}", "linestyle": _LINESTYLES[m % len(_LINESTYLES)]}
            yield label, style, y == c, p[:, c]


def plot_roc(
    y_true, probs, class_names: Sequence[str], path: PathLike, *, signal_class=None, title=None,
    figsize=(6.0, 5.0), dpi=100,
) -> Path:
    """ROC curves, signal efficiency eps_S (TPR) versus background efficiency eps_B (FPR), AUC in the legend.

    ``probs`` is ``[N, C]`` or a mapping ``{model name: [N, C]}`` to compare models on one test set.
    """
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    for label, style, is_signal, score in _curves(y_true, probs, class_names, signal_class):
        fpr, tpr, _ = metrics.roc_curve(is_signal, score)
        ax.plot(fpr, tpr, **style, label=f"{label} (AUC {metrics.roc_auc(is_signal, score):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="random")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=r"background efficiency $\epsilon_B$ (FPR)",
           ylabel=r"signal efficiency $\epsilon_S$ (TPR)", title=title or "ROC (one-vs-rest)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return save_figure(fig, path)


def plot_rejection(
    y_true, probs, class_names: Sequence[str], path: PathLike, *, signal_class=None, title=None,
    efficiencies=metrics.REJECTION_EFFICIENCIES, figsize=(6.0, 5.0), dpi=100,
) -> Path:
    """Background rejection 1/eps_B versus eps_S on a log scale, one-vs-rest per class.

    Thresholds where no background passes (1/eps_B infinite) are not drawn; dotted lines mark
    ``efficiencies`` and the legend quotes 1/eps_B there. ``probs`` as in :func:`plot_roc`.
    """
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    for label, style, is_signal, score in _curves(y_true, probs, class_names, signal_class):
        fpr, tpr, _ = metrics.roc_curve(is_signal, score)
        quoted = ", ".join(
            f"{metrics.background_rejection(is_signal, score, e):.4g} at {e:g}" for e in efficiencies
        )
        ax.plot(tpr[fpr > 0], 1.0 / fpr[fpr > 0], **style, label=f"{label} ({quoted})")
    eps = np.linspace(0.01, 1, 100)
    ax.plot(eps, 1 / eps, color="grey", linestyle=":", linewidth=1, label="random")
    for e in efficiencies:
        ax.axvline(e, color="black", linestyle=":", linewidth=0.8)
    ax.set_yscale("log")
    ax.set(xlim=(0, 1), xlabel=r"signal efficiency $\epsilon_S$",
           ylabel=r"background rejection $1/\epsilon_B$", title=title or "Background rejection")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize="small", title=r"$1/\epsilon_B$ at $\epsilon_S$", title_fontsize="small")
    return save_figure(fig, path)


def plot_confusion_matrix(
    y_true, probs, class_names: Sequence[str], path: PathLike, *, title=None, figsize=(6.0, 5.0), dpi=100,
) -> Path:
    """Confusion matrix normalised per true class (rows sum to 1), each cell annotated with its fraction."""
    cm = metrics.confusion_matrix(y_true, probs, normalize="true")
    names = [str(c) for c in class_names]
    if len(names) != cm.shape[0]:
        raise ValueError(f"class_names: expected {cm.shape[0]} names (one per column of probs), got {len(names)}")
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "Confusion matrix (row-normalised)")
    fig.colorbar(image, ax=ax, label="fraction of true class")
    return save_figure(fig, path)


def plot_training_curves(
    histories, path: PathLike, *, metric_names: Sequence[str] | None = None, title=None,
    figsize=(10.0, 4.0), dpi=100,
) -> Path:
    """Per-epoch training (solid) and validation (dashed) curves, one panel per metric, one colour per stage.

    ``histories`` is one Keras-style history dict ``{"loss": [...], "val_loss": [...], ...}``, a list of
    them (one per fold, labelled "fold 1", "fold 2", ...) or a dict ``{stage name: history}`` (a run's
    stages, e.g. ``fold_0``, ``fold_1``, ``final``, labelled by their names). ``metric_names`` defaults to
    every key without the ``val_`` prefix, ``loss`` first.
    """
    if isinstance(histories, Mapping) and histories and all(isinstance(h, Mapping) for h in histories.values()):
        labels, folds = [str(k) for k in histories], list(histories.values())
    else:
        folds = [histories] if isinstance(histories, Mapping) else list(histories)
        labels = [f"fold {k + 1}" for k in range(len(folds))]
    if not folds or not all(isinstance(h, Mapping) for h in folds):
        raise ValueError(
            "histories: expected a history dict {metric: per-epoch values} or a list of them (one per fold)"
        )
    if metric_names is None:
        found = {k for h in folds for k in h if not k.startswith("val_")}
        metric_names = sorted(found, key=lambda k: (k != "loss", k))
    if not metric_names:
        raise ValueError("histories: no metrics found (expected keys such as 'loss', 'val_loss')")
    fig = new_figure(figsize, dpi)
    axes = fig.subplots(1, len(metric_names), squeeze=False)[0]
    palette = [f"C{i % 10}" for i in range(len(folds))]
    for ax, name in zip(axes, metric_names):
        for k, history in enumerate(folds):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in history:
                    values = np.asarray(history[key], dtype=np.float64)
                    ax.plot(np.arange(1, values.size + 1), values, style, color=palette[k])
        ax.set(xlabel="epoch", ylabel=name, title=name)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color="black", linestyle=s, label=t) for s, t in (("-", "train"), ("--", "validation"))]
    if len(folds) > 1:
        handles += [Line2D([], [], color=c, label=label) for label, c in zip(labels, palette)]
    axes[-1].legend(handles=handles, fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def image_extent(extent) -> tuple[float, float, float, float]:
    """(eta_min, eta_max, phi_min, phi_max); a single number R means (-R, R, -R, R)."""
    try:
        values = np.atleast_1d(np.asarray(extent, dtype=np.float64))
    except (TypeError, ValueError):
        values = np.empty(0)
    if values.size == 1:
        values = np.array([-1, 1, -1, 1]) * abs(values[0])
    if values.shape != (4,) or not values[0] < values[1] or not values[2] < values[3]:
        raise ValueError(f"extent: expected (eta_min, eta_max, phi_min, phi_max) or a half-width R, got {extent!r}")
    return tuple(float(v) for v in values)


def _mean_image(image, name: str) -> np.ndarray:
    """A mean image ``[H, W]`` as float64, or a ValueError naming ``name``."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or not a.size:
        raise ValueError(f"{name}: expected a mean image [H, W] (one channel), got shape {a.shape}")
    return a


def _draw_image(ax, image, extent, norm, cmap, label, fig):
    shown = ax.imshow(np.ma.masked_invalid(image).T, origin="lower", extent=extent, norm=norm, cmap=cmap,
                      aspect="equal", interpolation="nearest")
    ax.set(xlabel=r"$\eta$", ylabel=r"$\phi$ [rad]")
    fig.colorbar(shown, ax=ax, label=label)


def plot_average_images(
    means: Mapping[str, np.ndarray], extent, path: PathLike, *, channel_names: Sequence[str] = None,
    units: Sequence[str] = None, title=None, dpi=100,
) -> Path:
    """Average jet image of each class (columns) and channel (rows), each channel on its own log colour scale.

    ``means`` maps class names to mean images ``[H, W]`` or ``[H, W, C]`` (axis 0 = eta, axis 1 = phi), e.g.
    :func:`jettf.training.trainer.class_mean_images`. ``extent`` is the image window (eta_min, eta_max,
    phi_min, phi_max) or its half-width R. Within a row the classes share the scale, so their brightness
    compares; pixels that are zero on average take the bottom colour; a scale spans at most
    :data:`IMAGE_DYNAMIC_RANGE` below the row's brightest pixel. ``units`` label the colour bars.
    """
    if not isinstance(means, Mapping) or not means:
        raise ValueError("means: expected a non-empty dict {class name: mean image [H, W] or [H, W, C]}")
    extent = image_extent(extent)
    arrays = {str(c): np.asarray(m, dtype=np.float64) for c, m in means.items()}
    arrays = {c: (m[..., None] if m.ndim == 2 else m) for c, m in arrays.items()}
    shapes = {m.shape for m in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"means: expected mean images of one shape [H, W] or [H, W, C], got {sorted(shapes)}")
    n_channels = next(iter(shapes))[2]
    channel_names = list(channel_names or [f"channel {k}" for k in range(n_channels)])
    units = list(units or [""] * n_channels)
    if len(channel_names) != n_channels or len(units) != n_channels:
        raise ValueError(f"channel_names/units: expected {n_channels} entries, one per channel")
    fig = new_figure((4.0 * len(arrays), 3.5 * n_channels), dpi)
    axes = fig.subplots(n_channels, len(arrays), squeeze=False)
    cmap = colormaps["viridis"].with_extremes(bad=colormaps["viridis"](0))
    for k in range(n_channels):
        row = {c: m[..., k] for c, m in arrays.items()}
        top = max(float(m.max()) for m in row.values())
        positive = [m[m > 0].min() for m in row.values() if (m > 0).any()]
        if top <= 0 or not positive:
            raise ValueError(f"means: every average image of channel {channel_names[k]!r} is zero or negative; "
                             "nothing to draw on a log scale (these must be images before standardization)")
        norm = colors.LogNorm(vmin=max(min(positive), top / IMAGE_DYNAMIC_RANGE), vmax=top, clip=True)
        label = f"mean {channel_names[k]}" + (f" [{units[k]}]" if units[k] else "")
        for ax, (name, mean) in zip(axes[k], row.items()):
            _draw_image(ax, np.where(mean > 0, mean, np.nan), extent, norm, cmap, label, fig)
            ax.set_title(f"{name}: {channel_names[k]}")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_difference_image(
    mean_a, mean_b, extent, path: PathLike, *, labels: Sequence[str] = ("a", "b"), normalize: bool = True,
    log: bool = True, title=None, figsize=(5.0, 4.0), dpi=100,
) -> Path:
    """Difference of two average jet images ``[H, W]``, <a> - <b>, on a diverging colour scale symmetric about 0.

    With ``normalize`` each average is first divided by its total intensity, so the map shows where
    each class puts its fraction of the jet (not which class is brighter). ``log`` uses a symmetric
    log scale, linear within 1e-3 of the largest difference, so the periphery stays visible next to
    the core. ``extent`` as in :func:`plot_average_images`.
    """
    extent = image_extent(extent)
    a, b = _mean_image(mean_a, "mean_a"), _mean_image(mean_b, "mean_b")
    if a.shape != b.shape:
        raise ValueError(f"mean_b: image shape {b.shape} differs from mean_a's {a.shape}")
    if normalize:
        for name, m in (("mean_a", a), ("mean_b", b)):
            if m.sum() <= 0:
                raise ValueError(
                    f"{name}: total intensity is {m.sum():.4g}; cannot normalise (these must be images before "
                    "standardization; normalize=False draws raw means)"
                )
        a, b = a / a.sum(), b / b.sum()
    diff = a - b
    limit = float(np.abs(diff).max()) or 1.0
    norm = (colors.SymLogNorm(linthresh=limit * 1e-3, vmin=-limit, vmax=limit, base=10) if log
            else colors.Normalize(vmin=-limit, vmax=limit))
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    unit = "fraction of intensity" if normalize else "mean pixel intensity"
    # Two lines: on one, long class names ("prompt - non-prompt (...)") pushed the axis label out of the figure.
    _draw_image(ax, diff, extent, norm, "RdBu_r", f"{labels[0]} - {labels[1]}\n({unit})", fig)
    ax.set_title(title or f"<{labels[0]}> - <{labels[1]}>")
    return save_figure(fig, path)


def plot_mass_sculpting(sculpting: Mapping, path: PathLike, *, title=None, figsize=(6.0, 4.5), dpi=100) -> Path:
    """Background mass spectrum (jets, or 004's lepton candidates) before and after the tagger's cut (001 Fig. 7),
    both normalised to unit area, with 1/JSD in the legend: a tagger that learned the mass reshapes the background
    into a peak.

    ``sculpting`` is :func:`jettf.metrics.mass_sculpting`'s dict (``edges``, ``before``, ``after``, ...).
    """
    edges = np.asarray(sculpting["edges"], dtype=np.float64)
    before, after = (np.asarray(sculpting[k], dtype=np.float64) for k in ("before", "after"))
    if before.shape != after.shape or edges.shape != (before.size + 1,):
        raise ValueError(f"sculpting: expected edges [B + 1] and histograms [B], got {edges.shape}, {before.shape}, "
                         f"{after.shape}")
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    eff = float(sculpting["signal_efficiency"])
    inverse = float(sculpting["inverse_jsd"])  # JSON writes an infinite 1/JSD (no sculpting at all) as "inf"
    for counts, label, style in ((before, "all background", "-"),
                                 (after, f"after the cut at eps_S = {eff:g} (eps_B = "
                                         f"{float(sculpting['background_efficiency']):.3g})", "--")):
        density = counts / counts.sum() / np.diff(edges) if counts.sum() else counts
        ax.stairs(density, edges, linestyle=style, label=label)
    ax.set(xlabel="mass [GeV] (jet or lepton candidate)", ylabel="fraction of the background per GeV",
           title=title or f"Background mass sculpting: 1/JSD = {inverse:.4g}")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
