"""003's end-to-end detector images: full-detector and jet-view images at ECAL-crystal granularity.

003 (Andrews et al., section 3; the E2E geometry of its ref. [38]) images the detector itself:
one pixel per ECAL crystal (0.0174 x 2 pi / 360 in the CMS card), HCAL towers (5 x 5 crystals)
up-sampled onto that grid, and each reconstructed track as one pixel (its pT) at its
(eta, phi). Three images per event, all from :class:`~.simulate.DetectorOutput` cells and
tracks, vectorized over events (flat arrays with an event index, one sort per output):

- the full-detector image, ``FULL_ROWS x n_phi`` = 280 x 360 crystals (003 Figure 1a);
- jet views, ``JET_NPIX x JET_NPIX`` = 125 x 125 crystals (003 Figure 1b) centred on the most
  energetic HCAL tower within ``SEARCH_TOWERS x SEARCH_TOWERS`` = 9 x 9 towers of the jet
  (the window's centre pixel is that tower's centre crystal), wrapping around in phi;
- the same at generator level (003's "Generated EM+Had"): the stable particles of the hard event
  and the underlying event (no pile-up), pT at their (eta, phi), electrons and photons in one
  channel and hadrons in the other (:func:`jettf.jets.generator_split`).

Deliberate differences from 003, which uses CMS's real geometry: the card's calorimeters are one
uniform (eta, phi) grid (no x-y end-cap crystals), so the 280 rows of the full image are
|eta| < 280 x 0.0174 / 2 = 2.436 (003's 280 rows reach |eta| < 3 through its "HCAL-centric"
end-cap projection), and jet views never run past the grid (|eta| < 3.0), so no eta cut is
implied (003's windows imply |eta| < 1.57). An HCAL tower's energy is shared equally by its
25 crystals (the image sums to the tower energy).

Images come out sparse: :class:`PixelRows` (CSR: per row, the non-empty pixels ``row * width +
col``, ascending, with one value per channel). Units: GeV.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from jettf.jets import GEN_EM, GEN_HAD, generator_split

from .calorimeter import cell_index

__all__ = [
    "DETECTOR_CHANNELS", "GENERATOR_CHANNELS", "FULL_ROWS", "JET_NPIX", "SEARCH_TOWERS", "PixelRows", "Pixels",
    "detector_pixels", "generator_pixels", "jet_window_centers", "jet_views", "full_images", "window_mask",
    "tower_size",
]

DETECTOR_CHANNELS = ("tracks", "ecal", "hcal")  # 003 section 3: the three subdetector channels, in this order
GENERATOR_CHANNELS = ("em", "had")  # 003 section 3: electrons and photons / hadrons
FULL_ROWS = 280  # 003 Figure 1a: 280 x 360 crystals (here the central 280 crystal rows, |eta| < 2.436)
JET_NPIX = 125  # 003 section 3: 125 x 125 jet views (dR ~ 1)
SEARCH_TOWERS = 9  # 003 section 3: the hottest HCAL tower within 9 x 9 towers of the jet centroid


class Pixels(NamedTuple):
    """Flat image entries of many events: ``event``, crystal ``ieta`` (signed, ``floor(eta / deta)``),
    crystal ``iphi`` (0 .. n_phi - 1), ``channel`` index and ``value`` (GeV)."""

    event: np.ndarray
    ieta: np.ndarray
    iphi: np.ndarray
    channel: np.ndarray
    value: np.ndarray

    @staticmethod
    def concatenate(parts) -> "Pixels":
        return Pixels(*(np.concatenate(a) for a in zip(*parts)))

    def select(self, keep) -> "Pixels":
        return Pixels(*(a[keep] for a in self))


class PixelRows(NamedTuple):
    """Sparse images in CSR form: the pixels of row ``i`` are ``index[offsets[i]:offsets[i + 1]]``
    (flat ``row * width + col``, ascending) with ``values`` float32 ``[K, C]``; ``shape`` is
    ``(height, width, C)``."""

    offsets: np.ndarray
    index: np.ndarray
    values: np.ndarray
    shape: tuple

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @staticmethod
    def concatenate(parts: Sequence["PixelRows"]) -> "PixelRows":
        """Rows of all parts, in order (same shape)."""
        shapes = {tuple(p.shape) for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"PixelRows.concatenate: shapes differ: {sorted(shapes)}")
        shift = np.cumsum([0] + [p.offsets[-1] for p in parts[:-1]])
        offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift)])
        return PixelRows(offsets.astype(np.int64), np.concatenate([p.index for p in parts]),
                         np.concatenate([p.values for p in parts]), parts[0].shape)

    def take(self, rows) -> "PixelRows":
        """The rows ``rows`` (int indices, any order)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(self.offsets)[rows]
        entry = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths - self.offsets[rows], lengths)
        return PixelRows(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), self.index[entry],
                         self.values[entry], self.shape)

    def dense(self) -> np.ndarray:
        """float32 ``[N, height, width, C]``."""
        height, width, n_channels = self.shape
        out = np.zeros((len(self), height * width, n_channels), np.float32)
        out[np.repeat(np.arange(len(self)), np.diff(self.offsets)), self.index] = self.values
        return out.reshape(len(self), height, width, n_channels)


