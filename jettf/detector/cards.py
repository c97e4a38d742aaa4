"""Detector cards: every number of the parametric detector simulation, with its source.

A card is a frozen dataclass; two equal cards simulate the same detector, and
:meth:`DetectorCard.fingerprint` identifies it in sample metadata. Units: GeV,
metres, radians; lengths in interaction lengths where said. Two cards:

- :data:`CMS` (003's detector, CMS 2012): 3.8 T, ECAL barrel crystals 0.0174 x 0.0174
  at R = 1.29 m, HCAL towers 0.087 x 0.087.
- :data:`ATLAS` (004's Delphes ATLAS-like card): 2 T, ECAL (delta-phi, delta-eta) =
  (pi/126, 0.025), HCAL (pi/31, 0.1), tracking and calorimeter resolutions of Delphes'
  ``delphes_card_ATLAS.tcl`` and the ATLAS detector paper.

References used below:
  [CMS08]   CMS Collaboration, "The CMS experiment at the CERN LHC", JINST 3 (2008) S08004.
  [ATLAS08] ATLAS Collaboration, "The ATLAS Experiment at the CERN LHC", JINST 3 (2008) S08003.
  [DCMS] / [DATLAS]  Delphes 3 cards ``cards/delphes_card_CMS.tcl`` / ``cards/delphes_card_ATLAS.tcl``
            (github.com/delphes/delphes; de Favereau et al., JHEP 02 (2014) 057).
  [PDG]     Particle Data Group, "Atomic and nuclear properties of materials" and the "Calorimetry" review.
  [Groom]   D. Groom, "Energy flow in a hadronic cascade", NIM A 572 (2007) 633: pi/e = 1 - (1 - h/e)(E/E0)^(m-1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Dict, Tuple

__all__ = [
    "Solenoid", "Tracker", "LateralProfile", "Calorimeter", "HadronShowers", "ParticleFlow", "DetectorCard",
    "CMS", "ATLAS", "CARDS", "get_card",
]


@dataclasses.dataclass(frozen=True)
class Solenoid:
    """Uniform axial field ``field`` (T) inside a cylinder of ``radius`` and ``half_length`` (m);
    charged particles move on helices inside it and on straight lines outside."""

    field: float
    radius: float
    half_length: float


@dataclasses.dataclass(frozen=True)
class Tracker:
    """Tracking acceptance, efficiency and resolution.

    Attributes:
        eta_max: tracks only for |eta| < eta_max.
        pt_min: no track below this pt (GeV).
        efficiency_eta_edges: upper |eta| edges of the efficiency rows (the last is eta_max).
        efficiency_pt_edges: upper pt edges (GeV) of the efficiency columns; the last column is open.
        efficiency: rows (per |eta| bin) of per-pt-bin efficiencies.
        resolution_eta_edges: upper |eta| edges of the resolution bins.
        resolution_a, resolution_b: per |eta| bin, sigma(pt)/pt = a (+) b * pt (in quadrature), applied
            to the curvature 1/pt, which a tracker measures with Gaussian errors.
        angular_resolution: Gaussian error on phi and on the polar angle theta (rad).
    """

    eta_max: float
    pt_min: float
    efficiency_eta_edges: Tuple[float, ...]
    efficiency_pt_edges: Tuple[float, ...]
    efficiency: Tuple[Tuple[float, ...], ...]
    resolution_eta_edges: Tuple[float, ...]
    resolution_a: Tuple[float, ...]
    resolution_b: Tuple[float, ...]
    angular_resolution: float


@dataclasses.dataclass(frozen=True)
class LateralProfile:
    """Transverse shower profile: ``core_fraction`` of the energy in a 2-D Gaussian of width
    ``core_sigma`` (m), the rest in one of width ``tail_sigma`` (m), measured on the calorimeter
    face. Deposits are spread over ``window x window`` cells around the impact cell and
    renormalized there (energy is conserved; the profile only shapes it). With ``spots > 0``
    a deposit is instead split into that many equal spots drawn from the profile (hadronic
    showers fluctuate; no window)."""

    core_fraction: float
    core_sigma: float
    tail_sigma: float
    window: int = 3
    spots: int = 0

    def __post_init__(self):
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"LateralProfile.window: expected an odd number of cells >= 1, got {self.window}")


@dataclasses.dataclass(frozen=True)
class Calorimeter:
    """One calorimeter: geometry, granularity, single-particle resolution, cells.

    Attributes:
        radius, half_length: barrel face radius and end-cap face |z| (m) where particles are
            propagated to and where the lateral profile is measured.
        eta_max: acceptance |eta| < eta_max (at the impact point).
        deta, dphi: cell size; eta bins have edges ``k * deta``, phi bins ``-pi + k * dphi``
            (``2 pi / dphi`` must be an integer). One uniform grid, end-caps included.
        stochastic, noise, constant: the card's single-particle resolution
            sigma/E = stochastic/sqrt(E) (+) noise/E (+) constant (in quadrature, E in GeV),
            applied per particle (``noise`` per particle is 0 in both cards: electronic noise is
            per cell, ``cell_noise``).
        cell_noise: Gaussian electronic noise per cell (GeV), on every cell, hit or empty.
        threshold: zero suppression: cells are kept only above this energy (GeV).
        em_profile: lateral profile of electromagnetic showers (ECAL).
        had_profile: lateral profile of hadronic showers.
        mip: energy (GeV) a minimum-ionizing particle leaves crossing the calorimeter.
        depth: thickness in nuclear interaction lengths (sets the early-shower probability in
            the ECAL: 1 - exp(-depth)).
    """

    name: str
    radius: float
    half_length: float
    eta_max: float
    deta: float
    dphi: float
    stochastic: float
    noise: float
    constant: float
    cell_noise: float
    threshold: float
    had_profile: LateralProfile
    mip: float
    depth: float
    em_profile: LateralProfile = None

    def __post_init__(self):
        n_phi = 2.0 * math.pi / self.dphi
        if abs(n_phi - round(n_phi)) > 1e-6:
            raise ValueError(
                f"Calorimeter {self.name!r}: dphi = {self.dphi} does not divide 2 pi (2 pi / dphi = {n_phi})"
            )

    @property
    def n_phi(self) -> int:
        return int(round(2.0 * math.pi / self.dphi))

    @property
    def n_eta(self) -> int:
        """Number of eta bins covering [-eta_max, eta_max] (edges at multiples of deta)."""
        return 2 * int(math.ceil(self.eta_max / self.deta - 1e-9))

    def resolution(self, energy):
        """sigma(E) (GeV) of one particle's deposit: stochastic (+) noise (+) constant."""
        import numpy as np

        e = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
        return np.sqrt(self.stochastic**2 * e + self.noise**2 + (self.constant * e) ** 2)


