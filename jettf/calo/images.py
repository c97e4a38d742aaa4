"""Calorimeter images of lepton candidates (004 sections 3.4.3 and 4.3.1), from :mod:`jettf.detector` cells.

Two kinds, both vectorized over candidates (flat cells with an event index, one ``np.bincount``):

- **Native-granularity windows** (electrons): the ECAL image is the 31 x 31 block of ECAL cells centred
  on the cell of largest E_T within 9 x 9 cells of the candidate's track; the HCAL image is the 8 x 8
  block of HCAL towers whose centre is nearest to that cell's centre, covering the same region. One pixel
  is one cell, so the two images keep their own granularity and are not resampled.
- **Cone images** (muons): a 32 x 32 grid over [-0.45, 0.45]^2 in (delta eta, delta phi) around the
  muon's impact point; every ECAL cell and HCAL tower shares its E_T among the pixels its area overlaps
  (area fractions), and pixels whose centre lies at delta-R >= 0.45 are zero.

:func:`cone_cells` lists the muon's cells themselves (ECAL cells and HCAL towers within the cone, each once: the
PFN / EFN inputs, 004 section 4.6); :func:`pixel_cells` turns an image back into a list of its non-zero pixels.

Image axis 1 is eta, axis 2 is phi (the project's convention). Units: GeV, radians.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np

from jettf.jets import wrap_phi

__all__ = ["ElectronImages", "hottest_cell", "cell_window", "electron_images", "cone_image", "cone_cells",
           "pixel_delta_r", "window_sum", "pixel_cells", "CELL_COLUMNS"]


class ElectronImages(NamedTuple):
    """Per candidate: ``found`` (a hot ECAL cell in the search window), ECAL and HCAL images in E and
    E_T (GeV, ``[N, 31, 31]`` / ``[N, 8, 8]``), the image centre (``eta``, ``phi`` of the hottest cell's
    centre) and ``hcal_offset`` ``[N, 2]``: (delta eta, delta phi) of the HCAL image's centre from it."""

    found: np.ndarray
    ecal_e: np.ndarray
    ecal_et: np.ndarray
    hcal_e: np.ndarray
    hcal_et: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    hcal_offset: np.ndarray


