"""A fast parametric detector simulation: generator-level particles to tracks, ECAL cells,
HCAL towers and particle-flow-like candidates, tagged with their subdetector.

The physics a physicist uses for fast studies (003, 004; Delphes-like), vectorized over
events and particles with numpy, seeded and deterministic::

    from jettf.detector import simulate_jets, simulate, Particles, CARDS
    det = simulate_jets(batch, "cms", seed=1, view="objects")   # tracks, ECAL cells, HCAL towers
    render(det, ImageSpec(125, 1.0875, ("tracks", "ecal", "hcal")))  # 003's jet images
    pf = simulate_jets(batch, "atlas", seed=1)                  # particle-flow candidates

- :mod:`.cards`: the CMS and ATLAS cards, every number with its source.
- :mod:`.particles`: flat input arrays; :mod:`.propagation`: solenoid bending, loopers;
  :mod:`.tracker`: efficiency and resolution; :mod:`.calorimeter`: deposits, lateral
  profiles, cells, noise, zero suppression; :mod:`.pflow`: particle-flow candidates;
  :mod:`.pileup`: the minimum-bias library and overlay; :mod:`.simulate`: the whole chain.

Detector-level constituents carry ``JetBatch.subdetector`` = TRACK, ECAL or HCAL
(:mod:`jettf.jets`), which the renderer's ``tracks``, ``ecal``, ``hcal`` channels read.
"""

from jettf.jets import ECAL, HCAL, TRACK

from .calorimeter import Region
from .cards import ATLAS, CARDS, CMS, DetectorCard, get_card
from .particles import Particles
from .pflow import Candidates
from .pileup import MinBiasLibrary, PileUp
from .simulate import DetectorOutput, simulate, simulate_jets

__all__ = [
    "ATLAS", "CMS", "CARDS", "DetectorCard", "get_card", "Particles", "Candidates", "Region", "MinBiasLibrary",
    "PileUp", "DetectorOutput", "simulate", "simulate_jets", "TRACK", "ECAL", "HCAL",
]