def tower_size(card) -> int:
    """Crystals per HCAL tower side (5 in the CMS card: 0.087 / 0.0174, 2 pi/72 / 2 pi/360)."""
    ecal, hcal = card.ecal, card.hcal
    k = round(hcal.deta / ecal.deta)
    if abs(k * ecal.deta - hcal.deta) > 1e-9 or ecal.n_phi != k * hcal.n_phi:
        raise ValueError(f"card {card.name!r}: HCAL towers ({hcal.deta} x {hcal.n_phi} in phi) are not whole "
                         f"blocks of ECAL cells ({ecal.deta} x {ecal.n_phi}); 003's images need aligned grids")
    return int(k)


def detector_pixels(out, card) -> Pixels:
    """Tracks (pT at the track's vertex direction), ECAL cells (energy) and HCAL towers (energy / 25 in
    each of their 5 x 5 crystals) of a :class:`~.simulate.DetectorOutput` as crystal-grid entries,
    channels :data:`DETECTOR_CHANNELS`. Tracks of pile-up vertices are included, as in 003's images."""
    ecal = card.ecal
    k = tower_size(card)
    t = out.tracks
    t_eta, t_phi = cell_index(ecal, t.eta, t.phi)
    e = out.ecal
    h = out.hcal
    steps = np.arange(k)
    n = len(h.energy)
    h_eta = np.broadcast_to(h.ieta[:, None, None] * k + steps[None, :, None], (n, k, k)).reshape(-1)
    h_phi = np.broadcast_to(h.iphi[:, None, None] * k + steps[None, None, :], (n, k, k)).reshape(-1)
    parts = [
        Pixels(t.event, t_eta, t_phi, np.zeros(len(t.pt), np.int8), t.pt),
        Pixels(e.event, e.ieta, e.iphi, np.ones(len(e.energy), np.int8), e.energy),
        Pixels(np.repeat(h.event, k * k), h_eta, h_phi, np.full(n * k * k, 2, np.int8),
               np.repeat(h.energy / (k * k), k * k)),
    ]
    return Pixels.concatenate(parts)


def generator_pixels(particles, card) -> Pixels:
    """Generator-level entries (003's "Generated EM+Had"): pT of each stable visible particle of the
    hard event and the underlying event (pile-up excluded) at its (eta, phi), channel 0 for electrons
    and photons, 1 for hadrons; muons and neutrinos are in neither (:func:`jettf.jets.generator_split`)."""
    split = generator_split(particles.pid)
    keep = ((split == GEN_EM) | (split == GEN_HAD)) & ~particles.pileup
    ieta, iphi = cell_index(card.ecal, particles.eta[keep], particles.phi[keep])
    channel = (split[keep] == GEN_HAD).astype(np.int8)
    return Pixels(particles.event[keep], ieta, iphi, channel, particles.pt[keep])


