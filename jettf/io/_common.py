"""Machinery shared by the three readers and writers.

A reader turns each file into a :class:`FileReader` (layout checked when it is
constructed), and :func:`read_files` does the rest the same way for every
format: plan row ranges from ``chunk_size`` and ``max_jets``, read them,
check values, drop or reject bad jets, and return one :class:`JetBatch` or a
:class:`JetChunks` iterator.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from jettf.jets import JetBatch

PathLike = Union[str, os.PathLike]

#: Jets x constituent slots read at a time when no ``chunk_size`` is given
#: (the blocks are joined at the end). The kinematics conversion holds about
#: 160 bytes of float64 temporaries per slot, so a block peaks near 160 MiB;
#: each temporary (8 MiB) stays below glibc's largest mmap threshold (32 MiB):
#: larger arrays are mapped fresh and page-faulted on every call, which made
#: 65,536-jet blocks of 200 slots 3x slower per jet.
ONE_SHOT_SLOTS = 2**20

RawChunk = Dict[str, np.ndarray]


@dataclasses.dataclass
class BadValues:
    """Values of one raw field that break the format.

    ``bad`` is a bool array whose first axis is the jet: element by element,
    or coarser (e.g. per constituent slot) with ``to_index`` mapping an index
    of ``bad[row]`` to the index of the offending element in ``raw[field][row]``.
    ``reason`` names the problem and the field family (it is the key of the
    ``skip_bad`` counts, so it names no row or column); ``expected`` says what
    the format promises.
    """

    field: str
    bad: np.ndarray
    reason: str
    expected: str
    to_index: Optional[Callable[[Tuple[int, ...]], Tuple[int, ...]]] = None


class FileFormatError(ValueError):
    """A file does not have the layout or values its public format promises."""


class SkippedJetsWarning(UserWarning):
    """``skip_bad=True`` dropped jets. ``counts`` maps file path -> {reason: jets dropped}."""

    def __init__(self, message: str, counts: Dict[str, Dict[str, int]]):
        super().__init__(message)
        self.counts = counts


# ----------------------------------------------------------------- file checks
def require_file(path: PathLike, expected: str) -> Path:
    """``path`` as a Path if it is an existing file, else FileNotFoundError saying what was expected."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"{path}: {what}; expected {expected}")
    return path


@contextlib.contextmanager
def file_errors(path: Path, what: str) -> Iterator[None]:
    """Turn low-level read failures (HDF5, zip, zlib, npy header) into a FileFormatError naming the file."""
    try:
        yield
    except FileFormatError:
        raise
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise FileFormatError(
            f"{path}: cannot read {what}; the file looks truncated or corrupt ({type(err).__name__}: {err})"
        ) from err


def check_shape(path: Path, field: str, shape, dtype, expected: Sequence[Optional[int]], meaning: str) -> None:
    """Raise unless ``shape`` matches ``expected`` (None: any size) and ``dtype`` holds numbers."""
    shape = tuple(shape)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        raise FileFormatError(f"{path}: '{field}' has shape {shape}; expected {meaning}")
    if np.dtype(dtype).kind not in "fiub":
        raise FileFormatError(f"{path}: '{field}' has dtype {dtype}; expected numbers, {meaning}")


def check_values(path: Path, field: str, ok: np.ndarray, rows: np.ndarray, expected: str) -> None:
    """Raise naming the file, field and first offending row unless ``ok`` ([n] bool, per jet) holds everywhere."""
    if ok.all():
        return
    bad = np.flatnonzero(~ok)
    raise FileFormatError(f"{path}: '{field}' is invalid in {bad.size} jets, first at row {rows[bad[0]]}; "
                          f"expected {expected}")


def binary_flags(batch: JetBatch, class_names: Tuple[str, str], path: Path) -> np.ndarray:
    """Per-jet 0/1 flags (1 = ``class_names[1]``) for a two-class file layout, matched by class name.

    A batch without class names is taken to use the layout's own order.
    """
    if batch.labels is None:
        raise ValueError(f"{path}: the batch has no labels; expected labels for classes {class_names}")
    names = batch.class_names if batch.class_names is not None else class_names
    unknown = sorted(set(names) - set(class_names))
    if unknown:
        raise ValueError(f"{path}: class names {unknown} cannot be written; expected classes {class_names}")
    flag_of_label = np.array([class_names.index(name) for name in names], dtype=np.int64)
    if len(batch) and (batch.labels.min() < 0 or batch.labels.max() >= len(flag_of_label)):
        raise ValueError(f"{path}: labels outside [0, {len(flag_of_label)}) for classes {names}")
    return flag_of_label[batch.labels]


