"""003's CMS end-to-end quark/gluon jet images: ``quark-gluon_data-set_n139306.hdf5`` and its parquet files.

Public layout (003's 139,306-jet test set, released with the ML4SCI / CMS Open Data E2E work):

- ``X_jets``: float32 ``[N, 125, 125, 3]`` jet views at ECAL-crystal granularity (0.0174 x 2 pi/360
  per pixel), axis 1 = eta (iη'), axis 2 = phi (iφ'), channels **(tracks, ECAL, HCAL)** in this
  order: track pT at each track's position (isolated pixels), ECAL crystal energy (showers of
  about 3 x 3 pixels), HCAL tower energy up-sampled to 5 x 5 pixel blocks, GeV;
- ``y``: the label, **1 = quark, 0 = gluon** (the releases' convention; ``quark_label`` changes it);
- ``pt``, ``m0``: the jet's pT and mass (GeV).

The parquet variant has the same columns, one row per jet, with ``X_jets`` channels first
(nested lists ``[3][125][125]``, as the public ``*.parquet`` files); the reader returns it
channels last like the HDF5 file.

Files written by ``python -m jettf.generate cms_quark_gluon`` add, for 003's event
classification (same rows): sparse image sets in CSR form, each ``NAME_offsets`` int64 ``[N + 1]``,
``NAME_index`` int32 ``[K]`` (flat pixel ``row * width + col``) and ``NAME_values`` float32 ``[K, C]``
(parquet: list columns ``NAME_index``, ``NAME_values`` per row) for ``X_jet2`` (sub-leading jet,
125 x 125 x 3), ``X_jets_gen`` (leading jet, generator-level EM/Had, 125 x 125 x 2), ``X_event``
(full detector, 280 x 360 x 3) and ``X_event_gen`` (280 x 360 x 2); ``jet_pt``, ``jet_eta``,
``jet_phi``, ``jet_m`` ``[N, 2]`` (leading, sub-leading jet) and ``jet_center`` int32 ``[N, 2, 2]``
(each jet view's centre, (row, col) in the full-detector image). Each set's shape and channel
names are attributes (HDF5) or schema metadata ``jettf_layout`` (parquet).

The reader checks, on the first rows of each file (``check=True``), that the channels look
like (tracks, ECAL, HCAL) -- tracks mostly isolated pixels, HCAL complete constant 5 x 5 blocks,
ECAL neither -- and that ``y == quark_label`` marks the jets with fewer track pixels near the
centre (quark jets have fewer charged particles than gluon jets): a file in another channel order
or label convention is an error, never silently misread.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

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
from jettf.utils import atomic_path

__all__ = [
    "CMSImages", "read_cms_quark_gluon", "write_cms_quark_gluon", "check_conventions", "channel_structure",
    "CMS_QUARK_GLUON_CLASSES", "CMS_CHANNELS", "IMAGE_FIELDS", "cms_quark_gluon_files", "image_fields",
]

#: Labels: 0 = gluon, 1 = quark (with the default ``quark_label=1``, the value of ``y``).
CMS_QUARK_GLUON_CLASSES = ("gluon", "quark")
#: Channels of ``X_jets``, in the file's order (003 section 3).
CMS_CHANNELS = ("tracks", "ecal", "hcal")
NPIX = 125
#: Image fields a reader can return: ``X_jets`` (public, dense) and the sparse sets of generated files.
IMAGE_FIELDS = {
    "X_jets": ((NPIX, NPIX, 3), CMS_CHANNELS),
    "X_jet2": ((NPIX, NPIX, 3), CMS_CHANNELS),
    "X_jets_gen": ((NPIX, NPIX, 2), ("em", "had")),
    "X_event": ((280, 360, 3), CMS_CHANNELS),
    "X_event_gen": ((280, 360, 2), ("em", "had")),
}
_KINEMATICS = ("jet_pt", "jet_eta", "jet_phi", "jet_m")
PUBLIC_NAME = "quark-gluon_data-set_n139306.hdf5"
_X_MEANING = "[N, 125, 125, 3] jet images (tracks, ECAL, HCAL), float"
_CHECK_ROWS = 256  # rows of each file the convention checks look at
_TOWER = 5  # ECAL crystals per HCAL tower side


@dataclasses.dataclass
class CMSImages:
    """Images of 003's E2E files, one row per event (leading jet).

    Attributes:
        images: float32 ``[N, height, width, C]`` (the ``field``: ``X_jets`` 125 x 125 x 3 by default),
            axis 1 eta, axis 2 phi, channels ``channels``, GeV.
        labels: int64 ``[N]``: 1 quark, 0 gluon (``class_names``).
        pt, m0: float32 ``[N]`` leading-jet pT and mass (GeV).
        jets: float64 ``[N, 2, 4]`` (pt, eta, phi, mass) of the leading and sub-leading jets, or None
            (public files do not store them). centers: int32 ``[N, 2, 2]`` view centres or None.
    """

    images: np.ndarray
    labels: np.ndarray
    pt: np.ndarray
    m0: np.ndarray
    jets: Optional[np.ndarray] = None
    centers: Optional[np.ndarray] = None
    field: str = "X_jets"
    channels: Tuple[str, ...] = CMS_CHANNELS
    class_names: Tuple[str, ...] = CMS_QUARK_GLUON_CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_constituents(self) -> np.ndarray:
        """Non-empty pixels per image (the readers' "no constituents" check: an all-zero image is bad)."""
        return np.count_nonzero(self.images.reshape(len(self), -1), axis=1)

    def select(self, index) -> "CMSImages":
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})

    def pad_to(self, n_slots: int) -> "CMSImages":
        """Images have no constituent slots (for :class:`jettf.io.JetChunks`)."""
        return self


