"""Physics cards of 004's two calorimeter studies: every process, cut, image and feature window in one place.

- :data:`ELECTRONS` (004 chapter 3, "Learning to Identify Electrons"): pp -> Z'(20 GeV) -> e+ e- against
  electrons inside jets (b b-bar, electrons from b and c decays) at 13 TeV; a candidate is the electron's
  reconstructed track with pt > 10 GeV and |eta| < 2.125 matched to an ECAL deposit; ECAL 31 x 31 and HCAL
  8 x 8 images around the hottest ECAL cell; no pile-up.
- :data:`MUONS` (004 chapter 4, "Learning to Isolate Muons"): pp -> Z'(20 GeV) -> mu+ mu- against b b-bar
  with muons from heavy-flavour decays at 13 TeV, muon pt in [10, 15] GeV, pile-up <mu> = 50; 32 x 32 E_T
  images within delta-R < 0.45 of the muon's impact point on the calorimeter.

Both run through :mod:`jettf.detector`'s ``atlas`` card (004's Delphes ATLAS-like card: ECAL
(pi/126, 0.025), HCAL (pi/31, 0.1)). Units: GeV, radians. The deliberate differences from 004 (Pythia
for the hard process instead of MadGraph, no MPI, forced b-hadron decays, windowed simulation) are
listed in ``jettf/generate/README.md`` ("Lepton samples") with the reason for each.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, Tuple

import numpy as np

__all__ = ["ElectronCard", "MuonCard", "ELECTRONS", "MUONS", "LEPTON_CARDS", "get_lepton_card",
           "ELECTRON_FEATURES", "ISOLATION_RADII"]

# pp -> Z' -> l+ l- with m(Z') = 20 GeV (004 sections 3.4.1 and 4.3.1). gmZmode = 3: the Z' alone (no
# gamma*/Z interference); its width is tiny at 20 GeV, the 15-25 GeV window only bounds the Breit-Wigner.
_Z_PRIME = ("NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 20", "32:mMin = 15",
            "32:mMax = 25", "32:onMode = off")
_COMMON = (
    "Beams:eCM = 13000",  # 004: sqrt(s) = 13 TeV
    "Tune:pp = 14",  # Monash 2013, Pythia's default
    # No multiparton interactions: at these low pTHat they cost 12x the rest of the event (measured: 63 vs
    # 810 QCD events/s at pTHatMin = 15 GeV). The electron study has no pile-up (004) and the muon study
    # overlays 50 minimum-bias events (each with its MPI), which dominate the soft activity around the muon.
    "PartonLevel:MPI = off",
)
# Weakly decaying b hadrons forced into their decay channels that contain a muon: without it 0.2% of
# b b-bar events (pTHatMin 10 GeV) have a muon of pt 10-15 GeV, with it 5.4% (measured). Direct
# semileptonic kinematics are unchanged; b -> c -> mu cascades (softer) are lost.
_B_HADRONS = (511, 521, 531, 541, 5122, 5132, 5232, 5332)


def _force_b_hadrons_to(lepton: int) -> Tuple[str, ...]:
    return tuple(f"{i}:onMode = off" for i in _B_HADRONS) + tuple(f"{i}:onIfAny = {lepton}" for i in _B_HADRONS)


_FORCE_B_TO_MUONS = _force_b_hadrons_to(13)

#: 004 section 3.5: the seven standard features, in 004's order (Table 3.1).
ELECTRON_FEATURES = ("r_had", "w_eta2", "r_phi", "r_eta", "sigma_eta_eta", "iso_0.3", "iso_0.4")
#: 004 section 4.3.1: 18 equally spaced isolation cones, 0.025 <= R0 <= 0.45.
ISOLATION_RADII = tuple(float(r) for r in np.round(np.linspace(0.025, 0.45, 18), 6))


@dataclasses.dataclass(frozen=True)
class ElectronCard:
    """Electrons vs jets (004 chapter 3).

    Attributes:
        signal, background: Pythia settings of the two classes (with :data:`_COMMON`).
        track_pt_min, abs_eta_max: candidate track pt (GeV) and |eta| cut (004 section 3.4.2).
        seed_pt_min, seed_abs_eta_max: generator-level charged particles that may become candidates
            (a little looser than the track cuts, so resolution cannot move a track across them).
        window: half-width in eta and phi of the region simulated around each candidate (particles
            whose vertex direction lies inside it; see ``jettf/generate/README.md``).
        search: the image centre is the ECAL cell of largest E_T within ``search x search`` cells of
            the track's cell (004 section 3.4.3: 9 x 9).
        ecal_pixels, hcal_pixels: image sides in cells (004: 31 x 31 ECAL, 8 x 8 HCAL covering the same region).
        match_window, match_fraction: the "matched to an ECAL deposit" requirement: the ECAL E_T in
            ``match_window`` (eta x phi cells) around the centre is at least ``match_fraction`` of the track
            pt (a loose E/p).
        max_r_had: loose hadronic leakage: R_had (HCAL over ECAL E_T of the two images, 004 eq. 3.1) below it
            (with E/p, the loose selection of both classes).
        pt_bins: edges (GeV) of the pt histograms for the reweighting of the background to the signal
            (the last bin is open).
        max_track_match_dr: a track belongs to the seed particle within this delta-R (1 mrad resolution).
    """

    name: str = "electrons"
    reference: str = ("004 (Collado thesis) chapter 3 / Collado et al., 'Learning to Identify Electrons', "
                      "PRD 103 (2021) 116028, arXiv:2011.01984")
    signal: Tuple[str, ...] = _Z_PRIME + ("32:onIfAny = 11",)
    # Electrons inside jets: 004's candidates are Delphes electrons, i.e. true electrons, so its jet
    # background is the electrons that jets contain; generic QCD gives one above 10 GeV in ~1e-4 of events,
    # heavy-flavour decays give most of them. So: b b-bar with the weakly decaying b hadrons forced into
    # their channels with an electron (as the muon study's background), and the candidate is an electron
    # from a c or b hadron. (Charged hadrons faking an electron, the first choice here, left every network
    # at AUC 0.996-0.999: our detector puts all of an electron's energy in the ECAL, so R_had alone told the
    # classes apart, unlike in 004; benchmarks/README.md, section 004.)
    background: Tuple[str, ...] = ("HardQCD:gg2bbbar = on", "HardQCD:qqbar2bbbar = on",
                                   "PhaseSpace:pTHatMin = 15") + _force_b_hadrons_to(11)
    track_pt_min: float = 10.0
    abs_eta_max: float = 2.125
    seed_pt_min: float = 9.0
    seed_abs_eta_max: float = 2.2
    window: float = 1.0
    search: int = 9
    ecal_pixels: int = 31
    hcal_pixels: int = 8
    match_window: Tuple[int, int] = (7, 7)
    match_fraction: float = 0.5
    max_r_had: float = 0.5
    pt_bins: Tuple[float, ...] = tuple(float(x) for x in np.arange(10.0, 41.0, 1.0))
    max_track_match_dr: float = 0.01
    detector: str = "atlas"
    class_names: Tuple[str, str] = ("jet", "electron")

    def pythia_settings(self, label: int) -> Tuple[str, ...]:
        return _COMMON + (self.signal if label == 1 else self.background)

    def fingerprint(self) -> str:
        from jettf.generate.samples import PYTHIA_VERSION

        return hashlib.sha256((repr(self) + PYTHIA_VERSION).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class MuonCard:
    """Prompt vs non-prompt muons (004 chapter 4).

    Attributes:
        signal, background: Pythia settings of the two classes (with :data:`_COMMON`).
        pt_range: generator-level muon pt window (GeV, 004 section 4.3.1).
        abs_eta_max: muon |eta| (the ATLAS tracker and muon spectrometer acceptance is 2.5).
        pileup_mu: mean number of overlaid minimum-bias events (004: <mu> = 50).
        subtract_charged_pileup: leave the calorimeter deposits of tracked charged pile-up particles out of the
            image (:func:`jettf.detector.simulate`'s charged-hadron subtraction). 004 overlays its pile-up with
            Delphes 3.2, whose pile-up cards subtract pile-up tracks from the E-flow (TrackPileUpSubtractor), and
            its pixels are "the E_T deposited by a particle". The best single cone (weighted AUC of -I_mu(R0),
            seed 0) reaches 0.764 at R0 = 0.325 with the subtraction (12,000 muons per class; 004: 0.780 at
            R0 = 0.425), 0.715 at R0 = 0.3 with all pile-up energy in the cells (4,000 per class), and 0.964 at
            R0 = 0.45 without pile-up (1,500 per class, seed 1).
        window: half-width in eta and phi of the simulated region around the muon.
        cone: image radius (004: delta-R < 0.45); ``pixels``: image side (004: 32 x 32 over
            [-cone, cone]^2 around the muon's impact point on the ECAL face).
        max_cells: the hardest ECAL cells and HCAL towers within the cone stored per muon (the PFN / EFN
            inputs; a muon has ~107 on average at <mu> = 50, one in a thousand more than 384).
        radii: isolation cones I_mu(R0) (:data:`ISOLATION_RADII`).
        pt_bins: pt histogram edges (GeV) for the reweighting of the signal to the background.
        heavy_flavour: a background muon's first ancestor that is not a muon must be a hadron
            containing a c or b quark (from the truth record).
    """

    name: str = "muons"
    reference: str = ("004 (Collado thesis) chapter 4 / Collado et al., 'Learning to Isolate Muons', "
                      "JHEP 10 (2021) 200, arXiv:2102.02278")
    signal: Tuple[str, ...] = _Z_PRIME + ("32:onIfAny = 13",)
    # b b-bar from gg and q q-bar fusion; a 10 GeV muon from a b decay needs a b of about 15-30 GeV.
    background: Tuple[str, ...] = ("HardQCD:gg2bbbar = on", "HardQCD:qqbar2bbbar = on",
                                   "PhaseSpace:pTHatMin = 10") + _FORCE_B_TO_MUONS
    pt_range: Tuple[float, float] = (10.0, 15.0)
    abs_eta_max: float = 2.5
    pileup_mu: float = 50.0
    pileup_library_events: int = 2000
    subtract_charged_pileup: bool = True
    window: float = 0.8
    cone: float = 0.45
    pixels: int = 32
    max_cells: int = 384
    radii: Tuple[float, ...] = ISOLATION_RADII
    pt_bins: Tuple[float, ...] = tuple(float(x) for x in np.arange(10.0, 15.01, 0.25))
    detector: str = "atlas"
    class_names: Tuple[str, str] = ("non-prompt", "prompt")

    def pythia_settings(self, label: int) -> Tuple[str, ...]:
        return _COMMON + (self.signal if label == 1 else self.background)

    @property
    def pixel_size(self) -> float:
        return 2.0 * self.cone / self.pixels

    def fingerprint(self) -> str:
        from jettf.generate.samples import PYTHIA_VERSION

        return hashlib.sha256((repr(self) + PYTHIA_VERSION).encode()).hexdigest()[:12]


ELECTRONS = ElectronCard()
MUONS = MuonCard()
LEPTON_CARDS: Dict[str, object] = {"electrons": ELECTRONS, "muons": MUONS}


def get_lepton_card(name):
    """``"electrons"`` or ``"muons"`` (or a card itself)."""
    if isinstance(name, (ElectronCard, MuonCard)):
        return name
    try:
        return LEPTON_CARDS[name]
    except KeyError:
        raise ValueError(f"unknown lepton sample {name!r}; expected one of {sorted(LEPTON_CARDS)}") from None


def ecal_pixel_offsets(card: ElectronCard = ELECTRONS, calorimeter=None):
    """(delta eta [P], delta phi [P]) of the ECAL image's pixel centres from the image centre, axis 1 = eta."""
    from jettf.detector import get_card

    ecal = calorimeter or get_card(card.detector).ecal
    half = card.ecal_pixels // 2
    steps = np.arange(card.ecal_pixels) - half
    return steps * ecal.deta, steps * ecal.dphi

