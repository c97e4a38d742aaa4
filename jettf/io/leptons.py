"""004's lepton-candidate files: ``electrons.h5`` (004 chapter 3) and ``muons.h5`` (004 chapter 4).

No public files exist for these studies (``../shared/docs/DATASETS.md``); this module defines the layout
``python -m jettf.generate electrons|muons`` writes, and reads it back, streamed and checked. One HDF5
file per study, one row per candidate, both classes shuffled together:

``electrons.h5``
    ``ecal_et``, ``ecal_e``: float32 ``[N, 31, 31]`` ECAL cells (GeV; E_T = E / cosh eta), centred on the hottest
    cell, axis 1 = eta; ``hcal_et``, ``hcal_e``: float32 ``[N, 8, 8]`` HCAL towers over the same region;
    ``hcal_offset``: float32 ``[N, 2]`` (delta eta, delta phi) of the HCAL image centre from the ECAL image
    centre (rad); ``y``: int8 ``[N]`` (1 electron, 0 jet); ``pt``, ``eta``: float32 ``[N]`` candidate track pt
    (GeV) and eta; ``weight``: float32 ``[N]`` (background reweighted to the signal pt).
``muons.h5``
    ``image_et``: float32 ``[N, 32, 32]`` E_T (GeV) within delta-R < 0.45 of the muon; ``cells``: float32
    ``[N, M, 5]`` the ECAL cells and HCAL towers within that cone, hardest first, zero-padded: (E_T, delta eta,
    delta phi from the muon, E, 0 ECAL / 1 HCAL) (GeV, rad; :func:`jettf.calo.images.cone_cells`); ``y``: int8
    ``[N]`` (1 prompt, 0 non-prompt); ``pt``, ``eta``: float32 ``[N]`` muon pt (GeV) and eta; ``weight``: float32
    ``[N]`` (signal reweighted to the background pt).

Checks: every dataset present with its shape and a numeric dtype, the same N everywhere (errors name the
file, the dataset and what was expected); values finite, images and weights >= 0, pt > 0, y in {0, 1}
(errors name the file, the row, the dataset and the value). Files written by ``jettf.generate`` carry its
settings (root attribute ``jettf_generated``, :func:`jettf.io.generated_settings`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

import h5py
import numpy as np

from jettf.io._common import FileFormatError, PathLike, file_errors, require_file
from jettf.io.provenance import GENERATED_MARK, mark_text
from jettf.utils import atomic_path

__all__ = ["CaloSample", "LAYOUTS", "read_electrons", "read_muons", "write_electrons", "write_muons",
           "read_calo_sample", "ELECTRONS_FILE", "MUONS_FILE"]

ELECTRONS_FILE, MUONS_FILE = "electrons.h5", "muons.h5"

#: Per file kind: dataset -> (shape after N, dtype written, meaning); None: any size.
LAYOUTS: Dict[str, Dict[str, Tuple[tuple, str, str]]] = {
    "electrons": {
        "ecal_et": ((31, 31), "float32", "ECAL E_T image (GeV), 31 x 31 cells of (0.025, pi/126)"),
        "ecal_e": ((31, 31), "float32", "ECAL energy image (GeV)"),
        "hcal_et": ((8, 8), "float32", "HCAL E_T image (GeV), 8 x 8 towers of (0.1, pi/31)"),
        "hcal_e": ((8, 8), "float32", "HCAL energy image (GeV)"),
        "hcal_offset": ((2,), "float32", "(delta eta, delta phi) of the HCAL image centre from the ECAL centre"),
        "y": ((), "int8", "label, 1 electron / 0 jet"),
        "pt": ((), "float32", "candidate track pt (GeV)"),
        "eta": ((), "float32", "candidate track eta"),
        "weight": ((), "float32", "per-candidate weight (background reweighted to the signal pt)"),
    },
    "muons": {
        "image_et": ((32, 32), "float32", "E_T image (GeV), 32 x 32 over delta-R < 0.45 of the muon"),
        "cells": ((None, 5), "float32", "cells within delta-R < 0.45, hardest first: E_T, delta eta, delta phi, "
                                        "E, 0 ECAL / 1 HCAL"),
        "y": ((), "int8", "label, 1 prompt / 0 non-prompt"),
        "pt": ((), "float32", "muon pt (GeV)"),
        "eta": ((), "float32", "muon eta"),
        "weight": ((), "float32", "per-candidate weight (signal reweighted to the background pt)"),
    },
}
_IMAGES = {"electrons": ("ecal_et", "ecal_e", "hcal_et", "hcal_e"), "muons": ("image_et",)}
_CHUNK_ROWS = 256  # HDF5 chunk (rows) of the compressed datasets


@dataclasses.dataclass
class CaloSample:
    """Candidates of one file kind (``"electrons"`` or ``"muons"``): ``arrays`` name -> ``[N, ...]``."""

    kind: str
    arrays: Dict[str, np.ndarray]
    source: Optional[str] = None

    def __len__(self) -> int:
        return len(self.arrays["y"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["y"].astype(np.int64)

    def select(self, index) -> "CaloSample":
        return CaloSample(self.kind, {k: v[index] for k, v in self.arrays.items()}, self.source)

    @staticmethod
    def concatenate(parts) -> "CaloSample":
        parts = list(parts)
        if not parts:
            raise ValueError("CaloSample.concatenate: nothing to join")
        kinds = {p.kind for p in parts}
        if len(kinds) != 1:
            raise ValueError(f"CaloSample.concatenate: samples of different kinds {sorted(kinds)}")
        return CaloSample(parts[0].kind, {k: np.concatenate([p.arrays[k] for p in parts]) for k in parts[0].arrays},
                          parts[0].source)


def _layout(kind: str):
    if kind not in LAYOUTS:
        raise ValueError(f"unknown lepton file kind {kind!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[kind]


def _shape_fits(shape, want) -> bool:
    return len(shape) == len(want) and all(w is None or d == w for d, w in zip(shape, want))


def _dims(want) -> str:
    """``"N, M, 5"``: a layout shape as text, ``M`` where any size goes."""
    return ", ".join("M" if w is None else str(w) for w in want)


def _check_layout(path: Path, f, kind: str) -> int:
    layout = _layout(kind)
    missing = [name for name in layout if name not in f]
    if missing:
        expected = ", ".join(f"'{k}' [{_dims(('N',) + s)}] ({m})" for k, (s, _, m) in layout.items())
        raise FileFormatError(f"{path}: dataset(s) {missing} missing; found {sorted(f.keys())}; expected {expected}")
    n = f["y"].shape[0] if f["y"].ndim else -1
    for name, (shape, _, meaning) in layout.items():
        ds = f[name]
        want = (n,) + tuple(shape)
        if not _shape_fits(ds.shape, want):
            raise FileFormatError(f"{path}: '{name}' has shape {tuple(ds.shape)}; expected ({_dims(want)}) "
                                  f"({meaning}), N = {n} rows as in 'y'")
        if np.dtype(ds.dtype).kind not in "fiub":
            raise FileFormatError(f"{path}: '{name}' has dtype {ds.dtype}; expected numbers ({meaning})")
    if n == 0:
        raise FileFormatError(f"{path}: no candidates (0 rows); expected at least one")
    return n


def _check_values(path: Path, kind: str, arrays: Dict[str, np.ndarray], first_row: int) -> None:
    """Raise naming the file, the row, the dataset and the value of the first bad entry."""
    layout = _layout(kind)
    rules = {name: ("finite", lambda v: np.isfinite(v)) for name in layout}
    for name in _IMAGES[kind]:
        rules[name] = ("finite and >= 0 GeV", lambda v: np.isfinite(v) & (v >= 0))
    rules["pt"] = ("finite and > 0 GeV", lambda v: np.isfinite(v) & (v > 0))
    rules["weight"] = ("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0))
    rules["y"] = ("0 or 1", lambda v: (v == 0) | (v == 1))
    for name, (expected, rule) in rules.items():
        values = arrays[name]
        ok = rule(values)
        if ok.all():
            continue
        bad = np.argwhere(~ok)[0]
        row = first_row + int(bad[0])
        where = f"'{name}'[{row}" + "".join(f", {int(i)}" for i in bad[1:]) + "]"
        raise FileFormatError(f"{path}: {where} = {values[tuple(bad)]!r} at row {row}; expected {expected}")


def _read(path: PathLike, kind: str, start: int, max_rows: Optional[int], chunk_size: Optional[int]):
    name = ELECTRONS_FILE if kind == "electrons" else MUONS_FILE
    path = require_file(path, f"an HDF5 file of {kind} candidates ({name})")
    with file_errors(path, "the HDF5 file"), h5py.File(path, "r") as f:
        n = _check_layout(path, f, kind)
    if start < 0 or start > n:
        raise ValueError(f"{path}: start={start}; expected 0 <= start <= {n}")
    stop = n if max_rows is None else min(n, start + int(max_rows))
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}; expected >= 1")
    step = (stop - start) if chunk_size is None else int(chunk_size)

    def chunks() -> Iterator[CaloSample]:
        with file_errors(path, "the HDF5 file"), h5py.File(path, "r") as f:
            for lo in range(start, stop, max(step, 1)):
                hi = min(stop, lo + step)
                arrays = {name: f[name][lo:hi] for name in _layout(kind)}
                _check_values(path, kind, arrays, lo)
                arrays = {name: arrays[name].astype(_layout(kind)[name][1], copy=False) for name in arrays}
                yield CaloSample(kind, arrays, str(path))

    return chunks


def read_calo_sample(path: PathLike, kind: str, *, start: int = 0, max_rows: Optional[int] = None,
                     chunk_size: Optional[int] = None) -> Union[CaloSample, Iterator[CaloSample]]:
    """Read ``electrons.h5`` / ``muons.h5`` (``kind`` ``"electrons"``/``"muons"``; a directory means the
    file of that name in it): one :class:`CaloSample`, or with ``chunk_size`` an iterator of samples of at
    most that many rows, read and checked one at a time."""
    path = Path(path)
    if path.is_dir():
        path = path / (ELECTRONS_FILE if kind == "electrons" else MUONS_FILE)
    chunks = _read(path, kind, start, max_rows, chunk_size)
    if chunk_size is not None:
        return chunks()
    return next(iter(chunks()))


def read_electrons(path: PathLike, **kwargs) -> Union[CaloSample, Iterator[CaloSample]]:
    """Electron candidates from ``electrons.h5`` (module docstring); options as :func:`read_calo_sample`."""
    return read_calo_sample(path, "electrons", **kwargs)


def read_muons(path: PathLike, **kwargs) -> Union[CaloSample, Iterator[CaloSample]]:
    """Muon candidates from ``muons.h5`` (module docstring); options as :func:`read_calo_sample`."""
    return read_calo_sample(path, "muons", **kwargs)


def _write(arrays: Dict[str, np.ndarray], path: PathLike, kind: str, generated: Optional[dict]) -> Path:
    layout = _layout(kind)
    missing = sorted(set(layout) - set(arrays))
    if missing:
        raise ValueError(f"{path}: arrays {missing} missing; expected {sorted(layout)}")
    n = len(arrays["y"])
    data = {}
    for name, (shape, dtype, meaning) in layout.items():
        value = np.asarray(arrays[name]).astype(dtype)
        if not _shape_fits(value.shape, (n,) + tuple(shape)):
            raise ValueError(f"{path}: array '{name}' has shape {value.shape}; expected "
                             f"({_dims((n,) + tuple(shape))}) ({meaning})")
        data[name] = value
    _check_values(Path(path), kind, data, 0)
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, value in data.items():
            options = {}
            if value.ndim > 1 and n:
                options = dict(chunks=(min(n, _CHUNK_ROWS),) + value.shape[1:], compression="gzip",
                               compression_opts=4, shuffle=True)
            f.create_dataset(name, data=value, track_times=False, **options)
            f[name].attrs["meaning"] = layout[name][2]
        if generated is not None:
            f.attrs[GENERATED_MARK] = mark_text(generated)
    return path


def write_electrons(arrays: Dict[str, np.ndarray], path: PathLike, *, generated: Optional[dict] = None) -> Path:
    """Write ``electrons.h5`` atomically (gzip-compressed images, no timestamps: same arrays, same bytes)."""
    return _write(arrays, path, "electrons", generated)


def write_muons(arrays: Dict[str, np.ndarray], path: PathLike, *, generated: Optional[dict] = None) -> Path:
    """Write ``muons.h5`` atomically (as :func:`write_electrons`)."""
    return _write(arrays, path, "muons", generated)
