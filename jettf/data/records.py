"""The record layout shared by the TFDS builders (writing) and the input pipeline (reading).

One record is one jet. Every builder stores the same flat feature keys, so
one parser reads them all:

==================  ====================  ==================================================
key                 TFDS feature          meaning
==================  ====================  ==================================================
``image_index``     int32 ``[K]``         flat pixel indices ``eta_bin * npix + phi_bin``; one entry
                                          per constituent inside the image for additive specs
                                          (a pixel may repeat: its entries add up), unique
                                          pixels for specs with a non-additive channel (mass)
``image_values``    float32 ``[K, C]``    the entries' channel values (ImageSpec units)
``global_features`` float32 ``[F]``       FeatureSpec values, names in the metadata
``constituents``    float32 ``[M_j, 4]``  (pt, eta, phi, energy) of the (up to M) hardest
                                          constituents, pt-ordered, GeV and radians
``pid``             int32 ``[M_j]``       PDG ids (quark/gluon only: ``has_pid``)
``jet``             float32 ``[4]``       jet (pt, eta, phi, mass)
``n_outside``       int32 scalar          constituents that fell outside the image
``label``           ClassLabel            the class, with physics names
``<name>_index``,   int32 ``[K']``,       a second image of another granularity (004's 8 x 8 HCAL
``<name>_values``   float32 ``[K', C']``  beside the 31 x 31 ECAL), sparse like ``image_*``; only
                                          datasets with ``extra_images``
``weight``          float32 scalar        the source's per-candidate weight (004's pt reweighting);
                                          only datasets with ``has_weight``
==================  ====================  ==================================================

Variable-length features are stored unpadded (TFDS writes them as flat
int64/float lists); :class:`RecordParser` parses a whole batch of serialized
records at once with the spec TFDS derives from the ``FeaturesDict``.

Sources that hold images rather than constituents (003's E2E files) are read as
:class:`ImageRows`: their records keep the same keys, with the stored pixels
as ``image_index``/``image_values``, no constituents (``M = 0``), no global
features (``F = 0``) and ``n_outside = 0``, unless the source gives features computed from its images (004's
expert features and isolation cones), per-candidate weights, cells (the non-zero pixels as constituents, for
PFN/EFN) or a second image.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "CONSTITUENT_NAMES",
    "JET_NAMES",
    "RecordLayout",
    "ImageRows",
    "tfds_features",
    "iter_examples",
    "RecordParser",
    "pixel_moments",
    "encode_array",
    "decode_array",
]

#: Columns of the ``constituents`` feature.
CONSTITUENT_NAMES = ("pt", "eta", "phi", "energy")
#: Columns of the ``jet`` feature.
JET_NAMES = ("pt", "eta", "phi", "mass")


class RecordLayout:
    """Static shapes of a dataset's records, from its metadata.

    Attributes:
        npix: image side; flat pixel indices run over ``[0, npix * npix)``.
        n_channels: ``C``.
        n_features: ``F``, the number of global features.
        max_constituents: ``M``, the most constituents a record holds.
        has_pid: records carry a ``pid`` feature.
        extra_images: ``{name: (npix, n_channels)}`` of the second images records carry (``<name>_index``,
            ``<name>_values``); empty for jet datasets.
        has_weight: records carry a per-candidate ``weight``.
    """

    def __init__(self, npix: int, n_channels: int, n_features: int, max_constituents: int, has_pid: bool,
                 extra_images: Optional[Dict[str, Tuple[int, int]]] = None, has_weight: bool = False):
        self.npix, self.n_channels, self.n_features = int(npix), int(n_channels), int(n_features)
        self.max_constituents, self.has_pid = int(max_constituents), bool(has_pid)
        self.extra_images = {str(k): (int(v[0]), int(v[1])) for k, v in (extra_images or {}).items()}
        self.has_weight = bool(has_weight)

    @classmethod
    def from_metadata(cls, metadata: dict) -> "RecordLayout":
        spec = metadata["image_spec"]
        extra = {name: (s["npix"], len(s["channels"])) for name, s in (metadata.get("extra_image_specs") or {}).items()}
        return cls(
            npix=spec["npix"],
            n_channels=len(spec["channels"]),
            n_features=len(metadata["feature_names"]),
            max_constituents=metadata["max_constituents"],
            has_pid=metadata["has_pid"],
            extra_images=extra,
            has_weight=metadata.get("has_weight", False),
        )

    def __repr__(self) -> str:
        return (f"RecordLayout(npix={self.npix}, n_channels={self.n_channels}, n_features={self.n_features}, "
                f"max_constituents={self.max_constituents}, has_pid={self.has_pid}, "
                f"extra_images={self.extra_images}, has_weight={self.has_weight})")


def tfds_features(layout: RecordLayout, class_names: Sequence[str]):
    """The ``tfds.features.FeaturesDict`` of a record."""
    import tensorflow_datasets as tfds

    features = {
        "image_index": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        "image_values": tfds.features.Tensor(shape=(None, layout.n_channels), dtype=np.float32),
        "global_features": tfds.features.Tensor(shape=(layout.n_features,), dtype=np.float32),
        "constituents": tfds.features.Tensor(shape=(None, len(CONSTITUENT_NAMES)), dtype=np.float32),
        "jet": tfds.features.Tensor(shape=(len(JET_NAMES),), dtype=np.float32),
        "n_outside": tfds.features.Tensor(shape=(), dtype=np.int32),
        "label": tfds.features.ClassLabel(names=list(class_names)),
    }
    if layout.has_pid:
        features["pid"] = tfds.features.Tensor(shape=(None,), dtype=np.int32)
    for name, (_, n_channels) in layout.extra_images.items():
        features[f"{name}_index"] = tfds.features.Tensor(shape=(None,), dtype=np.int32)
        features[f"{name}_values"] = tfds.features.Tensor(shape=(None, n_channels), dtype=np.float32)
    if layout.has_weight:
        features["weight"] = tfds.features.Tensor(shape=(), dtype=np.float32)
    return tfds.features.FeaturesDict(features)


def iter_examples(sparse, features: np.ndarray, jets, has_pid: bool) -> Iterator[dict]:
    """One TFDS example dict per jet (TFDS encodes and writes examples one at a time).

    Args:
        sparse: :class:`jettf.images.SparseImages` of the jets.
        features: float32 ``[N, F]`` global features.
        jets: the :class:`JetBatch`, constituents sorted by pt (real ones first) and
            padded/truncated to the stored maximum.
        has_pid: also store ``pid``.

    The slicing is vectorized; only the per-example dict is built in the loop.
    """
    n = len(jets)
    count = np.asarray(sparse.count, dtype=np.int64)
    n_cons = jets.n_constituents.astype(np.int64)
    constituents = np.stack([jets.pt, jets.eta, jets.phi, jets.energy], axis=-1).astype(np.float32)
    jet = np.stack([jets.jet_pt, jets.jet_eta, jets.jet_phi, jets.jet_mass], axis=-1).astype(np.float32)
    index = np.asarray(sparse.index, dtype=np.int32)
    values = np.asarray(sparse.values, dtype=np.float32)
    n_outside = np.broadcast_to(np.asarray(sparse.n_outside, dtype=np.int32), (n,))
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(jets.labels, dtype=np.int64)
    pid = jets.pid if has_pid else None
    if has_pid and pid is None:
        raise ValueError("iter_examples: the dataset stores 'pid' but the JetBatch has none")
    for i in range(n):
        k, m = count[i], n_cons[i]
        example = {
            "image_index": index[i, :k],
            "image_values": values[i, :k],
            "global_features": features[i],
            "constituents": constituents[i, :m],
            "jet": jet[i],
            "n_outside": n_outside[i],
            "label": labels[i],
        }
        if has_pid:
            example["pid"] = pid[i, :m].astype(np.int32)
        yield example


@dataclasses.dataclass
class ImageRows:
    """Images read from source files that store images, not constituents (003's E2E jet views, 004's
    calorimeter images).

    A builder's ``read_range`` returns these instead of a JetBatch; the shard stage then stores the
    pixels as they are (no rendering, no FeatureSpec features). ``n_constituents`` (what
    ``min_constituents`` counts) is the number of non-empty pixels.

    Attributes:
        index: int32 ``[N, K]`` flat pixel indices ``row * npix + col`` (unique, ascending), 0 after ``count``.
        values: float32 ``[N, K, C]`` the pixels' values in ``channels``, 0 after ``count``.
        count: int64 ``[N]`` non-empty pixels per image.
        channels: channel names (:data:`jettf.images.channels.CHANNELS`); npix: image side.
        labels: int64 ``[N]``; class_names: their names. jet: float32 ``[N, 4]`` (pt, eta, phi, mass).
        features: float32 ``[N, F]`` features the source computes from its images (None: none).
        weight: float32 ``[N]`` per-candidate weights (None: none).
        cells: float32 ``[N, M, 4]`` constituents made of the image's cells (pt, eta, phi, energy), hardest
            first, zero-padded (None: none).
        extra: ``{name: ImageRows}`` second images of the same rows at another granularity (None: none).
    """

    index: np.ndarray
    values: np.ndarray
    count: np.ndarray
    channels: Tuple[str, ...]
    npix: int
    labels: np.ndarray
    jet: np.ndarray
    class_names: Optional[Tuple[str, ...]] = None
    features: Optional[np.ndarray] = None
    weight: Optional[np.ndarray] = None
    cells: Optional[np.ndarray] = None
    extra: Optional[Dict[str, "ImageRows"]] = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_constituents(self) -> np.ndarray:
        return self.count

    @classmethod
    def from_dense(cls, images: np.ndarray, channels: Sequence[str], labels, jet, class_names=None,
                   **rows) -> "ImageRows":
        """From dense ``[N, npix, npix, C]`` images (a pixel is non-empty when any channel is non-zero);
        ``rows``: the optional per-row fields (``features``, ``weight``, ``cells``, ``extra``)."""
        n, npix = images.shape[0], images.shape[1]
        flat = np.asarray(images, dtype=np.float32).reshape(n, npix * npix, -1)
        row, pixel = np.nonzero(np.any(flat != 0, axis=-1))
        count = np.bincount(row, minlength=n).astype(np.int64)
        slot = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
        width = int(count.max(initial=0))
        index = np.zeros((n, width), np.int32)
        values = np.zeros((n, width, flat.shape[-1]), np.float32)
        index[row, slot] = pixel
        values[row, slot] = flat[row, pixel]
        return cls(index, values, count, tuple(channels), int(npix), np.asarray(labels, dtype=np.int64),
                   np.asarray(jet, dtype=np.float32), None if class_names is None else tuple(class_names), **rows)

    def _per_row(self) -> Dict[str, np.ndarray]:
        """The per-row arrays that are set."""
        names = ("index", "values", "count", "labels", "jet", "features", "weight", "cells")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def select(self, rows) -> "ImageRows":
        extra = None if self.extra is None else {k: v.select(rows) for k, v in self.extra.items()}
        return dataclasses.replace(self, **{k: v[rows] for k, v in self._per_row().items()}, extra=extra)

    @staticmethod
    def concatenate(parts: Sequence["ImageRows"]) -> "ImageRows":
        """Rows of all parts (same channels and side), padded to the widest."""
        def joined(arrays):  # index, values and cells have per-part widths (axis 1): zero-pad to the widest
            if arrays[0].ndim < 2:
                return np.concatenate(arrays)
            width = max(a.shape[1] for a in arrays)
            return np.concatenate([np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
                                   for a in arrays])

        first = parts[0]
        fields = {k: joined([p._per_row()[k] for p in parts]) for k in first._per_row()}
        extra = None if first.extra is None else {
            k: ImageRows.concatenate([p.extra[k] for p in parts]) for k in first.extra}
        return dataclasses.replace(first, **fields, extra=extra)

    def sparse(self, image_spec, where: str = "source") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(index [N, K], values [N, K, C], count [N])`` of the ``image_spec``'s channels, the pixels empty
        in all of them left out (used entries first, in pixel order)."""
        missing = [c for c in image_spec.channels if c not in self.channels]
        if missing or image_spec.npix != self.npix:
            raise ValueError(f"{where}: the files hold {self.npix}x{self.npix} images of channels "
                             f"{list(self.channels)}; the config's ImageSpec needs {image_spec.npix}x{image_spec.npix} "
                             f"with {list(image_spec.channels)} (missing {missing})")
        values = self.values[..., [self.channels.index(c) for c in image_spec.channels]]
        used = np.any(values != 0, axis=-1) & (np.arange(self.index.shape[1]) < self.count[:, None])
        order = np.argsort(~used, axis=1, kind="stable")
        index = np.take_along_axis(self.index, order, axis=1)
        values = np.take_along_axis(values, order[..., None], axis=1)
        return index, values, used.sum(axis=1)

    def examples(self, image_spec, where: str = "source", extra_specs: Optional[dict] = None) -> Iterator[dict]:
        """One example per row holding the ``image_spec``'s channels (and each ``extra_specs[name]``'s channels
        of the second image ``name``), with the features, weight and cells the rows carry."""
        index, values, count = self.sparse(image_spec, where)
        extra_specs = dict(extra_specs or {})
        if sorted(extra_specs) != sorted(self.extra or {}):
            raise ValueError(f"{where}: the rows hold second images {sorted(self.extra or {})}; the config expects "
                             f"{sorted(extra_specs)}")
        extras = {name: self.extra[name].sparse(spec, where) for name, spec in extra_specs.items()}
        features = np.zeros((len(self), 0), np.float32) if self.features is None else self.features.astype(np.float32)
        cells = np.zeros((len(self), 0, len(CONSTITUENT_NAMES)), np.float32) if self.cells is None else self.cells
        n_cells = (cells[..., 0] > 0).sum(axis=1)
        for i in range(len(self)):
            k = count[i]
            example = {"image_index": index[i, :k], "image_values": values[i, :k], "global_features": features[i],
                       "constituents": cells[i, :n_cells[i]].astype(np.float32), "jet": self.jet[i],
                       "n_outside": np.int32(0), "label": self.labels[i]}
            for name, (e_index, e_values, e_count) in extras.items():
                example[f"{name}_index"], example[f"{name}_values"] = e_index[i, :e_count[i]], e_values[i, :e_count[i]]
            if self.weight is not None:
                example["weight"] = np.float32(self.weight[i])
            yield example


