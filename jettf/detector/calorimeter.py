"""Calorimeters: what each particle deposits, its lateral spread into cells, cell sums,
noise, thresholds and zero suppression.

Per particle (vectorized over all particles of all events):
- electrons, photons: their energy in the ECAL, smeared with the ECAL resolution,
  spread with the electromagnetic lateral profile;
- hadrons: visible energy pi/e(E) E (non-compensation, :class:`~.cards.HadronShowers`)
  smeared with the HCAL resolution; an early shower leaves part of it in the ECAL
  (probability from the ECAL depth in interaction lengths), else a charged hadron
  leaves a MIP there; the rest goes to the HCAL;
- muons: a MIP in each calorimeter; neutrinos: nothing.
Cells are summed with one sort of integer cell keys ``(event, ieta, iphi)`` and
``np.bincount``; every cell hit gets Gaussian electronic noise; empty cells above
threshold are drawn from the Gaussian tail (how many: Binomial over the region's
cells), so the cost does not grow with the number of cells. Units: GeV, m, rad.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from scipy import special

from .particles import ELECTRON, HADRON, MUON, PHOTON, species

__all__ = [
    "Deposits", "Cells", "Region", "split_energy", "spread", "sum_cells", "group", "cell_key", "cell_index",
    "cell_center",
]

_SQRT2 = np.sqrt(2.0)


class Deposits(NamedTuple):
    """Per particle energies (GeV, ``[P]``): ECAL electromagnetic, ECAL hadronic, ECAL MIP, HCAL
    hadronic, HCAL MIP."""

    ecal_em: np.ndarray
    ecal_had: np.ndarray
    ecal_mip: np.ndarray
    hcal_had: np.ndarray
    hcal_mip: np.ndarray


class Cells(NamedTuple):
    """Calorimeter cells above threshold: ``event``, integer ``ieta``/``iphi``, ``energy`` (GeV),
    cell centre ``eta``/``phi``, sorted by ``key`` (event-major)."""

    key: np.ndarray
    event: np.ndarray
    ieta: np.ndarray
    iphi: np.ndarray
    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


class Region(NamedTuple):
    """Per event rectangle where empty cells may fire: |eta - eta_center| <= half_eta and
    |phi - phi_center| <= half_phi (arrays ``[n_events]`` or scalars). ``None`` in place of a
    Region means the whole acceptance."""

    eta_center: np.ndarray
    phi_center: np.ndarray
    half_eta: float
    half_phi: float


def split_energy(card, pid, energy, charge, reach_ecal, reach_hcal, rng) -> Deposits:
    """How much of each particle's energy each calorimeter sees (before cells and noise).

    ``reach_ecal``/``reach_hcal``: the particle reaches that face inside its acceptance. A
    particle that reaches the ECAL but curls up before the HCAL leaves all of it in the ECAL.
    """
    ecal, hcal = card.ecal, card.hcal
    energy = np.asarray(energy, dtype=np.float64)
    n = len(energy)
    sp = species(pid)
    out = Deposits(*(np.zeros(n) for _ in range(5)))

    em = np.flatnonzero(((sp == PHOTON) | (sp == ELECTRON)) & reach_ecal)
    e = energy[em]
    out.ecal_em[em] = np.maximum(e + ecal.resolution(e) * rng.standard_normal(len(em)), 0.0)

    mu = np.flatnonzero(sp == MUON)
    e = energy[mu]
    out.ecal_mip[mu] = np.where(reach_ecal[mu], np.minimum(ecal.mip, e), 0.0)
    out.hcal_mip[mu] = np.where(reach_hcal[mu], np.minimum(hcal.mip, e - out.ecal_mip[mu]), 0.0)

    had = np.flatnonzero((sp == HADRON) & (reach_ecal | reach_hcal))
    e = energy[had]
    visible = card.hadrons.response(e) * e
    visible = np.maximum(visible + card.hadrons.response(e) * hcal.resolution(e) * rng.standard_normal(len(had)), 0.0)
    in_ecal, in_hcal = reach_ecal[had], reach_hcal[had]
    d = ecal.depth
    u = rng.random((2, len(had)))
    early = (u[0] < 1.0 - np.exp(-d)) & in_ecal
    start = -np.log1p(-u[1] * (1.0 - np.exp(-d)))  # shower start depth ~ Exp(1) given it is < d (interaction lengths)
    ecal_share = np.where(early, (1.0 - np.exp(-(d - start))) * visible, 0.0)
    mip = np.where(~early & in_ecal & (charge[had] != 0), np.minimum(ecal.mip, visible), 0.0)
    rest = visible - ecal_share - mip
    # Curled up before the HCAL (CMS: between the ECAL and HCAL radii): the rest stays in the ECAL.
    ecal_share = np.where(in_hcal, ecal_share, ecal_share + rest)
    out.ecal_had[had] = ecal_share
    out.ecal_mip[had] = mip
    out.hcal_had[had] = np.where(in_hcal, rest, 0.0)
    return out


def group(keys):
    """``np.unique(keys, return_inverse=True)`` through a stable argsort, several times faster on
    keys that come in runs (event-major deposits): (unique sorted keys, inverse index)."""
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def cell_key(calo, event, ieta, iphi):
    """int64 key, event-major: ``(event * n_eta + ieta + n_eta / 2) * n_phi + iphi``."""
    return (event.astype(np.int64) * calo.n_eta + (ieta + calo.n_eta // 2)) * calo.n_phi + iphi


def cell_index(calo, eta, phi):
    """Integer cell (ieta, iphi) containing (eta, phi); ieta may fall outside the acceptance."""
    ieta = np.floor(np.asarray(eta) / calo.deta).astype(np.int64)
    iphi = np.floor((np.asarray(phi) + np.pi) / calo.dphi).astype(np.int64) % calo.n_phi
    return ieta, iphi


def cell_center(calo, ieta, iphi):
    """Centre (eta, phi) of integer cells."""
    return (ieta + 0.5) * calo.deta, -np.pi + (iphi + 0.5) * calo.dphi


def spread(calo, profile, event, eta, phi, energy, r, rng):
    """Spread deposits over cells with a lateral profile; returns (event, ieta, iphi, energy) entries.

    Widths in (eta, phi) are the profile's widths (m) over the transverse distance ``r`` (m) of
    the impact point (projective geometry). Entries outside the acceptance are dropped.
    """
    keep = energy > 0
    event, eta, phi, energy, r = event[keep], eta[keep], phi[keep], energy[keep], r[keep]
    n = len(energy)
    if profile.spots:
        k = profile.spots
        tail = rng.random((n, k)) >= profile.core_fraction
        width = np.where(tail, profile.tail_sigma, profile.core_sigma) / r[:, None]
        d = rng.standard_normal((2, n, k)) * width
        ieta, iphi = cell_index(calo, eta[:, None] + d[0], phi[:, None] + d[1])
        values = np.repeat(energy / k, k)
        event = np.repeat(event, k)
    else:
        half = profile.window // 2
        steps = np.arange(-half, half + 1)
        ieta0, iphi0 = cell_index(calo, eta, phi)
        ceta, cphi = cell_center(calo, ieta0, iphi0)
        # Impact point relative to its cell centre, in cell units, and the edges of the window's cells.
        lo = steps - 0.5
        fx = np.zeros((n, len(steps)))
        fy = np.zeros((n, len(steps)))
        fraction = np.zeros((n, len(steps), len(steps)))
        for weight, sigma in ((profile.core_fraction, profile.core_sigma), (1.0 - profile.core_fraction,
                                                                              profile.tail_sigma)):
            if weight <= 0:
                continue
            s = sigma / r
            for f, offset, size in ((fx, (eta - ceta)[:, None], calo.deta), (fy, (phi - cphi)[:, None], calo.dphi)):
                edges = special.ndtr(((np.append(lo, lo[-1] + 1.0)[None, :] * size) - offset) / s[:, None])
                f[:] = np.diff(edges, axis=1)
            fraction += weight * fx[:, :, None] * fy[:, None, :]
        fraction /= np.maximum(fraction.sum(axis=(1, 2), keepdims=True), 1e-300)
        w = len(steps)
        ieta = np.repeat(ieta0[:, None] + steps[None, :], w, axis=1).reshape(n, w, w)
        iphi = np.tile((iphi0[:, None] + steps[None, :]) % calo.n_phi, (1, w)).reshape(n, w, w)
        values = (fraction * energy[:, None, None]).ravel()
        event = np.repeat(event, w * w)
    ieta, iphi = ieta.ravel(), iphi.ravel()
    inside = np.abs(ieta + 0.5) * calo.deta < calo.eta_max
    return event[inside], ieta[inside], iphi[inside], values[inside]


def _noise_cells(calo, n_events, region: Optional[Region], rng):
    """Empty cells whose noise passes the threshold: (event, ieta, iphi, energy)."""
    if calo.cell_noise <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    p = 0.5 * special.erfc(calo.threshold / (calo.cell_noise * _SQRT2))
    half_eta_bins = calo.n_eta // 2
    if region is None:
        eta_lo = np.full(n_events, -half_eta_bins)
        n_eta = np.full(n_events, calo.n_eta)
        phi_lo = np.zeros(n_events, dtype=np.int64)
        n_phi = np.full(n_events, calo.n_phi)
    else:
        ec = np.broadcast_to(np.asarray(region.eta_center, dtype=np.float64), (n_events,))
        pc = np.broadcast_to(np.asarray(region.phi_center, dtype=np.float64), (n_events,))
        eta_lo = np.clip(np.floor((ec - region.half_eta) / calo.deta), -half_eta_bins, half_eta_bins).astype(np.int64)
        eta_hi = np.clip(np.floor((ec + region.half_eta) / calo.deta), -half_eta_bins - 1, half_eta_bins - 1)
        n_eta = np.maximum(eta_hi.astype(np.int64) - eta_lo + 1, 0)
        phi_lo = np.floor((pc - region.half_phi + np.pi) / calo.dphi).astype(np.int64)
        n_phi = np.minimum(np.floor((pc + region.half_phi + np.pi) / calo.dphi).astype(np.int64) - phi_lo + 1,
                           calo.n_phi)
    count = rng.binomial(n_eta * n_phi, p)
    event = np.repeat(np.arange(n_events), count)
    u = rng.random((3, len(event)))
    ieta = np.repeat(eta_lo, count) + np.floor(u[0] * np.repeat(n_eta, count)).astype(np.int64)
    iphi = (np.repeat(phi_lo, count) + np.floor(u[1] * np.repeat(n_phi, count)).astype(np.int64)) % calo.n_phi
    energy = calo.cell_noise * special.ndtri(1.0 - p * u[2])  # the Gaussian tail above the threshold
    return event, ieta, iphi, energy


def sum_cells(calo, n_events, event, ieta, iphi, energy, region: Optional[Region], rng) -> Cells:
    """Sum deposits per cell, add noise to every hit cell, add empty cells whose noise fires,
    and keep the cells above ``calo.threshold`` (zero suppression)."""
    keys = cell_key(calo, event, ieta, iphi)
    unique, inverse = group(keys)
    total = np.bincount(inverse, weights=energy, minlength=len(unique))
    if calo.cell_noise > 0:
        total = total + calo.cell_noise * rng.standard_normal(len(unique))
    nev, nieta, niphi, nenergy = _noise_cells(calo, n_events, region, rng)
    nkeys, first = np.unique(cell_key(calo, nev, nieta, niphi), return_index=True)
    pos = np.clip(np.searchsorted(unique, nkeys), 0, max(len(unique) - 1, 0))
    fresh = (unique[pos] != nkeys) if len(unique) else np.ones(len(nkeys), dtype=bool)
    keys = np.concatenate([unique, nkeys[fresh]])
    total = np.concatenate([total, nenergy[first][fresh]])
    order = np.argsort(keys, kind="stable")
    keys, total = keys[order], total[order]
    kept = total > calo.threshold
    keys, total = keys[kept], total[kept]
    iphi = keys % calo.n_phi
    rest = keys // calo.n_phi
    ieta = rest % calo.n_eta - calo.n_eta // 2
    event = rest // calo.n_eta
    eta, phi = cell_center(calo, ieta, iphi)
    return Cells(keys, event, ieta, iphi, total, eta, phi)
