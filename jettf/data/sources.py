"""Row ranges of public files, for the builders' independent shard tasks (through ``jettf.io``).

Bad jets are not skipped (``skip_bad=False``): a public file with NaNs or empty
jets stops the build with ``jettf.io``'s error naming the file and row, rather
than silently shifting rows between the planning pass and the shard tasks.
"""

from __future__ import annotations

from pathlib import Path

from jettf.jets import JetBatch

__all__ = ["jetnet_range", "top_tagging_range", "quark_gluon_range", "count_rows"]


def jetnet_range(path: str, start: int, stop: int, class_names) -> JetBatch:
    """Rows of one JetNet class file, labelled by the file's class within ``class_names``."""
    from jettf.io import read_jetnet

    name = Path(path).stem.rstrip("0123456789")
    batch = read_jetnet(path, start=start, max_jets=stop - start)
    return batch.with_labels(list(class_names).index(name), class_names)


def top_tagging_range(path: str, start: int, stop: int) -> JetBatch:
    from jettf.io import read_top_tagging

    return read_top_tagging(path, start=start, max_jets=stop - start)


def quark_gluon_range(path: str, start: int, stop: int) -> JetBatch:
    """Rows of one quark/gluon ``.npz`` (rows before ``start`` are decompressed and dropped,
    so the builder uses whole-file shards)."""
    from jettf.io import read_quark_gluon

    return read_quark_gluon(path, start=start, max_jets=stop - start)


def count_rows(reader, path: str) -> int:
    """Rows in a file, from its header (the reader's lazy chunk iterator reads no data)."""
    return int(reader(path, chunk_size=1 << 30).n_rows)