@dataclasses.dataclass(frozen=True)
class HadronShowers:
    """Hadron response: non-compensation and the ECAL/HCAL split.

    The visible energy of a hadron of energy E is ``pi/e(E) * E`` with Groom's
    pi/e = 1 - (1 - h/e) (E / e0)^(m - 1) (E < e0: pi/e = h/e), smeared with the HCAL card's
    resolution. It starts showering in the ECAL with probability 1 - exp(-ECAL depth) at a
    depth x ~ Exp(1 interaction length) and then leaves 1 - exp(-(depth - x)) of it there;
    otherwise a charged hadron leaves a MIP in the ECAL and a neutral one nothing. The rest
    goes to the HCAL.
    """

    e_over_h: float
    e0: float = 1.0
    m: float = 0.83

    def response(self, energy):
        """pi/e: the mean fraction of a hadron's energy the calorimeters see (EM scale)."""
        import numpy as np

        e = np.maximum(np.asarray(energy, dtype=np.float64), self.e0)
        return 1.0 - (1.0 - 1.0 / self.e_over_h) * (e / self.e0) ** (self.m - 1.0)


@dataclasses.dataclass(frozen=True)
class ParticleFlow:
    """Thresholds of the particle-flow-like candidates (per HCAL tower: tracks, then photons and
    neutral hadrons from the calorimeter energy the tracks do not explain).

    Attributes:
        photon_min, neutral_hadron_min: minimum candidate energy (GeV).
        significance_min: minimum candidate energy over the resolution of the tower energy.
        ecal_noise, hcal_noise: noise terms (GeV) added in quadrature to the tower resolution in
            the significance only (Delphes' tower noise terms).
        remove_pileup_tracks: drop charged candidates of pile-up vertices (charged-hadron subtraction).
    """

    photon_min: float
    neutral_hadron_min: float
    significance_min: float
    ecal_noise: float = 0.0
    hcal_noise: float = 0.0
    remove_pileup_tracks: bool = True


