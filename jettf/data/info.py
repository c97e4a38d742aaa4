"""What a built dataset is: :func:`load_info` and :class:`JetDatasetInfo`."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Dict, List, Optional

import numpy as np

from jettf.data import records
from jettf.data.records import RecordLayout

__all__ = ["JetDatasetInfo", "load_info", "split_dataset_name"]


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

    def labels(self, split: str = "train") -> np.ndarray:
        """The labels of a split in record order (reads only the labels)."""
        import tensorflow as tf

        ds = _instructions_dataset(self.file_instructions(split)).batch(8192).map(
            tf.autograph.experimental.do_not_convert(records.parse_labels))
        return np.concatenate(list(ds.as_numpy_iterator())) if self.num_examples(split) else np.zeros(0, np.int32)

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
            f"center={spec.center}, crop={spec.crop}; {len(self.feature_names)} global features",
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
        files = files.shuffle(len(instructions), seed=shuffle_seed, reshuffle_each_iteration=True)
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


def load_info(name: str, data_dir: Optional[str] = None) -> JetDatasetInfo:
    """The :class:`JetDatasetInfo` of a built dataset ``"NAME/CONFIG"`` in ``data_dir``.

    Works for configs made by ``--n-jets`` (``quick-n500``), which exist only as files.
    """
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers the builders)

    dataset, config = split_dataset_name(name)
    if dataset not in tfds_builders.BUILDERS:
        raise ValueError(f"unknown dataset {dataset!r}; jettf builds {sorted(tfds_builders.BUILDERS)}")
    full = f"{dataset}/{config}" if config else dataset
    hint = f"build it with: python -m jettf.data build {full}" + (f" --data-dir {data_dir}" if data_dir else "")
    try:
        builder = tfds.builder(full, data_dir=data_dir)
    except Exception as err:  # DatasetNotFoundError, unknown config without files
        raise FileNotFoundError(f"{full}: not found in {data_dir or 'the default TFDS data dir'} ({err}); {hint}") \
            from None
    if not builder.is_prepared():
        raise FileNotFoundError(f"{full}: not built in {builder.data_dir}; {hint}")
    return JetDatasetInfo(builder)
