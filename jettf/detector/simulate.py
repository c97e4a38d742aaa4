"""The detector simulation: generator-level particles in, tracks, cells and particle-flow
candidates out, as constituents tagged with their subdetector.

``simulate`` runs on any particles of many events at once (flat arrays, see
:class:`~.particles.Particles`); ``simulate_jets`` runs on the constituents of a
generator-level JetBatch (each jet is an event: "jets-only" simulation) and
returns a detector-level JetBatch. Randomness comes from one numpy Generator,
consumed in a fixed order, so the same seed gives the same cells.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from jettf.jets import ECAL, HCAL, JetBatch, wrap_phi

from . import calorimeter as calo
from .cards import DetectorCard, get_card
from .particles import Particles, species
from .pflow import Candidates, particle_flow, track_candidates
from .pileup import PileUp
from .propagation import Impact, propagate
from .tracker import reconstruct_tracks

__all__ = ["DetectorOutput", "simulate", "simulate_jets", "VIEWS"]

VIEWS = ("pflow", "objects")


@dataclasses.dataclass
class DetectorOutput:
    """Detector objects of ``n_events`` events, flat (each collection sorted by event).

    Attributes:
        tracks: one charged :class:`~.pflow.Candidates` per reconstructed track (pile-up included),
            at the track's vertex direction.
        ecal, hcal: :class:`~.calorimeter.Cells` above threshold (ECAL cells, HCAL towers).
        pflow: particle-flow-like candidates (tracks, photons, neutral hadrons).
        particles: the simulated particles (pile-up included).
        ecal_impact, hcal_impact: where each particle met each face.
    """

    card: DetectorCard
    n_events: int
    tracks: Candidates
    ecal: calo.Cells
    hcal: calo.Cells
    pflow: Candidates
    particles: Particles
    ecal_impact: Impact
    hcal_impact: Impact

    def objects(self) -> Candidates:
        """Tracks (TRACK, pt), ECAL cells (ECAL) and HCAL towers (HCAL) as massless objects at the cell centre."""
        parts = [self.tracks]
        for cells, tag in ((self.ecal, ECAL), (self.hcal, HCAL)):
            n = len(cells.energy)
            parts.append(Candidates(cells.event, cells.energy / np.cosh(cells.eta), cells.eta, cells.phi, cells.energy,
                                    np.zeros(n, np.int32), np.zeros(n, np.float32), np.full(n, tag, np.int8),
                                    np.zeros(n, bool)))
        return Candidates.concatenate(parts)

    def jets(self):
        """Per event four-momentum sum of the particle-flow candidates: (pt, eta, phi, mass), each ``[n_events]``."""
        return _sum_kinematics(self.pflow, self.n_events)

    def to_batch(self, view: str = "pflow", max_constituents: Optional[int] = None, labels=None,
                 class_names=None) -> JetBatch:
        """One jet per event: the ``view``'s objects (``"pflow"`` candidates, or ``"objects"``: tracks,
        ECAL cells, HCAL towers) as constituents sorted by pt (the hardest ``max_constituents``), with
        ``subdetector`` tags and jet kinematics from the particle-flow candidates."""
        if view not in VIEWS:
            raise ValueError(f"DetectorOutput.to_batch: view {view!r}; expected one of {VIEWS}")
        objects = self.pflow if view == "pflow" else self.objects()
        jet = self.jets()
        return pad_candidates(objects, self.n_events, max_constituents, jet, labels=labels, class_names=class_names)


def _sum_kinematics(c: Candidates, n_events: int):
    """(pt, eta, phi, mass) of the summed four-momenta per event (zeros for empty events)."""
    total = lambda w: np.bincount(c.event, weights=w, minlength=n_events)  # noqa: E731
    px, py = total(c.pt * np.cos(c.phi)), total(c.pt * np.sin(c.phi))
    pz, e = total(c.pt * np.sinh(c.eta)), total(c.energy)
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    mass = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
    return pt, eta, np.where(pt > 0, np.arctan2(py, px), 0.0), mass


def pad_candidates(c: Candidates, n_events: int, max_constituents: Optional[int], jet, labels=None,
                   class_names=None) -> JetBatch:
    """A JetBatch with the candidates of event i as the constituents of jet i (pt-sorted)."""
    order = np.lexsort((-c.pt, c.event))
    event = c.event[order]
    counts = np.bincount(event, minlength=n_events)
    slot = np.arange(len(event)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = int(counts.max(initial=0))
    if max_constituents is not None:
        width = min(width, int(max_constituents))
    keep = slot < width
    rows, cols, source = event[keep], slot[keep], order[keep]

    def padded(values, dtype):
        out = np.zeros((n_events, width), dtype=dtype)
        out[rows, cols] = values[source]
        return out

    mask = np.zeros((n_events, width), dtype=bool)
    mask[rows, cols] = True
    return JetBatch.from_ptetaphie(
        padded(c.pt, np.float64), padded(c.eta, np.float64), padded(c.phi, np.float64), padded(c.energy, np.float64),
        mask=mask, labels=labels, class_names=class_names, pid=padded(c.pid, np.int32),
        charge=padded(c.charge, np.float32), subdetector=padded(c.subdetector, np.int8),
        jet_pt=jet[0], jet_eta=jet[1], jet_phi=wrap_phi(jet[2]), jet_mass=jet[3],
    )


def simulate(particles: Particles, card="atlas", seed=0, pileup: Optional[PileUp] = None,
             region: Optional[calo.Region] = None, subtract_charged_pileup: bool = False) -> DetectorOutput:
    """Run the detector on ``particles``.

    Args:
        particles: generator-level particles of one or many events (:class:`Particles`).
        card: a :class:`~.cards.DetectorCard` or its name (``"atlas"``, ``"cms"``).
        seed: an int or a ``numpy.random.Generator``.
        pileup: overlay Poisson(mu) minimum-bias events (inside ``region`` if given).
        region: where empty cells can fire and pile-up is overlaid (:class:`~.calorimeter.Region`);
            None: the whole detector.
        subtract_charged_pileup: charged-hadron subtraction in the calorimeters: the deposits of pile-up
            particles that the tracker reconstructs are left out of the cells. This is the perfect-particle-flow
            limit of Delphes' pile-up cards, whose E-flow attributes a tower's energy to the tracks pointing at it
            and whose TrackPileUpSubtractor then drops the pile-up tracks. Neutral pile-up and untracked charged
            pile-up stay.
    """
    card = get_card(card)
    rng = np.random.default_rng(seed)
    n = particles.n_events
    if pileup is not None and pileup.mu > 0:
        particles = Particles.concatenate(particles, pileup.library.overlay(pileup.mu, n, rng, region))
    p = particles
    ecal, hcal = card.ecal, card.hcal
    hit_e = propagate(p.pt, p.eta, p.phi, p.charge, card.solenoid, ecal.radius, ecal.half_length)
    hit_h = propagate(p.pt, p.eta, p.phi, p.charge, card.solenoid, hcal.radius, hcal.half_length)
    reach_e = hit_e.reached & (np.abs(hit_e.eta) < ecal.eta_max)
    reach_h = hit_h.reached & (np.abs(hit_h.eta) < hcal.eta_max)

    tracks = reconstruct_tracks(card.tracker, p.pt, p.eta, p.phi, p.charge, rng)
    dep = calo.split_energy(card, p.pid, p.energy, p.charge, reach_e, reach_h, rng)
    if subtract_charged_pileup:
        tracked_pileup = np.zeros(len(p.pt), dtype=bool)
        tracked_pileup[tracks.index] = p.pileup[tracks.index]
        dep = calo.Deposits(*(np.where(tracked_pileup, 0.0, d) for d in dep))

    def mip(c, hit, energy):
        ieta, iphi = calo.cell_index(c, hit.eta, hit.phi)
        keep = energy > 0
        return p.event[keep], ieta[keep], iphi[keep], energy[keep]

    ecal_entries = [
        calo.spread(ecal, ecal.em_profile, p.event, hit_e.eta, hit_e.phi, dep.ecal_em, hit_e.r, rng),
        calo.spread(ecal, ecal.had_profile, p.event, hit_e.eta, hit_e.phi, dep.ecal_had, hit_e.r, rng),
        mip(ecal, hit_e, dep.ecal_mip),
    ]
    hcal_entries = [
        calo.spread(hcal, hcal.had_profile, p.event, hit_h.eta, hit_h.phi, dep.hcal_had, hit_h.r, rng),
        mip(hcal, hit_h, dep.hcal_mip),
    ]
    cat = lambda entries: [np.concatenate(a) for a in zip(*entries)]  # noqa: E731
    ecal_cells = calo.sum_cells(ecal, n, *cat(ecal_entries), region, rng)
    hcal_cells = calo.sum_cells(hcal, n, *cat(hcal_entries), region, rng)

    i = tracks.index
    kind = species(p.pid[i])
    charged = track_candidates(tracks, kind, p.charge[i], p.event[i], p.pileup[i])
    # After the subtraction the cells hold nothing of the pile-up tracks: particle flow must not expect it either.
    flow = ~charged.pileup if subtract_charged_pileup else np.ones(len(i), dtype=bool)
    pick = lambda hit: Impact(*(a[i][flow] for a in hit))  # noqa: E731
    pflow = particle_flow(card, charged.select(flow), kind[flow], pick(hit_e), pick(hit_h), ecal_cells, hcal_cells)
    return DetectorOutput(card, n, charged, ecal_cells, hcal_cells, pflow, p, hit_e, hit_h)


def _in_region(c: Candidates, region: calo.Region):
    eta_c = np.asarray(region.eta_center)[c.event]
    phi_c = np.asarray(region.phi_center)[c.event]
    return (np.abs(c.eta - eta_c) <= region.half_eta) & (np.abs(wrap_phi(c.phi - phi_c)) <= region.half_phi)


def simulate_jets(batch: JetBatch, card="atlas", seed=0, view: str = "pflow", pileup: Optional[PileUp] = None,
                  half_width: float = 1.1, max_constituents: Optional[int] = None) -> JetBatch:
    """Jets-only simulation: each jet's constituents are an event; returns the detector-level jets.

    The detector objects (``view``: ``"pflow"`` candidates or ``"objects"``: tracks, ECAL cells,
    HCAL towers) inside |delta eta|, |delta phi| <= ``half_width`` of the input jet axis become the
    constituents; pile-up and noise fill that window (1.1 covers 003's 125 x 125 crystal images).
    Jet kinematics are the sum of the particle-flow candidates in the window; labels and class
    names are kept. Needs ``batch.pid`` (generator-level jets).
    """
    if view not in VIEWS:
        raise ValueError(f"simulate_jets: view {view!r}; expected one of {VIEWS}")
    region = calo.Region(batch.jet_eta.astype(np.float64), batch.jet_phi.astype(np.float64), half_width, half_width)
    out = simulate(Particles.from_batch(batch), card, seed, pileup=pileup, region=region)
    pflow = out.pflow.select(_in_region(out.pflow, region))
    objects = pflow if view == "pflow" else out.objects()
    objects = objects.select(_in_region(objects, region))
    return pad_candidates(objects, len(batch), max_constituents, _sum_kinematics(pflow, len(batch)),
                          labels=batch.labels, class_names=batch.class_names)
