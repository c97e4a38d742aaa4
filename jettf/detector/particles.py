"""Input of the detector: generator-level particles of many events as flat arrays.

Particles of all events sit in one set of flat arrays, sorted by event, with an
``event`` index per particle (no padding, no per-event Python objects), so every
detector step is one vectorized numpy pass. Units: GeV, radians.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

__all__ = [
    "Particles", "species", "charge_from_pid", "pythia_final_state", "PHOTON", "ELECTRON", "MUON", "HADRON",
    "INVISIBLE",
]

# How a particle interacts (see species()): electromagnetic shower, minimum ionizing, hadronic shower, nothing.
PHOTON, ELECTRON, MUON, HADRON, INVISIBLE = 0, 1, 2, 3, 4

# |PDG id| -> charge for the charged stable particles of Pythia's default decays (as
# jettf.images.channels.CHARGED_PIDS), with the sign for the particle (not the antiparticle).
_CHARGES = {11: -1.0, 13: -1.0, 211: 1.0, 321: 1.0, 2212: 1.0, 3112: -1.0, 3222: 1.0, 3312: -1.0, 3334: -1.0}
# Neutrinos and the lightest neutralino: they leave nothing.
_INVISIBLE = (12, 14, 16, 1000022, 1000012, 1000014, 1000016)


def species(pid) -> np.ndarray:
    """int8 species of PDG ids: PHOTON (22, and pi0 if undecayed), ELECTRON (11), MUON (13),
    INVISIBLE (neutrinos, neutralino), HADRON (everything else: mesons, baryons, ions)."""
    a = np.abs(np.asarray(pid))
    out = np.full(a.shape, HADRON, dtype=np.int8)
    out[(a == 22) | (a == 111)] = PHOTON
    out[a == 11] = ELECTRON
    out[a == 13] = MUON
    out[np.isin(a, _INVISIBLE)] = INVISIBLE
    return out


def charge_from_pid(pid) -> np.ndarray:
    """Charges (units of e) of PDG ids for the stable charged particles; 0 for others."""
    pid = np.asarray(pid)
    a = np.abs(pid)
    keys = np.array(sorted(_CHARGES))
    values = np.array([_CHARGES[k] for k in keys])
    pos = np.clip(np.searchsorted(keys, a), 0, len(keys) - 1)
    q = np.where(keys[pos] == a, values[pos], 0.0)
    return q * np.sign(pid)


@dataclasses.dataclass
class Particles:
    """Generator-level particles of ``n_events`` events, flat, sorted by ``event``.

    Attributes:
        pt, eta, phi, energy: float64 ``[P]`` (GeV, -, rad, GeV); particles come from the origin.
        pid: int32 ``[P]`` PDG ids. charge: float64 ``[P]`` (units of e).
        event: int64 ``[P]`` event index in ``[0, n_events)``, non-decreasing.
        pileup: bool ``[P]``, True for particles of overlaid minimum-bias events.
        n_events: number of events (events may have no particles).
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    event: np.ndarray
    n_events: int
    pileup: Optional[np.ndarray] = None

    def __post_init__(self):
        n = len(self.pt)
        for name in ("eta", "phi", "energy", "pid", "charge", "event"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Particles: '{name}' has {len(getattr(self, name))} entries, expected {n} like 'pt'")
        if self.pileup is None:
            self.pileup = np.zeros(n, dtype=bool)
        if n and (np.any(np.diff(self.event) < 0) or self.event[0] < 0 or self.event[-1] >= self.n_events):
            raise ValueError(f"Particles: 'event' must be non-decreasing in [0, {self.n_events})")

    def __len__(self) -> int:
        return len(self.pt)

    @classmethod
    def from_arrays(cls, pt, eta, phi, energy, pid, event, n_events, charge=None, pileup=None) -> "Particles":
        """From flat arrays (any order of events: they are sorted, stably); ``charge`` defaults to
        :func:`charge_from_pid`."""
        event = np.asarray(event, dtype=np.int64)
        order = np.argsort(event, kind="stable")
        pid = np.asarray(pid, dtype=np.int32)
        charge = charge_from_pid(pid) if charge is None else np.asarray(charge, dtype=np.float64)
        f64 = lambda a: np.asarray(a, dtype=np.float64)[order]  # noqa: E731
        return cls(
            f64(pt), f64(eta), f64(phi), f64(energy), pid[order], charge[order], event[order], int(n_events),
            None if pileup is None else np.asarray(pileup, dtype=bool)[order],
        )

    @classmethod
    def from_cartesian(cls, px, py, pz, energy, pid, event, n_events, charge=None) -> "Particles":
        """From (px, py, pz, E) in GeV; particles with pt = 0 (beam-collinear) get eta = +-20."""
        px, py, pz = (np.asarray(a, dtype=np.float64) for a in (px, py, pz))
        pt = np.hypot(px, py)
        eta = np.arcsinh(np.divide(pz, pt, out=np.sign(pz) * 4.85e8, where=pt > 0))
        return cls.from_arrays(pt, np.clip(eta, -20, 20), np.arctan2(py, px), energy, pid, event, n_events, charge)

    @classmethod
    def from_batch(cls, batch) -> "Particles":
        """The constituents of a JetBatch, one event per jet; needs ``batch.pid`` (generator-level jets)."""
        if batch.pid is None:
            raise ValueError(
                "Particles.from_batch: JetBatch.pid is None; the detector needs PDG ids (generator-level jets, "
                "e.g. from jettf.generate)"
            )
        mask = batch.mask
        event = np.nonzero(mask)[0]
        charge = None if batch.charge is None else batch.charge[mask]
        return cls.from_arrays(
            batch.pt[mask], batch.eta[mask], batch.phi[mask], batch.energy[mask], batch.pid[mask], event, len(batch),
            charge=charge,
        )

    @staticmethod
    def concatenate(a: "Particles", b: "Particles") -> "Particles":
        """Particles of both (same ``n_events``), merged per event: ``a``'s first, then ``b``'s."""
        if a.n_events != b.n_events:
            raise ValueError(f"Particles.concatenate: n_events differ ({a.n_events} vs {b.n_events})")
        cat = lambda name: np.concatenate([getattr(a, name), getattr(b, name)])  # noqa: E731
        order = np.argsort(cat("event"), kind="stable")
        fields = {f.name: cat(f.name)[order] for f in dataclasses.fields(Particles) if f.name != "n_events"}
        return Particles(n_events=a.n_events, **fields)

    def offsets(self) -> np.ndarray:
        """int64 ``[n_events + 1]``: particles of event i are ``[offsets[i], offsets[i + 1])``."""
        return np.searchsorted(self.event, np.arange(self.n_events + 1))


def pythia_final_state(events, first_event: int = 0):
    """Visible final-state particles of Pythia events as ``Pythia.nextBatch`` returns them (awkward,
    no Python loop over particles), flat: (px, py, pz, E, pid, event), events numbered from
    ``first_event``. Invisible: neutrinos and the lightest neutralino (:func:`species`)."""
    import awkward as ak

    prt = events["prt"]
    final = prt[prt.status > 0]
    counts = ak.to_numpy(ak.num(final))
    pid = ak.to_numpy(ak.flatten(final.id)).astype(np.int32)
    p = final.p
    px, py, pz, e = (ak.to_numpy(ak.flatten(getattr(p, f))).astype(np.float64) for f in ("px", "py", "pz", "e"))
    event = np.repeat(np.arange(first_event, first_event + len(counts)), counts)
    visible = species(pid) != INVISIBLE
    return px[visible], py[visible], pz[visible], e[visible], pid[visible], event[visible]
