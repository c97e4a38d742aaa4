"""Row ranges of public files, for the builders' independent shard tasks.

The builders read files only through ``jettf.io``. Its public readers read
from row 0 (``max_jets`` rows, optionally in chunks); a shard task needs rows
``[start, stop)`` of one file without reading the rows before them. Until the
readers take a ``start`` argument, this module drives ``jettf.io``'s own file
readers (``FileReader.read_rows`` with one range, cleaned by ``JetChunks``
exactly as the public readers clean) -- the one place that knows about it.

Bad jets are not skipped (``skip_bad=False``): a public file with NaNs or empty
jets stops the build with ``jettf.io``'s error naming the file and row, rather
than silently shifting rows between the planning pass and the shard tasks.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from jettf.jets import JetBatch

__all__ = ["jetnet_range", "top_tagging_range", "quark_gluon_range", "count_rows"]


def _supports_start(reader) -> bool:
    return "start" in inspect.signature(reader).parameters


def _read(reader_factory, class_names, start: int, stop: int) -> JetBatch:
    from jettf.io._common import JetChunks

    reader = reader_factory()
    stop = min(stop, reader.n_rows)
    chunks = JetChunks([(reader, [(start, stop)])], skip_bad=False, class_names=class_names)
    batches = list(chunks._all)  # one range -> one (possibly empty) batch
    return batches[0]


def jetnet_range(path: str, start: int, stop: int, class_names) -> JetBatch:
    """Rows of one JetNet class file, labelled by the file's class within ``class_names``."""
    from jettf.io import read_jetnet
    from jettf.io.jetnet import _JetNetFile

    name = Path(path).stem.rstrip("0123456789")
    label = list(class_names).index(name)
    if _supports_start(read_jetnet):
        batch = read_jetnet(path, start=start, max_jets=stop - start)
    else:
        batch = _read(lambda: _JetNetFile(path, 0, (name,), None), (name,), start, stop)
    return batch.with_labels(label, class_names)


def top_tagging_range(path: str, start: int, stop: int) -> JetBatch:
    from jettf.io import read_top_tagging
    from jettf.io.top_tagging import N_SLOTS, TOP_TAGGING_CLASSES, _TopTaggingFile

    if _supports_start(read_top_tagging):
        return read_top_tagging(path, start=start, max_jets=stop - start)
    return _read(lambda: _TopTaggingFile(path, N_SLOTS), TOP_TAGGING_CLASSES, start, stop)


def quark_gluon_range(path: str, start: int, stop: int) -> JetBatch:
    """Rows of one quark/gluon ``.npz``. Its reader streams the archive from row 0, so
    a range that does not start at 0 reads the rows before it too (the builder uses
    whole-file shards)."""
    from jettf.io import read_quark_gluon

    if _supports_start(read_quark_gluon):
        return read_quark_gluon(path, start=start, max_jets=stop - start)
    batch = read_quark_gluon(path, max_jets=stop)
    return batch if start == 0 else batch.select(np.arange(start, len(batch)))


def count_rows(reader, path: str, **kwargs) -> int:
    """Rows in a file, from its header (the reader's lazy chunk iterator reads no data)."""
    return int(reader(path, chunk_size=1 << 30, **kwargs).n_rows)
