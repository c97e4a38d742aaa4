"""Image channels: what a pixel holds, each defined once with the paper it comes from.

A channel is a function of per-pixel sums of per-constituent *quantities*
(pt, energy, px, ...). Both renderers (numpy and TensorFlow) sum the quantities
a spec needs per pixel and then call the channel's ``value`` on the sums, so a
definition lives here and nowhere else. ``ops`` is the renderer's array
namespace (see :mod:`jettf.images.preprocess`).

Detector-level channels (``tracks``, ``ecal``, ``hcal``; 003 section 3) sum the
constituents that :mod:`jettf.detector` tagged with that subdetector
(``JetBatch.subdetector``); ``em`` and ``had`` are 003's generator-level
"EM+Had" split (electrons and photons vs hadrons), from the tags or, when
there are none, from the PDG ids.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Tuple

import numpy as np

from jettf.jets import ECAL, GEN_EM, GEN_HAD, HCAL, TRACK, generator_split

__all__ = [
    "Channel",
    "CHANNELS",
    "QUANTITIES",
    "CHARGED_PIDS",
    "constituent_charge",
    "constituent_subdetector",
    "needs_charge",
    "needs_subdetector",
    "additive",
    "quantities_for",
    "pixel_values",
]

# Per-constituent quantities summed per pixel. ``c`` is a preprocess.Constituents
# whose ``charged`` is 1.0 for charged constituents and 0.0 otherwise.
QUANTITIES = {
    "pt": lambda c, ops: c.pt,
    "energy": lambda c, ops: c.energy,
    "px": lambda c, ops: c.pt * ops.cos(c.phi),
    "py": lambda c, ops: c.pt * ops.sin(c.phi),
    "pz": lambda c, ops: c.pt * ops.sinh(c.eta),
    "charged_pt": lambda c, ops: c.pt * c.charged,
    "neutral_pt": lambda c, ops: c.pt * (1.0 - c.charged),
    "charged": lambda c, ops: c.charged,
    # Subdetector tags (JetBatch.subdetector, as float64 in c.subdetector); see jettf.jets.
    "track_pt": lambda c, ops: ops.where(c.subdetector == TRACK, c.pt, 0.0),
    "ecal_energy": lambda c, ops: ops.where(c.subdetector == ECAL, c.energy, 0.0),
    "hcal_energy": lambda c, ops: ops.where(c.subdetector == HCAL, c.energy, 0.0),
    "ecal_pt": lambda c, ops: ops.where(c.subdetector == ECAL, c.pt, 0.0),
    "hcal_pt": lambda c, ops: ops.where(c.subdetector == HCAL, c.pt, 0.0),
    "calo_pt": lambda c, ops: ops.where((c.subdetector == ECAL) | (c.subdetector == HCAL), c.pt, 0.0),
    "em_pt": lambda c, ops: ops.where(c.subdetector == GEN_EM, c.pt, 0.0),
    "had_pt": lambda c, ops: ops.where(c.subdetector == GEN_HAD, c.pt, 0.0),
}


def _mass(s, ops):
    m2 = s["energy"] * s["energy"] - s["px"] * s["px"] - s["py"] * s["py"] - s["pz"] * s["pz"]
    return ops.sqrt(ops.maximum(m2, 0.0))


@dataclasses.dataclass(frozen=True)
class Channel:
    """One image channel.

    Attributes:
        inputs: names in :data:`QUANTITIES` summed per pixel.
        value: ``value(sums, ops)``: the pixel value from the per-pixel sums (default: the one sum).
        unit: unit of the pixel value.
        reference: where the definition comes from.
        needs_charge: the channel separates charged from neutral constituents.
        needs_subdetector: the channel reads ``JetBatch.subdetector``: ``"detector"`` (tracks,
            ECAL, HCAL tags from jettf.detector) or ``"generator"`` (the EM/hadron split, which
            can also come from PDG ids).
    """

    inputs: Tuple[str, ...]
    unit: str
    reference: str
    value: Callable = None
    needs_charge: bool = False
    needs_subdetector: str = None

    def pixel_value(self, sums, ops):
        return self.value(sums, ops) if self.value is not None else sums[self.inputs[0]]


_E2E = "003 (Andrews et al., CMS end-to-end quark/gluon jet images) section 3"
_CALO = "004 (Collado thesis, calorimeter images of electrons and muons) sections 3.3, 4.3"
_COLOR = "Komiske, Metodiev, Schwartz, 'Deep learning in color', JHEP 01 (2017) 110; review 001 section 5.3"

CHANNELS = {
    # Sum of constituent pt per pixel: 000 section 2 (as pT_rel), 001 section 3.
    "pt": Channel(("pt",), "GeV", "000 section 2; 001 section 3"),
    # 002 section 2.2: per-pixel invariant mass of the summed four-momenta, and the energy sum.
    "mass": Channel(("energy", "px", "py", "pz"), "GeV", "002 section 2.2", value=_mass),
    "energy": Channel(("energy",), "GeV", "002 section 2.2"),
    "charged_pt": Channel(("charged_pt",), "GeV", _COLOR, needs_charge=True),
    "neutral_pt": Channel(("neutral_pt",), "GeV", _COLOR, needs_charge=True),
    "charged_multiplicity": Channel(("charged",), "count", _COLOR, needs_charge=True),
    # 003 section 3: track pT at the track's (vertex) direction, ECAL and HCAL energy per pixel.
    "tracks": Channel(("track_pt",), "GeV", _E2E, needs_subdetector="detector"),
    "ecal": Channel(("ecal_energy",), "GeV", _E2E, needs_subdetector="detector"),
    "hcal": Channel(("hcal_energy",), "GeV", _E2E, needs_subdetector="detector"),
    # 004 (Collado thesis) sections 3.3 and 4.3: transverse energy E_T = E / cosh(eta) of ECAL cells, HCAL towers,
    # and of both (the muon-isolation image).
    "ecal_et": Channel(("ecal_pt",), "GeV", _CALO, needs_subdetector="detector"),
    "hcal_et": Channel(("hcal_pt",), "GeV", _CALO, needs_subdetector="detector"),
    "calo_et": Channel(("calo_pt",), "GeV", _CALO, needs_subdetector="detector"),
    # 003 section 3, "Generated EM+Had": pT of electrons and photons / of hadrons per pixel.
    "em": Channel(("em_pt",), "GeV", _E2E + ', "Generated EM+Had"', needs_subdetector="generator"),
    "had": Channel(("had_pt",), "GeV", _E2E + ', "Generated EM+Had"', needs_subdetector="generator"),
}

# |PDG id| of the electrically charged particles that reach the detector in
# Pythia's default decay setup (e, mu, pi, K, p, Sigma-, Sigma+, Xi-, Omega-).
# Other ids, 0 included, count as neutral; as in energyflow's pid2abschg_mapping.
CHARGED_PIDS = np.array([11, 13, 211, 321, 2212, 3112, 3222, 3312, 3334])


def quantities_for(channels) -> Tuple[str, ...]:
    """The quantities (each once, in a fixed order) that the channels need."""
    needed = {q for name in channels for q in CHANNELS[name].inputs}
    return tuple(q for q in QUANTITIES if q in needed)


def needs_charge(channels) -> bool:
    return any(CHANNELS[name].needs_charge for name in channels)


def needs_subdetector(channels) -> bool:
    return any(CHANNELS[name].needs_subdetector for name in channels)


def additive(channels) -> bool:
    """Every channel's pixel value is the plain per-pixel sum of one quantity (no ``value`` function), so
    per-constituent entries may be stored and added later. ``mass`` (sqrt(E^2 - p^2) of the summed
    four-momentum) is not: the mass of a sum is not the sum of masses."""
    return all(CHANNELS[name].value is None for name in channels)


def constituent_subdetector(batch, channels):
    """Subdetector tags ``[N, M]`` for the channels: ``batch.subdetector``, else (channels ``em`` /
    ``had`` only) the generator-level split of ``batch.pid``, else ``ValueError``."""
    if batch.subdetector is not None:
        return batch.subdetector
    detector = [n for n in channels if CHANNELS[n].needs_subdetector == "detector"]
    if not detector and batch.pid is not None:
        return generator_split(batch.pid)
    names = detector or [n for n in channels if CHANNELS[n].needs_subdetector]
    raise ValueError(
        f"render: channels {names} need JetBatch.subdetector (tracks/ecal/hcal: detector-level jets from "
        "jettf.detector; em/had: also PDG ids); JetBatch.subdetector"
        + (" is None" if detector else " and JetBatch.pid are both None")
    )


def constituent_charge(batch):
    """Constituent charges ``[N, M]`` in units of e: ``batch.charge``, else from ``batch.pid`` via
    :data:`CHARGED_PIDS` (magnitude 1 for charged), else ``ValueError``."""
    if batch.charge is not None:
        return batch.charge
    if batch.pid is not None:
        return np.isin(np.abs(batch.pid), CHARGED_PIDS).astype(np.float32)
    raise ValueError(
        "render: channels charged_pt / neutral_pt / charged_multiplicity need constituent charges; "
        "JetBatch.charge and JetBatch.pid are both None"
    )


def pixel_values(ops, spec, sums):
    """Channel values ``[N, K, C]`` from per-pixel sums ``{quantity: [N, K]}``, L1-normalized if the spec says so.

    Empty (padding) entries must hold zero sums; they stay zero.
    """
    values = ops.stack([CHANNELS[name].pixel_value(sums, ops) for name in spec.channels], axis=-1)
    if spec.normalize == "l1":
        total = ops.sum(values, axis=1, keepdims=True)
        values = values / ops.where(total > 0, total, 1.0)
    return values
