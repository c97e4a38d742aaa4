"""JetNet: ``{g,q,t,w,z}.hdf5`` (30 particles) and ``{g,q,t,w,z}150.hdf5`` (150 particles).

Layout (Kansal et al., Zenodo records 6975118 and 6975117), one file per class:

- ``particle_features``: float32 ``[N, 30 or 150, 4]`` = (etarel, phirel, ptrel, mask),
  the hardest constituents first, zero-padded; etarel = eta - jet_eta,
  phirel = phi - jet_phi wrapped to [-pi, pi), ptrel = pt / jet_pt.
- ``jet_features``: float32 ``[N, 4]`` = (pt [GeV], eta, mass [GeV], num_particles).

JetNet stores no jet phi, so jets are read with ``jet_phi = 0`` and massless
constituents (``energy = pt cosh(eta)``); stored jet pt, eta and mass are kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from jettf.io._common import (
    BadValues,
    FileFormatError,
    FileReader,
    JetChunks,
    PathLike,
    RawChunk,
    check_shape,
    check_values,
    file_errors,
    read_files,
    require_file,
)
from jettf.io.provenance import GENERATED_MARK, mark_text
from jettf.jets import JetBatch
from jettf.utils import atomic_path

__all__ = ["read_jetnet", "write_jetnet", "jetnet_filename", "JETNET_CLASSES"]

#: The five JetNet classes in label order: gluon, light quark, top, W, Z jets.
JETNET_CLASSES = ("g", "q", "t", "w", "z")
PARTICLE_FEATURES = ("etarel", "phirel", "ptrel", "mask")
JET_FEATURES = ("pt", "eta", "mass", "num_particles")
_PARTICLES_MEANING = f"[N, M, 4] with features ({', '.join(PARTICLE_FEATURES)})"
_JETS_MEANING = f"[N, 4] with features ({', '.join(JET_FEATURES)}), N as in 'particle_features'"


def jetnet_filename(class_name: str, n_particles: int = 30) -> str:
    """The public file name of a class: ``t.hdf5`` for 30 particles, ``t150.hdf5`` for 150."""
    return f"{class_name}.hdf5" if n_particles == 30 else f"{class_name}{n_particles}.hdf5"


class _JetNetFile(FileReader):
    constituent_field = "particle_features[..., 3] (mask)"
    rows_field = "'particle_features'"

    def __init__(self, path: PathLike, label: int, class_names: Tuple[str, ...], n_particles: Optional[int]):
        self.path = require_file(path, "a JetNet HDF5 file with datasets 'particle_features' and 'jet_features'")
        self.label, self.class_names = label, class_names
        with file_errors(self.path, "the HDF5 file"), h5py.File(self.path, "r") as f:
            for name in ("particle_features", "jet_features"):
                if name not in f:
                    raise FileFormatError(f"{self.path}: dataset '{name}' missing; found {sorted(f.keys())}; "
                                          f"expected 'particle_features' {_PARTICLES_MEANING} and 'jet_features' "
                                          f"{_JETS_MEANING}")
            particles, jets = f["particle_features"], f["jet_features"]
            check_shape(self.path, "particle_features", particles.shape, particles.dtype, (None, n_particles, 4),
                        _PARTICLES_MEANING)
            check_shape(self.path, "jet_features", jets.shape, jets.dtype, (particles.shape[0], 4), _JETS_MEANING)
            self.n_rows, self.n_slots = particles.shape[:2]

    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        with h5py.File(self.path, "r") as f:
            particles, jets = f["particle_features"], f["jet_features"]
            for start, stop in ranges:
                yield {"particle_features": particles[start:stop], "jet_features": jets[start:stop]}

    def unphysical(self, raw: RawChunk) -> List[BadValues]:
        """ptrel > 0 for every particle (mask 1) and jet pt > 0."""
        particles, jets = raw["particle_features"], raw["jet_features"]
        return [
            BadValues("particle_features", (particles[..., 3] != 0) & ~(particles[..., 2] > 0),
                      "negative or zero ptrel of a particle in 'particle_features'",
                      "ptrel > 0 for particles with mask 1 (padding is all zero)", to_index=lambda j: (j[0], 2)),
            BadValues("jet_features", ~(jets[:, 0] > 0), "negative or zero jet pt in 'jet_features'",
                      "jet pt > 0 GeV", to_index=lambda _: (0,)),
        ]

    def describe(self, field: str, row: int, index: Tuple[int, ...]) -> str:
        if field == "particle_features":
            return f"'particle_features'[{row}, {index[0]}, {index[1]}] ({PARTICLE_FEATURES[index[1]]} of particle " \
                   f"{index[0]})"
        return f"'jet_features'[{row}, {index[0]}] ({JET_FEATURES[index[0]]})"

    def to_batch(self, raw: RawChunk, rows: np.ndarray) -> JetBatch:
        particles, jets = raw["particle_features"], raw["jet_features"]
        mask = particles[..., 3]
        check_values(self.path, self.constituent_field, ((mask == 0) | (mask == 1)).all(axis=1), rows, "0 or 1")
        return JetBatch.from_relative(
            etarel=particles[..., 0],
            phirel=particles[..., 1],
            ptrel=particles[..., 2],
            jet_pt=jets[:, 0],
            jet_eta=jets[:, 1],
            jet_mass=jets[:, 2],
            mask=mask == 1,
            labels=np.full(len(particles), self.label),
            class_names=self.class_names,
        )


def read_jetnet(
    path_or_dir: PathLike,
    classes: Optional[Sequence[str]] = None,
    *,
    n_particles: Optional[int] = None,
    start: int = 0,
    chunk_size: Optional[int] = None,
    max_jets: Optional[int] = None,
    skip_bad: bool = False,
) -> Union[JetBatch, JetChunks]:
    """Read JetNet jets from a directory of class files or from one file.

    Args:
        path_or_dir: a directory holding ``g.hdf5 ... z.hdf5`` (or ``g150.hdf5 ...``),
            or one file, which is one class named from the file (``t150.hdf5`` -> ``"t"``).
        classes: directory only: the class (or classes) to read, in label order.
            Default: each of g, q, t, w, z whose file is present.
        n_particles: constituent slots per jet, 30 or 150. For a directory it picks
            the file set (default 30); for a file it is checked if given.
        start: first row to read in each class file.
        chunk_size: if given, return an iterator of batches of at most this many jets.
        max_jets: read at most this many jets *per class* (JetNet studies use equal
            class sizes, e.g. 170,000 each), before bad jets are dropped.
        skip_bad: drop bad jets instead of raising: NaN/inf values, a particle (mask 1)
            with ptrel <= 0, jet pt <= 0, or no constituents; the drops are counted in a
            :class:`SkippedJetsWarning`. Without it the first bad jet raises a
            :class:`FileFormatError` naming the file, the row and the field.

    Returns:
        A JetBatch with ``labels`` indexing ``class_names`` (classes in file order),
        or a :class:`JetChunks` iterator when ``chunk_size`` is given.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        n_particles = 30 if n_particles is None else n_particles
        class_names = _classes_in(path, classes, n_particles)
        files = [path / jetnet_filename(name, n_particles) for name in class_names]
    else:
        if classes is not None:
            raise ValueError(f"{path}: 'classes' selects files in a directory; a single file is one class")
        class_names = (re.sub(r"\d+$", "", path.stem) or path.stem,)
        files = [path]
    readers = [_JetNetFile(f, label, class_names, n_particles) for label, f in enumerate(files)]
    return read_files(readers, class_names=class_names, start=start, chunk_size=chunk_size, max_jets=max_jets,
                      per_file=True, skip_bad=skip_bad)


