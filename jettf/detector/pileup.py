"""Pile-up: Poisson(<mu>) minimum-bias events overlaid from a reusable Pythia SoftQCD library.

Generating 20-50 minimum-bias events per hard event with Pythia would cost far
more than the hard event itself. Instead a library of minimum-bias events is
generated once (``SoftQCD:inelastic``, the card's beam energy), cached on disk,
and each hard event gets Poisson(<mu>) of them, each drawn at random, turned by
a random azimuth and reflected in eta with probability 1/2, so a library of a few
thousand events gives many distinct overlays. With a region, only the particles
inside it are gathered (one ``searchsorted`` per overlaid event on the library,
which is sorted by eta within each event). Vertices are all at the origin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from jettf.utils import atomic_path

from .particles import Particles, charge_from_pid, pythia_final_state

__all__ = ["MinBiasLibrary", "PileUp", "default_cache_dir"]

_SOFT_QCD = ("SoftQCD:inelastic = on", "Tune:pp = 14")


def default_cache_dir() -> Path:
    """``$JETTF_CACHE/minbias`` or ``~/.cache/jettf/minbias``."""
    root = os.environ.get("JETTF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jettf")
    return Path(root) / "minbias"


@dataclasses.dataclass
class MinBiasLibrary:
    """Visible final-state particles of ``n_events`` minimum-bias events, flat and sorted by
    (event, eta); event ``i`` is ``[offsets[i], offsets[i + 1])``. Units: GeV, rad."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    pid: np.ndarray
    offsets: np.ndarray
    ecm: float
    seed: int

    def __post_init__(self):
        # Sort key for the eta windows: event index * 100 + eta + 50 (|eta| <= 20).
        self._key = np.repeat(np.arange(self.n_events), np.diff(self.offsets)) * 100.0 + self.eta + 50.0

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def generate(cls, n_events: int, ecm: float, seed: int, settings: Sequence[str] = ()) -> "MinBiasLibrary":
        """Generate with Pythia (``SoftQCD:inelastic``, Monash tune, ``ecm`` GeV), in batches of events."""
        import pythia8mc

        pythia = pythia8mc.Pythia("", False)
        lines = (f"Beams:eCM = {ecm}",) + _SOFT_QCD + tuple(settings)
        quiet = ("Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on", f"Random:seed = {seed}")
        for line in lines + quiet:
            if not pythia.readString(line):
                raise ValueError(f"MinBiasLibrary.generate: Pythia rejected the setting {line!r}")
        if not pythia.init():
            raise RuntimeError(f"MinBiasLibrary.generate: Pythia failed to initialise with {list(lines)}")
        chunks, done = [], 0
        while done < n_events:
            events = pythia.nextBatch(min(500, n_events - done))
            if len(events) == 0:
                raise RuntimeError(f"MinBiasLibrary.generate: Pythia failed every event of a batch with {list(lines)}")
            chunks.append(pythia_final_state(events, done))
            done += len(events)
        del pythia, pythia8mc
        px, py, pz, e, pid, event = (np.concatenate(a) for a in zip(*chunks))
        pt = np.hypot(px, py)
        eta = np.clip(np.arcsinh(np.divide(pz, pt, out=np.sign(pz) * 4.85e8, where=pt > 0)), -20, 20)
        order = np.lexsort((eta, event))
        offsets = np.searchsorted(event[order], np.arange(n_events + 1))
        return cls(pt[order], eta[order], np.arctan2(py, px)[order], e[order], pid[order], offsets, float(ecm), seed)

    @classmethod
    def cached(cls, n_events: int = 2000, ecm: float = 13000.0, seed: int = 1,
               cache_dir: Optional[os.PathLike] = None) -> "MinBiasLibrary":
        """The library from ``cache_dir`` (default :func:`default_cache_dir`), generated and saved
        atomically the first time. The file name holds every choice, the Pythia version included."""
        import importlib.metadata

        version = importlib.metadata.version("pythia8mc")
        tag = hashlib.sha256(repr((_SOFT_QCD, version)).encode()).hexdigest()[:8]
        path = Path(cache_dir or default_cache_dir()) / f"minbias_{ecm:g}GeV_n{n_events}_seed{seed}_{tag}.npz"
        if path.exists():
            return cls.load(path)
        library = cls.generate(n_events, ecm, seed)
        library.save(path)
        return library

    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)})

    @classmethod
    def load(cls, path) -> "MinBiasLibrary":
        with np.load(path) as data:
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in data.files]
            if missing:
                raise ValueError(f"{path}: minimum-bias library without field(s) {missing}")
            values = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        return cls(**{**values, "ecm": float(values["ecm"]), "seed": int(values["seed"])})

    def overlay(self, mu: float, n_events: int, rng, region=None) -> Particles:
        """Particles of Poisson(``mu``) library events per event, as :class:`Particles` with ``pileup`` set.

        ``region``: a :class:`jettf.detector.calorimeter.Region`; only particles inside it (eta
        window, then phi window after the random turn) are kept. None: whole events.
        """
        counts = rng.poisson(mu, n_events)
        owner = np.repeat(np.arange(n_events), counts)
        k = len(owner)
        pick = rng.integers(0, self.n_events, k)
        flip = rng.random(k) < 0.5
        turn = rng.uniform(-np.pi, np.pi, k)
        starts, stops = self.offsets[pick], self.offsets[pick + 1]
        if region is not None:
            center = np.broadcast_to(np.asarray(region.eta_center, dtype=np.float64), (n_events,))[owner]
            lo, hi = center - region.half_eta, center + region.half_eta
            lo, hi = np.where(flip, -hi, lo), np.where(flip, -lo, hi)  # the window in the library's frame
            starts = np.searchsorted(self._key, pick * 100.0 + lo + 50.0)
            stops = np.maximum(np.searchsorted(self._key, pick * 100.0 + hi + 50.0, side="right"), starts)
        lengths = stops - starts
        index = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
        event = np.repeat(owner, lengths)
        eta = np.where(np.repeat(flip, lengths), -self.eta[index], self.eta[index])
        phi = (self.phi[index] + np.repeat(turn, lengths) + np.pi) % (2 * np.pi) - np.pi
        keep = np.ones(len(index), dtype=bool)
        if region is not None:
            phi_center = np.broadcast_to(np.asarray(region.phi_center, dtype=np.float64), (n_events,))[event]
            keep = np.abs((phi - phi_center + np.pi) % (2 * np.pi) - np.pi) <= region.half_phi
        pid = self.pid[index][keep]
        return Particles(
            self.pt[index][keep], eta[keep], phi[keep], self.energy[index][keep], pid, charge_from_pid(pid),
            event[keep], n_events, np.ones(int(keep.sum()), dtype=bool),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class PileUp:
    """Pile-up to overlay: Poisson(``mu``) events from ``library`` per hard event."""

    library: MinBiasLibrary
    mu: float