# ------------------------------------------------------------------ checks
def channel_structure(images: np.ndarray) -> Dict[str, np.ndarray]:
    """Per channel of ``[N, H, W, C]`` images: ``isolated``, the share of the channel's |intensity| in
    non-empty pixels with no non-empty 8-neighbour (tracks: most; ECAL showers, HCAL blocks: little),
    and ``blocks``, the share in complete 5 x 5 blocks of one constant value (up-sampled HCAL towers:
    nearly all), at the block phase (offset in rows and columns) where neighbouring equal pixels fit
    the blocks best."""
    x = np.abs(np.asarray(images, dtype=np.float32))
    n, h, w, n_channels = x.shape
    nonzero = x > 0
    padded = np.pad(nonzero, ((0, 0), (1, 1), (1, 1), (0, 0)))
    neighbours = np.zeros_like(nonzero)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            if a or b:
                neighbours |= padded[:, 1 + a:1 + a + h, 1 + b:1 + b + w]
    total = np.maximum(x.sum(axis=(0, 1, 2), dtype=np.float64), 1e-300)
    isolated = (x * (nonzero & ~neighbours)).sum(axis=(0, 1, 2), dtype=np.float64) / total
    # Equal non-empty neighbours per row pair (r, r + 1) and column pair: inside a block for 4 of 5 pairs.
    equal_rows = ((x[:, 1:] == x[:, :-1]) & nonzero[:, 1:]).sum(axis=(0, 2))
    equal_cols = ((x[:, :, 1:] == x[:, :, :-1]) & nonzero[:, :, 1:]).sum(axis=(0, 1))
    blocks = np.zeros(n_channels)
    for ch in range(n_channels):
        a, b = (int(np.argmax([eq[(np.arange(len(eq)) - p) % _TOWER != _TOWER - 1, ch].sum() for p in range(_TOWER)]))
                for eq in (equal_rows, equal_cols))
        mh, mw = (h - a) // _TOWER, (w - b) // _TOWER
        block = x[:, a:a + mh * _TOWER, b:b + mw * _TOWER, ch].reshape(n, mh, _TOWER, mw, _TOWER)
        high, low = block.max(axis=(2, 4)), block.min(axis=(2, 4))
        whole = (low > 0) & (high - low <= 1e-4 * high)
        blocks[ch] = (block.sum(axis=(2, 4), dtype=np.float64) * whole).sum() / total[ch]
    return {"isolated": isolated, "blocks": blocks}


