"""Row ranges of public files, for the builders' independent shard tasks (through ``jettf.io``).

Bad jets are not skipped (``skip_bad=False``): a public file with NaNs or empty
jets stops the build with ``jettf.io``'s error naming the file and row, rather
than silently shifting rows between the planning pass and the shard tasks.
"""

from __future__ import annotations

from pathlib import Path

from jettf.jets import JetBatch

__all__ = ["jetnet_range", "top_tagging_range", "quark_gluon_range", "cms_quark_gluon_range", "count_rows"]


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


def cms_quark_gluon_range(path: str, start: int, stop: int):
    """Rows of a CMS E2E file (003) as :class:`jettf.data.records.ImageRows`: the (tracks, ecal, hcal) jet views and,
    in generated files, the generator-level (em, had) views of the same jets; jet (pt, 0, 0, m0) (the public layout
    has no eta, phi). Read in chunks of 256 images; the channel-order and label checks run on the file's first rows
    (``start == 0``)."""
    import numpy as np

    from jettf.data.records import ImageRows
    from jettf.io import read_cms_quark_gluon
    from jettf.io.cms_quark_gluon import image_fields

    fields = ["X_jets"] + [f for f in ("X_jets_gen",) if f in image_fields(path)]
    readers = [read_cms_quark_gluon(path, field=f, start=start, max_jets=stop - start, chunk_size=256,
                                    check=start == 0) for f in fields]
    parts = []
    for chunks in zip(*readers):
        first = chunks[0]
        zeros = np.zeros(len(first), np.float32)
        parts.append(ImageRows.from_dense(np.concatenate([c.images for c in chunks], axis=-1),
                                          sum((c.channels for c in chunks), ()), first.labels,
                                          np.stack([first.pt, zeros, zeros, first.m0], axis=-1), first.class_names))
    return ImageRows.concatenate(parts)


def count_rows(reader, path: str) -> int:
    """Rows in a file, from its header (the reader's lazy chunk iterator reads no data)."""
    return int(reader(path, chunk_size=1 << 30).n_rows)