@dataclasses.dataclass(frozen=True)
class DetectorCard:
    """A whole detector: field, tracker, ECAL, HCAL, hadron response, particle flow."""

    name: str
    reference: str
    solenoid: Solenoid
    tracker: Tracker
    ecal: Calorimeter
    hcal: Calorimeter
    hadrons: HadronShowers
    pflow: ParticleFlow

    def fingerprint(self) -> str:
        """12 hex digits identifying the card (every number in it)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]

    def looper_pt(self, radius: float = None) -> float:
        """pt (GeV) below which a charged particle curls up before ``radius`` (default: the ECAL face,
        or the field's edge if nearer): pt < 0.3 B R / 2."""
        r = min(self.ecal.radius, self.solenoid.radius) if radius is None else radius
        return 0.3 * self.solenoid.field * r / 2.0


# Delphes' charged-hadron tracking efficiency, identical in [DCMS] and [DATLAS]:
# |eta| <= 1.5: 70% for 0.1 < pt <= 1 GeV, 95% above; 1.5 < |eta| <= 2.5: 60% and 85%; none for pt <= 0.1 GeV.
_DELPHES_TRACKING = dict(
    pt_min=0.1,
    efficiency_eta_edges=(1.5, 2.5),
    efficiency_pt_edges=(1.0,),
    efficiency=((0.70, 0.95), (0.60, 0.85)),
)

CMS = DetectorCard(
    name="cms",
    reference=(
        "CMS 2012 (003's detector): [CMS08] for field, geometry, granularity and ECAL resolution; "
        "[DCMS] for tracking efficiency, track resolution and particle-flow thresholds"
    ),
    # 3.8 T (003; [CMS08] section 2: operated at 3.8 T) inside the 6 m bore, 12.5 m long coil ([CMS08] section 2).
    solenoid=Solenoid(field=3.8, radius=2.95, half_length=6.25),
    tracker=Tracker(
        eta_max=2.5,  # [CMS08] section 3
        **_DELPHES_TRACKING,
        # [DCMS] ChargedHadronMomentumSmearing (from CMS, arXiv:1405.6569): 1% (+) 1.5e-4 pt for |eta| <= 0.5,
        # 1.5% (+) 2.5e-4 pt up to 1.5, 2.5% (+) 5.5e-4 pt up to 2.5.
        resolution_eta_edges=(0.5, 1.5, 2.5),
        resolution_a=(0.01, 0.015, 0.025),
        resolution_b=(1.5e-4, 2.5e-4, 5.5e-4),
        angular_resolution=1e-3,  # ~1 mrad for tracks of a few GeV ([CMS08] section 3.6)
    ),
    ecal=Calorimeter(
        name="ecal",
        # Crystal front faces at R = 1.29 m (003, [DCMS] propagation radius); end-cap at |z| = 3.15 m ([CMS08] 4.1).
        radius=1.29, half_length=3.15, eta_max=3.0,
        # 0.0174 x 0.0174 crystals (003; [CMS08] 4.1: 360 crystals in phi, 85 per half barrel in eta).
        deta=0.0174, dphi=2 * math.pi / 360,
        # Test-beam resolution 2.8%/sqrt(E) (+) 0.3% ([CMS08] 4.9); its 12%/E noise term is the 3x3 sum of
        # the 40 MeV cell noise below (3 x 40 MeV = 120 MeV).
        stochastic=0.028, noise=0.0, constant=0.003,
        cell_noise=0.040,  # ~40 MeV per barrel channel ([CMS08] 4.9)
        threshold=0.12,  # zero suppression at 3 sigma of the cell noise
        # PbWO4 Moliere radius 2.19 cm [PDG]: a 90% core of sigma 0.3 R_M and a tail of 1.2 R_M give ~75% of a
        # central shower in one crystal and ~96% in 3x3 (003: "roughly 3 x 3 pixel showers").
        em_profile=LateralProfile(0.9, 0.3 * 0.0219, 1.2 * 0.0219, window=3),
        # Hadronic showers: 70% core of 0.15 lambda_I, tail of 0.5 lambda_I (PbWO4 lambda_I = 20.3 cm [PDG]).
        had_profile=LateralProfile(0.7, 0.15 * 0.203, 0.5 * 0.203, spots=6),
        # 23 cm of PbWO4 x dE/dx_min 10.2 MeV/cm [PDG] = 0.23 GeV; 23 cm / 20.3 cm = 1.1 lambda_I ([CMS08] 4.1).
        mip=0.23, depth=1.1,
    ),
    hcal=Calorimeter(
        name="hcal",
        # HB inner radius 1.77 m ([CMS08] 5.1); HE face at |z| ~ 3.9 m (approximate).
        radius=1.77, half_length=3.9, eta_max=3.0,
        deta=0.087, dphi=2 * math.pi / 72,  # 0.087 x 0.087 towers ([CMS08] 5.1), 5 x 5 crystals each
        # ~100%/sqrt(E) (+) 5% for hadrons in ECAL + HCAL (issue 14; [CMS08] 5: ~85-100%/sqrt(E) (+) 5-7% in
        # test beams; [DCMS] uses 150%/sqrt(E) (+) 5% for the HCAL alone).
        stochastic=1.0, noise=0.0, constant=0.05,
        cell_noise=0.2,  # ~200 MeV per HB tower (approximate)
        threshold=0.8,  # CMS particle-flow HB rec-hit threshold (Run 1), 4 sigma
        # Brass lambda_I = 16.4 cm [PDG]; 70% core of 0.15 lambda_I: most of a shower in one tower.
        had_profile=LateralProfile(0.7, 0.15 * 0.164, 0.5 * 0.164, window=3),
        # ~95 cm of brass (5.8 lambda_I at eta = 0, [CMS08] 5.1) x dE/dx_min 12.4 MeV/cm [PDG] = 1.2 GeV.
        mip=1.2, depth=5.8,
    ),
    hadrons=HadronShowers(e_over_h=1.4),  # brass/scintillator e/h ~ 1.3-1.4 (approximate; Groom e0 = 1, m = 0.83)
    # [DCMS]: ECal EnergyMin 0.5 GeV, HCal EnergyMin 1.0 GeV, EnergySignificanceMin 2.0.
    pflow=ParticleFlow(photon_min=0.5, neutral_hadron_min=1.0, significance_min=2.0),
)

ATLAS = DetectorCard(
    name="atlas",
    reference=(
        "ATLAS-like Delphes card of 004 (ECal (pi/126, 0.025), HCal (pi/31, 0.1)); [DATLAS] for the field "
        "region, tracking efficiency, calorimeter resolutions and particle-flow thresholds; [ATLAS08] for "
        "track resolution and geometry"
    ),
    # [DATLAS] ParticlePropagator: Bz = 2.0 T, Radius 1.15 m, HalfLength 3.51 m (004: "a perfectly homogeneous 2 T").
    solenoid=Solenoid(field=2.0, radius=1.15, half_length=3.51),
    tracker=Tracker(
        eta_max=2.5,
        **_DELPHES_TRACKING,
        # [ATLAS08] Table 1.1: sigma(pt)/pt = 0.05% pt (+) 1% (004: tracks "similar to those expected at
        # ATLAS [2]"). [DATLAS] itself smears with 6% (+) 1.3e-3 pt, not used here.
        resolution_eta_edges=(2.5,),
        resolution_a=(0.01,),
        resolution_b=(5e-4,),
        angular_resolution=1e-3,
    ),
    ecal=Calorimeter(
        name="ecal",
        # EM barrel inner diameter 2.8 m ([ATLAS08] 5.2); EM end-cap face at |z| ~ 3.7 m (approximate).
        radius=1.4, half_length=3.7, eta_max=3.2,
        deta=0.025, dphi=math.pi / 126,  # 004 section 3.2
        stochastic=0.101, noise=0.0, constant=0.0017,  # [DATLAS] ECal: sqrt(E^2 0.0017^2 + E 0.101^2), |eta| <= 3.2
        cell_noise=0.03,  # typical LAr middle-layer cell noise without pile-up (approximate)
        threshold=0.09,  # 3 sigma
        # Lead/LAr accordion Moliere radius ~4 cm (from 1/R_M = sum w_j / R_M,j over Pb, LAr, steel [PDG]).
        em_profile=LateralProfile(0.9, 0.3 * 0.04, 1.2 * 0.04, window=3),
        had_profile=LateralProfile(0.7, 0.15 * 0.20, 0.5 * 0.20, spots=6),
        # ~22 X0 of lead/LAr x ~7.5 MeV per X0 (approximate); ~1.2 lambda_I (approximate).
        mip=0.17, depth=1.2,
    ),
    hcal=Calorimeter(
        name="hcal",
        # Tile calorimeter inner radius 2.28 m ([ATLAS08] 5.3); hadronic end-cap face at |z| ~ 4.3 m.
        radius=2.28, half_length=4.3, eta_max=3.2,
        deta=0.1, dphi=math.pi / 31,  # 004 section 3.2
        # [DATLAS] HCal, |eta| <= 1.7: sqrt(E^2 0.0302^2 + E 0.5205^2 + 1.59^2); its 1.59 GeV term (smearing
        # of towers that have energy) is replaced by per-cell noise here.
        stochastic=0.5205, noise=0.0, constant=0.0302,
        cell_noise=0.05,  # approximate tile-tower noise without pile-up
        threshold=0.15,  # 3 sigma
        # Tile calorimeter (steel/scintillator) lambda_I ~ 20.7 cm.
        had_profile=LateralProfile(0.7, 0.15 * 0.207, 0.5 * 0.207, window=3),
        # ~1.6 m of steel (1.97 m radial depth, 82% steel) x dE/dx_min 11.4 MeV/cm [PDG] ~ 1.8 GeV; 7.4 lambda_I.
        mip=1.8, depth=7.4,
    ),
    hadrons=HadronShowers(e_over_h=1.33),  # tile calorimeter e/h ~ 1.3 ([ATLAS08] 5.3; approximate)
    # [DATLAS] (Delphes 3.4 SimpleCalorimeter, as 004 used): EnergyMin 0.5 (ECal) / 1.0 (HCal), significance 2,
    # with the HCal formula's 1.59 GeV noise term in the significance as Delphes has it.
    pflow=ParticleFlow(photon_min=0.5, neutral_hadron_min=1.0, significance_min=2.0, hcal_noise=1.59),
)

CARDS: Dict[str, DetectorCard] = {card.name: card for card in (CMS, ATLAS)}


def get_card(card) -> DetectorCard:
    """A card by name (``"cms"``, ``"atlas"``) or the card itself."""
    if isinstance(card, DetectorCard):
        return card
    try:
        return CARDS[card]
    except KeyError:
        raise ValueError(f"unknown detector card {card!r}; expected one of {sorted(CARDS)}") from None
