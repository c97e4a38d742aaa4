"""Top Quark Tagging Reference Dataset: ``train.h5``, ``val.h5``, ``test.h5``.

Layout (Kasieczka et al., Zenodo record 2603256): a pandas HDFStore, key
``table``, written in pandas' ``table`` format (PyTables nodes
``/table/table`` and ``/table/_i_table/index``), one row per jet and 806
columns:

- ``E_0, PX_0, PY_0, PZ_0, ..., PZ_199``: float32 four-momenta [GeV] of the 200
  hardest constituents, pt-ordered, zero-padded;
- ``truthE, truthPX, truthPY, truthPZ``: float32 four-momentum of the truth top
  (zero for QCD jets);
- ``ttv``: int64 split flag (0 train, 1 test, 2 validation);
- ``is_signal_new``: int64, 1 for top jets, 0 for QCD jets.

Reading also accepts pandas' ``fixed`` format; either way only the requested
rows are read.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from jettf.io._common import (
    BadValues,
    FileFormatError,
    FileReader,
    JetChunks,
    PathLike,
    RawChunk,
    binary_flags,
    check_values,
    file_errors,
    read_files,
    require_file,
)
from jettf.io.provenance import GENERATED_MARK, mark_text
from jettf.jets import JetBatch
from jettf.utils import atomic_path

__all__ = ["read_top_tagging", "write_top_tagging", "TOP_TAGGING_CLASSES", "TOP_TAGGING_COLUMNS"]

KEY = "table"
N_SLOTS = 200
#: Labels: 0 = QCD, 1 = top (the value of ``is_signal_new``).
TOP_TAGGING_CLASSES = ("qcd", "top")
PARTICLE_COLUMNS = tuple(f"{c}_{i}" for i in range(N_SLOTS) for c in ("E", "PX", "PY", "PZ"))
TRUTH_COLUMNS = ("truthE", "truthPX", "truthPY", "truthPZ")
#: The 806 columns of the public files, in order.
TOP_TAGGING_COLUMNS = PARTICLE_COLUMNS + TRUTH_COLUMNS + ("ttv", "is_signal_new")
_EXPECTED = "the 806 columns E_0, PX_0, PY_0, PZ_0, ..., PZ_199, truthE, truthPX, truthPY, truthPZ, ttv, is_signal_new"


class _TopTaggingFile(FileReader):
    constituent_field = "E_0..PZ_199 (all-zero slots are padding)"
    rows_field = f"key '{KEY}'"

    def __init__(self, path: PathLike, n_constituents: int):
        self.path = require_file(path, f"a Top Tagging HDF5 file (pandas HDFStore, key '{KEY}')")
        with file_errors(self.path, "the pandas HDFStore"), pd.HDFStore(self.path, mode="r") as store:
            if not store.keys():
                raise FileFormatError(f"{self.path}: the file holds no jets (an empty HDFStore: pandas writes no "
                                      f"table for a DataFrame of zero rows); expected key '{KEY}' with {_EXPECTED}")
            if KEY not in store:
                raise FileFormatError(f"{self.path}: key '{KEY}' missing; found keys {store.keys()}; "
                                      f"expected a pandas HDFStore with key '{KEY}' and {_EXPECTED}")
            head = store.select(KEY, start=0, stop=0)
            if not isinstance(head, pd.DataFrame):
                raise FileFormatError(f"{self.path}: key '{KEY}' holds a {type(head).__name__}; "
                                      f"expected a DataFrame with {_EXPECTED}")
            storer = store.get_storer(KEY)
            # fixed format: the index's length (its 'shape' says 1 row for an empty frame)
            self.n_rows = storer.nrows if storer.is_table else len(storer.read_index("axis1"))
        present = set(head.columns)
        missing = [c for c in TOP_TAGGING_COLUMNS if c not in present]
        if missing:
            shown = ", ".join(f"'{c}'" for c in missing[:4]) + (", ..." if len(missing) > 4 else "")
            raise FileFormatError(f"{self.path}: {len(missing)} columns missing ({shown}); expected {_EXPECTED}")
        self.n_slots = n_constituents
        self.columns = list(PARTICLE_COLUMNS[: 4 * n_constituents])
        self.field = f"E_0..PZ_{n_constituents - 1}"

    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        with pd.HDFStore(self.path, mode="r") as store:
            for start, stop in ranges:
                frame = store.select(KEY, start=start, stop=stop)
                yield {
                    self.field: frame[self.columns].to_numpy(dtype=np.float32),
                    "is_signal_new": frame["is_signal_new"].to_numpy(),
                }

    def unphysical(self, raw: RawChunk) -> List[BadValues]:
        """A constituent slot is padding when all four values are zero; otherwise it needs E > 0."""
        p4 = raw[self.field].reshape(len(raw[self.field]), self.n_slots, 4)
        energy = p4[..., 0]
        suspect = ~(energy > 0)  # padding or bad; a slot with E != 0 or momentum is not padding
        bad = suspect & ((energy != 0) | (p4[..., 1] != 0) | (p4[..., 2] != 0) | (p4[..., 3] != 0))
        return [BadValues(self.field, bad, f"negative or zero constituent energy in 'E_0..E_{self.n_slots - 1}'",
                          "E > 0 GeV for constituents; padding is all zero (E_k = PX_k = PY_k = PZ_k = 0)",
                          to_index=lambda slot: (4 * slot[0],))]

    def describe(self, field: str, row: int, index: Tuple[int, ...]) -> str:
        return f"column '{self.columns[index[0]]}'" if field == self.field else f"column '{field}'"

    def to_batch(self, raw: RawChunk, rows: np.ndarray) -> JetBatch:
        p4 = raw[self.field].reshape(len(rows), self.n_slots, 4)
        flags = raw["is_signal_new"]
        check_values(self.path, "is_signal_new", (flags == 0) | (flags == 1), rows, "1 (top) or 0 (QCD)")
        return JetBatch.from_cartesian(
            p4[..., 0], p4[..., 1], p4[..., 2], p4[..., 3], mask=p4[..., 0] > 0,  # = not all zero: checked above
            labels=flags.astype(np.int64), class_names=TOP_TAGGING_CLASSES,
        )


def read_top_tagging(
    path: PathLike,
    *,
    n_constituents: int = N_SLOTS,
    start: int = 0,
    chunk_size: Optional[int] = None,
    max_jets: Optional[int] = None,
    skip_bad: bool = False,
) -> Union[JetBatch, JetChunks]:
    """Read a Top Tagging file (``train.h5``, ``val.h5`` or ``test.h5``).

    Args:
        path: the HDF5 file.
        n_constituents: keep the first (hardest) this many of the 200 constituent slots.
        start: first row to read.
        chunk_size: if given, return an iterator of batches of at most this many jets;
            only those rows are read at a time.
        max_jets: read at most this many jets, before bad jets are dropped.
        skip_bad: drop bad jets instead of raising: NaN/inf four-momenta, a constituent
            with E <= 0 (slots that are all zero are padding), or no constituents; the
            drops are counted in a :class:`SkippedJetsWarning`. Without it the first bad
            jet raises a :class:`FileFormatError` naming the file, the row and the column.

    Returns:
        A JetBatch with labels 1 = top, 0 = QCD (``class_names = ("qcd", "top")``),
        jet kinematics from the summed constituent four-momenta; or a
        :class:`JetChunks` iterator when ``chunk_size`` is given. Truth momenta and
        ``ttv`` are not read.
    """
    if not 1 <= n_constituents <= N_SLOTS:
        raise ValueError(f"n_constituents must be in [1, {N_SLOTS}], got {n_constituents}")
    reader = _TopTaggingFile(path, n_constituents)
    return read_files([reader], class_names=TOP_TAGGING_CLASSES, start=start, chunk_size=chunk_size,
                      max_jets=max_jets, per_file=False, skip_bad=skip_bad)


def write_top_tagging(batch: JetBatch, path: PathLike, *, truth=None, ttv=None,
                      generated: Optional[dict] = None) -> Path:
    """Write jets in the Top Tagging layout (pandas ``table`` format, key ``table``); returns ``path``.

    Constituents are sorted by pt and the 200 hardest kept. ``is_signal_new``
    comes from the labels, matched by class name ("qcd", "top"; a batch
    without class names is taken to use that order). The file carries no
    HDF5 timestamps (PyTables is told not to record them), so the same jets
    give the same bytes.

    Args:
        truth: optional ``[N, 4]`` truth top four-momenta (E, px, py, pz) in GeV; default zeros.
        ttv: optional split flag, scalar or ``[N]`` (0 train, 1 test, 2 validation); default 0.
        generated: generator settings stored in the file (attribute ``jettf_generated`` of the
            ``table`` group, see :mod:`jettf.io.provenance`).
    """
    path = Path(path)
    n = len(batch)
    if n == 0:
        raise ValueError(f"{path}: no jets to write; pandas writes no table for zero rows, so the file would not be "
                         "readable as a Top Tagging file")
    flags = binary_flags(batch, TOP_TAGGING_CLASSES, path)
    truth = np.zeros((n, 4), np.float32) if truth is None else np.asarray(truth, dtype=np.float32)
    if truth.shape != (n, 4):
        raise ValueError(f"{path}: 'truth' has shape {truth.shape}; expected ({n}, 4) = (E, px, py, pz) per jet")
    split = np.broadcast_to(np.asarray(0 if ttv is None else ttv, dtype=np.int64), (n,))
    p4 = batch.sort_by_pt().pad_to(N_SLOTS).four_momenta().reshape(n, 4 * N_SLOTS)
    frame = pd.DataFrame(np.concatenate([p4, truth], axis=1, dtype=np.float32),
                         columns=list(PARTICLE_COLUMNS + TRUTH_COLUMNS))
    frame["ttv"] = split
    frame["is_signal_new"] = flags
    with atomic_path(path) as tmp, _without_hdf5_timestamps(), pd.HDFStore(tmp, mode="w") as store:
        store.put(KEY, frame, format="table")
        if generated is not None:
            store.get_storer(KEY).attrs[GENERATED_MARK] = mark_text(generated)
    return path


@contextlib.contextmanager
def _without_hdf5_timestamps():
    """PyTables records creation/modification times in every HDF5 object it makes (``track_times``),
    and pandas offers no way to turn that off; while this is active it is off, so files are reproducible.
    Skipped (timestamps kept) if PyTables' ``Leaf.__init__`` no longer takes ``track_times`` last."""
    import inspect

    import tables.leaf

    original = tables.leaf.Leaf.__init__
    try:
        names = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        names = []
    if names[-1:] != ["track_times"]:
        yield
        return
    position = len(names) - 2  # index of track_times among the arguments after self

    def no_times(self, *args, **kwargs):
        if len(args) > position:
            args = args[:position] + (False,)
        else:
            kwargs["track_times"] = False
        original(self, *args, **kwargs)

    tables.leaf.Leaf.__init__ = no_times
    try:
        yield
    finally:
        tables.leaf.Leaf.__init__ = original
