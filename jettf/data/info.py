"""What a built dataset is: :func:`load_info` and :class:`JetDatasetInfo`."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Dict, List, Optional

import numpy as np

from jettf.data import records
from jettf.data.records import RecordLayout

__all__ = ["JetDatasetInfo", "load_info", "split_dataset_name", "builder_class", "dataset_names",
           "default_data_dir", "DATA_DIR_ENV"]

#: Environment variable that sets the data directory of every command.
DATA_DIR_ENV = "JETTF_DATA_DIR"


def default_data_dir() -> str:
    """The one data directory every command uses unless told otherwise: ``$JETTF_DATA_DIR``, else ``./data``
    (absolute, so run directories that record it stay valid from anywhere)."""
    import os
    from pathlib import Path

    return str(Path(os.environ.get(DATA_DIR_ENV) or "data").resolve())


def split_dataset_name(name: str):
    """``"NAME/CONFIG"`` -> ``("NAME", "CONFIG")``; the config may be None."""
    dataset, _, config = str(name).partition("/")
    return dataset, (config or None)


class JetDatasetInfo:
    """A built jettf dataset: its specs, names, statistics and record files.

    Attributes:
        name: ``"NAME/CONFIG"``.
        builder: the ``tfds.core.DatasetBuilder`` (read from the built files).
        metadata: the dict saved with the dataset (see :mod:`jettf.data.builder_base`).
        layout: the :class:`~jettf.data.records.RecordLayout` of its records.
    """

    def __init__(self, builder):
        self.builder = builder
        self.metadata: dict = dict(builder.info.metadata or {})
        if "image_spec" not in self.metadata:
            raise ValueError(f"{builder.data_dir}: metadata.json has no 'image_spec'; this is not a jettf dataset "
                             "(or it was built by an older jettf: rebuild it)")
        self.name = f"{builder.name}/{builder.builder_config.name}" if builder.builder_config else builder.name
        self.layout = RecordLayout.from_metadata(self.metadata)

    # ------------------------------------------------------------- specs
    @functools.cached_property
    def image_spec(self):
        from jettf.images import ImageSpec

        return ImageSpec.from_dict(self.metadata["image_spec"])

    @functools.cached_property
    def feature_spec(self):
        from jettf.features import FeatureSpec

        return FeatureSpec.from_dict(self.metadata["feature_spec"])

    @functools.cached_property
    def extra_image_specs(self) -> dict:
        """``{name: ImageSpec}`` of the second images the records carry (004's ``hcal``); empty for jets."""
        from jettf.images import ImageSpec

        return {name: ImageSpec.from_dict(spec) for name, spec in (self.metadata.get("extra_image_specs") or {}).items()}

    def extra_image_statistics(self, name: str) -> tuple:
        """``(pixel_mean, pixel_std)`` float32 ``[npix, npix, C]`` of the second image ``name`` (training split)."""
        stats = (self.metadata.get("extra_image_statistics") or {}).get(name)
        if stats is None:
            raise ValueError(f"{self.name}: no statistics of a second image {name!r} in the metadata "
                             f"(second images: {sorted(self.extra_image_specs)})")
        return records.decode_array(stats["pixel_mean"]), records.decode_array(stats["pixel_std"])

    def extra_max_pixels(self, name: str) -> int:
        """The static length of the padded sparse second image ``name``."""
        return int((self.metadata.get("extra_max_pixels") or {}).get(name) or 1)

    @property
    def class_names(self) -> List[str]:
        return list(self.metadata["class_names"])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def feature_names(self) -> List[str]:
        return list(self.metadata["feature_names"])

    @property
    def source(self) -> dict:
        """``{"kind": "public" | "generated", ...}``: files with checksums, or generator settings."""
        return self.metadata.get("source", {})

    @functools.cached_property
    def pixel_mean(self) -> np.ndarray:
        """Per-pixel mean image of the training split, float32 ``[npix, npix, C]``."""
        return records.decode_array(self.metadata["pixel_mean"])

    @functools.cached_property
    def pixel_std(self) -> np.ndarray:
        """Per-pixel standard deviation image of the training split, float32 ``[npix, npix, C]`` (0 where empty)."""
        return records.decode_array(self.metadata["pixel_std"])

    # ------------------------------------------------------------- splits
    @property
    def splits(self) -> Dict[str, int]:
        """``{split: number of jets}``."""
        return {name: int(s.num_examples) for name, s in self.builder.info.splits.items()}

    def num_examples(self, split: str) -> int:
        """Jets in a split, slicing included (``"train[:20%]"``)."""
        return int(self.builder.info.splits[split].num_examples)

    def file_instructions(self, split: str):
        """``[(path, skip, take)]`` of a split string (TFDS slicing: ``train[10%:30%]+train[50%:]``)."""
        out = []
        for fi in self.builder.info.splits[split].file_instructions:
            path = fi.filename
            if not str(path).startswith("/") and "://" not in str(path):
                path = f"{self.builder.data_dir}/{path}"
            out.append((str(path), int(fi.skip), int(fi.take)))
        return out

    @functools.cached_property
    def parser(self) -> records.RecordParser:
        """Batch parser of this dataset's records (TFDS' feature decoding), padded to static lengths:
        sparse images to ``max_pixels``, constituents and pid to ``max_constituents``."""
        m = self.layout.max_constituents
        pad_to = {"image_index": self.max_pixels, "image_values": self.max_pixels, "constituents": m, "pid": m}
        for name in self.extra_image_specs:
            pad_to[f"{name}_index"] = pad_to[f"{name}_values"] = self.extra_max_pixels(name)
        return records.RecordParser(self.builder.info.features, pad_to)

    @property
    def max_pixels(self) -> int:
        """The most sparse-image entries of any stored jet (non-empty pixels, or constituents inside the
        image for the per-constituent layout of additive specs): the static length of padded sparse images."""
        return int(self.metadata.get("max_pixels") or self.layout.max_constituents)

    def labels(self, split: str = "train") -> np.ndarray:
        """The labels of a split in record order (reads only the labels)."""
        import tensorflow as tf

        if not self.num_examples(split):
            return np.zeros(0, np.int64)
        ds = _instructions_dataset(self.file_instructions(split)).batch(8192).map(
            tf.autograph.experimental.do_not_convert(lambda s: self.parser.parse(s, ["label"])["label"]))
        return np.concatenate(list(ds.as_numpy_iterator()))

    def fingerprint(self) -> str:
        """16 hex digits identifying the content: specs, class names, split sizes and every record file's SHA-256.

        Records are byte-identical between builds of the same jets (keys fix their
        order, map fields are serialized deterministically), so two builds with
        identical records have the same fingerprint whatever their paths, build
        times or source-file timestamps, and any changed record changes it. The
        record files are read once per info object (about a second per GB).
        """
        if "_fingerprint" not in self.__dict__:
            from jettf.utils import sha256_file

            payload = {
                "image_spec": self.metadata.get("image_spec_fingerprint"),
                "feature_spec": self.metadata.get("feature_spec_fingerprint"),
                "class_names": self.class_names,
                "splits": self.splits,
                "records": {name: [sha256_file(p) for p in split.filepaths]
                            for name, split in self.builder.info.splits.items()},
            }
            self.__dict__["_fingerprint"] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        return self.__dict__["_fingerprint"]

    def summary(self) -> str:
        """A few human lines: what it is, where it came from, how big."""
        src = self.source
        if src.get("kind") == "public":
            origin = f"public files in {src.get('directory')} ({len(src.get('files', []))} files, sha256 recorded)"
        elif src.get("kind") == "generated":
            where = f"from --manual-dir {src.get('directory')}" if src.get("manual_dir") else src.get("directory")
            origin = (f"generated with Pythia 8 + FastJet: {src.get('n_jets_per_class')} jets per class, "
                      f"seed {src.get('seed')} ({where})")
        else:
            origin = "unknown source"
        spec = self.image_spec
        counts = self.metadata.get("selection", {}).get("split_counts", {})
        lines = [
            f"{self.name} (version {self.builder.info.version}) in {self.builder.data_dir}",
            f"  source: {origin}",
            f"  images: {spec.npix}x{spec.npix}x{spec.n_channels} {list(spec.channels)} over +-{spec.extent}, "
            f"center={spec.center}; {len(self.feature_names)} global features",
            *[f"  second image {name!r}: {e.npix}x{e.npix}x{e.n_channels} {list(e.channels)} over +-{e.extent}"
              for name, e in self.extra_image_specs.items()],
            *(["  per-candidate weights stored (used in training and evaluation)"] if self.layout.has_weight else []),
            "  splits: " + ", ".join(f"{s} {n} {counts.get(s, '')}" for s, n in self.splits.items()),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"JetDatasetInfo({self.name!r}, splits={self.splits}, source={self.source.get('kind')!r})"


def _instructions_dataset(instructions, shuffle_seed=None, deterministic=True, cycle_length=None):
    """Serialized records of ``[(path, skip, take)]``: in split order, or (with a shuffle
    seed) from shuffled shards interleaved in parallel."""
    import tensorflow as tf

    paths = tf.constant([p for p, _, _ in instructions], tf.string)
    skips = tf.constant([s for _, s, _ in instructions], tf.int64)
    takes = tf.constant([t for _, _, t in instructions], tf.int64)
    files = tf.data.Dataset.from_tensor_slices((paths, skips, takes))
    if shuffle_seed is not None and len(instructions) > 1:
        # The same order on every iteration: a seed fixes the order (see make_dataset's ``seed``).
        files = files.shuffle(len(instructions), seed=shuffle_seed, reshuffle_each_iteration=False)
    read = tf.autograph.experimental.do_not_convert(
        lambda p, s, t: tf.data.TFRecordDataset(p, buffer_size=1 << 20).skip(s).take(t))
    if shuffle_seed is None or len(instructions) == 1:
        return files.flat_map(read)  # records in split order
    return files.interleave(
        read,
        cycle_length=cycle_length or min(len(instructions), 16),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def builder_class(name: str):
    """The TFDS builder class of a jettf dataset ``NAME`` (TFDS' own registry, after ``import tfds_builders``)."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers the builders with TFDS)
    from jettf.data.builder_base import JetImageBuilder

    try:
        cls = tfds.builder_cls(name)
    except Exception:  # DatasetNotFoundError
        cls = None
    if cls is None or not issubclass(cls, JetImageBuilder):
        raise ValueError(f"unknown dataset {name!r}; jettf builds {dataset_names()}")
    return cls


def dataset_names() -> List[str]:
    """Names of the jettf datasets registered with TFDS (the builders in ``tfds_builders``)."""
    import tfds_builders
    from jettf.data.builder_base import JetImageBuilder

    return sorted(cls.name for cls in vars(tfds_builders).values()
                  if isinstance(cls, type) and issubclass(cls, JetImageBuilder))


def load_info(name: str, data_dir: Optional[str] = None) -> JetDatasetInfo:
    """The :class:`JetDatasetInfo` of a built dataset ``"NAME/CONFIG"`` in ``data_dir``.

    Never builds anything: a missing dataset raises ``FileNotFoundError`` with the
    command that builds it. Works for configs made by ``--n-jets`` (``quick-n500``),
    which exist only as files.
    """
    from pathlib import Path

    import tensorflow_datasets as tfds

    data_dir = str(Path(data_dir or default_data_dir()).resolve())  # relative record paths would resolve twice
    dataset, config = split_dataset_name(name)
    builder_class(dataset)
    full = f"{dataset}/{config}" if config else dataset
    n_jets = config.rpartition("-n")[2] if config and "-n" in config else None
    hint = (f"build it with: python -m jettf.data build {full.rpartition('-n')[0] if n_jets else full}"
            + (f" --n-jets {n_jets}" if n_jets else "") + f" --data-dir {data_dir}")
    try:
        builder = tfds.builder(full, data_dir=data_dir)
    except Exception:  # DatasetNotFoundError, unknown config without files
        raise FileNotFoundError(f"dataset {full} is not built in {data_dir}; "
                                f"{hint}") from None
    if not builder.is_prepared():
        raise FileNotFoundError(f"dataset {full} is not built in {builder.data_dir}; {hint}")
    return JetDatasetInfo(builder)