def check_conventions(images: np.ndarray, y: np.ndarray, path, quark_label: int = 1, field: str = "X_jets") -> dict:
    """Check that ``images`` are (tracks, ECAL, HCAL) and that ``y == quark_label`` marks quark jets.

    Channels: tracks (0) must have the largest isolated-pixel share (>= 0.4), HCAL (2) the largest
    5 x 5-block share (>= 0.5), ECAL (1) a block share below 0.5. Labels (with at least 30 jets of each
    value): jets with ``y == quark_label`` must have fewer non-empty track pixels within 22 pixels of the
    centre (dR ~ 0.4) on average. Returns the figures; raises :class:`FileFormatError` naming the file
    and the field otherwise.
    """
    s = channel_structure(images)
    iso, blocks = s["isolated"], s["blocks"]
    figures = {"isolated_share": iso.round(3).tolist(), "block_share": blocks.round(3).tolist()}
    ok = (np.argmax(iso) == 0 and iso[0] >= 0.4 and np.argmax(blocks) == 2 and blocks[2] >= 0.5
          and blocks[1] < 0.5)
    if not ok:
        raise FileFormatError(
            f"{path}: '{field}' channels do not look like (tracks, ECAL, HCAL): isolated-pixel share per channel "
            f"{figures['isolated_share']}, complete 5x5-block share {figures['block_share']} (first {len(images)} "
            "rows); expected tracks as isolated pixels in channel 0, ECAL showers of ~3x3 pixels in channel 1, HCAL "
            "as 5x5 blocks in channel 2 (check=False skips this check)")
    y = np.asarray(y)
    centre, half = images.shape[1] // 2, 22
    core = images[:, centre - half:centre + half + 1, centre - half:centre + half + 1, 0]
    tracks = np.count_nonzero(core.reshape(len(core), -1), axis=1)
    quark, other = y == quark_label, y != quark_label
    figures["track_pixels"] = {"quark_label": float(tracks[quark].mean()) if quark.any() else None,
                               "other": float(tracks[other].mean()) if other.any() else None}
    if quark.sum() >= 30 and other.sum() >= 30 and tracks[quark].mean() >= tracks[other].mean():
        values = sorted(set(np.unique(y[other]).tolist()))
        raise FileFormatError(
            f"{path}: 'y': jets with y = {quark_label} have {tracks[quark].mean():.1f} track pixels within dR ~ 0.4 "
            f"of the centre on average, jets with y = {values} {tracks[other].mean():.1f}; quark jets have fewer "
            f"charged particles than gluon jets, so y = {quark_label} does not look like quark; expected "
            f"y = {quark_label} for quark jets (pass quark_label=... if the file uses another convention, "
            "check=False to skip)")
    return figures


