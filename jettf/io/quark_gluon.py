"""EnergyFlow quark/gluon jets: ``QG_jets.npz``, ``QG_jets_1.npz``, ..., ``QG_jets_19.npz``.

Layout (Komiske, Metodiev, Thaler, Zenodo record 3164691): a numpy ``.npz``
archive per file with

- ``X``: float64 ``[N, M, 4]`` constituents as (pt [GeV], rapidity y, phi, PDG id),
  zero-padded (M differs between files);
- ``y``: ``[N]`` labels, 1 for quark jets and 0 for gluon jets.

The second column is the rapidity y, not the pseudorapidity: with the PDG
mass m of each particle, ``mT = sqrt(pt^2 + m^2)``, ``E = mT cosh y`` and
``pz = mT sinh y``. Masses and charges come from EnergyFlow's particle table.
"""

from __future__ import annotations

import glob
import zipfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from energyflow.utils.particle_utils import PARTICLE_CHARGES, PARTICLE_MASSES

from jettf.io._common import (
    BadValues,
    FileFormatError,
    FileReader,
    JetChunks,
    PathLike,
    RawChunk,
    binary_flags,
    check_shape,
    check_values,
    file_errors,
    read_files,
    require_file,
)
from jettf.io.provenance import GENERATED_MARK, mark_text
from jettf.jets import JetBatch, delta_phi
from jettf.utils import atomic_path

__all__ = ["read_quark_gluon", "write_quark_gluon", "QUARK_GLUON_CLASSES"]

#: Labels: 0 = gluon, 1 = quark (the value of ``y``).
QUARK_GLUON_CLASSES = ("gluon", "quark")
FILE_PATTERN = "QG_jets*.npz"
_X_MEANING = "[N, M, 4] with columns (pt, y, phi, pid)"
_Y_MEANING = "[N] labels (1 quark, 0 gluon), N as in 'X'"

# EnergyFlow's PDG table as sorted arrays, for a vectorized lookup by |pid|.
_PDG_IDS = np.array(sorted(PARTICLE_MASSES), dtype=np.int64)
_PDG_MASSES = np.array([PARTICLE_MASSES[i] for i in _PDG_IDS])
_PDG_CHARGES = np.array([PARTICLE_CHARGES[i] for i in _PDG_IDS])


