"""Figures for the explain tools: Pearson correlation maps and Grad-CAM maps.

Conventions of :mod:`jettf.plots` (whose ``plot_average_images`` and ``plot_difference_image`` draw the
average and difference images): one Agg ``Figure`` per call (no pyplot), one PNG written through
:func:`jettf.utils.atomic_path`, eta along x and phi along y over the image window, a colour bar per panel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib import colors

from jettf.plots import image_extent, new_figure, save_figure

__all__ = ["plot_pearson_map", "plot_gradcam", "plot_image_map"]

PathLike = Union[str, os.PathLike]


def _panel(fig, ax, image, extent, norm, cmap, label, title=None, contour=None):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D [eta, phi] map, got shape {image.shape}")
    shown = ax.imshow(np.ma.masked_invalid(image).T, origin="lower", extent=extent, norm=norm, cmap=cmap,
                      aspect="equal", interpolation="nearest")
    if contour is not None:
        c = np.asarray(contour, dtype=np.float64)
        if c.shape == image.shape and np.nanmax(c) > 0:
            levels = np.nanmax(c) * np.array([1e-3, 1e-2, 1e-1])
            ax.contour(c.T, levels=levels, extent=extent, origin="lower", colors="white", linewidths=0.6, alpha=0.8)
    ax.set(xlabel=r"$\eta$", ylabel=r"$\phi$ [rad]")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.colorbar(shown, ax=ax, label=label, shrink=0.85)


def plot_image_map(
    image, extent, path: PathLike, *, label: str = "", title=None, diverging: bool = False, cmap=None,
    figsize=(5.0, 4.0), dpi=100,
) -> Path:
    """One ``[H, W]`` map (eta along x, phi along y) with a colour bar; ``diverging`` centres the scale on 0."""
    extent = image_extent(extent)
    image = np.asarray(image, dtype=np.float64)
    if diverging:
        limit = float(np.nanmax(np.abs(image))) if np.isfinite(image).any() else 1.0
        norm = colors.Normalize(vmin=-(limit or 1.0), vmax=limit or 1.0)
    else:
        norm = None
    fig = new_figure(figsize, dpi)
    _panel(fig, fig.add_subplot(), image, extent, norm, cmap or ("RdBu_r" if diverging else "viridis"), label, title)
    return save_figure(fig, path)


def plot_pearson_map(
    r, extent, path: PathLike, *, channel_names: Optional[Sequence[str]] = None, output_label: str = "output",
    title=None, figsize=None, dpi=100,
) -> Path:
    """Pearson correlation maps (``[H, W]`` or ``[H, W, C]``, one panel per channel) on a diverging scale
    symmetric about 0 (set by the largest |r|); NaN pixels (no variation) are left blank."""
    extent = image_extent(extent)
    r = np.asarray(r, dtype=np.float64)
    if r.ndim == 2:
        r = r[..., None]
    if r.ndim != 3:
        raise ValueError(f"r: expected a correlation map [H, W] or [H, W, C], got shape {r.shape}")
    n = r.shape[2]
    names = list(channel_names) if channel_names is not None else [f"channel {i}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"channel_names: expected {n} names, got {len(names)}")
    finite = np.isfinite(r)
    limit = float(np.abs(r[finite]).max()) if finite.any() else 1.0
    norm = colors.Normalize(vmin=-(limit or 1.0), vmax=limit or 1.0)
    fig = new_figure(figsize or (4.2 * n, 3.6), dpi)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, k in zip(axes, range(n)):
        label = f"Pearson r(pixel, {output_label})"
        _panel(fig, ax, r[..., k], extent, norm, "RdBu_r", label, names[k] if n > 1 else None)
    fig.suptitle(title or f"Correlation of pixel intensity with {output_label}")
    return save_figure(fig, path)


def plot_gradcam(
    maps: Mapping[str, Mapping[str, np.ndarray]], extent, path: PathLike, *,
    background: Optional[Mapping[str, np.ndarray]] = None, title=None, figsize=None, dpi=100,
) -> Path:
    """Grad-CAM maps: ``maps[branch][column] = [H, W]`` (e.g. column = class), rows = branches (000 Fig. 5
    compares the ensemble's ResNet50 and InceptionV3 branches this way). ``background[column]`` (e.g. the
    class's average jet image) is drawn as white contours at 1e-3, 1e-2 and 1e-1 of its maximum."""
    extent = image_extent(extent)
    branches = list(maps)
    if not branches:
        raise ValueError("maps: expected {branch: {column: [H, W] map}}, got nothing")
    columns = list(maps[branches[0]])
    for b in branches:
        if list(maps[b]) != columns:
            raise ValueError(f"maps[{b!r}]: columns {list(maps[b])} differ from {columns}")
    values = np.array([[np.asarray(maps[b][c], dtype=np.float64) for c in columns] for b in branches])
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    norm = colors.Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)
    fig = new_figure(figsize or (4.0 * len(columns), 3.5 * len(branches)), dpi)
    axes = fig.subplots(len(branches), len(columns), squeeze=False)
    for i, b in enumerate(branches):
        for j, c in enumerate(columns):
            contour = None if background is None else background.get(c)
            _panel(fig, axes[i, j], values[i, j], extent, norm, "jet", "Grad-CAM (mean)", f"{b}: {c}", contour)
    fig.suptitle(title or "Grad-CAM")
    return save_figure(fig, path)
