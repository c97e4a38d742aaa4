"""Particle-flow-like candidates from tracks and calorimeter cells, per HCAL tower.

As Delphes' E-flow and, in spirit, CMS particle flow: every track is a charged
candidate (electron, muon or charged hadron, with the track momentum); per tower
of the HCAL grid, the calorimeter energy (ECAL cells inside the tower plus the
HCAL tower) is compared with what the tracks pointing into it should have left
(their mean deposits: electrons all in the ECAL, muons MIPs, hadrons pi/e(p) p
split by the mean ECAL fraction). The excess becomes a photon (up to the tower's
ECAL energy, at the ECAL-energy-weighted position) and the remainder a neutral
hadron (calibrated by the inverse hadron response, at the tower centre), each
kept above the card's energy and significance thresholds. Units: GeV, rad.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jettf.jets import ECAL, HCAL, TRACK

from .calorimeter import Cells, cell_center, cell_index, cell_key, group
from .particles import ELECTRON, MUON

__all__ = ["Candidates", "particle_flow", "track_candidates", "mean_ecal_fraction", "PION_MASS"]

PION_MASS, ELECTRON_MASS, MUON_MASS = 0.13957, 0.000511, 0.10566  # GeV


class Candidates(NamedTuple):
    """Flat detector objects: ``event``, ``pt``, ``eta``, ``phi``, ``energy`` (GeV, rad), ``pid``
    (PDG-like id: +-211/+-11/+-13 for tracks, 22 photons, 130 neutral hadrons), ``charge``,
    ``subdetector`` (TRACK, ECAL, HCAL), ``pileup`` (from a pile-up vertex)."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    subdetector: np.ndarray
    pileup: np.ndarray

    @staticmethod
    def concatenate(parts) -> "Candidates":
        """All parts, ordered by event (stable: within an event, part order)."""
        cat = [np.concatenate(arrays) for arrays in zip(*parts)]
        order = np.argsort(cat[0], kind="stable")
        return Candidates(*(a[order] for a in cat))

    def select(self, keep) -> "Candidates":
        return Candidates(*(a[keep] for a in self))


def mean_ecal_fraction(card, visible):
    """Mean share of a charged hadron's visible energy in the ECAL: early showers (probability
    1 - exp(-d), mean share 1 - d e^-d / (1 - e^-d)) or a MIP."""
    d = card.ecal.depth
    p_early = 1.0 - np.exp(-d)
    share_early = 1.0 - d * np.exp(-d) / p_early
    mip = np.minimum(card.ecal.mip, visible) / np.maximum(visible, 1e-12)
    return p_early * share_early + (1.0 - p_early) * mip


def _calibrate(card, raw):
    """Hadron energy E with pi/e(E) E = raw (three fixed-point steps; pi/e varies slowly)."""
    e = raw / card.hadrons.response(raw)
    for _ in range(3):
        e = raw / card.hadrons.response(e)
    return e


def track_candidates(tracks, kind, charge, event, pileup) -> Candidates:
    """Charged candidates from tracks: mass hypothesis and PDG-like id from the track's species
    (electron and muon identification taken as perfect), pion for hadrons."""
    mass = np.where(kind == ELECTRON, ELECTRON_MASS, np.where(kind == MUON, MUON_MASS, PION_MASS))
    energy = np.sqrt((tracks.pt * np.cosh(tracks.eta)) ** 2 + mass**2)
    sign = np.sign(charge)
    pid = np.where(kind == ELECTRON, -11 * sign, np.where(kind == MUON, -13 * sign, 211 * sign)).astype(np.int32)
    return Candidates(event, tracks.pt, tracks.eta, tracks.phi, energy, pid, charge.astype(np.float32),
                      np.full(len(event), TRACK, np.int8), pileup)