# ----------------------------------------------------------------- readers
class _E2EFile(FileReader):
    """Common part of the HDF5 and parquet readers: raw chunks hold the field (channels last), y, pt, m0."""

    rows_field = "'y'"

    def _setup(self, field: str, quark_label: int, check: bool):
        if field not in IMAGE_FIELDS:
            raise ValueError(f"field {field!r}: expected one of {sorted(IMAGE_FIELDS)}")
        self.field, self.quark_label = field, int(quark_label)
        self.shape, self.channels = IMAGE_FIELDS[field]
        self.constituent_field = f"{field} (every pixel zero)"
        self.n_slots = self.shape[0] * self.shape[1]
        self._check = check and field == "X_jets"

    def _first_check(self) -> None:
        if self._check and self.n_rows:
            raw = next(self.read_rows([(0, min(self.n_rows, _CHECK_ROWS))]))
            images = np.nan_to_num(raw[self.field])
            self.conventions = check_conventions(images, raw["y"], self.path, self.quark_label, self.field)

    def unphysical(self, raw: RawChunk) -> List[BadValues]:
        """Track and generator-level pT pixels >= 0, jet pt > 0, m0 >= 0. ECAL/HCAL pixels may be negative
        (CMS rec-hit energies after pedestal subtraction)."""
        x = raw[self.field]
        positive = [i for i, c in enumerate(self.channels) if c in ("tracks", "em", "had")]
        out = [BadValues(self.field, x[..., positive] < 0, f"negative pT pixels in '{self.field}'",
                         f"pixel values >= 0 in the {[self.channels[i] for i in positive]} channels",
                         to_index=lambda j: (j[0], j[1], positive[j[2]]))]
        out.append(BadValues("pt", ~(raw["pt"] > 0), "negative or zero jet pt in 'pt'", "pt > 0 GeV"))
        out.append(BadValues("m0", raw["m0"] < 0, "negative jet mass in 'm0'", "m0 >= 0 GeV"))
        return out

    def describe(self, field: str, row: int, index: Tuple[int, ...]) -> str:
        if field == self.field:
            return (f"'{field}'[{row}, {index[0]}, {index[1]}, {index[2]}] ({self.channels[index[2]]} channel, pixel "
                    f"(eta {index[0]}, phi {index[1]}))")
        return f"'{field}'[{row}]"

    def to_batch(self, raw: RawChunk, rows: np.ndarray) -> CMSImages:
        y = raw["y"]
        check_values(self.path, "y", (y == 0) | (y == 1), rows, f"0 or 1 ({self.quark_label} = quark)")
        jets = centers = None
        if all(k in raw for k in _KINEMATICS):
            jets = np.stack([raw[k] for k in _KINEMATICS], axis=-1).astype(np.float64)
        if "jet_center" in raw:
            centers = raw["jet_center"].astype(np.int32)
        return CMSImages(np.ascontiguousarray(raw[self.field], dtype=np.float32),
                         (y == self.quark_label).astype(np.int64), raw["pt"].astype(np.float32),
                         raw["m0"].astype(np.float32), jets, centers, self.field, self.channels)


class _E2EHDF5File(_E2EFile):
    def __init__(self, path: PathLike, field: str, quark_label: int, check: bool):
        self._setup(field, quark_label, check)
        self.path = require_file(path, f"a CMS E2E HDF5 file with 'X_jets' {_X_MEANING}, 'y', 'pt', 'm0'")
        with file_errors(self.path, "the HDF5 file"), h5py.File(self.path, "r") as f:
            names = ["X_jets", "y", "pt", "m0"] + ([] if field == "X_jets" else
                                                   [f"{field}_offsets", f"{field}_index", f"{field}_values"])
            missing = [n for n in names if n not in f]
            if missing:
                extra = "" if field == "X_jets" else (
                    f"; '{field}' is written by python -m jettf.generate cms_quark_gluon (the public files hold "
                    "X_jets, y, pt, m0 only)")
                raise FileFormatError(f"{self.path}: dataset(s) {missing} missing; found {sorted(f.keys())}; expected "
                                      f"'X_jets' {_X_MEANING}, 'y' [N] (1 quark, 0 gluon), 'pt' [N], 'm0' [N]{extra}")
            x = f["X_jets"]
            check_shape(self.path, "X_jets", x.shape, x.dtype, (None, NPIX, NPIX, 3), _X_MEANING)
            n = x.shape[0]
            for name in ("y", "pt", "m0"):
                check_shape(self.path, name, f[name].shape, f[name].dtype, (n,), f"[{n}] (one value per jet)")
            if field != "X_jets":
                off, val = f[f"{field}_offsets"], f[f"{field}_values"]
                check_shape(self.path, f"{field}_offsets", off.shape, off.dtype, (n + 1,), f"[{n + 1}] CSR offsets")
                check_shape(self.path, f"{field}_values", val.shape, val.dtype, (None, self.shape[2]),
                            f"[K, {self.shape[2]}] values of the {self.channels} channels")
            self._extras = [k for k in (*_KINEMATICS, "jet_center") if k in f]
            self.n_rows = n
        self._first_check()

    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        with h5py.File(self.path, "r") as f:
            for start, stop in ranges:
                raw = {name: f[name][start:stop] for name in ("y", "pt", "m0", *self._extras)}
                if self.field == "X_jets":
                    raw["X_jets"] = f["X_jets"][start:stop]
                else:
                    offsets = f[f"{self.field}_offsets"][start:stop + 1]
                    index = f[f"{self.field}_index"][offsets[0]:offsets[-1]]
                    values = f[f"{self.field}_values"][offsets[0]:offsets[-1]]
                    raw[self.field] = _dense(offsets - offsets[0], index, values, self.shape, self.path, self.field)
                yield raw