def _classes_in(directory: Path, classes: Optional[Sequence[str]], n_particles: int) -> Tuple[str, ...]:
    """The classes to read from a directory; every requested class file must exist."""
    if classes is None:
        found = tuple(c for c in JETNET_CLASSES if (directory / jetnet_filename(c, n_particles)).is_file())
        if not found:
            expected = ", ".join(jetnet_filename(c, n_particles) for c in JETNET_CLASSES)
            raise FileNotFoundError(f"{directory}: no JetNet files; expected some of {expected}")
        return found
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    for name in classes:
        require_file(directory / jetnet_filename(name, n_particles), f"the JetNet file of class '{name}'")
    return classes


def write_jetnet(batch: JetBatch, out_dir_or_file: PathLike, n_particles: int = 30, *,
                 generated: Optional[dict] = None) -> List[Path]:
    """Write jets in the JetNet layout; returns the files written.

    A path ending in ``.hdf5``/``.h5`` gets every jet (the batch must hold one
    class); any other path is a directory that gets one file per class present,
    named :func:`jetnet_filename`. Constituents are sorted by pt and the
    ``n_particles`` hardest kept; relative coordinates use the batch's jet axis
    and jet pt, and ``num_particles`` counts the kept constituents.

    ``generated``: generator settings stored in each file (root attribute
    ``jettf_generated``, see :mod:`jettf.io.provenance`), so a generated file is
    recognised wherever it is copied. Files carry no timestamps: the same jets
    give the same bytes.
    """
    out = Path(out_dir_or_file)
    if out.suffix in (".hdf5", ".h5"):
        classes = set() if batch.labels is None else set(np.unique(batch.labels).tolist())
        if len(classes) > 1:
            raise ValueError(f"{out}: the batch holds {len(classes)} classes but a JetNet file holds one; "
                             "pass a directory to write one file per class")
        targets = [(out, batch)]
    else:
        if batch.labels is None or batch.class_names is None:
            raise ValueError(f"{out}: writing a JetNet directory needs labels and class_names, one file per class")
        targets = [
            (out / jetnet_filename(name, n_particles), batch.select(batch.labels == label))
            for label, name in enumerate(batch.class_names)
            if np.any(batch.labels == label)
        ]
    for path, jets in targets:
        _write_file(jets, path, n_particles, generated)
    return [path for path, _ in targets]


def _write_file(batch: JetBatch, path: Path, n_particles: int, generated: Optional[dict]) -> None:
    jets = batch.sort_by_pt().pad_to(n_particles)
    etarel, phirel, ptrel = jets.relative()
    particles = np.stack([etarel, phirel, ptrel, jets.mask.astype(np.float32)], axis=-1)
    features = np.stack([jets.jet_pt, jets.jet_eta, jets.jet_mass, jets.n_constituents.astype(np.float32)], axis=-1)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("particle_features", data=particles.astype(np.float32), track_times=False)
        f.create_dataset("jet_features", data=features.astype(np.float32), track_times=False)
        if generated is not None:
            f.attrs[GENERATED_MARK] = mark_text(generated)