# ------------------------------------------------------------------- reading
class RecordParser:
    """Parses batches of serialized records with TFDS' own feature decoding.

    The ``tf.io`` spec comes from the dataset's ``FeaturesDict`` (TFDS'
    ``ExampleParser``, as ``builder.as_dataset`` uses), applied to a whole batch
    at once: variable-length features arrive zero-padded to the longest in the
    batch (TFDS' default value), and :meth:`parse` pads them further to the
    dataset's static lengths (``pad_to``), so every batch has the same shapes.
    """

    def __init__(self, features, pad_to: Optional[Dict[str, int]] = None):
        from tensorflow_datasets.core import example_parser

        self.tensor_info = dict(features.get_serialized_info())
        self.specs = example_parser.ExampleParser(self.tensor_info).flat_feature_specs
        self.pad_to = dict(pad_to or {})

    def parse(self, serialized, keys: Sequence[str]) -> Dict[str, "tf.Tensor"]:
        """``{key: tensor}`` of a batch ``[B]`` of serialized records (TFDS dtypes and shapes, batch axis first)."""
        import tensorflow as tf

        unknown = sorted(set(keys) - set(self.specs))
        if unknown:
            raise ValueError(f"records have no feature(s) {unknown}; they hold {sorted(self.specs)}")
        parsed = tf.io.parse_example(serialized, {k: self.specs[k] for k in keys})
        out = {}
        for key in keys:
            x = tf.cast(parsed[key], self.tensor_info[key].tf_dtype)
            if key in self.pad_to:
                length = self.pad_to[key]
                x = tf.pad(x, [[0, 0], [0, length - tf.shape(x)[1]]] + [[0, 0]] * (x.shape.rank - 2))
                x = tf.ensure_shape(x, [None, length, *x.shape[2:]])
            out[key] = x
        return out


