"""Physics cards of the generated samples: every process, cut and matching choice, in one place.

Each :class:`SampleCard` reproduces the physics definition of one public
dataset (see ``../shared/docs/DATASETS.md`` and ``jettf/generate/README.md``)
with Pythia 8 + the anti-kT algorithm of FastJet. Units: GeV, radians.
The deliberate differences from the public samples (no detector simulation,
Pythia version) are listed in the README.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
from typing import Dict, Optional, Tuple

__all__ = ["JetClass", "SampleCard", "SAMPLES", "get_card"]

PYTHIA_VERSION = importlib.metadata.version("pythia8mc")  # 8.317.2, pinned in setup.cfg

# Matching kinds (how a jet earns its class label; dR in (rapidity, phi)):
#   "none"     every jet that passes the cuts (QCD background)
#   "parton"   the nearest of the two outgoing partons of the 2->2 process lies
#              within ``match_radius`` and has |PDG id| in ``pdg_ids``
#   "decay"    an outgoing resonance with |PDG id| in ``pdg_ids`` and all the
#              quarks it decays to (through t -> W b -> q q' b) lie within ``match_radius``
#   "process"  the outgoing parton of the hard process has |PDG id| in ``pdg_ids``
#              (label by process, no geometric matching, as EnergyFlow does)
#   "dijet"    both outgoing partons of the 2->2 process have |PDG id| in ``pdg_ids`` and each is
#              matched to its own jet within ``match_radius`` (in eta-phi), both jets passing the
#              pT and |eta| cuts (003's di-quark / di-gluon events; jettf.generate.cms_quark_gluon)
MATCH_KINDS = ("none", "parton", "decay", "process", "dijet")


@dataclasses.dataclass(frozen=True)
class JetClass:
    """One class of a sample: its hard process and how a jet is matched to it.

    Attributes:
        name: class name as the public dataset uses it (``"t"``, ``"top"``, ``"quark"`` ...).
        process: Pythia settings that switch on the hard process and force its decays.
        match: one of :data:`MATCH_KINDS`.
        pdg_ids: absolute PDG ids the matched parton or resonance must have.
    """

    name: str
    process: Tuple[str, ...]
    match: str = "none"
    pdg_ids: Tuple[int, ...] = ()

    def __post_init__(self):
        if self.match not in MATCH_KINDS:
            raise ValueError(f"JetClass {self.name!r}: match {self.match!r} is not one of {MATCH_KINDS}")


@dataclasses.dataclass(frozen=True)
class SampleCard:
    """The physics definition of one sample.

    Attributes:
        name: ``"jetnet"``, ``"top_tagging"``, ``"quark_gluon"`` or ``"cms_quark_gluon"``.
        reference: the dataset and paper this card reproduces.
        settings: Pythia settings common to all classes (beam energy, tune, MPI, pTHat range).
        jet_radius: anti-kT R.
        pt_range: jet pT window ``[lo, hi)`` in GeV, applied to the leading jet of the event.
        abs_eta_max / abs_y_max: cut on the jet pseudorapidity / rapidity (None: no cut).
        match_radius: dR for truth matching.
        classes: the classes, in label order.
        max_constituents: constituents kept per jet (the pt-hardest).
    """

    name: str
    reference: str
    settings: Tuple[str, ...]
    jet_radius: float
    pt_range: Tuple[float, float]
    classes: Tuple[JetClass, ...]
    match_radius: float
    abs_eta_max: Optional[float] = None
    abs_y_max: Optional[float] = None
    max_constituents: int = 200

    @property
    def class_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def jet_class(self, name: str) -> JetClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise ValueError(f"sample {self.name!r} has no class {name!r}; expected one of {self.class_names}")

    def pythia_settings(self, name: str) -> Tuple[str, ...]:
        """All Pythia settings for class ``name`` (without the seed and the print settings)."""
        return self.settings + self.jet_class(name).process

    def fingerprint(self) -> str:
        """Short hash of the card and the Pythia build; changes whenever the physics would."""
        text = repr(self) + PYTHIA_VERSION
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# Decay settings: hadronic W and Z (any quark pair; onIfAny 1..5 keeps ud, us, cs, ..., bb).
_W_TO_QUARKS = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_Z_TO_QUARKS = ("23:onMode = off", "23:onIfAny = 1 2 3 4 5")
_Z_TO_NEUTRINOS = ("WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 12 14 16")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
# Every HardQCD 2->2 process with an outgoing gluon / an outgoing light quark. Matching the
# jet to a parton of that flavour then gives exactly the gluon / light-quark jets of inclusive
# HardQCD:all, without generating events that cannot contain such a jet.
_QCD_WITH_GLUON = ("HardQCD:gg2gg = on", "HardQCD:qg2qg = on", "HardQCD:qqbar2gg = on")
_QCD_WITH_QUARK = ("HardQCD:qg2qg = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on",
                   "HardQCD:gg2qqbar = on", "HardQCD:nQuarkNew = 3")
_LIGHT_QUARKS = (1, 2, 3)

JETNET = SampleCard(
    name="jetnet",
    reference=(
        "JetNet (Kansal et al., NeurIPS 2021, arXiv:2106.11535; Zenodo 6975118/6975117), derived from "
        "the hls4ml LHC jet dataset (Moreno et al., arXiv:1908.05318): 13 TeV, MadGraph partons and "
        "undecayed bosons at pT = 1 TeV +- 1%, Pythia 8.212 Monash 2013 with underlying event, "
        "anti-kT R = 0.8, measured jet pT kept in [0.8, 1.6] TeV."
    ),
    settings=(
        "Beams:eCM = 13000",
        "Tune:pp = 14",  # Monash 2013 (Pythia's default), as JetNet
        "PartonLevel:MPI = on",  # JetNet includes the underlying event
        # Pythia 2->2 pTHat window = JetNet's MadGraph generation window (pT of the
        # partons / undecayed bosons 1 TeV +- 1%).
        "PhaseSpace:pTHatMin = 990",
        "PhaseSpace:pTHatMax = 1010",
    ),
    jet_radius=0.8,
    pt_range=(800.0, 1600.0),
    match_radius=0.8,
    classes=(
        JetClass("g", _QCD_WITH_GLUON, "parton", (21,)),
        JetClass("q", _QCD_WITH_QUARK, "parton", _LIGHT_QUARKS),
        JetClass("t", _TTBAR + _W_TO_QUARKS, "decay", (6,)),
        JetClass("w", ("WeakDoubleBoson:ffbar2WW = on",) + _W_TO_QUARKS, "decay", (24,)),
        JetClass("z", ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2") + _Z_TO_QUARKS, "decay", (23,)),
    ),
)

TOP_TAGGING = SampleCard(
    name="top_tagging",
    reference=(
        "Top Quark Tagging Reference Dataset (Kasieczka, Plehn et al., SciPost Phys. 7 (2019) 014, "
        "arXiv:1902.09914; Zenodo 2603256): 14 TeV, hadronic tt vs QCD dijets, Pythia 8 + Delphes ATLAS, "
        "no MPI or pile-up, anti-kT R = 0.8, pT in [550, 650] GeV, |eta| < 2, top jets matched to the "
        "parton-level top and all its decay quarks within dR = 0.8."
    ),
    settings=(
        "Beams:eCM = 14000",
        "Tune:pp = 14",
        "PartonLevel:MPI = off",  # "No MPI/pile-up included"
        # Not documented by the reference. Jets in the window also come from pTHat well below
        # 550 GeV (initial-state recoil); 300 GeV keeps all but about 2% (QCD) and 5% (top) of
        # them at 2-3x the speed of 250 GeV (README, "pTHat range").
        "PhaseSpace:pTHatMin = 300",
    ),
    jet_radius=0.8,
    pt_range=(550.0, 650.0),
    abs_eta_max=2.0,
    match_radius=0.8,
    classes=(
        JetClass("qcd", ("HardQCD:all = on",), "none"),
        JetClass("top", _TTBAR + _W_TO_QUARKS, "decay", (6,)),
    ),
)

QUARK_GLUON = SampleCard(
    name="quark_gluon",
    reference=(
        "EnergyFlow Pythia quark/gluon jets (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121, "
        "arXiv:1810.05165; Zenodo 3164691): 14 TeV, Z(->nu nu)+g and Z(->nu nu)+(u,d,s) from "
        "WeakBosonAndParton:qqbar2gmZg / qg2gmZq, Pythia 8.226 defaults with MPI and hadronization, "
        "anti-kT R = 0.4 on all visible final-state particles, pT in [500, 550] GeV, |y| < 1.7."
    ),
    settings=(
        "Beams:eCM = 14000",
        "Tune:pp = 14",
        "PartonLevel:MPI = on",
        # Not documented by the reference. R = 0.4 jets lose pT out of the cone, so few jets in
        # the window come from below 350 GeV: about 0.6% (gluon), 1.1% (quark) (README, "pTHat range").
        "PhaseSpace:pTHatMin = 350",
    ) + _Z_TO_NEUTRINOS,
    jet_radius=0.4,
    pt_range=(500.0, 550.0),
    abs_y_max=1.7,
    match_radius=0.4,
    classes=(
        JetClass("gluon", ("WeakBosonAndParton:qqbar2gmZg = on",), "process", (21,)),
        JetClass("quark", ("WeakBosonAndParton:qg2gmZq = on",), "process", _LIGHT_QUARKS),
    ),
)

# 003 (Andrews et al.): the outgoing partons of the 2->2 process are both light quarks (u, d, s) or both
# gluons. Every HardQCD process with two outgoing gluons / two outgoing light quarks (qg -> qg never
# gives either), so matching both partons gives exactly the events of inclusive HardQCD:all that 003
# keeps, without generating the others; classes are balanced, so cross sections do not matter.
_QCD_TWO_GLUONS = ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on")
_QCD_TWO_QUARKS = ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:gg2qqbar = on",
                   "HardQCD:nQuarkNew = 3")

CMS_QUARK_GLUON = SampleCard(
    name="cms_quark_gluon",
    reference=(
        "003 (Andrews et al., end-to-end jet images from CMS 2012 Open Data simulation): 8 TeV QCD dijets "
        "(Pythia 6 Z2*, Geant4), pT-hat 90-170 GeV, pile-up <PU> 18-21; both outgoing partons light quarks "
        "(u, d, s) or both gluons, each matched to a jet within dR < 0.4, jet pT > 70 GeV, |eta| < 1.8; the "
        "leading jet as a 125 x 125 tracks/ECAL/HCAL image at ECAL-crystal granularity; public file "
        "quark-gluon_data-set_n139306.hdf5 (003's test set) and parquet files with X_jets, y, pt, m0."
    ),
    settings=(
        "Beams:eCM = 8000",
        "Tune:pp = 14",  # Monash 2013 (003: Pythia 6 Z2*, not available in Pythia 8)
        "PartonLevel:MPI = on",  # 003: "account for the multi-parton interactions from the underlying event"
        "PhaseSpace:pTHatMin = 90",  # 003 section 2: p-hat_T = 90 - 170 GeV
        "PhaseSpace:pTHatMax = 170",
    ),
    # 003 does not state the jet radius; anti-kT R = 0.5 was CMS's 2012 default (AK5 particle-flow jets).
    jet_radius=0.5,
    pt_range=(70.0, float("inf")),  # both parton-matched jets: pT > 70 GeV
    abs_eta_max=1.8,
    match_radius=0.4,
    classes=(
        JetClass("gluon", _QCD_TWO_GLUONS, "dijet", (21,)),
        JetClass("quark", _QCD_TWO_QUARKS, "dijet", _LIGHT_QUARKS),
    ),
)

SAMPLES: Dict[str, SampleCard] = {card.name: card for card in (JETNET, TOP_TAGGING, QUARK_GLUON, CMS_QUARK_GLUON)}


def get_card(sample: str) -> SampleCard:
    """The card of ``sample``; a clear error for unknown names."""
    try:
        return SAMPLES[sample]
    except KeyError:
        raise ValueError(f"unknown sample {sample!r}; expected one of {sorted(SAMPLES)}") from None