# --------------------------------------------------------------- file readers
class FileReader(abc.ABC):
    """One file of a public format whose layout was checked on construction.

    Subclasses set ``path``, ``n_rows`` (jets in the file), ``n_slots``
    (constituent slots per jet), ``constituent_field`` (names the data that
    defines constituents, for errors about empty jets) and ``rows_field``
    (the data whose rows are the jets), implement :meth:`read_rows` and
    :meth:`to_batch`, and may add :meth:`unphysical` checks.
    """

    path: Path
    n_rows: int
    n_slots: int
    constituent_field: str
    rows_field: str

    @abc.abstractmethod
    def read_rows(self, ranges: Sequence[Tuple[int, int]]) -> Iterator[RawChunk]:
        """Open the file once and yield the raw named arrays of each ``(start, stop)`` row range.

        Every array's first axis is the jet; floating-point arrays are checked
        for NaN/inf by :func:`read_files`.
        """

    @abc.abstractmethod
    def to_batch(self, raw: RawChunk, rows: np.ndarray) -> JetBatch:
        """Build a JetBatch from finite, physical raw arrays; ``rows`` are their row numbers in the file."""

    def unphysical(self, raw: RawChunk) -> List[BadValues]:
        """Finite values that cannot be physical (negative energies or pt...), checked before :meth:`to_batch`.

        Padding is all-zero constituent slots only: a slot with a negative or
        zero energy/pt that is not all zero is bad, never padding.
        """
        return []

    def describe(self, field: str, row: int, index: Tuple[int, ...]) -> str:
        """Name the element ``[row, *index]`` of a raw field in an error message (a column, a particle slot)."""
        return f"'{field}'[{', '.join(map(str, (row,) + tuple(index)))}]"


# ------------------------------------------------------------ the read driver
class JetChunks:
    """Iterator of JetBatch chunks of at most ``chunk_size`` jets, as returned by the readers.

    Each chunk comes from one file and holds at most ``chunk_size`` rows, so
    memory is bounded by the chunk size. Files are opened lazily and closed
    when their rows are done, or by :meth:`close` (also on leaving a ``with``
    block) when iteration stops early. Chunks emptied by ``skip_bad`` are
    left out.

    Attributes:
        class_names: the class names of every chunk.
        n_rows: rows that will be read (after ``max_jets``, before dropping bad jets).
        skipped: {file path: {reason: count}} of jets dropped by ``skip_bad=True``
            so far; a :class:`SkippedJetsWarning` repeats it when iteration ends.
    """

    def __init__(self, plan: List[Tuple[FileReader, List[Tuple[int, int]]]], skip_bad: bool,
                 class_names: Tuple[str, ...]):
        self.class_names = class_names
        self.n_rows = sum(stop - start for _, ranges in plan for start, stop in ranges)
        self._n_slots = max(reader.n_slots for reader, _ in plan)
        self.skipped: Dict[str, Dict[str, int]] = {}
        self._plan = plan
        self._skip_bad = skip_bad
        self._all = self._generate()  # every chunk, empty ones included

    def __iter__(self) -> "JetChunks":
        return self

    def __next__(self) -> JetBatch:
        for batch in self._all:
            if len(batch):
                return batch
        self._warn_skipped(stacklevel=3)  # _warn_skipped -> __next__ -> the caller's loop
        raise StopIteration

    def close(self) -> None:
        """Stop reading and close the open file."""
        self._all.close()

    def __enter__(self) -> "JetChunks":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _generate(self) -> Iterator[JetBatch]:
        for reader, ranges in self._plan:
            with contextlib.closing(reader.read_rows(ranges)) as raw_chunks:
                for start, stop in ranges:
                    with file_errors(reader.path, f"rows {start}:{stop}"):
                        raw = next(raw_chunks)
                    yield self._clean(reader, raw, np.arange(start, stop))

    def _clean(self, reader: FileReader, raw: RawChunk, rows: np.ndarray) -> JetBatch:
        """Drop (``skip_bad``) or reject jets with non-finite or unphysical values, or no constituents."""
        keep = np.ones(len(rows), dtype=bool)
        checks = [BadValues(field, ~np.isfinite(values), f"non-finite values (NaN or inf) in '{field}'",
                            "finite numbers") for field, values in raw.items() if values.dtype.kind == "f"]
        with np.errstate(invalid="ignore"):  # NaNs compare False here; they were flagged above
            checks += reader.unphysical(raw)
        for check in checks:
            bad_jet = check.bad.reshape(len(rows), int(np.prod(check.bad.shape[1:]))).any(axis=1)
            self._reject(reader, keep & bad_jet, rows, check.reason, check.expected, raw, check)
            keep &= ~bad_jet
        if not keep.all():
            raw, rows = {k: v[keep] for k, v in raw.items()}, rows[keep]
        batch = reader.to_batch(raw, rows)
        empty = batch.n_constituents == 0
        self._reject(reader, empty, rows, f"no constituents in '{reader.constituent_field}'",
                     "at least one constituent per jet")
        return batch.select(~empty) if empty.any() else batch

    def _reject(self, reader: FileReader, bad: np.ndarray, rows: np.ndarray, reason: str, expected: str,
                raw: Optional[RawChunk] = None, check: Optional[BadValues] = None) -> None:
        if not bad.any():
            return
        if not self._skip_bad:
            i = int(np.flatnonzero(bad)[0])
            where = ""
            if check is not None:  # the first bad element of that jet: its field and value
                row_bad = check.bad[i]
                index = tuple(int(k) for k in np.argwhere(row_bad)[0]) if np.ndim(row_bad) else ()
                index = check.to_index(index) if check.to_index is not None else index
                value = float(raw[check.field][(i,) + index])
                where = f": {reader.describe(check.field, int(rows[i]), index)} = {value:.6g}"
            raise FileFormatError(
                f"{reader.path}: {reason} for {int(bad.sum())} jets, first at row {rows[i]}{where}; "
                f"expected {expected} (skip_bad=True drops such jets and counts them)"
            )
        counts = self.skipped.setdefault(str(reader.path), {})
        counts[reason] = counts.get(reason, 0) + int(bad.sum())

    def _warn_skipped(self, stacklevel: int) -> None:
        if not self.skipped:
            return
        total = sum(n for counts in self.skipped.values() for n in counts.values())
        detail = "; ".join(
            f"{name}: " + ", ".join(f"{n} with {reason}" for reason, n in counts.items())
            for name, counts in self.skipped.items()
        )
        message = f"skip_bad=True dropped {total} of {self.n_rows} jets read ({detail})"
        warnings.warn(SkippedJetsWarning(message, self.skipped), stacklevel=stacklevel)

    def _join(self) -> JetBatch:
        """Every chunk, empty ones included, in one JetBatch padded to the widest file.

        The chunks are copied into arrays allocated once: collecting them and
        concatenating would hold the data twice. Dropped bad jets leave unused
        rows at the end of those arrays, which are sliced off.
        """
        arrays, filled, first = {}, 0, None
        for batch in self._all:
            batch = batch.pad_to(self._n_slots)
            if first is None:
                first = batch
                arrays = {name: np.empty((self.n_rows,) + value.shape[1:], value.dtype)
                          for name, value in vars(batch).items() if isinstance(value, np.ndarray)}
            for name, array in arrays.items():
                array[filled:filled + len(batch)] = getattr(batch, name)
            filled += len(batch)
        return dataclasses.replace(first, **{name: array[:filled] for name, array in arrays.items()})