def _pdg_lookup(pid: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mass [GeV], charge [e], known) per PDG id; the charge takes the sign of the id."""
    abs_pid = np.abs(pid)
    index = np.minimum(np.searchsorted(_PDG_IDS, abs_pid), len(_PDG_IDS) - 1)
    known = _PDG_IDS[index] == abs_pid
    return _PDG_MASSES[index], np.sign(pid) * _PDG_CHARGES[index], known


def _read_npy_header(stream) -> Tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an ``.npy`` stream, leaving it at the first data byte."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    raise ValueError(f".npy format version {version} is not supported")


class _QuarkGluonFile(FileReader):
    constituent_field = "X (all-zero rows are padding)"
    rows_field = "'X'"

    def __init__(self, path: PathLike):
        self.path = require_file(path, f"a quark/gluon .npz file with 'X' {_X_MEANING} and 'y' {_Y_MEANING}")
        with file_errors(self.path, "the .npz archive"), zipfile.ZipFile(self.path) as archive:
            members = archive.namelist()
            for name in ("X", "y"):
                if f"{name}.npy" not in members:
                    found = [m.removesuffix(".npy") for m in members]
                    raise FileFormatError(f"{self.path}: array '{name}' missing; found {found}; "
                                          f"expected 'X' {_X_MEANING} and 'y' {_Y_MEANING}")
            headers = {}
            for name in ("X", "y"):
                with archive.open(f"{name}.npy") as stream:
                    headers[name] = _read_npy_header(stream)
        (x_shape, _, x_dtype), (y_shape, _, y_dtype) = headers["X"], headers["y"]
        check_shape(self.path, "X", x_shape, x_dtype, (None, None, 4), _X_MEANING)
        check_shape(self.path, "y", y_shape, y_dtype, (x_shape[0],), _Y_MEANING)
        self.n_rows, self.n_slots = x_shape[:2]

    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        with zipfile.ZipFile(self.path) as archive:
            with archive.open("y.npy") as stream:
                labels = np.lib.format.read_array(stream)
            with archive.open("X.npy") as stream:
                shape, fortran_order, dtype = _read_npy_header(stream)
                if fortran_order:  # rows are not contiguous: load the array whole
                    constituents = np.frombuffer(stream.read(), dtype=dtype).reshape(shape, order="F")
                    for start, stop in ranges:
                        yield {"X": constituents[start:stop], "y": labels[start:stop]}
                    return
                row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
                data_start = stream.tell()
                stream.seek(data_start + ranges[0][0] * row_bytes)  # forward: decompresses and discards
                for start, stop in ranges:  # consecutive ranges: stream the rows
                    data = stream.read((stop - start) * row_bytes)
                    if len(data) != (stop - start) * row_bytes:
                        raise FileFormatError(f"{self.path}: 'X' ends after {start + len(data) // row_bytes} of "
                                              f"{shape[0]} jets; the file is truncated")
                    if stop == shape[0] and stream.read(1):  # reading past the end lets zipfile check the CRC
                        raise FileFormatError(f"{self.path}: 'X' holds more data than its shape {shape} says")
                    constituents = np.frombuffer(data, dtype=dtype).reshape((stop - start,) + tuple(shape[1:]))
                    yield {"X": constituents, "y": labels[start:stop]}

    def unphysical(self, raw: RawChunk) -> List[BadValues]:
        """A constituent row of ``X`` is padding when all four values are zero; otherwise it needs pt > 0."""
        x = raw["X"]
        bad = ~(x[..., 0] > 0) & ((x[..., 0] != 0) | (x[..., 1] != 0) | (x[..., 2] != 0) | (x[..., 3] != 0))
        return [BadValues("X", bad, "negative or zero constituent pt in 'X'",
                          "pt > 0 GeV for constituents; padding rows are all zero", to_index=lambda j: (j[0], 0))]

    def describe(self, field: str, row: int, index: Tuple[int, ...]) -> str:
        if field == "X":
            return f"'X'[{row}, {index[0]}, {index[1]}] ({('pt', 'y', 'phi', 'pid')[index[1]]} of constituent {index[0]})"
        return f"'{field}'[{row}]"

    def to_batch(self, raw: RawChunk, rows: np.ndarray) -> JetBatch:
        x, y = raw["X"].astype(np.float64, copy=False), raw["y"]
        check_values(self.path, "y", (y == 0) | (y == 1), rows, "1 (quark) or 0 (gluon)")
        pt, rapidity, phi = x[..., 0], x[..., 1], x[..., 2]
        mask = pt > 0  # = not all zero: rows with pt <= 0 that are not padding were rejected or dropped
        pid = np.where(mask, np.rint(x[..., 3]), 0).astype(np.int64)
        mass, charge, known = _pdg_lookup(pid)
        check_values(self.path, "X[..., 3] (pid)", known.all(axis=1), rows,
                     f"PDG ids in EnergyFlow's particle table, not {np.unique(pid[~known])[:5].tolist()}")
        mt = np.hypot(pt, mass)
        return JetBatch.from_cartesian(
            mt * np.cosh(rapidity), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rapidity),
            mask=mask, labels=y.astype(np.int64), class_names=QUARK_GLUON_CLASSES, pid=pid, charge=charge,
        )


def _quark_gluon_files(path_or_paths: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The files to read: a file, a list of files (in order), or a directory or glob (sorted by name)."""
    if isinstance(path_or_paths, (list, tuple)):
        return [Path(p) for p in path_or_paths]
    path = Path(path_or_paths)
    if path.is_dir():
        files = sorted(path.glob(FILE_PATTERN))
        if not files:
            raise FileNotFoundError(f"{path}: no quark/gluon files; expected {FILE_PATTERN}")
        return files
    if glob.has_magic(str(path)):
        files = sorted(Path(p) for p in glob.glob(str(path)))
        if not files:
            raise FileNotFoundError(f"{path}: the pattern matches no files; expected quark/gluon .npz files")
        return files
    return [path]