def jet_window_centers(hcal_cells, card, event, jet_eta, jet_phi):
    """Centre crystal ``(ieta, iphi)`` of each jet's view: the centre crystal of the most energetic HCAL
    tower within 9 x 9 towers (wrapping in phi) of the tower holding the jet axis; that tower itself
    when the window has no HCAL tower above threshold. ``event``: the jets' event indices."""
    hcal = card.hcal
    k = tower_size(card)
    event = np.asarray(event, dtype=np.int64)
    teta0, tphi0 = cell_index(hcal, jet_eta, jet_phi)
    n_events = int(max(event.max(initial=-1), hcal_cells.event.max(initial=-1))) + 1
    starts = np.searchsorted(hcal_cells.event, np.arange(n_events + 1))
    count = np.diff(starts)[event]
    jet = np.repeat(np.arange(len(event)), count)
    cell = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(starts[event], count)
    half = SEARCH_TOWERS // 2
    deta = hcal_cells.ieta[cell] - teta0[jet]
    dphi = (hcal_cells.iphi[cell] - tphi0[jet] + hcal.n_phi // 2) % hcal.n_phi - hcal.n_phi // 2
    inside = (np.abs(deta) <= half) & (np.abs(dphi) <= half)
    jet, cell = jet[inside], cell[inside]
    order = np.lexsort((hcal_cells.energy[cell], jet))  # by jet, then energy: the hottest tower is last
    jet, cell = jet[order], cell[order]
    last = np.flatnonzero(np.append(jet[1:] != jet[:-1], len(jet) > 0))
    teta, tphi = teta0.copy(), tphi0.copy()
    teta[jet[last]] = hcal_cells.ieta[cell[last]]
    tphi[jet[last]] = hcal_cells.iphi[cell[last]]
    return teta * k + k // 2, tphi * k + k // 2


def _rows(owner, flat, channel, value, n_rows: int, shape) -> PixelRows:
    """CSR of entries (owner row, flat pixel, channel, value): equal (row, pixel) entries summed."""
    height, width, n_channels = shape
    keys = owner.astype(np.int64) * (height * width) + flat
    unique, inverse = np.unique(keys, return_inverse=True)
    values = np.bincount(inverse * n_channels + channel, weights=value, minlength=len(unique) * n_channels)
    offsets = np.searchsorted(unique // (height * width), np.arange(n_rows + 1)).astype(np.int64)
    return PixelRows(offsets, (unique % (height * width)).astype(np.int32),
                     values.reshape(len(unique), n_channels).astype(np.float32), (height, width, n_channels))


def jet_views(pixels: Pixels, card, event, center_ieta, center_iphi, n_channels: int,
              npix: int = JET_NPIX) -> PixelRows:
    """One ``npix x npix`` view per jet (rows in jet order) around its centre crystal, from the entries of
    its event; phi wraps around, eta does not (rows past the calorimeter stay empty). Row axis: eta
    (``ieta - centre + npix // 2``), column axis: phi."""
    n_phi = card.ecal.n_phi
    event = np.asarray(event, dtype=np.int64)
    order = np.argsort(pixels.event, kind="stable")
    p = pixels.select(order)
    n_events = int(max(event.max(initial=-1), p.event.max(initial=-1))) + 1
    starts = np.searchsorted(p.event, np.arange(n_events + 1))
    count = np.diff(starts)[event]
    jet = np.repeat(np.arange(len(event)), count)
    entry = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(starts[event], count)
    half = npix // 2
    row = p.ieta[entry] - center_ieta[jet] + half
    col = (p.iphi[entry] - center_iphi[jet] + half) % n_phi
    inside = (row >= 0) & (row < npix) & (col < npix)
    jet, entry = jet[inside], entry[inside]
    return _rows(jet, row[inside] * npix + col[inside], p.channel[entry], p.value[entry], len(event),
                 (npix, npix, n_channels))


def full_images(pixels: Pixels, card, event, n_channels: int, n_rows: int = FULL_ROWS) -> PixelRows:
    """The full-detector image ``n_rows x n_phi`` of each listed event (rows in that order): crystal rows
    ``-n_rows / 2 .. n_rows / 2 - 1`` (|eta| < n_rows x deta / 2), all of phi."""
    n_phi = card.ecal.n_phi
    event = np.asarray(event, dtype=np.int64)
    slot = np.full(int(max(event.max(initial=-1), pixels.event.max(initial=-1))) + 1, -1, np.int64)
    slot[event] = np.arange(len(event))
    row = pixels.ieta + n_rows // 2
    owner = slot[pixels.event]
    keep = (owner >= 0) & (row >= 0) & (row < n_rows)
    return _rows(owner[keep], row[keep] * n_phi + pixels.iphi[keep], pixels.channel[keep], pixels.value[keep],
                 len(event), (n_rows, n_phi, n_channels))


def window_mask(centers: np.ndarray, shape: Sequence[int], npix: int = JET_NPIX) -> np.ndarray:
    """bool ``[N, rows, cols]``: pixels of full-detector images inside the jet views (003's C-Zero keeps
    only these). ``centers`` int ``[N, J, 2]``: each jet's centre (row, column) in the full image."""
    rows, cols = int(shape[0]), int(shape[1])
    centers = np.asarray(centers, dtype=np.int64)
    half = npix // 2
    r = np.arange(rows)[None, None, :, None]
    c = np.arange(cols)[None, None, None, :]
    in_row = np.abs(r - centers[..., 0, None, None]) <= half
    in_col = np.abs((c - centers[..., 1, None, None] + cols // 2) % cols - cols // 2) <= half
    return (in_row & in_col).any(axis=1)