def particle_flow(card, charged: Candidates, kind, ecal_impact, hcal_impact, ecal_cells: Cells,
                  hcal_cells: Cells) -> Candidates:
    """Photons and neutral hadrons per HCAL tower, after the tracks' expected deposits.

    Args:
        charged: the charged candidates (tracks).
        kind: their species (ELECTRON, MUON, HADRON), ``[T]``.
        ecal_impact, hcal_impact: :class:`~.propagation.Impact` of the tracks' particles on each face
            (the track extrapolation; tracks that do not reach a face expect nothing there).
    """
    hcal, ecal = card.hcal, card.ecal
    # Expected deposits of the tracks (GeV), at their ECAL and HCAL impact towers.
    p = charged.pt * np.cosh(charged.eta)
    visible = card.hadrons.response(p) * p
    f_ecal = mean_ecal_fraction(card, visible)
    in_ecal = ecal_impact.reached & (np.abs(ecal_impact.eta) < ecal.eta_max)
    in_hcal = hcal_impact.reached & (np.abs(hcal_impact.eta) < hcal.eta_max)
    exp_ecal = np.where(kind == ELECTRON, p, np.where(kind == MUON, np.minimum(ecal.mip, p), f_ecal * visible))
    exp_hcal = np.where(kind == ELECTRON, 0.0, np.where(kind == MUON, np.minimum(hcal.mip, p),
                                                        (1.0 - f_ecal) * visible))
    exp_ecal = np.where(in_ecal, exp_ecal + np.where(in_hcal, 0.0, exp_hcal), 0.0)
    exp_hcal = np.where(in_hcal, exp_hcal, 0.0)

    def tower_keys(event, eta, phi):
        ieta, iphi = cell_index(hcal, eta, phi)
        return cell_key(hcal, event, ieta, iphi)

    keys = [
        tower_keys(ecal_cells.event, ecal_cells.eta, ecal_cells.phi),
        hcal_cells.key,
        tower_keys(charged.event, ecal_impact.eta, ecal_impact.phi)[in_ecal],
        tower_keys(charged.event, hcal_impact.eta, hcal_impact.phi)[in_hcal],
    ]
    unique, inverse = group(np.concatenate(keys))
    parts = np.split(inverse, np.cumsum([len(k) for k in keys])[:-1])
    n = len(unique)
    total = lambda part, w: np.bincount(part, weights=w, minlength=n)  # noqa: E731
    e_ecal = total(parts[0], ecal_cells.energy)
    e_hcal = total(parts[1], hcal_cells.energy)
    expected = total(parts[2], exp_ecal[in_ecal]) + total(parts[3], exp_hcal[in_hcal])
    # ECAL-weighted position inside the tower (offsets from the tower centre, so phi never wraps).
    rest = unique // hcal.n_phi
    t_iphi, t_ieta, event = unique % hcal.n_phi, rest % hcal.n_eta - hcal.n_eta // 2, rest // hcal.n_eta
    t_eta, t_phi = cell_center(hcal, t_ieta, t_iphi)
    positive = np.maximum(ecal_cells.energy, 0.0)
    w = total(parts[0], positive)
    d_eta = total(parts[0], positive * (ecal_cells.eta - t_eta[parts[0]]))
    d_phi = total(parts[0], positive * ((ecal_cells.phi - t_phi[parts[0]] + np.pi) % (2 * np.pi) - np.pi))
    safe = np.where(w > 0, w, 1.0)

    excess = e_ecal + e_hcal - expected
    photon = np.clip(np.minimum(excess, e_ecal), 0.0, None)
    hadron_raw = np.clip(excess - photon, 0.0, None)
    flow = card.pflow
    sigma_ecal = np.sqrt(ecal.resolution(np.maximum(e_ecal, 0)) ** 2 + (3 * ecal.cell_noise) ** 2 + flow.ecal_noise**2)
    sigma_tower = np.sqrt(hcal.resolution(np.maximum(e_ecal + e_hcal, 0)) ** 2 + (3 * hcal.cell_noise) ** 2
                          + flow.hcal_noise**2)
    is_photon = (photon >= flow.photon_min) & (photon >= flow.significance_min * sigma_ecal)
    hadron = _calibrate(card, hadron_raw)
    is_hadron = (hadron >= flow.neutral_hadron_min) & (hadron_raw >= flow.significance_min * sigma_tower)

    def neutral(select, energy, eta, phi, pid, tag):
        k = np.flatnonzero(select)
        e, eta, phi = energy[k], eta[k], phi[k]
        return Candidates(event[k], e / np.cosh(eta), eta, (phi + np.pi) % (2 * np.pi) - np.pi, e,
                          np.full(len(k), pid, np.int32), np.zeros(len(k), np.float32), np.full(len(k), tag, np.int8),
                          np.zeros(len(k), bool))

    photons = neutral(is_photon, photon, t_eta + d_eta / safe, t_phi + d_phi / safe, 22, ECAL)
    hadrons = neutral(is_hadron, hadron, t_eta, t_phi, 130, HCAL)
    tracks = charged.select(~charged.pileup) if flow.remove_pileup_tracks else charged
    return Candidates.concatenate([tracks, photons, hadrons])