def read_files(
    readers: Sequence[FileReader],
    *,
    class_names: Tuple[str, ...],
    start: int,
    chunk_size: Optional[int],
    max_jets: Optional[int],
    per_file: bool,
    skip_bad: bool,
) -> Union[JetBatch, JetChunks]:
    """Read ``readers`` in order: a JetChunks iterator with ``chunk_size``, else one JetBatch.

    Rows ``[start, start + max_jets)`` are read (before bad jets are dropped),
    counted across the files in order, or within each file with ``per_file``.
    Called by the public readers only: the warning about skipped jets points
    at their caller.
    """
    _check_count("start", start, allow_none=False)
    _check_count("max_jets", max_jets, allow_none=True)
    for reader in readers:
        if reader.n_rows == 0:
            raise FileFormatError(f"{reader.path}: the file holds no jets ({reader.rows_field} has 0 rows); "
                                  "expected at least one jet")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    plan, skip, remaining = [], start, max_jets
    for reader in readers:
        step = chunk_size or max(1, ONE_SHOT_SLOTS // max(reader.n_slots, 1))
        first = min(skip, reader.n_rows)
        stop = reader.n_rows if remaining is None else min(reader.n_rows, first + remaining)
        if stop > first:
            plan.append((reader, [(s, min(s + step, stop)) for s in range(first, stop, step)]))
        if not per_file:
            skip -= first
            remaining = None if remaining is None else remaining - (stop - first)
    if not plan:  # nothing to read: one empty range still gives a correctly shaped batch
        plan = [(readers[0], [(0, 0)])]
    chunks = JetChunks(plan, skip_bad, class_names)
    if chunk_size is not None:
        return chunks
    batch = chunks._join()
    chunks._warn_skipped(stacklevel=4)  # _warn_skipped -> read_files -> public reader -> caller
    return batch


def _check_count(name: str, value, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer{' or None' if allow_none else ''}, got {value!r}")