def pixel_moments(index: np.ndarray, values: np.ndarray, npix: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per-pixel sums over jets of the pixel values and of their squares, float64 ``[npix * npix, C]``.

    ``index`` int ``[B, K]`` and ``values`` ``[B, K, C]`` are padded sparse images. A pixel may
    have several entries in a jet (the per-constituent layout; see :class:`jettf.images.SparseImages`):
    its value is the sum of its entries, so the entries are first added per (jet, pixel) and those
    sums squared (squaring each entry would miss the cross terms). Padding (value 0) adds nothing.
    """
    n_pix = npix * npix
    index = np.asarray(index, dtype=np.int64)
    n_jets = index.shape[0]
    keys = (np.arange(n_jets, dtype=np.int64)[:, None] * n_pix + index).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(keys), values.shape[-1])
    pixels, slot = np.unique(keys, return_inverse=True)  # one slot per (jet, pixel)
    pixel = pixels % n_pix
    sums, squares = [], []
    for c in range(values.shape[1]):
        per_jet = np.bincount(slot, weights=values[:, c], minlength=len(pixels))
        sums.append(np.bincount(pixel, weights=per_jet, minlength=n_pix))
        squares.append(np.bincount(pixel, weights=per_jet**2, minlength=n_pix))
    return np.stack(sums, -1).reshape(n_pix, -1), np.stack(squares, -1).reshape(n_pix, -1)


# --------------------------------------------------------- arrays in metadata
def encode_array(array: np.ndarray) -> dict:
    """A float32 array as a JSON-able dict (base64 of the little-endian bytes): exact and compact."""
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"dtype": "float32", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(encoded: dict) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    if not isinstance(encoded, dict) or set(encoded) != {"dtype", "shape", "base64"}:
        raise ValueError(f"decode_array: expected a dict with dtype, shape and base64, got {type(encoded).__name__}")
    if encoded["dtype"] != "float32":
        raise ValueError(f"decode_array: dtype {encoded['dtype']!r}; expected 'float32'")
    data = np.frombuffer(base64.b64decode(encoded["base64"]), dtype="<f4")
    return data.reshape(encoded["shape"]).astype(np.float32)
