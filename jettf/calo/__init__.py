"""004's two calorimeter studies: electrons vs jets (chapter 3) and prompt vs non-prompt muons (chapter 4).

- :mod:`.cards`: every physics choice (processes, cuts, image geometry, feature windows, cones) with its source.
- :mod:`.images`: candidate images from :mod:`jettf.detector` cells (ECAL 31 x 31 + HCAL 8 x 8 at native
  granularity; muon 32 x 32 E_T cone images).
- :mod:`.study`: the networks of 004 Tables 3.1 / 4.1 trained and compared end to end, with bootstrap
  intervals, the guided EFP search and a report (``python -m jettf.calo electrons|muons``).

Samples: ``python -m jettf.generate electrons|muons --n-jets N --out DIR`` (:mod:`jettf.generate.leptons`),
read with :func:`jettf.io.read_electrons` / :func:`jettf.io.read_muons`; the expert features are in
:mod:`jettf.features.calorimeter`.
"""

from .cards import ELECTRONS, LEPTON_CARDS, MUONS, ElectronCard, MuonCard, get_lepton_card

__all__ = ["ELECTRONS", "MUONS", "LEPTON_CARDS", "ElectronCard", "MuonCard", "get_lepton_card"]
