"""The machinery every jettf TFDS builder shares; the builders in ``tfds_builders/`` only configure it.

A builder subclasses :class:`JetImageBuilder` and says three things: its
configs (:class:`JetImageConfig`: ImageSpec, FeatureSpec, jets, constituents),
where the public files are and how to read a row range of one (``jettf.io``),
and how jets are divided into splits. Everything else happens here, the same
way for every dataset:

1. **Source.** The public files are used when the manual directory holds them
   (checksums recorded); an explicit ``--manual-dir`` without them is an error.
   Files written by ``jettf.generate`` (a ``jettf_generated`` mark inside them, or
   its ``generation.json`` beside them) are recorded as a *generated* source with
   the generator's settings, never as public files.
   Otherwise :func:`jettf.generate.generate_sample` writes an equivalent sample
   in the public layout to ``<download_dir>/jettf_generated/...`` (kept for
   reuse, keyed by sample, jets and seed), and the same readers read it.
2. **Plan** (one streaming pass over the source, labels and constituent counts
   only kept): jets with fewer than ``min_constituents`` are dropped and
   counted, jets are assigned to splits (per source file, or by per-class
   fractions, i.e. stratified), and each split is put in *stratified order*:
   the ``j``-th of ``m_c`` jets of class ``c`` gets the sort key
   ``(j + 0.5) / m_c``, so every contiguous slice of a split holds each class
   in its overall proportion (to within one jet). The position in that order
   is the record's key; TFDS writes records in key order
   (``disable_shuffling``), so TFDS split slicing (``train[20%:40%]``) gives
   stratified folds and rounds, and two builds give identical files.
3. **Shards.** The plan becomes independent shard tasks (a file, a row range,
   the rows kept and their keys). Each task reads its rows, renders sparse
   images (ImageSpec), computes global features (FeatureSpec) and yields
   examples. Without Beam they run in this process (or in ``builder.workers``
   spawned processes); with a Beam runner (``DownloadConfig(beam_runner=...)``)
   each task is one Beam element; with ``builder.shard_runner`` (Beam's
   DaskRunner, :mod:`jettf.data.distributed`) each task is one Dask partition
   (so are the plan's row ranges and the Pythia shards of a generated sample)
   and TFDS' writer runs here. Either way the records and their order are
   the same, byte for byte (keys fix the order; map fields are serialized
   deterministically).
4. **Statistics** (after writing): one pass over the written records gives
   the per-pixel mean and standard deviation images of the training split
   (for 002's standardization), class counts per split and the number of
   constituents outside the image window; they go into the metadata.

The metadata (``builder.info.metadata``, saved as ``metadata.json`` beside
``dataset_info.json``) holds the ImageSpec and FeatureSpec (JSON and
fingerprints), class and feature names, the source (files with SHA-256, or
generator settings and seed), the selection, counts and the mean/std images.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow_datasets as tfds

from jettf.data import records
from jettf.data.records import RecordLayout

__all__ = ["RELEASE_NOTES", "JetImageConfig", "JetImageBuilder", "ShardTask", "stratified_order", "METADATA_FORMAT"]

log = logging.getLogger("jettf.data")

#: Version of the metadata layout written by this module.
METADATA_FORMAT = 1
#: The record-format history every jettf builder shares (``VERSION`` / ``RELEASE_NOTES`` of the builders).
RELEASE_NOTES = {
    "1.0.0": "First release: sparse images, global features, constituents, stratified order.",
    "2.0.0": "Global features exact on all constituents (002 preset); ImageSpec without crop (the crop is the "
             "model's ImagePreparation); sparse images of additive channels store one entry per constituent "
             "(repeated pixels add up when densified).",
}
#: Folder under the download directory that holds generated samples.
GENERATED_DIR = "jettf_generated"


def _say(message: str) -> None:
    """Tell the person building the dataset (stderr, beside TFDS' progress bars)."""
    print(f"[jettf.data] {message}", file=sys.stderr, flush=True)
    log.info(message)


# ---------------------------------------------------------------- the config
@dataclasses.dataclass(eq=False)
class JetImageConfig(tfds.core.BuilderConfig):
    """One dataset configuration.

    Attributes:
        image_spec: the :class:`jettf.images.ImageSpec` images are rendered with.
        feature_spec: the :class:`jettf.features.FeatureSpec` (None: its default).
        n_jets: jets per class. With public files a cap (the first ``n_jets`` of each
            class in file order; None keeps all); for a generated sample the number
            generated per class (None: the builder's ``GENERATED_N_JETS``).
        max_constituents: constituents stored per jet (the hardest); images and
            features always use every constituent.
        min_constituents: jets with fewer constituents are dropped (and counted).
        seed: master seed of the generated sample.
        shard_size: source rows per shard task.
        extra_image_specs: ``{name: ImageSpec}`` of second images stored beside the main one at their own
            granularity (004's 8 x 8 HCAL beside the 31 x 31 ECAL); sources that hold images only.
    """

    image_spec: object = None
    feature_spec: object = None
    n_jets: Optional[int] = None
    max_constituents: int = 30
    min_constituents: int = 1
    seed: int = 0
    shard_size: int = 5000
    extra_image_specs: Optional[Dict[str, object]] = None

    def with_n_jets(self, n_jets: int) -> "JetImageConfig":
        """This config with another ``n_jets``, named ``<name>-n<n_jets>``.

        The name is part of the dataset's directory, so builds with different
        numbers of jets never overwrite or silently reuse each other.
        """
        if not isinstance(n_jets, (int, np.integer)) or n_jets < 1:
            raise ValueError(f"n_jets must be a positive integer, got {n_jets!r}")
        base = self.name.split("-n")[0]
        return dataclasses.replace(
            self, name=f"{base}-n{int(n_jets)}", n_jets=int(n_jets),
            description=f"{self.description} [n_jets={int(n_jets)} per class]",
        )

    def resolved_feature_spec(self):
        from jettf.features import FeatureSpec

        return self.feature_spec if self.feature_spec is not None else FeatureSpec()


# ---------------------------------------------------------------- shard tasks
@dataclasses.dataclass
class ShardTask:
    """Independent unit of work: rows of one source file that go to one split.

    Attributes:
        split: TFDS split name.
        path: source file.
        start, stop: the row range read (the reader's cleaning is the same every time).
        rows: positions, within the cleaned range, of the jets kept for ``split``.
        keys: their record keys (positions in the split's stratified order).
    """

    split: str
    path: str
    start: int
    stop: int
    rows: np.ndarray
    keys: np.ndarray


def stratified_order(labels: np.ndarray) -> np.ndarray:
    """Record positions that interleave classes in proportion, keeping each class's order.

    The ``j``-th of the ``m_c`` jets of class ``c`` (in the given order) sorts by
    ``(j + 0.5) / m_c``, ties by class. Returns ``position[i]`` for each input
    jet: any contiguous run of positions holds every class in its overall
    proportion to within one jet.
    """
    labels = np.asarray(labels, dtype=np.int64)
    key = np.zeros(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        key[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((labels, key))
    position = np.empty(len(labels), dtype=np.int64)
    position[order] = np.arange(len(labels))
    return position


@dataclasses.dataclass(frozen=True)
class ShardProcessor:
    """Turns a :class:`ShardTask` into ``(key, example)`` pairs; picklable for Beam workers."""

    read_range: Callable
    image_spec_json: str
    feature_spec_json: str
    max_constituents: int
    has_pid: bool
    extra_specs_json: Tuple[Tuple[str, str], ...] = ()

    def __call__(self, task: ShardTask) -> Iterator[Tuple[int, dict]]:
        from jettf.features import FeatureSpec, compute_features
        from jettf.images import ImageSpec, render

        image_spec = ImageSpec.from_json(self.image_spec_json)
        feature_spec = FeatureSpec.from_json(self.feature_spec_json)
        jets = self.read_range(task.path, task.start, task.stop).select(task.rows)
        if isinstance(jets, records.ImageRows):  # the source files hold images (003, 004): stored as read
            extra = {name: ImageSpec.from_json(spec) for name, spec in self.extra_specs_json}
            examples = jets.examples(image_spec, where=task.path, extra_specs=extra)
        else:
            sparse = render(jets, image_spec, sparse=True)
            features, _ = compute_features(jets, feature_spec)
            stored = jets.sort_by_pt().pad_to(self.max_constituents)
            examples = records.iter_examples(sparse, features, stored, self.has_pid)
        for key, example in zip(task.keys.tolist(), examples):
            yield int(key), example


class DeterministicExampleWriter(tfds.core.writer.ExampleWriter):
    """Writes records with map fields in sorted key order.

    ``tf.train.Example`` features are a protobuf map, which the upb runtime
    serializes in a per-process hash order; re-serializing deterministically
    makes two builds (and plain vs Beam builds) byte-identical.
    """

    def write(self, path, examples):
        from tensorflow.core.example import example_pb2

        def canonical(serialized: bytes) -> bytes:
            return example_pb2.Example.FromString(serialized).SerializeToString(deterministic=True)

        return super().write(path, ((key, canonical(data)) for key, data in examples))


def _shard_examples(processor: ShardProcessor, task: ShardTask) -> List[Tuple[int, dict]]:
    from jettf.utils import worker_call

    return worker_call(lambda: list(processor(task)))  # SIGTERM (parent stopping or gone): exit, never go on


def _run_tasks(processor: ShardProcessor, tasks: Sequence[ShardTask], workers: int = 1):
    """The examples of ``tasks`` in task order, computed in ``workers`` processes (spawned).

    Workers die with this process, even on SIGKILL (:func:`jettf.utils.init_worker`);
    an interrupt (Ctrl-C, SIGTERM), an error or closing this generator stops them at once.
    """
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield from processor(task)
        return
    import multiprocessing
    import os
    import threading
    from concurrent import futures

    from jettf.utils import init_worker, stop_pool

    context = multiprocessing.get_context("spawn")  # never fork a parent holding TensorFlow threads
    initargs = (os.getpid(), threading.current_thread() is threading.main_thread())
    pool = futures.ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context, initializer=init_worker,
                                       initargs=initargs)
    try:
        for examples in pool.map(_shard_examples, [processor] * len(tasks), tasks):
            yield from examples
    except BaseException:  # KeyboardInterrupt, a worker's error, GeneratorExit: drop the remaining tasks now
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


# ------------------------------------------------------------------- builder
class JetImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base class of the jettf builders. Subclasses set the class attributes below.

    Class attributes:
        SAMPLE: the ``jettf.generate`` sample name (``"jetnet"``, ``"top_tagging"``, ``"quark_gluon"``).
        CLASS_NAMES: ClassLabel names in label order (the readers' class names).
        CLASS_DESCRIPTIONS: {class name: physics description}.
        HAS_PID: store PDG ids of constituents.
        HAS_WEIGHT: store the source's per-candidate weight (004's samples).
        SOURCE_FEATURES: names of the global features the source computes from its images (004's expert
            features); empty: the config's FeatureSpec computes them from the constituents.
        SPLIT_BY: ``"file"`` (each public file group is a split, see ``FILE_SPLITS``)
            or ``"fraction"`` (per-class fractions ``SPLIT_FRACTIONS``, stratified).
        GENERATED_N_JETS: jets per class generated when a config leaves ``n_jets`` None (``GENERATED_UNIT``: what
            one is, in messages).
        HOMEPAGE: where the public data lives.
    Methods to implement: :meth:`public_files`, :meth:`read_range`.
    """

    SAMPLE: str = ""
    CLASS_NAMES: Tuple[str, ...] = ()
    CLASS_DESCRIPTIONS: Dict[str, str] = {}
    HAS_PID = False
    HAS_WEIGHT = False
    SOURCE_FEATURES: Tuple[str, ...] = ()
    SPLIT_BY = "fraction"
    SPLIT_FRACTIONS: Dict[str, float] = {}
    FILE_SPLITS: Dict[str, str] = {}
    GENERATED_N_JETS = 1000
    GENERATED_UNIT = "jets"
    HOMEPAGE = ""

    # ---------------------------------------------------- for the subclasses
    @classmethod
    @abc.abstractmethod
    def public_files(cls, directory: Path) -> Dict[str, List[Path]]:
        """The public files expected in ``directory``: {group: [paths in order]}.

        Groups are split names when ``SPLIT_BY == "file"``, anything otherwise.
        """

    @staticmethod
    @abc.abstractmethod
    def read_range(path: str, start: int, stop: int):
        """Rows ``[start, stop)`` of a source file as a JetBatch (labels set), via ``jettf.io``; or, for files
        that hold images (003's E2E views), as :class:`jettf.data.records.ImageRows`, stored as read."""

    @staticmethod
    @abc.abstractmethod
    def count_rows(path: str) -> int:
        """Rows in a source file (without reading them)."""

    # ------------------------------------------------------------------ info
    @classmethod
    def sample_fingerprint(cls) -> str:
        """Fingerprint of the physics card that generates this builder's sample (names its folder)."""
        from jettf import generate

        return generate.get_card(cls.SAMPLE).fingerprint()

    @classmethod
    def generate(cls, n_per_class: int, folder: Path, seed: int, workers: int = 1, map_shards=None) -> None:
        """Write a generated sample in the public layout into ``folder`` (:func:`jettf.generate.generate_sample`)."""
        from jettf import generate

        generate.generate_sample(cls.SAMPLE, n_per_class, folder, seed=seed, workers=workers, map_shards=map_shards)

    @property
    def _extra_specs(self) -> Dict[str, object]:
        return dict(self.builder_config.extra_image_specs or {})

    @property
    def _layout(self) -> RecordLayout:
        cfg = self.builder_config
        extra = {name: (spec.npix, spec.n_channels) for name, spec in self._extra_specs.items()}
        return RecordLayout(cfg.image_spec.npix, cfg.image_spec.n_channels, len(self._feature_names()),
                            cfg.max_constituents, self.HAS_PID, extra_images=extra, has_weight=self.HAS_WEIGHT)

    def _feature_names(self) -> List[str]:
        if self.SOURCE_FEATURES:
            return list(self.SOURCE_FEATURES)
        return list(self.builder_config.resolved_feature_spec().names())

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=records.tfds_features(self._layout, self.CLASS_NAMES),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(self._static_metadata()),
            disable_shuffling=True,  # records are written in their stratified key order
        )

    def _static_metadata(self) -> dict:
        cfg = self.builder_config
        fspec = cfg.resolved_feature_spec()
        return {
            "format": METADATA_FORMAT,
            "dataset": self.name,
            "config": cfg.name,
            "image_spec": json.loads(cfg.image_spec.to_json()),
            "image_spec_fingerprint": cfg.image_spec.fingerprint(),
            "feature_spec": json.loads(fspec.to_json()),
            "feature_spec_fingerprint": fspec.fingerprint(),
            "feature_names": self._feature_names(),
            "class_names": list(self.CLASS_NAMES),
            "class_descriptions": {c: self.CLASS_DESCRIPTIONS.get(c, c) for c in self.CLASS_NAMES},
            "constituent_names": list(records.CONSTITUENT_NAMES),
            "jet_names": list(records.JET_NAMES),
            "max_constituents": cfg.max_constituents,
            "min_constituents": cfg.min_constituents,
            "has_pid": self.HAS_PID,
            "has_weight": self.HAS_WEIGHT,
            "extra_image_specs": {name: json.loads(spec.to_json()) for name, spec in self._extra_specs.items()},
            "n_jets": cfg.n_jets,
            "order": "stratified: the j-th of m_c jets of class c sorts by (j + 0.5) / m_c; "
                     "contiguous slices are stratified by class",
        }

    # ------------------------------------------------------- preparation
    def _download_and_prepare(self, dl_manager, download_config=None):
        download_config = download_config or tfds.download.DownloadConfig()
        self._use_beam = download_config.beam_runner is not None or download_config.beam_options is not None
        self._explicit_manual_dir = download_config.manual_dir
        super()._download_and_prepare(dl_manager, download_config)
        self._record_statistics()

    def _split_generators(self, dl_manager):
        source = self._resolve_source(dl_manager)
        tasks, selection = self._plan(source["groups"])
        self.info.metadata["source"] = source["record"]
        self.info.metadata["selection"] = selection
        return {split: self._generate_examples(split_tasks) for split, split_tasks in tasks.items()}

    def _example_writer(self):
        return DeterministicExampleWriter(file_format=self.info.file_format)

    def _generate_examples(self, tasks: List[ShardTask]):
        cfg = self.builder_config
        processor = ShardProcessor(
            read_range=type(self).read_range,
            image_spec_json=cfg.image_spec.to_json(),
            feature_spec_json=cfg.resolved_feature_spec().to_json(),
            max_constituents=cfg.max_constituents,
            has_pid=self.HAS_PID,
            extra_specs_json=tuple((name, spec.to_json()) for name, spec in self._extra_specs.items()),
        )
        shard_runner = getattr(self, "shard_runner", None)
        if shard_runner is not None:  # Beam's DaskRunner computes the tasks; TFDS writes here (jettf.data.distributed)
            return shard_runner.examples(processor, tasks)
        if getattr(self, "_use_beam", False):
            beam = tfds.core.lazy_imports.apache_beam
            return beam.Create(tasks) | beam.FlatMap(processor)
        return _run_tasks(processor, tasks, getattr(self, "workers", 1))

    # ----------------------------------------------------------- the source
    def _resolve_source(self, dl_manager) -> dict:
        """Public files from the manual directory if present, else a generated sample.

        An explicit manual directory (``--manual-dir``) must hold the files; TFDS'
        default one (``<download_dir>/manual``) is used when it does.
        """
        explicit = getattr(self, "_explicit_manual_dir", None)
        if explicit is not None:
            manual = Path(explicit).expanduser()
        else:
            try:
                manual = Path(dl_manager.manual_dir)
            except Exception:  # TFDS raises when its default manual dir is missing or empty
                manual = None
        if manual is not None:
            groups = self.public_files(manual) if manual.is_dir() else {}
            missing = [str(p) for paths in groups.values() for p in paths if not Path(p).is_file()]
            if groups and not missing and all(groups.values()):
                marks = _generated_marks(manual, groups)
                if marks is not None:  # files written by jettf.generate: never reported as public
                    return self._generated_files_source(manual, groups, *marks)
                return self._public_source(manual, groups)
            if explicit is not None:
                expected = [p.name for paths in self.public_files(manual).values() for p in paths]
                raise FileNotFoundError(
                    f"{manual}: the public files of {self.name} are not all there (expected {expected[:6]}"
                    f"{' ...' if len(expected) > 6 else ''}; missing {[Path(m).name for m in missing][:6] or 'all'}).\n"
                    f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        return self._generated_source(Path(dl_manager.download_dir))

    def _public_source(self, manual: Path, groups: Dict[str, List[Path]]) -> dict:
        from jettf.utils import sha256_file

        files = []
        for group, paths in groups.items():
            for p in paths:
                files.append({"group": group, "name": Path(p).name, "bytes": Path(p).stat().st_size,
                              "sha256": sha256_file(p)})
        _say(f"{self.name}/{self.builder_config.name}: reading the PUBLIC files in {manual} "
             f"({len(files)} files, checksums recorded in the metadata)")
        return {"groups": groups, "record": {"kind": "public", "directory": str(manual), "files": files}}

    def _generated_files_source(self, manual: Path, groups: Dict[str, List[Path]], marks: Dict[str, Optional[dict]],
                                generation: Optional[dict]) -> dict:
        """The files in ``--manual-dir`` were written by ``jettf.generate``: a generated source, with its settings."""
        from jettf.utils import sha256_file

        files = []
        for group, paths in groups.items():
            for p in paths:
                files.append({"group": group, "name": Path(p).name, "bytes": Path(p).stat().st_size,
                              "sha256": sha256_file(p), "generated_mark": marks[str(p)] is not None})
        found = [m for m in marks.values() if m is not None]
        settings = found[0] if found else {k: generation.get(k) for k in ("sample", "reference", "card_fingerprint",
                                                                           "seed", "n_jets_per_class", "shard_jets")}
        how = (["the 'jettf_generated' mark inside the files"] if found else []) + \
              (["generation.json beside them"] if generation is not None else [])
        unmarked = [f["name"] for f in files if not f["generated_mark"]]
        if found and unmarked:
            _say(f"{self.name}: WARNING {unmarked} in {manual} carry no generator mark while the other files do "
                 "(generated and public files mixed?); recording the source as generated")
        mixed_settings = len({json.dumps(m, sort_keys=True) for m in found}) > 1
        if mixed_settings:
            _say(f"{self.name}: WARNING the files in {manual} were generated with different settings; "
                 "each file's settings are in the metadata")
        _say(f"{self.name}/{self.builder_config.name}: the files in {manual} were GENERATED with Pythia 8 + FastJet "
             f"by jettf.generate (seed {settings.get('seed')}, {settings.get('n_jets_per_class')} jets per class; "
             f"recognised by {' and '.join(how)}), they are not the public files; recorded as a generated source")
        record = {"kind": "generated", "directory": str(manual), "manual_dir": True,
                  **{k: settings.get(k) for k in ("sample", "n_jets_per_class", "seed", "card_fingerprint")},
                  "settings": settings, "recognised_by": how, "files": files, "generation": generation}
        if mixed_settings:
            record["settings_per_file"] = {Path(p).name: m for p, m in marks.items()}
        return {"groups": groups, "record": record}

    def _generated_source(self, download_dir: Path) -> dict:
        from jettf.utils import read_json, sha256_file, write_json

        cfg = self.builder_config
        n_jets = int(cfg.n_jets if cfg.n_jets is not None else self.GENERATED_N_JETS)
        card = self.sample_fingerprint()
        settings = {"sample": self.SAMPLE, "n_jets_per_class": n_jets, "seed": int(cfg.seed), "card_fingerprint": card}
        # The folder is named by everything that fixes the jets, so a sample is reused only when identical.
        folder = download_dir / GENERATED_DIR / f"{self.SAMPLE}-n{n_jets}-seed{cfg.seed}-{card}"
        marker = folder / "jettf_generated.json"
        if marker.is_file() and read_json(marker).get("settings") == settings:
            _say(f"{self.name}/{cfg.name}: no public files; REUSING the generated Pythia sample in {folder}")
        else:
            _say(f"{self.name}/{cfg.name}: no public files found (pass --manual-dir to use them); GENERATING "
                 f"{n_jets} {self.GENERATED_UNIT} per class with Pythia 8 (seed {cfg.seed}) into {folder}")
            folder.mkdir(parents=True, exist_ok=True)
            shard_runner = getattr(self, "shard_runner", None)  # Beam's DaskRunner: Pythia shards on the cluster
            self.generate(n_jets, folder, seed=int(cfg.seed), workers=getattr(self, "workers", 1),
                          map_shards=shard_runner.map if shard_runner is not None else None)
            groups = self.public_files(folder)
            files = [{"group": g, "name": Path(p).name, "bytes": Path(p).stat().st_size, "sha256": sha256_file(p)}
                     for g, paths in groups.items() for p in paths if Path(p).is_file()]
            write_json(marker, {"settings": settings, "files": files})
        groups = self.public_files(folder)
        missing = [str(p) for paths in groups.values() for p in paths if not Path(p).is_file()]
        if missing or not all(groups.values()):
            raise FileNotFoundError(f"{folder}: the generated sample lacks {missing or 'files'}; delete the folder "
                                    "and build again")
        generation = folder / "generation.json"
        record = {"kind": "generated", "directory": str(folder), **settings, "files": read_json(marker)["files"],
                  "generation": read_json(generation) if generation.is_file() else None}
        return {"groups": groups, "record": record}

    # ------------------------------------------------------------------ plan
    def _plan(self, groups: Dict[str, List[Path]]) -> Tuple[Dict[str, List[ShardTask]], dict]:
        """Read labels and constituent counts of every source jet; assign splits, order and shards."""
        from tqdm.auto import tqdm

        cfg = self.builder_config
        ranges = []  # (group, path, start, stop)
        for group, paths in groups.items():
            for path in paths:
                n = type(self).count_rows(str(path))
                ranges += [(group, str(path), s, min(s + cfg.shard_size, n)) for s in range(0, n, cfg.shard_size)]
        labels, n_cons, range_id, row = [], [], [], []
        plan_range = functools.partial(_plan_range, type(self).read_range, tuple(self.CLASS_NAMES))
        jobs = [(path, start, stop) for _, path, start, stop in ranges]
        shard_runner = getattr(self, "shard_runner", None)  # Beam's DaskRunner: the ranges are read on the cluster
        read = shard_runner.map(plan_range, jobs) if shard_runner is not None else map(plan_range, jobs)
        for i, (range_labels, range_n_cons) in enumerate(tqdm(read, desc=f"{self.name}: planning", unit=" shards",
                                                               total=len(jobs), file=sys.stderr, leave=False)):
            labels.append(range_labels)
            n_cons.append(range_n_cons)
            range_id.append(np.full(len(range_labels), i, dtype=np.int64))
            row.append(np.arange(len(range_labels), dtype=np.int64))
        labels, n_cons = np.concatenate(labels), np.concatenate(n_cons)
        range_id, row = np.concatenate(range_id), np.concatenate(row)
        group_of = np.array([r[0] for r in ranges], dtype=object)[range_id]
        n_classes = len(self.CLASS_NAMES)

        keep = n_cons >= cfg.min_constituents
        dropped = np.bincount(labels[~keep], minlength=n_classes)
        split_of = np.full(len(labels), "", dtype=object)
        if self.SPLIT_BY == "file":
            totals = np.bincount(labels[keep], minlength=n_classes)
            for group, split in self.FILE_SPLITS.items():
                in_group = keep & (group_of == group)
                for c in range(n_classes):
                    members = np.flatnonzero(in_group & (labels == c))
                    if cfg.n_jets is not None and totals[c] > 0:
                        members = members[: int(np.ceil(cfg.n_jets * len(members) / totals[c]))]
                    split_of[members] = split
        else:
            names = list(self.SPLIT_FRACTIONS)
            fractions = np.array([self.SPLIT_FRACTIONS[s] for s in names], dtype=np.float64)
            for c in range(n_classes):
                members = np.flatnonzero(keep & (labels == c))
                if cfg.n_jets is not None:
                    members = members[: cfg.n_jets]
                edges = np.round(np.concatenate([[0.0], np.cumsum(fractions)]) / fractions.sum() * len(members))
                edges = edges.astype(np.int64)
                for s, name in enumerate(names):
                    split_of[members[edges[s]: edges[s + 1]]] = name

        tasks: Dict[str, List[ShardTask]] = {}
        counts = {}
        for split in self._split_names():
            members = np.flatnonzero(split_of == split)
            if not len(members):
                raise ValueError(f"{self.name}/{cfg.name}: split '{split}' would be empty; the source has "
                                 f"{len(labels)} jets ({int(keep.sum())} with >= {cfg.min_constituents} constituents)")
            position = stratified_order(labels[members])
            counts[split] = {self.CLASS_NAMES[c]: int(n) for c, n in
                             enumerate(np.bincount(labels[members], minlength=n_classes))}
            split_tasks = []
            for r in np.unique(range_id[members]).tolist():
                in_range = range_id[members] == r
                _, path, start, stop = ranges[r]
                split_tasks.append(ShardTask(split, path, start, stop, row[members][in_range],
                                             position[in_range]))
            tasks[split] = split_tasks
        selection = {
            "split_by": self.SPLIT_BY,
            "split_fractions": self.SPLIT_FRACTIONS if self.SPLIT_BY == "fraction" else None,
            "file_splits": self.FILE_SPLITS if self.SPLIT_BY == "file" else None,
            "n_jets_per_class_cap": cfg.n_jets,
            "source_jets": {self.CLASS_NAMES[c]: int(n) for c, n in enumerate(np.bincount(labels, minlength=n_classes))},
            "dropped_min_constituents": {self.CLASS_NAMES[c]: int(n) for c, n in enumerate(dropped)},
            "split_counts": counts,
        }
        if dropped.sum():
            _say(f"{self.name}: dropped {int(dropped.sum())} jets with fewer than {cfg.min_constituents} constituents "
                 f"({selection['dropped_min_constituents']})")
        return tasks, selection

    def _split_names(self) -> List[str]:
        if self.SPLIT_BY == "file":
            return list(dict.fromkeys(self.FILE_SPLITS.values()))
        return list(self.SPLIT_FRACTIONS)

    # ------------------------------------------------------------ statistics
    def _record_statistics(self) -> None:
        """Mean/std images (of the main and any second image) and feature mean/std of the training split,
        per-split counts, from the written records."""
        import tensorflow as tf

        layout = self._layout
        parser = records.RecordParser(self.info.features)
        images = {"image": (layout.npix, layout.n_channels), **layout.extra_images}  # record-key prefix -> shape
        keys = [f"{p}_{k}" for p in images for k in ("index", "values")] + ["global_features", "n_outside", "label"]
        stats, max_pixels = {}, dict.fromkeys(images, 0)
        for split, info in self.info.splits.items():
            files = [str(p) for p in info.filepaths]
            ds = tf.data.TFRecordDataset(files).batch(2048).map(tf.autograph.experimental.do_not_convert(
                lambda s: parser.parse(s, keys)))
            moments = {p: (np.zeros((npix * npix, c)), np.zeros((npix * npix, c))) for p, (npix, c) in images.items()}
            f_sum = np.zeros(layout.n_features)
            f_squares = np.zeros(layout.n_features)
            n, outside = 0, 0
            for batch in ds.as_numpy_iterator():
                n += len(batch["label"])
                outside += int(batch["n_outside"].sum())
                for prefix, (npix, _) in images.items():
                    index, values = batch[f"{prefix}_index"], batch[f"{prefix}_values"]
                    max_pixels[prefix] = max(max_pixels[prefix], index.shape[1])  # padded to the longest jet
                    if split == "train":
                        for total, part in zip(moments[prefix], records.pixel_moments(index, values, npix)):
                            total += part
                if split == "train":
                    g = batch["global_features"].astype(np.float64)
                    f_sum += g.sum(axis=0)
                    f_squares += (g * g).sum(axis=0)
            stats[split] = {"n_examples": n, "n_constituents_outside_image": outside}
            if split == "train" and n:
                extra = {}
                for prefix, (npix, c) in images.items():
                    mean, std = _mean_std(*moments[prefix], n)
                    where = self.info.metadata if prefix == "image" else extra.setdefault(prefix, {})
                    where["pixel_mean"] = records.encode_array(mean.reshape(npix, npix, c))
                    where["pixel_std"] = records.encode_array(std.reshape(npix, npix, c))
                mean, std = _mean_std(f_sum, f_squares, n)
                self.info.metadata["feature_mean"] = records.encode_array(mean)
                self.info.metadata["feature_std"] = records.encode_array(std)
                if extra:
                    self.info.metadata["extra_image_statistics"] = extra
        self.info.metadata["statistics"] = stats
        # The most sparse-image entries of any jet (pixels, or constituents inside the image for additive
        # specs): the static length of padded sparse images.
        self.info.metadata["max_pixels"] = max_pixels.pop("image")
        if max_pixels:
            self.info.metadata["extra_max_pixels"] = max_pixels
        outside = sum(s["n_constituents_outside_image"] for s in stats.values())
        if outside:
            _say(f"{self.name}: {outside} constituents fell outside the image window and are not in the images "
                 "(they are in 'constituents'); per split in metadata['statistics']")


def _generated_marks(directory: Path, groups: Dict[str, List[Path]]):
    """``({path: generator settings or None}, generation.json or None)`` when files in ``directory`` were
    written by ``jettf.generate`` (a mark inside a file, or its ``generation.json`` beside them); else None."""
    from jettf.io import generated_settings
    from jettf.utils import read_json

    marks = {str(p): generated_settings(p) for paths in groups.values() for p in paths}
    generation = None
    if (directory / "generation.json").is_file():
        try:
            generation = read_json(directory / "generation.json")
        except ValueError:
            generation = None
        if not (isinstance(generation, dict) and "card_fingerprint" in generation and "sample" in generation):
            generation = None  # not the generator's record
    if generation is None and not any(m is not None for m in marks.values()):
        return None
    return marks, generation


def _plan_range(read_range: Callable, class_names: Tuple[str, ...], job: Tuple[str, int, int]):
    """``(labels int64 [n], constituent counts [n])`` of the rows ``job = (path, start, stop)`` of a source file."""
    path, start, stop = job
    jets = read_range(path, start, stop)
    _check_classes(jets, class_names, path)
    return np.asarray(jets.labels, dtype=np.int64), np.asarray(jets.n_constituents)


def _mean_std(sums: np.ndarray, squares: np.ndarray, n: int):
    mean = sums / n
    return mean, np.sqrt(np.clip(squares / n - mean * mean, 0.0, None))


def _check_classes(jets, class_names: Sequence[str], path: str) -> None:
    if jets.labels is None:
        raise ValueError(f"{path}: the reader returned jets without labels; expected classes {list(class_names)}")
    if jets.class_names is not None and tuple(jets.class_names) != tuple(class_names):
        raise ValueError(f"{path}: the reader's classes {list(jets.class_names)} differ from the builder's "
                         f"{list(class_names)}")
