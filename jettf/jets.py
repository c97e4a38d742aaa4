"""The one in-memory form of jets: :class:`JetBatch`.

A batch holds ``N`` jets with up to ``M`` constituents each as padded float32
arrays. Readers and the generator produce it; the renderer and the feature
code consume it. Units: GeV for momenta and energies, radians for phi
(wrapped to [-pi, pi)), pseudorapidity for eta. Every operation is vectorized
over the whole batch.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "JetBatch", "wrap_phi", "delta_phi", "TRACK", "ECAL", "HCAL", "GEN_EM", "GEN_HAD", "SUBDETECTORS",
    "generator_split",
]

TWO_PI = 2.0 * np.pi

# Values of JetBatch.subdetector: which detector object (or which generator-level split) a
# constituent is. Detector-level constituents come from jettf.detector: tracks, ECAL cells or
# photon candidates, HCAL towers or neutral-hadron candidates. Generator-level particles split as
# in 003 section 5 ("Generated EM+Had"): electrons and photons vs hadrons. 0: none of these
# (padding, muons, unknown).
TRACK, ECAL, HCAL, GEN_EM, GEN_HAD = 1, 2, 3, 4, 5
SUBDETECTORS = {"none": 0, "track": TRACK, "ecal": ECAL, "hcal": HCAL, "em": GEN_EM, "had": GEN_HAD}


def generator_split(pid):
    """int8 subdetector tags of generator-level particles from PDG ids (003's EM+Had split):
    ``GEN_EM`` for electrons and photons (|pid| 11, 22), ``GEN_HAD`` for hadrons (|pid| >= 100:
    mesons and baryons), 0 otherwise (muons, neutrinos, unknown id 0)."""
    a = np.abs(np.asarray(pid))
    return np.where((a == 11) | (a == 22), GEN_EM, np.where(a >= 100, GEN_HAD, 0)).astype(np.int8)


def wrap_phi(phi):
    """Wrap azimuthal angles to [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % TWO_PI - np.pi


def delta_phi(phi_a, phi_b):
    """Signed azimuthal difference ``phi_a - phi_b`` wrapped to [-pi, pi)."""
    return wrap_phi(np.asarray(phi_a) - np.asarray(phi_b))


def _four_momentum_sum(pt, eta, phi, energy, mask):
    """Sum constituent four-momenta per jet; returns (E, px, py, pz) each [N]."""
    w = mask.astype(np.float64)
    pt64 = pt.astype(np.float64) * w
    px = np.sum(pt64 * np.cos(phi), axis=1)
    py = np.sum(pt64 * np.sin(phi), axis=1)
    pz = np.sum(pt64 * np.sinh(eta), axis=1)
    e = np.sum(energy.astype(np.float64) * w, axis=1)
    return e, px, py, pz


def _kinematics_from_cartesian(e, px, py, pz):
    """(pt, eta, phi, mass) from Cartesian four-momenta; massless-safe."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(np.divide(pz, pt, where=pt > 0, out=np.zeros_like(pt))), 0.0)
    phi = np.where(pt > 0, np.arctan2(py, px), 0.0)
    m2 = e * e - px * px - py * py - pz * pz
    mass = np.sqrt(np.clip(m2, 0.0, None))
    return pt, eta, wrap_phi(phi), mass


@dataclasses.dataclass(frozen=True, eq=False)
class JetBatch:
    """A padded batch of jets and their constituents.

    Attributes:
        pt, eta, phi, energy: constituent kinematics, float32 ``[N, M]``
            (GeV, -, radians in [-pi, pi), GeV); zero where ``mask`` is False.
        mask: bool ``[N, M]``, True for real constituents.
        jet_pt, jet_eta, jet_phi, jet_mass: jet kinematics, float32 ``[N]``.
        pid: optional int32 ``[N, M]`` PDG ids (0 where unknown or padded).
        charge: optional float32 ``[N, M]`` electric charges in units of e.
        labels: optional int64 ``[N]`` class indices into ``class_names``.
        class_names: optional tuple of class names (e.g. ``("g", "q", "t", "w", "z")``).
        subdetector: optional int8 ``[N, M]``: :data:`TRACK`, :data:`ECAL`, :data:`HCAL` for
            detector-level constituents (:mod:`jettf.detector`), :data:`GEN_EM` / :data:`GEN_HAD`
            for the generator-level split (:func:`generator_split`), 0 for padding or none.
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray
    mask: np.ndarray
    jet_pt: np.ndarray
    jet_eta: np.ndarray
    jet_phi: np.ndarray
    jet_mass: np.ndarray
    pid: Optional[np.ndarray] = None
    charge: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    class_names: Optional[tuple] = None
    subdetector: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ checks
    def __post_init__(self):
        arrays = {name: getattr(self, name) for name in ("pt", "eta", "phi", "energy", "mask")}
        shape = arrays["pt"].shape
        if len(shape) != 2:
            raise ValueError(f"JetBatch: 'pt' must be 2-D [N, M], got shape {shape}")
        for name, value in arrays.items():
            if value.shape != shape:
                raise ValueError(f"JetBatch: '{name}' has shape {value.shape}, expected {shape} like 'pt'")
        for name in ("pid", "charge", "subdetector"):
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise ValueError(f"JetBatch: '{name}' has shape {value.shape}, expected {shape} like 'pt'")
        for name in ("jet_pt", "jet_eta", "jet_phi", "jet_mass"):
            value = getattr(self, name)
            if value.shape != (shape[0],):
                raise ValueError(f"JetBatch: '{name}' has shape {value.shape}, expected ({shape[0]},)")
        if self.labels is not None:
            if self.labels.shape != (shape[0],):
                raise ValueError(f"JetBatch: 'labels' has shape {self.labels.shape}, expected ({shape[0]},)")
            if self.class_names is not None and len(self.labels) and (
                self.labels.min() < 0 or self.labels.max() >= len(self.class_names)
            ):
                raise ValueError(
                    f"JetBatch: labels span [{self.labels.min()}, {self.labels.max()}] but there are "
                    f"{len(self.class_names)} class names {self.class_names}"
                )

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_ptetaphie(
        cls,
        pt,
        eta,
        phi,
        energy,
        mask=None,
        labels=None,
        class_names: Optional[Sequence[str]] = None,
        *,
        pid=None,
        charge=None,
        subdetector=None,
        jet_pt=None,
        jet_eta=None,
        jet_phi=None,
        jet_mass=None,
    ) -> "JetBatch":
        """Build from constituent (pt, eta, phi, energy) arrays ``[N, M]``.

        ``mask`` defaults to ``pt > 0`` (zero-padded input). Jet kinematics
        default to the sum of the constituent four-momenta; pass them to keep
        values stored with the data (e.g. JetNet's ``jet_features``).
        """
        pt = np.asarray(pt, dtype=np.float32)
        if pt.ndim != 2:
            raise ValueError(f"JetBatch.from_ptetaphie: 'pt' must be 2-D [N, M], got shape {pt.shape}")
        mask = (pt > 0) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != pt.shape:
            raise ValueError(f"JetBatch.from_ptetaphie: 'mask' has shape {mask.shape}, expected {pt.shape}")
        eta = np.where(mask, np.asarray(eta, dtype=np.float32), 0).astype(np.float32)
        phi = np.where(mask, wrap_phi(np.asarray(phi, dtype=np.float32)), 0).astype(np.float32)
        energy = np.where(mask, np.asarray(energy, dtype=np.float32), 0).astype(np.float32)
        pt = np.where(mask, pt, 0).astype(np.float32)
        given = (jet_pt, jet_eta, jet_phi, jet_mass)
        computed = (
            _kinematics_from_cartesian(*_four_momentum_sum(pt, eta, phi, energy, mask))
            if any(g is None for g in given)
            else given
        )
        jet = [
            np.asarray(g if g is not None else c, dtype=np.float32).reshape(len(pt))
            for g, c in zip(given, computed)
        ]
        jet[2] = wrap_phi(jet[2]).astype(np.float32)
        return cls(
            pt=pt,
            eta=eta,
            phi=phi,
            energy=energy,
            mask=mask,
            jet_pt=jet[0],
            jet_eta=jet[1],
            jet_phi=jet[2],
            jet_mass=jet[3],
            pid=None if pid is None else np.where(mask, np.asarray(pid), 0).astype(np.int32),
            charge=None if charge is None else np.where(mask, np.asarray(charge), 0).astype(np.float32),
            labels=None if labels is None else np.asarray(labels, dtype=np.int64).reshape(len(pt)),
            class_names=None if class_names is None else tuple(class_names),
            subdetector=(
                None if subdetector is None else np.where(mask, np.asarray(subdetector), 0).astype(np.int8)
            ),
        )

    @classmethod
    def from_cartesian(cls, E, px, py, pz, mask=None, labels=None, class_names=None, **kwargs) -> "JetBatch":
        """Build from constituent four-momenta (E, px, py, pz) ``[N, M]`` in GeV.

        ``mask`` defaults to ``E > 0``. Other keywords go to :meth:`from_ptetaphie`.
        """
        E, px, py, pz = (np.asarray(a, dtype=np.float64) for a in (E, px, py, pz))
        mask = (E > 0) if mask is None else np.asarray(mask, dtype=bool)
        pt, eta, phi, _ = _kinematics_from_cartesian(E, px, py, pz)
        if "jet_pt" not in kwargs:
            w = mask.astype(np.float64)
            jpt, jeta, jphi, jm = _kinematics_from_cartesian(
                *(np.sum(a * w, axis=1) for a in (E, px, py, pz))
            )
            kwargs.update(jet_pt=jpt, jet_eta=jeta, jet_phi=jphi, jet_mass=jm)
        return cls.from_ptetaphie(pt, eta, phi, E, mask=mask, labels=labels, class_names=class_names, **kwargs)

    @classmethod
    def from_relative(
        cls,
        etarel,
        phirel,
        ptrel,
        jet_pt,
        jet_eta,
        jet_phi=None,
        jet_mass=None,
        mask=None,
        labels=None,
        class_names=None,
        **kwargs,
    ) -> "JetBatch":
        """Build from relative coordinates (JetNet's form) plus jet kinematics.

        ``eta = etarel + jet_eta``, ``phi = phirel + jet_phi`` (jet_phi defaults
        to 0, as JetNet stores no jet phi), ``pt = ptrel * jet_pt``. Constituents
        are taken massless, so ``energy = pt cosh(eta)``. Stored jet kinematics
        are kept as given; a missing jet mass is computed from the constituents.
        """
        ptrel = np.asarray(ptrel, dtype=np.float64)
        n = len(ptrel)
        mask = (ptrel > 0) if mask is None else np.asarray(mask, dtype=bool)
        jet_pt = np.asarray(jet_pt, dtype=np.float64).reshape(n)
        jet_eta = np.asarray(jet_eta, dtype=np.float64).reshape(n)
        jet_phi = np.zeros(n) if jet_phi is None else np.asarray(jet_phi, dtype=np.float64).reshape(n)
        pt = ptrel * jet_pt[:, None]
        eta = np.asarray(etarel, dtype=np.float64) + jet_eta[:, None]
        phi = np.asarray(phirel, dtype=np.float64) + jet_phi[:, None]
        energy = pt * np.cosh(eta)
        return cls.from_ptetaphie(
            pt, eta, phi, energy, mask=mask, labels=labels, class_names=class_names,
            jet_pt=jet_pt, jet_eta=jet_eta, jet_phi=jet_phi, jet_mass=jet_mass, **kwargs,
        )

    # ------------------------------------------------------------- properties
    def __len__(self) -> int:
        return self.pt.shape[0]

    @property
    def max_constituents(self) -> int:
        """``M``, the padded number of constituent slots."""
        return self.pt.shape[1]

    @property
    def n_constituents(self) -> np.ndarray:
        """Number of real constituents per jet, int32 ``[N]``."""
        return self.mask.sum(axis=1).astype(np.int32)

    def four_momenta(self) -> np.ndarray:
        """Constituent four-momenta ``[N, M, 4]`` as (E, px, py, pz), float64, zero when padded."""
        pt = self.pt.astype(np.float64)
        return np.stack(
            [self.energy.astype(np.float64), pt * np.cos(self.phi), pt * np.sin(self.phi), pt * np.sinh(self.eta)],
            axis=-1,
        ) * self.mask[..., None]

    def relative(self):
        """Relative coordinates (etarel, phirel, ptrel), float32 ``[N, M]``, zero when padded.

        ``etarel = eta - jet_eta``; ``phirel`` is the wrapped difference to the
        jet axis; ``ptrel = pt / jet_pt``.
        """
        etarel = self.eta - self.jet_eta[:, None]
        phirel = delta_phi(self.phi, self.jet_phi[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            ptrel = np.where(self.jet_pt[:, None] > 0, self.pt / self.jet_pt[:, None], 0.0)
        return tuple(np.where(self.mask, a, 0).astype(np.float32) for a in (etarel, phirel, ptrel))

    # ------------------------------------------------------------- operations
    def _constituent_arrays(self):
        names = ["pt", "eta", "phi", "energy", "mask", "pid", "charge", "subdetector"]
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def _replace_constituents(self, take) -> "JetBatch":
        """Apply ``take(array) -> array`` to every per-constituent array."""
        return dataclasses.replace(self, **{n: take(a) for n, a in self._constituent_arrays().items()})

    def sort_by_pt(self) -> "JetBatch":
        """Constituents in descending pt order, padding last (stable)."""
        key = np.where(self.mask, -self.pt, np.inf)
        order = np.argsort(key, axis=1, kind="stable")
        return self._replace_constituents(lambda a: np.take_along_axis(a, order, axis=1))

    def pad_to(self, m: int) -> "JetBatch":
        """Truncate (keeping the first ``m`` slots) or zero-pad to ``m`` constituent slots.

        Sort by pt first to keep the ``m`` hardest constituents. Jet kinematics
        are unchanged: they describe the whole jet.
        """
        if m < 0:
            raise ValueError(f"JetBatch.pad_to: m must be >= 0, got {m}")
        current = self.max_constituents
        if m <= current:
            return self._replace_constituents(lambda a: a[:, :m])
        return self._replace_constituents(lambda a: np.pad(a, ((0, 0), (0, m - current))))

    def select(self, index) -> "JetBatch":
        """A new batch with the jets picked by an integer index array, slice or boolean mask."""
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"JetBatch.select: boolean index has shape {index.shape}, expected ({len(self)},)")
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = index.astype(np.intp)  # np.asarray([]) is float64, which numpy refuses as an index
        per_jet = {
            f.name: getattr(self, f.name)[index]
            for f in dataclasses.fields(self)
            if f.name != "class_names" and getattr(self, f.name) is not None
        }
        return dataclasses.replace(self, **per_jet)

    def __getitem__(self, index) -> "JetBatch":
        if isinstance(index, (int, np.integer)):
            index = [index]
        return self.select(index)

    def with_generator_split(self) -> "JetBatch":
        """The same jets with ``subdetector`` set to the generator-level EM/hadron split of ``pid``
        (:func:`generator_split`; 003's "Generated EM+Had" channels ``em`` and ``had``)."""
        if self.pid is None:
            raise ValueError("JetBatch.with_generator_split: 'pid' is None; expected PDG ids (generator-level jets)")
        return dataclasses.replace(self, subdetector=np.where(self.mask, generator_split(self.pid), 0).astype(np.int8))

    def with_labels(self, labels, class_names: Sequence[str]) -> "JetBatch":
        """The same jets with new labels (a scalar label is broadcast to every jet)."""
        labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), (len(self),)).copy()
        return dataclasses.replace(self, labels=labels, class_names=tuple(class_names))

    @staticmethod
    def concatenate(batches: Iterable["JetBatch"]) -> "JetBatch":
        """Join batches along the jet axis, padding constituents to the widest batch.

        Optional fields (pid, charge, subdetector, labels) must be present in all or none;
        class names must agree.
        """
        batches = list(batches)
        if not batches:
            raise ValueError("JetBatch.concatenate: no batches given")
        width = max(b.max_constituents for b in batches)
        batches = [b.pad_to(width) for b in batches]
        names = {b.class_names for b in batches}
        if len(names) > 1:
            raise ValueError(f"JetBatch.concatenate: class names differ between batches: {sorted(map(str, names))}")
        fields = {}
        for f in dataclasses.fields(JetBatch):
            if f.name == "class_names":
                continue
            values = [getattr(b, f.name) for b in batches]
            present = [v is not None for v in values]
            if all(present):
                fields[f.name] = np.concatenate(values, axis=0)
            elif any(present):
                raise ValueError(f"JetBatch.concatenate: '{f.name}' is set in some batches but not in others")
            else:
                fields[f.name] = None
        return JetBatch(class_names=batches[0].class_names, **fields)

    def __repr__(self) -> str:
        classes = f", classes={list(self.class_names)}" if self.class_names else ""
        return f"JetBatch(n_jets={len(self)}, max_constituents={self.max_constituents}{classes})"