def _wrapped_steps(a, b, n_phi: int):
    """Signed phi-index difference a - b wrapped to [-n_phi/2, n_phi/2)."""
    return (a - b + n_phi // 2) % n_phi - n_phi // 2


def hottest_cell(cells, n_events: int, ieta, iphi, calo, search: int):
    """Per event, the cell of largest E_T within ``search x search`` cells centred on cell (ieta, iphi).

    Returns ``(found [n] bool, ieta [n], iphi [n])`` (the track's cell where nothing was found).
    """
    ieta, iphi = np.asarray(ieta, np.int64), np.asarray(iphi, np.int64)
    half = search // 2
    ev = cells.event
    near = (np.abs(cells.ieta - ieta[ev]) <= half) & (np.abs(_wrapped_steps(cells.iphi, iphi[ev], calo.n_phi)) <= half)
    idx = np.flatnonzero(near)
    et = cells.energy[idx] / np.cosh(cells.eta[idx])
    order = idx[np.lexsort((et, ev[idx]))]  # by event, then E_T: each event's hottest is its last
    found = np.zeros(n_events, dtype=bool)
    out_eta, out_phi = ieta.copy(), iphi.copy()
    if order.size:
        last = np.r_[ev[order][1:] != ev[order][:-1], True]
        best = order[last]
        found[ev[best]] = True
        out_eta[ev[best]], out_phi[ev[best]] = cells.ieta[best], cells.iphi[best]
    return found, out_eta, out_phi


def cell_window(cells, n_events: int, ieta0, iphi0, side: int, calo):
    """Sums of E and E_T ``[n, side, side]`` of the cells ``(ieta0 + a, iphi0 + b)``, a, b in [0, side)
    (phi wraps around). ``ieta0``, ``iphi0``: per-event first cell of the block."""
    ev = cells.event
    a = cells.ieta - np.asarray(ieta0, np.int64)[ev]
    b = (cells.iphi - np.asarray(iphi0, np.int64)[ev]) % calo.n_phi
    keep = (a >= 0) & (a < side) & (b < side)
    flat = (ev[keep] * side + a[keep]) * side + b[keep]
    energy = cells.energy[keep]
    et = energy / np.cosh(cells.eta[keep])
    size = n_events * side * side
    shape = (n_events, side, side)
    return (np.bincount(flat, weights=energy, minlength=size).reshape(shape),
            np.bincount(flat, weights=et, minlength=size).reshape(shape))


def electron_images(ecal_cells, hcal_cells, n_events: int, track_eta, track_phi, detector, card) -> ElectronImages:
    """004's electron-candidate images (module docstring) for one track per event.

    ``detector``: the :class:`jettf.detector.DetectorCard`; ``card``: :class:`jettf.calo.cards.ElectronCard`.
    """
    from jettf.detector.calorimeter import cell_center, cell_index

    ecal, hcal = detector.ecal, detector.hcal
    t_ieta, t_iphi = cell_index(ecal, np.asarray(track_eta, np.float64), np.asarray(track_phi, np.float64))
    found, c_ieta, c_iphi = hottest_cell(ecal_cells, n_events, t_ieta, t_iphi, ecal, card.search)
    half = card.ecal_pixels // 2
    ecal_e, ecal_et = cell_window(ecal_cells, n_events, c_ieta - half, (c_iphi - half) % ecal.n_phi,
                                  card.ecal_pixels, ecal)
    eta_c, phi_c = cell_center(ecal, c_ieta, c_iphi)
    # HCAL block of `hcal_pixels` towers whose centre is nearest to the ECAL image centre.
    k = card.hcal_pixels
    h_eta0 = np.round(eta_c / hcal.deta - k / 2).astype(np.int64)
    h_phi0 = np.round((phi_c + np.pi) / hcal.dphi - k / 2).astype(np.int64) % hcal.n_phi
    hcal_e, hcal_et = cell_window(hcal_cells, n_events, h_eta0, h_phi0, k, hcal)
    offset = np.stack([(h_eta0 + k / 2) * hcal.deta - eta_c,
                       wrap_phi(-np.pi + (h_phi0 + k / 2) * hcal.dphi - phi_c)], axis=1)
    return ElectronImages(found, ecal_e, ecal_et, hcal_e, hcal_et, eta_c, wrap_phi(phi_c), offset)


def window_sum(images, size_eta: int, size_phi: int):
    """Sum of ``[N, H, W]`` images over the ``size_eta x size_phi`` block centred on the central pixel."""
    h, w = images.shape[1:]
    ce, cp = h // 2, w // 2
    return images[:, ce - size_eta // 2:ce + size_eta // 2 + 1, cp - size_phi // 2:cp + size_phi // 2 + 1].sum(
        axis=(1, 2))


def _relative(cells, eta_c, phi_c):
    """(delta eta, delta phi, E_T) of each cell from its event's centre (eta_c, phi_c) (rad, GeV)."""
    return (cells.eta - eta_c[cells.event], wrap_phi(cells.phi - phi_c[cells.event]),
            cells.energy / np.cosh(cells.eta))


def cone_image(cell_sets: Sequence, calorimeters: Sequence, n_events: int, eta_c, phi_c, cone: float,
               pixels: int) -> np.ndarray:
    """``[n, pixels, pixels]`` E_T image (GeV) over [-cone, cone]^2 around (eta_c, phi_c) per event.

    Each cell (of each ``cell_sets[i]`` on calorimeter ``calorimeters[i]``) shares its E_T among the
    pixels its (deta x dphi) area overlaps, in proportion to the overlap; pixels whose centre is at
    delta-R >= ``cone`` are set to zero (004 section 4.3.1: cells within delta-R < 0.45).
    """
    eta_c, phi_c = np.asarray(eta_c, np.float64), np.asarray(phi_c, np.float64)
    width = 2.0 * cone / pixels
    image = np.zeros(n_events * pixels * pixels)
    for cells, calo in zip(cell_sets, calorimeters):
        deta, dphi, et = _relative(cells, eta_c, phi_c)
        near = (np.abs(deta) < cone + calo.deta) & (np.abs(dphi) < cone + calo.dphi)
        ev, deta, dphi, et = cells.event[near], deta[near], dphi[near], et[near]
        fractions, index = [], []
        for centre, size in ((deta, calo.deta), (dphi, calo.dphi)):
            lo = centre - size / 2 + cone  # cell edges in grid coordinates
            first = np.floor(lo / width).astype(np.int64)
            k = np.arange(int(np.ceil(size / width)) + 1)
            pix = first[:, None] + k[None, :]
            overlap = np.minimum(lo[:, None] + size, (pix + 1) * width) - np.maximum(lo[:, None], pix * width)
            frac = np.clip(overlap, 0.0, None) / size
            frac = np.where((pix >= 0) & (pix < pixels), frac, 0.0)
            fractions.append(frac)
            index.append(np.clip(pix, 0, pixels - 1))
        weight = et[:, None, None] * fractions[0][:, :, None] * fractions[1][:, None, :]
        flat = (ev[:, None, None] * pixels + index[0][:, :, None]) * pixels + index[1][:, None, :]
        image += np.bincount(flat.ravel(), weights=weight.ravel(), minlength=image.size)
    image = image.reshape(n_events, pixels, pixels)
    return image * (pixel_delta_r(pixels, cone) < cone)[None]


#: The columns of :func:`cone_cells`: E_T and E in GeV, angles in radians from the cone's centre, 0 ECAL / 1 HCAL.
CELL_COLUMNS = ("et", "delta_eta", "delta_phi", "e", "hcal")


def cone_cells(cell_sets: Sequence, n_events: int, eta_c, phi_c, cone: float, max_cells: int) -> np.ndarray:
    """``[n, max_cells, 5]`` (:data:`CELL_COLUMNS`): the cells of ``cell_sets`` (ECAL cells, then HCAL towers) whose
    centre lies at delta-R < ``cone`` from (eta_c, phi_c), hardest E_T first, zero-padded; an event with more
    keeps its ``max_cells`` hardest.

    Each cell is one entry, at its own granularity. The cone image shares a cell's E_T among the pixels it
    overlaps, so a 0.1 x 0.1 HCAL tower becomes ~16 pixels of 1/16 of its E_T: a set network reads the cells."""
    eta_c, phi_c = np.asarray(eta_c, np.float64), np.asarray(phi_c, np.float64)
    columns = []
    for layer, cells in enumerate(cell_sets):
        deta, dphi, et = _relative(cells, eta_c, phi_c)
        inside = (np.hypot(deta, dphi) < cone) & (et > 0)
        columns.append(np.stack([cells.event[inside], et[inside], deta[inside], dphi[inside], cells.energy[inside],
                                 np.full(int(inside.sum()), layer)], axis=1).astype(np.float64))
    table = np.concatenate(columns) if columns else np.zeros((0, 6))
    table = table[np.lexsort((-table[:, 1], table[:, 0]))]  # event-major, hardest first
    event = table[:, 0].astype(np.int64)
    rank = np.arange(len(event)) - np.searchsorted(event, event)
    keep = rank < max_cells
    out = np.zeros((n_events, max_cells, len(CELL_COLUMNS)), np.float32)
    out[event[keep], rank[keep]] = table[keep, 1:]
    return out


def pixel_delta_r(pixels: int, cone: float) -> np.ndarray:
    """``[P, P]``: delta-R of each pixel centre from the centre of a P x P image covering [-cone, cone]^2
    (radians), the distance that decides cone membership (isolation cones, the round muon image)."""
    centres = -cone + (np.arange(pixels) + 0.5) * (2.0 * cone / pixels)
    return np.hypot(centres[:, None], centres[None, :])


def pixel_cells(image, eta_centre=None, extent=(0.45, 0.45), max_cells: Optional[int] = None) -> np.ndarray:
    """Non-zero pixels of ``[N, H, W]`` images as zero-padded cells ``[N, M, 4]`` = (E_T, delta eta,
    delta phi, E) (GeV, relative to the image centre; E = E_T cosh(eta_centre + delta eta), E_T where the
    centre's eta is not given), hardest first, M = the most non-zero pixels of any image (or ``max_cells``)."""
    image = np.asarray(image, np.float32)
    n, h, w = image.shape
    eta = -extent[0] + (np.arange(h) + 0.5) * (2 * extent[0] / h)
    phi = -extent[1] + (np.arange(w) + 0.5) * (2 * extent[1] / w)
    flat = image.reshape(n, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    counts = (flat > 0).sum(axis=1)
    m = int(counts.max(initial=1)) if max_cells is None else int(max_cells)
    order = order[:, :m]
    et = np.take_along_axis(flat, order, axis=1)
    d_eta, d_phi = eta[order // w], phi[order % w]
    centre = np.zeros(n) if eta_centre is None else np.asarray(eta_centre, np.float64)
    energy = et * np.cosh(centre[:, None] + d_eta)
    real = et > 0
    cells = np.stack([et, d_eta * real, d_phi * real, energy * real], axis=-1).astype(np.float32)
    return cells