class _E2EParquetFile(_E2EFile):
    def __init__(self, path: PathLike, field: str, quark_label: int, check: bool):
        import pyarrow.parquet as pq

        self._setup(field, quark_label, check)
        self.path = require_file(path, "a CMS E2E parquet file with columns X_jets, y, pt, m0")
        with file_errors(self.path, "the parquet file"):
            meta = pq.ParquetFile(self.path).metadata
            names = set(pq.read_schema(self.path).names)
        wanted = ["X_jets", "y", "pt", "m0"] + ([] if field == "X_jets" else [f"{field}_index", f"{field}_values"])
        missing = [n for n in wanted if n not in names]
        if missing:
            raise FileFormatError(f"{self.path}: column(s) {missing} missing; found {sorted(names)}; expected X_jets "
                                  "[3][125][125] (channels first), y, pt, m0"
                                  + ("" if field == "X_jets" else f"; '{field}' is written by python -m jettf.generate "
                                     "cms_quark_gluon"))
        self._columns = (["y", "pt", "m0"] + [k for k in (*_KINEMATICS, "jet_center") if k in names]
                         + (["X_jets"] if field == "X_jets" else [f"{field}_index", f"{field}_values"]))
        self.n_rows = meta.num_rows
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._first_check()

    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(self.path)
        cached, table = None, None
        for start, stop in ranges:
            first = int(np.searchsorted(self._group_starts, start, side="right") - 1)
            last = int(np.searchsorted(self._group_starts, max(stop, start + 1), side="left") - 1)
            groups = tuple(range(first, max(first, last) + 1))
            if groups != cached:
                table = pa.concat_tables([handle.read_row_group(g, columns=self._columns) for g in groups])
                cached = groups
            part = table.slice(start - int(self._group_starts[first]), stop - start)
            yield self._convert(part)

    def _convert(self, table) -> RawChunk:
        n = table.num_rows
        raw = {name: _column(table, name, (n,), self.path) for name in ("y", "pt", "m0")}
        for name in _KINEMATICS:
            if name in table.column_names:
                raw[name] = _column(table, name, (n, 2), self.path)
        if "jet_center" in table.column_names:
            raw["jet_center"] = _column(table, "jet_center", (n, 2, 2), self.path)
        if self.field == "X_jets":
            x = _column(table, "X_jets", (n, 3, NPIX, NPIX), self.path)
            raw["X_jets"] = np.moveaxis(x, 1, -1)  # the parquet files are channels first
        else:
            index_col, values_col = table.column(f"{self.field}_index"), table.column(f"{self.field}_values")
            lengths = np.asarray(index_col.combine_chunks().value_lengths().fill_null(0), dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            index = _flat(index_col, 1)
            values = _flat(values_col, 2).reshape(-1, self.shape[2]) if len(index) else \
                np.zeros((0, self.shape[2]), np.float32)
            if len(values) != len(index):
                raise FileFormatError(f"{self.path}: '{self.field}_values' has {len(values)} entries for {len(index)} "
                                      f"pixels in '{self.field}_index'; expected one value per channel per pixel")
            raw[self.field] = _dense(offsets, index, values, self.shape, self.path, self.field)
        return raw


def _flat(column, depth: int) -> np.ndarray:
    """The innermost values of a (chunked) list column nested ``depth`` times."""
    arr = column.combine_chunks()
    for _ in range(depth):
        arr = arr.flatten()
    return arr.to_numpy(zero_copy_only=False)


def _column(table, name: str, shape: tuple, path) -> np.ndarray:
    """A parquet column as an array of ``shape`` (nested lists checked for their lengths)."""
    import pyarrow.compute as pc

    arr = table.column(name).combine_chunks()
    for depth, size in enumerate(shape[1:]):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if not (lengths == size).all():
            bad = int(np.flatnonzero(lengths != size)[0]) if depth == 0 else None
            where = f" (first at row {bad})" if bad is not None else ""
            raise FileFormatError(f"{path}: column '{name}' has lists of length {sorted(set(lengths.tolist()))[:4]} at "
                                  f"nesting level {depth + 1}{where}; expected shape {list(shape[1:])} per row")
        arr = arr.flatten()
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype.kind not in "fiub":
        raise FileFormatError(f"{path}: column '{name}' holds {values.dtype}; expected numbers")
    return values.reshape(shape)


def _dense(offsets, index, values, shape, path, field) -> np.ndarray:
    height, width, n_channels = shape
    n = len(offsets) - 1
    if len(index) and (index.min() < 0 or index.max() >= height * width):
        raise FileFormatError(f"{path}: '{field}_index' holds pixel {int(index.max())}; expected flat indices in "
                              f"[0, {height * width}) of {height} x {width} images")
    out = np.zeros((n, height * width, n_channels), np.float32)
    np.add.at(out, (np.repeat(np.arange(n), np.diff(offsets)), index), values)
    return out.reshape(n, height, width, n_channels)


def image_fields(path: PathLike) -> List[str]:
    """The image fields a file holds (``X_jets``, plus the sparse sets of generated files), from its layout only."""
    path = Path(path)
    with file_errors(path, "the file's layout"):
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            names = set(pq.read_schema(path).names)
            present = lambda f: f"{f}_index" in names  # noqa: E731
        else:
            with h5py.File(path, "r") as f:
                names = set(f.keys())
            present = lambda f: f"{f}_offsets" in names  # noqa: E731
    return ["X_jets"] + [f for f in IMAGE_FIELDS if f != "X_jets" and present(f)]


def cms_quark_gluon_files(path_or_paths: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The files to read: a file, a list of files, or a directory (its ``quark-gluon_data-set_n*.hdf5``, else
    its ``*.parquet`` files, sorted: the parquet files of a generated sample repeat the HDF5 rows)."""
    if isinstance(path_or_paths, (list, tuple)):
        return [Path(p) for p in path_or_paths]
    path = Path(path_or_paths)
    if not path.is_dir():
        return [path]
    files = sorted(path.glob("quark-gluon_data-set_n*.hdf5")) or sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no CMS E2E files; expected {PUBLIC_NAME} (or quark-gluon_data-set_n*.hdf5) "
                                "or parquet files with columns X_jets, y, pt, m0")
    return files


def read_cms_quark_gluon(
    path_or_paths: Union[PathLike, Sequence[PathLike]],
    *,
    field: str = "X_jets",
    start: int = 0,
    chunk_size: Optional[int] = None,
    max_jets: Optional[int] = None,
    skip_bad: bool = False,
    quark_label: int = 1,
    check: bool = True,
) -> Union[CMSImages, JetChunks]:
    """Read 003's E2E images from ``.hdf5`` or ``.parquet`` files.

    Args:
        path_or_paths: a file, a list of files (read in order) or a directory (see :func:`cms_quark_gluon_files`).
        field: ``"X_jets"`` (the public images) or a sparse set of generated files (``"X_jet2"``,
            ``"X_jets_gen"``, ``"X_event"``, ``"X_event_gen"``), returned dense.
        start, max_jets: rows ``[start, start + max_jets)`` counted across the files in order.
        chunk_size: return an iterator of :class:`CMSImages` of at most this many rows, read as
            they are needed (a 125 x 125 x 3 image is 188 kB dense: use it for large files).
        skip_bad: drop bad rows (NaN/inf, negative track pT pixels, pt <= 0, m0 < 0, an all-zero
            image) and count them in a :class:`SkippedJetsWarning`, instead of raising a
            :class:`FileFormatError` that names the file, the row and the field.
        quark_label: the ``y`` value of quark jets (1 in the public files).
        check: check the channel order and the label convention on the first 256 rows of each file
            (:func:`check_conventions`; ``X_jets`` only).

    Returns:
        :class:`CMSImages` (labels 1 = quark, 0 = gluon), or a :class:`JetChunks` iterator of them.
    """
    readers = []
    for path in cms_quark_gluon_files(path_or_paths):
        kind = _E2EParquetFile if Path(path).suffix == ".parquet" else _E2EHDF5File
        readers.append(kind(path, field, quark_label, check))
    return read_files(readers, class_names=CMS_QUARK_GLUON_CLASSES, start=start, chunk_size=chunk_size,
                      max_jets=max_jets, per_file=False, skip_bad=skip_bad)


# ------------------------------------------------------------------ writer
def write_cms_quark_gluon(path: PathLike, images: Mapping[str, object], y, pt, m0, *,
                          channels: Optional[Mapping[str, Sequence[str]]] = None,
                          extras: Optional[Mapping[str, np.ndarray]] = None, generated: Optional[dict] = None,
                          chunk_rows: int = 256) -> Path:
    """Write the E2E layout: ``.hdf5``/``.h5`` (gzip-compressed ``X_jets``) or ``.parquet`` (snappy, row groups
    of ``chunk_rows``); returns ``path``.

    ``images``: {name: sparse rows} with ``offsets``, ``index``, ``values``, ``shape`` (CSR, as
    :class:`jettf.detector.e2e.PixelRows`); ``X_jets`` is required and written dense, the others sparse.
    ``y`` (1 quark, 0 gluon), ``pt``, ``m0`` ``[N]``; ``extras``: per-row arrays (``jet_pt`` ... ``[N, 2]``,
    ``jet_center`` ``[N, 2, 2]``). ``generated``: generator settings stored in the file (root attribute or
    schema metadata ``jettf_generated``). No timestamps: the same rows give the same bytes.
    """
    path = Path(path)
    if "X_jets" not in images:
        raise ValueError(f"{path}: 'X_jets' missing from images; expected the leading-jet views")
    n = len(np.asarray(y))
    for name, rows in images.items():
        if len(rows.offsets) != n + 1:
            raise ValueError(f"{path}: '{name}' has {len(rows.offsets) - 1} rows; expected {n} like 'y'")
    if tuple(images["X_jets"].shape) != (NPIX, NPIX, 3):
        raise ValueError(f"{path}: 'X_jets' has shape {images['X_jets'].shape}; expected {_X_MEANING}")
    channels = dict(channels or {})
    extras = {k: np.asarray(v) for k, v in (extras or {}).items()}
    layout = {name: {"shape": list(rows.shape), "channels": list(channels.get(name, ())),
                     "axes": "row = eta, col = phi"} for name, rows in images.items()}
    columns = {"y": np.asarray(y, np.float32), "pt": np.asarray(pt, np.float32), "m0": np.asarray(m0, np.float32)}
    if path.suffix in (".hdf5", ".h5"):
        _write_hdf5(path, images, columns, extras, layout, generated, chunk_rows)
    elif path.suffix == ".parquet":
        _write_parquet(path, images, columns, extras, layout, generated, chunk_rows)
    else:
        raise ValueError(f"{path}: expected a .hdf5, .h5 or .parquet file name")
    return path


def _dense_rows(rows, start: int, stop: int) -> np.ndarray:
    offsets = rows.offsets[start:stop + 1]
    return _dense(offsets - offsets[0], rows.index[offsets[0]:offsets[-1]], rows.values[offsets[0]:offsets[-1]],
                  tuple(rows.shape), "write", "X_jets")


def _write_hdf5(path, images, columns, extras, layout, generated, chunk_rows) -> None:
    n = len(columns["y"])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        x = f.create_dataset("X_jets", shape=(n, NPIX, NPIX, 3), dtype=np.float32, chunks=(1, NPIX, NPIX, 3) if n else
                             None, compression="gzip", compression_opts=4, shuffle=True, track_times=False)
        for start in range(0, n, chunk_rows):
            x[start:min(n, start + chunk_rows)] = _dense_rows(images["X_jets"], start, min(n, start + chunk_rows))
        x.attrs["channels"] = ",".join(layout["X_jets"]["channels"])
        for name, values in columns.items():
            f.create_dataset(name, data=values, track_times=False)
        for name, rows in images.items():
            if name == "X_jets":
                continue
            for part, data in (("offsets", rows.offsets), ("index", rows.index), ("values", rows.values)):
                kwargs = dict(compression="gzip", compression_opts=4, shuffle=True) if len(data) else {}
                f.create_dataset(f"{name}_{part}", data=data, track_times=False, **kwargs)
            f[f"{name}_values"].attrs["shape"] = list(rows.shape)
            f[f"{name}_values"].attrs["channels"] = ",".join(layout[name]["channels"])
        for name, values in extras.items():
            f.create_dataset(name, data=values, track_times=False)
        if generated is not None:
            f.attrs[GENERATED_MARK] = mark_text(generated)


def _write_parquet(path, images, columns, extras, layout, generated, chunk_rows) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def nested(values: np.ndarray, dims: Sequence[int]):
        arr = pa.array(values.reshape(-1))
        for size in reversed(dims):
            arr = pa.ListArray.from_arrays(pa.array(np.arange(0, len(arr) + 1, size, dtype=np.int32)), arr)
        return arr

    def table(start: int, stop: int):
        data = {"X_jets": nested(np.moveaxis(_dense_rows(images["X_jets"], start, stop), -1, 1), (3, NPIX, NPIX))}
        data.update({k: pa.array(v[start:stop]) for k, v in columns.items()})
        for name, rows in images.items():
            if name == "X_jets":
                continue
            o = rows.offsets[start:stop + 1]
            offsets = pa.array((o - o[0]).astype(np.int32))
            data[f"{name}_index"] = pa.ListArray.from_arrays(offsets, pa.array(rows.index[o[0]:o[-1]]))
            values = pa.FixedSizeListArray.from_arrays(pa.array(rows.values[o[0]:o[-1]].reshape(-1)), rows.shape[2])
            data[f"{name}_values"] = pa.ListArray.from_arrays(offsets, values)
        for name, values in extras.items():
            data[name] = nested(values[start:stop], values.shape[1:])
        return pa.table(data)

    n = len(columns["y"])
    metadata = {"jettf_layout": json.dumps(layout, sort_keys=True)}
    if generated is not None:
        metadata[GENERATED_MARK] = mark_text(generated)
    first = table(0, min(n, chunk_rows))
    schema = first.schema.with_metadata(metadata)
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
            writer.write_table(first.cast(schema))
            for start in range(chunk_rows, n, chunk_rows):
                writer.write_table(table(start, min(n, start + chunk_rows)).cast(schema))