def read_quark_gluon(
    path_or_paths: Union[PathLike, Sequence[PathLike]],
    *,
    start: int = 0,
    chunk_size: Optional[int] = None,
    max_jets: Optional[int] = None,
    skip_bad: bool = False,
) -> Union[JetBatch, JetChunks]:
    """Read EnergyFlow quark/gluon jets from one or more ``.npz`` files.

    Args:
        path_or_paths: a file, a list of files (read in that order), a directory
            (its ``QG_jets*.npz``) or a glob pattern; the last two in sorted name order.
        start: first row to read, counting across the files in order. Compressed rows
            before it are decompressed and discarded, not kept.
        chunk_size: if given, return an iterator of batches of at most this many jets;
            rows are streamed from the archive, so memory stays bounded by the chunk.
        max_jets: read at most this many jets in total (files in order), before bad
            jets are dropped.
        skip_bad: drop bad jets instead of raising: NaN/inf values, a constituent with
            pt <= 0 (rows that are all zero are padding), or no constituents; the drops
            are counted in a :class:`SkippedJetsWarning`. Without it the first bad jet
            raises a :class:`FileFormatError` naming the file, the row and the field.

    Returns:
        A JetBatch with labels 1 = quark, 0 = gluon (``class_names = ("gluon", "quark")``),
        ``pid`` and ``charge`` set, constituent energies from the PDG masses and jet
        kinematics from the summed four-momenta; or a :class:`JetChunks` iterator when
        ``chunk_size`` is given. Files of different widths M are padded to the widest.
    """
    readers = [_QuarkGluonFile(f) for f in _quark_gluon_files(path_or_paths)]
    return read_files(readers, class_names=QUARK_GLUON_CLASSES, start=start, chunk_size=chunk_size,
                      max_jets=max_jets, per_file=False, skip_bad=skip_bad)


def write_quark_gluon(batch: JetBatch, path: PathLike, *, generated: Optional[dict] = None) -> Path:
    """Write jets in the EnergyFlow quark/gluon layout (compressed ``.npz``); returns ``path``.

    Needs ``pid``. Constituents are sorted by pt and padded to the largest
    multiplicity; the rapidity is ``asinh(pz / mT)`` from each constituent's
    energy and pz (its pseudorapidity when massless); phi is kept within pi of the
    jet axis (not wrapped), as in the public files. ``y`` comes from the labels,
    matched by class name ("gluon", "quark"; a batch without class names is taken
    to use that order). ``generated``: generator settings stored as an extra
    0-d string array ``jettf_generated`` (see :mod:`jettf.io.provenance`). The
    archive's member times are fixed (1980-01-01), so the same jets give the
    same bytes.
    """
    path = Path(path)
    if batch.pid is None:
        raise ValueError(f"{path}: the batch has no 'pid'; expected PDG ids per constituent for column 3 of 'X'")
    flags = binary_flags(batch, QUARK_GLUON_CLASSES, path)
    jets = batch.sort_by_pt()
    jets = jets.pad_to(int(jets.n_constituents.max(initial=0)))
    energy, _, _, pz = np.moveaxis(jets.four_momenta(), -1, 0)
    mt = np.sqrt(np.clip(energy**2 - pz**2, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        rapidity = np.where(mt > 0, np.arcsinh(pz / mt), jets.eta)
    phi = jets.jet_phi[:, None] + delta_phi(jets.phi, jets.jet_phi[:, None])
    x = np.stack([jets.pt, rapidity, phi, jets.pid], axis=-1).astype(np.float64) * jets.mask[..., None]
    arrays = {"X": x, "y": flags.astype(np.float64)}
    if generated is not None:
        arrays[GENERATED_MARK] = np.array(mark_text(generated))
    with atomic_path(path) as tmp:
        _savez_reproducible(tmp, arrays)
    return path


def _savez_reproducible(path: Path, arrays) -> None:
    """``numpy.savez_compressed`` without the write time in each member: the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)
